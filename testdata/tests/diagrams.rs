//! Diagram tests: `testdata/diagram/*.txtar` fixtures (Mermaid and DOT snapshotted), the SVG
//! geometry of every drawn app (`support/svg_check.rs`), Graphviz rendering the DOT, and the
//! HTML page in headless Chromium (`browser/check-diagram.mjs`).

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;
#[path = "support/svg_check.rs"]
mod svg_check;

use harness::{Outcome, materialize, no_model, run, run_dir, snapshot, tool};

fn diagram_testdata() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("diagram")
}

fn example() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../examples/shop")
}

/// `busbar diagram` on an app: the Mermaid and DOT text (the same with 1 and 3 threads), and
/// the SVG, whose geometry is checked. Returns the text for a snapshot.
fn diagrams(app: &Path, extra: &[String]) -> Result<String, String> {
    let mut text = String::new();
    for format in ["mermaid", "dot", "svg"] {
        let mut args: Vec<String> =
            ["diagram", ".", "--color", "never", "--format", format].map(String::from).to_vec();
        args.extend(extra.iter().cloned());
        let with_threads = |n: &str| {
            let mut a = args.clone();
            a.extend(["--threads".into(), n.into()]);
            run(app, &a)
        };
        let one = with_threads("1");
        let three = with_threads("3");
        if one.code != 0 {
            return Err(format!("{format}: exit {}\n{}", one.code, one.stderr));
        }
        if one.stdout != three.stdout {
            return Err(format!("{format}: output differs between 1 and 3 threads"));
        }
        if format == "svg" {
            svg_check::check(&one.stdout).map_err(|e| format!("svg: {e}"))?;
        } else {
            text.push_str(&format!("$ busbar {}\n{}", args.join(" "), one.stdout));
        }
    }
    Ok(text)
}

fn check_diagram(path: &Path) -> Result<(), String> {
    let fixture = materialize(path);
    no_model(&fixture)?;
    let text = diagrams(&fixture.app, &fixture.args)?;
    let outcome = Outcome { code: 0, stdout: text, stderr: String::new() };
    snapshot(path, &fixture.comment, &["diagram".to_string()], &outcome)
}

/// Every `diagram/*.txtar` fixture: Mermaid and DOT snapshotted, the SVG checked.
#[test]
fn diagram_fixtures() {
    run_dir(&diagram_testdata(), check_diagram);
}

/// The example app's diagrams, snapshotted; with `--dlq` and with each focus too.
#[test]
fn example_app_diagrams() {
    let example = example();
    let mut text = diagrams(&example, &[]).unwrap();
    for extra in
        [&["--dlq"][..], &["--focus", "service=notifications"], &["--focus", "topic=order-placed"]]
    {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        text.push_str(&diagrams(&example, &extra).unwrap());
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(diagram_testdata());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("example-shop", text));
}

/// The SVG of every analyzable `analyze/ok` fixture passes the geometry check.
#[test]
fn svg_geometry_of_every_ok_fixture() {
    let mut checked = 0;
    for entry in std::fs::read_dir(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("analyze/ok"),
    )
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "txtar") {
            continue;
        }
        let fixture = materialize(&path);
        let args = ["diagram", ".", "--format", "svg", "--dlq"].map(String::from);
        let out = run(&fixture.app, &args);
        if out.code != 0 {
            continue; // An app with errors draws nothing (checked below).
        }
        svg_check::check(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures drawn");
}

/// The layout stays readable at 50 services and 80 topics: no overlapping boxes, no text on
/// another text or box, no edge through a box it does not connect.
#[test]
fn svg_geometry_at_50_services_and_80_topics() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in [1, 2, 3] {
        let app = tmp.path().join(format!("app{seed}"));
        busbar_testdata::write_generated_app(&app, 50, 80, seed).unwrap();
        let analyzed =
            run(&app, &["analyze".to_string(), ".".into(), "--format".into(), "json".into()]);
        let model: Value = serde_json::from_str(&analyzed.stdout).unwrap();
        assert_eq!(model["services"].as_array().unwrap().len(), 50, "{}", analyzed.stderr);
        assert_eq!(model["topics"].as_array().unwrap().len(), 80);
        let subscriptions: usize = model["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["subscriptions"].as_array().unwrap().len())
            .sum();
        for extra in [&[][..], &["--dlq"]] {
            let mut args = ["diagram", ".", "--format", "svg"].map(String::from).to_vec();
            args.extend(extra.iter().map(|s| s.to_string()));
            let out = run(&app, &args);
            assert_eq!(out.code, 0, "{}", out.stderr);
            let counts = svg_check::check(&out.stdout)
                .unwrap_or_else(|e| panic!("seed {seed} {extra:?}: {e}"));
            let dlqs = if extra.is_empty() { 0 } else { subscriptions };
            assert_eq!(counts.boxes, 130 + dlqs, "every service, topic and DLQ is drawn");
            assert!(counts.edges > 250 && counts.segments > 2 * counts.edges, "{counts:?}");
            assert!(counts.texts >= counts.boxes + counts.edges, "{counts:?}");
        }
    }
}

