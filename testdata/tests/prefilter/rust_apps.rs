//! The Rust pre-filter's property test: a Cargo workspace whose `use`s, re-exports, aliases,
//! call chains and message types are rearranged at random gives the same output with and
//! without `--parse-all`.

use std::path::Path;

use super::{put, same_either_way, skipped};

const MANIFEST: &str = "[package]\nversion = \"0.1.0\"\nedition = \"2024\"\n";

/// The app every case starts from: a library `shared` (topic, helper that publishes, message
/// types, noise), a service `orders` whose publish goes through the helper, a service
/// `billing` that subscribes.
fn write_base(root: &Path) {
    put(root, "Cargo.toml", "[workspace]\nmembers = [\"shared\", \"orders\", \"billing\"]\n");
    put(
        root,
        "shared/Cargo.toml",
        &format!("{MANIFEST}name = \"shared\"\n\n[dependencies]\nbusbar = \"0.1\"\n"),
    );
    put(
        root,
        "shared/src/lib.rs",
        "pub mod helpers;\npub mod noise;\npub mod topics;\npub mod types;\npub mod util;\n",
    );
    put(
        root,
        "shared/src/topics.rs",
        "use busbar::Topic;\nuse crate::types::Order;\n\npub static ORDERS: Topic<Order> = Topic::new(\"orders\");\n",
    );
    put(
        root,
        "shared/src/types.rs",
        "#[derive(serde::Serialize, serde::Deserialize)]\npub struct Order {\n    pub id: String,\n    pub item: crate::util::Item,\n}\n",
    );
    put(
        root,
        "shared/src/util.rs",
        "#[derive(serde::Serialize, serde::Deserialize)]\npub struct Item {\n    pub sku: String,\n    pub count: u32,\n}\n",
    );
    put(
        root,
        "shared/src/helpers.rs",
        "use crate::topics::ORDERS;\n\npub async fn notify(o: crate::types::Order) {\n    ORDERS.publish(&o).await.ok();\n}\n",
    );
    put(root, "shared/src/noise.rs", "pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n");
    for service in ["orders", "billing"] {
        put(
            root,
            &format!("{service}/Cargo.toml"),
            &format!(
                "{MANIFEST}name = \"{service}\"\n\n[dependencies]\nbusbar = \"0.1\"\nshared = {{ path = \"../shared\" }}\n"
            ),
        );
    }
    put(root, "orders/src/main.rs", "mod flow;\n\nfn main() {\n    flow::run();\n}\n");
    put(
        root,
        "orders/src/flow.rs",
        "pub async fn run() {\n    shared::helpers::notify(order()).await;\n}\n\nfn order() -> shared::types::Order {\n    todo!()\n}\n",
    );
    put(
        root,
        "billing/src/main.rs",
        "use shared::topics::ORDERS;\n\n#[busbar::subscribe(topic = ORDERS, name = \"bill\")]\nasync fn bill(o: shared::types::Order) -> busbar::Result<()> {\n    Ok(())\n}\n\nfn main() {}\n",
    );
}

