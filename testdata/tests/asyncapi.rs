//! AsyncAPI documents: `busbar asyncapi` on the example app, on every `analyze/ok` and
//! `schema/ok` fixture and on an app whose topics use two different types of one name, each
//! validated by the official AsyncAPI parser (`@asyncapi/parser`, run by Node: zero errors and
//! zero warnings); the example's document is deterministic and snapshotted.

use std::path::{Path, PathBuf};

#[path = "support/harness.rs"]
mod harness;

use harness::{materialize, run, tool};

fn testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
}

fn example() -> PathBuf {
    testdata().parent().unwrap().join("examples/shop")
}

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txtar"))
        .collect();
    paths.sort();
    paths
}

/// `busbar asyncapi` of the app in `dir`, written to `out`.
fn write_document(dir: &Path, out: &Path, format: &str) -> Result<(), String> {
    let args: Vec<String> = ["asyncapi", ".", "--color", "never", "--format", format, "--out"]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_string_lossy().into_owned()])
        .collect();
    let outcome = run(dir, &args);
    if outcome.code != 0 {
        return Err(format!("busbar asyncapi failed ({}): {}", outcome.code, outcome.stderr));
    }
    Ok(())
}

#[test]
fn example_document_is_deterministic_and_snapshotted() {
    let args: Vec<String> = ["asyncapi", "."].iter().map(|s| s.to_string()).collect();
    let one = run(&example(), &[args.clone(), vec!["--threads".into(), "1".into()]].concat());
    let three = run(&example(), &[args, vec!["--threads".into(), "3".into()]].concat());
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert_eq!(one.stdout, three.stdout, "the document differs between thread counts");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(testdata().join("asyncapi"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("example-shop", one.stdout));
}

/// Two topics whose message types are different types named `Order` (in two files): the
/// components keep both, as `Order` and `Order_2`, each topic referring to its own.
const SAME_NAME_APP: &str = r#"
-- a/encore.service.ts --
import { Service } from "encore.dev/service";
export default new Service("a");
-- a/topics.ts --
import { Topic, type Attribute } from "encore.dev/pubsub";
interface Line { sku: string }
export interface Order { id: string; lines: Line[]; region: Attribute<string> }
export const orders = new Topic<Order>("orders", { deliveryGuarantee: "at-least-once" });
export const go = () => orders.publish({ id: "1", lines: [], region: "eu" });
-- b/encore.service.ts --
import { Service } from "encore.dev/service";
export default new Service("b");
-- b/topics.ts --
import { Topic, Subscription } from "encore.dev/pubsub";
interface Line { sku: string; quantity: number }
export interface Order { id: string; lines: Line[] }
export const legacy = new Topic<Order>("legacy-orders", { deliveryGuarantee: "at-least-once" });
export const send = () => legacy.publish({ id: "1", lines: [] });
new Subscription(legacy, "archive", { handler: async () => {} });
"#;

#[test]
fn types_of_one_name_stay_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("same-name.txtar");
    std::fs::write(&fixture, SAME_NAME_APP).unwrap();
    let app = materialize(&fixture);
    let outcome = run(&app.app, &["asyncapi".into(), ".".into(), "--format".into(), "json".into()]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let doc: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
    let schemas = &doc["components"]["schemas"];
    let mut names: Vec<&String> = schemas.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["Line", "Line_2", "Order", "Order_2"]);
    // `legacy-orders` comes first: its types keep the names.
    assert_eq!(
        doc["components"]["messages"]["legacy-orders"]["payload"]["$ref"],
        "#/components/schemas/Order"
    );
    assert_eq!(
        doc["components"]["messages"]["orders"]["payload"]["$ref"],
        "#/components/schemas/Order_2"
    );
    assert_eq!(
        schemas["Order_2"]["properties"]["lines"]["items"]["$ref"],
        "#/components/schemas/Line_2"
    );
    assert_eq!(schemas["Line"]["required"], serde_json::json!(["quantity", "sku"]));
    assert_eq!(
        doc["components"]["messages"]["orders"]["headers"]["required"],
        serde_json::json!(["region"])
    );
}

/// Every document busbar writes for the example and the fixtures passes the official parser.
#[test]
fn documents_pass_the_official_parser() {
    let (Some(node), Some(parser)) = (tool("BUSBAR_NODE"), tool("BUSBAR_ASYNCAPI_PARSER")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut documents = Vec::new();
    let example_yaml = tmp.path().join("example-shop.yaml");
    write_document(&example(), &example_yaml, "yaml").unwrap();
    let example_json = tmp.path().join("example-shop.json");
    write_document(&example(), &example_json, "json").unwrap();
    documents.extend([example_yaml, example_json]);
    let same_name = tmp.path().join("same-name.txtar");
    std::fs::write(&same_name, SAME_NAME_APP).unwrap();
    let mut apps = vec![same_name];
    apps.extend(fixtures("analyze/ok"));
    apps.extend(fixtures("schema/ok"));
    for path in apps {
        let fixture = materialize(&path);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = path.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let out = tmp.path().join(format!("{dir}-{name}.yaml"));
        write_document(&fixture.app, &out, "yaml")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        documents.push(out);
    }
    let script = testdata().join("asyncapi/check-asyncapi.mjs");
    let checked = std::process::Command::new(node)
        .arg(script)
        .arg("--parser")
        .arg(parser)
        .args(&documents)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "the AsyncAPI parser refused a document:\n{report}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.ends_with(" operations)")).count(),
        documents.len(),
        "{report}"
    );
}