/// `busbar diagram` refuses an app with errors and an unknown focus, and writes nothing.
#[test]
fn diagram_errors_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(app.join("a")).unwrap();
    std::fs::write(
        app.join("a/encore.service.ts"),
        "import { Service } from \"encore.dev/service\";\nexport default new Service(\"a\");\n",
    )
    .unwrap();
    std::fs::write(app.join("a/t.ts"), "import { Topic } from \"encore.dev/pubsub\";\nexport const t = new Topic<{}>(\"t\", { deliveryGuarantee: \"at-least-once\" });\n").unwrap();
    let args = |focus: &str| -> Vec<String> {
        ["diagram", ".", "--format", "html", "--out", "d/x.html", "--focus", focus]
            .map(String::from)
            .to_vec()
    };
    let out = run(&app, &args("service=nope"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no service `nope`") && out.stderr.contains("services are: a"),
        "{}",
        out.stderr
    );
    let out = run(&app, &args("topic=nope"));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("topics are: t"), "{}", out.stderr);
    let out = run(&app, &args("queue=x"));
    assert_eq!(out.code, 2);
    assert!(!app.join("d").exists());
    // A syntax error in a file on an import chain to a topic (a file that cannot hold a fact
    // is not parsed: `busbar_ts::prefilter`).
    std::fs::write(app.join("a/bad.ts"), "import { t } from \"./t\";\nexport const = ;\n").unwrap();
    let out = run(&app, &args("service=a"));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nothing written"), "{}", out.stderr);
    assert!(!app.join("d").exists());
}

/// `busbar diagram --format dot` of the example app, every diagram fixture and the generated
/// app renders with Graphviz, with one node per diagram node.
#[test]
fn dot_output_renders_with_graphviz() {
    let Some(dot) = tool("BUSBAR_DOT") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    busbar_testdata::write_generated_app(&generated, 50, 80, 1).unwrap();
    let example = example();
    let mut apps: Vec<(PathBuf, Vec<String>)> =
        vec![(example.clone(), vec![]), (example, vec!["--dlq".into()]), (generated, vec![])];
    let mut fixtures = Vec::new();
    for entry in std::fs::read_dir(diagram_testdata()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txtar") {
            let fixture = materialize(&path);
            apps.push((fixture.app.clone(), fixture.args.clone()));
            fixtures.push(fixture);
        }
    }
    for (app, extra) in &apps {
        let mut args = ["diagram", ".", "--format", "dot"].map(String::from).to_vec();
        args.extend(extra.iter().cloned());
        let out = run(app, &args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let file = tmp.path().join("diagram.dot");
        std::fs::write(&file, &out.stdout).unwrap();
        let rendered = std::process::Command::new(&dot).arg("-Tsvg").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&rendered.stderr);
        assert!(
            rendered.status.success() && stderr.is_empty(),
            "dot on {}: {stderr}",
            app.display()
        );
        let svg = String::from_utf8(rendered.stdout).unwrap();
        let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let doc = roxmltree::Document::parse_with_options(&svg, options).unwrap();
        let drawn = doc.descendants().filter(|n| n.attribute("class") == Some("node")).count();
        let declared = out
            .stdout
            .lines()
            .filter(|l| l.trim_start().contains(" [label=") && !l.contains(" -> "))
            .count();
        assert!(declared > 0);
        assert_eq!(drawn, declared, "Graphviz drew every node of {}", app.display());
    }
}

/// The HTML page in headless Chromium (`testdata/browser/check-diagram.mjs`): no console
/// error and no request, every node drawn, no overlap with the real font, search, the details
/// panel, zoom and pan; on the example app and on the generated one.
#[test]
fn html_page_works_in_chromium() {
    let (Some(node), Some(chromium), Some(playwright)) =
        (tool("BUSBAR_NODE"), tool("BUSBAR_CHROMIUM"), tool("BUSBAR_PLAYWRIGHT"))
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    busbar_testdata::write_generated_app(&generated, 50, 80, 2).unwrap();
    let example = example();
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("browser/check-diagram.mjs");
    let cases = [
        (example, 14, "order-placed", "orders", "orders/"),
        (generated, 130, "topic-07", "svc-03", "svc-03/"),
    ];
    for (app, nodes, topic, service, location) in cases {
        let html = tmp.path().join("page.html");
        let out = run(
            &app,
            &[
                "diagram".into(),
                ".".into(),
                "--format".into(),
                "html".into(),
                "--out".into(),
                html.to_string_lossy().into_owned(),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let checked = std::process::Command::new(&node)
            .arg(&script)
            .arg("--playwright")
            .arg(&playwright)
            .arg("--chromium")
            .arg(&chromium)
            .arg("--html")
            .arg(&html)
            .args([
                "--nodes",
                &nodes.to_string(),
                "--search",
                topic,
                "--service",
                service,
                "--location",
                location,
            ])
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "the page of {} failed in Chromium:\n{}{}",
            app.display(),
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}
