//! `busbar asyncapi`: the app's AsyncAPI 3.0 document (also written by `busbar build` as
//! `asyncapi.yaml`), with the bindings of its AWS and GCP plans.

use std::io::Write;
use std::path::Path;

use busbar_plan::{Plan, Resources, Target};
use serde_json::Value;

use crate::{AsyncapiArgs, AsyncapiFormat, Host, pipeline::Loaded, plan};

/// The document of an analyzed and planned app.
pub(crate) fn document(loaded: &Loaded, plans: &[Plan]) -> Value {
    let mut bindings = busbar_asyncapi::Bindings::default();
    for p in plans {
        match &p.resources {
            Resources::Aws(aws) => bindings.aws = Some(aws),
            Resources::Gcp(gcp) => bindings.gcp = Some(gcp),
            Resources::Dapr(_) => {}
        }
    }
    let info =
        busbar_asyncapi::Info { title: loaded.app_name(), version: app_version(&loaded.dir) };
    busbar_asyncapi::document(&loaded.analysis.model, &info, bindings)
}

/// The app's version: `version` of its root `package.json`, else `0.0.0`.
fn app_version(dir: &Path) -> String {
    busbar_config::files::read_regular(&dir.join("package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|json| json.get("version").and_then(Value::as_str).map(str::to_string))
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "0.0.0".to_string())
}

pub(crate) fn run(
    args: &AsyncapiArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let targets = [Target::Aws, Target::Gcp];
    let planned = match plan::plan_app(&args.app, cwd, "asyncapi", &targets, host, None, err) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let doc = document(&planned.loaded, &planned.plans);
    let text = match args.format {
        AsyncapiFormat::Yaml => busbar_asyncapi::to_yaml(&doc),
        AsyncapiFormat::Json => busbar_asyncapi::to_json(&doc),
    };
    crate::files::emit(args.out.as_deref(), cwd, &text, out, err)
}