fn edit(root: &Path, rel: &str, f: impl FnOnce(String) -> String) {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

fn append(root: &Path, rel: &str, more: &str) {
    edit(root, rel, |t| t + more);
}

/// The mutations, each applied or not at random (in this order, so they compose).
const MUTATIONS: usize = 12;

fn mutate(root: &Path, which: usize) {
    let flow = "orders/src/flow.rs";
    match which {
        // The helper re-exported under another name; the service calls the alias.
        0 => {
            append(root, "shared/src/lib.rs", "pub use helpers::notify as tell;\n");
            edit(root, flow, |t| t.replace("shared::helpers::notify(", "shared::tell("));
        }
        // A glob re-export of the topics; the subscriber names the topic through it.
        1 => {
            append(root, "shared/src/lib.rs", "pub use topics::*;\n");
            edit(root, "billing/src/main.rs", |t| {
                t.replace("use shared::topics::ORDERS;", "use shared::*;")
            });
        }
        // A relay between the service and the helper, in a file of its own.
        2 => {
            append(root, "shared/src/lib.rs", "pub mod relay;\n");
            put(
                root,
                "shared/src/relay.rs",
                "pub async fn relay(o: crate::types::Order) {\n    crate::helpers::notify(o).await\n}\n",
            );
            edit(root, flow, |t| {
                t.replace("shared::helpers::notify(", "shared::relay::relay(")
                    .replace("shared::tell(", "shared::relay::relay(")
            });
        }
        // The service imports the helper under an alias.
        3 => edit(root, flow, |t| {
            let t = t.replace("shared::helpers::notify(", "n(");
            format!("use shared::helpers::notify as n;\n{t}")
        }),
        // The message type's field type moves into an inline module, re-exported.
        4 => put(
            root,
            "shared/src/util.rs",
            "mod inner {\n    #[derive(serde::Serialize, serde::Deserialize)]\n    pub struct Item {\n        pub sku: String,\n        pub count: u32,\n    }\n}\npub use inner::Item;\n",
        ),
        // A topic used as a plain value in a file with no trigger word (BB0201).
        5 => append(
            root,
            "shared/src/noise.rs",
            "pub fn peek() -> usize {\n    let _t = &crate::topics::ORDERS;\n    0\n}\n",
        ),
        // A publish in a method: its owner is the type, which the service names.
        6 => {
            append(
                root,
                "shared/src/helpers.rs",
                "pub struct Sender;\nimpl Sender {\n    pub async fn go(&self, o: crate::types::Order) {\n        crate::topics::ORDERS.publish(&o).await.ok();\n    }\n}\n",
            );
            append(
                root,
                "orders/src/main.rs",
                "pub async fn later(o: shared::types::Order) {\n    shared::helpers::Sender::go(&shared::helpers::Sender, o).await\n}\n",
            );
        }
        // More files that hold nothing.
        7 => {
            append(root, "shared/src/lib.rs", "pub mod more;\npub mod math;\n");
            put(root, "shared/src/more.rs", "pub struct Unrelated { pub n: u64 }\n");
            put(
                root,
                "shared/src/math.rs",
                "pub fn mul(a: u32, b: u32) -> u32 {\n    crate::noise::add(a, 0) * b\n}\n",
            );
        }
        // The message type names its field's type through a glob import.
        8 => edit(root, "shared/src/types.rs", |t| {
            format!("use crate::util::*;\n{}", t.replace("crate::util::Item", "Item"))
        }),
        // The service calls through a glob import of the helpers.
        9 => edit(root, flow, |t| {
            if t.contains("shared::helpers::notify(") {
                format!(
                    "use shared::helpers::*;\n{}",
                    t.replace("shared::helpers::notify(", "notify(")
                )
            } else {
                t
            }
        }),
        // The helpers module reaches the crate root only through a glob of a file that names
        // no trigger word, and a reference that cannot matter asks the same question first.
        10 => {
            let helpers = std::fs::read_to_string(root.join("shared/src/helpers.rs")).unwrap();
            std::fs::remove_file(root.join("shared/src/helpers.rs")).unwrap();
            put(
                root,
                "shared/src/private_helpers.rs",
                &format!("{helpers}pub const VERSION: u32 = 1;\n"),
            );
            put(root, "shared/src/hidden.rs", "pub use crate::private_helpers as helpers;\n");
            edit(root, "shared/src/lib.rs", |t| {
                t.replace(
                    "pub mod helpers;\n",
                    "mod hidden;\nmod private_helpers;\npub use hidden::*;\n",
                )
            });
            append(
                root,
                "orders/src/main.rs",
                "fn version() -> u32 {\n    shared::helpers::VERSION\n}\n",
            );
        }
        // A topic in the service whose message type is the library's.
        _ => {
            edit(root, "orders/src/main.rs", |t| format!("mod events;\n{t}"));
            put(
                root,
                "orders/src/events.rs",
                "use busbar::Topic;\n\npub static SHIPPED: Topic<shared::util::Item> = Topic::new(\"shipped\");\n",
            );
        }
    }
}

fn listing(root: &Path) -> String {
    super::files_ending(root, "")
        .iter()
        .map(|f| format!("-- {f} --\n{}", std::fs::read_to_string(root.join(f)).unwrap()))
        .collect()
}

#[test]
fn rearranged_rust_workspaces_never_change_the_output() {
    let mut rng = fastrand::Rng::with_seed(23);
    let (mut skipping, mut skipped_files) = (0, 0);
    for case in 0..40 {
        let tmp = tempfile::tempdir().unwrap();
        write_base(tmp.path());
        // The first cases apply one mutation each, then random sets.
        let chosen: Vec<usize> = if case < MUTATIONS {
            vec![case]
        } else {
            (0..MUTATIONS).filter(|_| rng.bool()).collect()
        };
        for &m in &chosen {
            mutate(tmp.path(), m);
        }
        let n = skipped(tmp.path());
        // noise.rs holds nothing unless mutation 5 makes it name the topic.
        assert!(n > 0 || chosen.contains(&5), "case {case} skips nothing");
        skipping += usize::from(n > 0);
        skipped_files += n;
        if let Err(e) = same_either_way(tmp.path()) {
            panic!("case {case} (mutations {chosen:?}): {e}\n\nthe app:\n{}", listing(tmp.path()));
        }
    }
    // Not vacuous: most cases skip files (the others name the topic from noise.rs).
    assert!(
        skipping >= 30 && skipped_files >= 40,
        "{skipping} cases skipped {skipped_files} files"
    );
}

/// The base app: which files the pre-filter skips, and that the rounds and the closure put the
/// others back (the flow file names no trigger word, the message types are found by lookups).
#[test]
fn the_rust_prefilter_skips_only_what_cannot_matter() {
    let tmp = tempfile::tempdir().unwrap();
    write_base(tmp.path());
    // noise.rs only: flow.rs is on the way to the publish, types.rs and util.rs are the
    // message type's.
    assert_eq!(skipped(tmp.path()), 1);
    assert_eq!(same_either_way(tmp.path()), Ok(0));
}

/// The crates of cargo's registry (`$CARGO_HOME/registry/src/*/`) whose directory starts with
/// one of `prefixes`, the newest of each.
fn registry_crates(prefixes: &[&str]) -> Vec<std::path::PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .expect("cargo's registry sources (the build downloads them)")
        .flatten()
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    prefixes
        .iter()
        .map(|p| {
            let name =
                |d: &std::path::PathBuf| d.file_name().unwrap().to_string_lossy().to_string();
            dirs.iter()
                .rfind(|d| {
                    name(d)
                        .strip_prefix(p)
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                })
                .unwrap_or_else(|| panic!("no crate {p}* in cargo's registry"))
                .clone()
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst);
        } else if src.extension().is_some_and(|x| x == "rs" || x == "toml") {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Real crates (syn, serde, regex-syntax, rayon-core, hyper, from cargo's registry), each made
/// to depend on busbar so that all their code is read: the same output with and without the
/// pre-filter, the same files in the module trees, and most of them skipped.
#[test]
fn real_crates_are_the_same_with_and_without_the_prefilter() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in registry_crates(&["syn-", "serde-", "regex-syntax-", "rayon-core-", "hyper-"]) {
        let to = tmp.path().join(dir.file_name().unwrap());
        copy_tree(&dir, &to);
        append(&to, "Cargo.toml", "\n[dependencies.busbar]\nversion = \"0.1\"\n");
    }
    let files = |parse_all: bool| {
        let (_, _, skipped, files) = super::analyze_counting_files(tmp.path(), parse_all);
        (skipped, files)
    };
    let ((skipped, filtered_files), (none, all_files)) = (files(false), files(true));
    assert_eq!((none, filtered_files), (0, all_files), "the module trees differ");
    assert!(skipped * 2 > all_files, "only {skipped} of {all_files} files skipped");
    same_either_way(tmp.path()).unwrap();
}
