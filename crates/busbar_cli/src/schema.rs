//! `busbar schema`: the JSON Schema (2020-12) of each topic's messages, as the contract's
//! `schema` field and validation at publish use it.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::{EXIT_USAGE, Host, SchemaArgs, pipeline};

pub(crate) fn run(
    args: &SchemaArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let loaded = match pipeline::load_checked(&args.app, cwd, "schema", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let topics = &loaded.analysis.model.topics;
    let value = match &args.topic {
        Some(name) => match topics.iter().find(|t| &t.name == name) {
            Some(topic) => topic.schema.to_json_schema(),
            None => {
                let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
                let _ = writeln!(
                    err,
                    "error: --topic: the app has no topic `{name}`; its topics: {}",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                );
                return EXIT_USAGE;
            }
        },
        None => Value::Object(
            topics
                .iter()
                .map(|t| (t.name.clone(), t.schema.to_json_schema()))
                .collect::<Map<_, _>>(),
        ),
    };
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    crate::files::emit(args.out.as_deref(), cwd, &text, out, err)
}
