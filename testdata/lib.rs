//! Fixture apps live in `analyze/{ok,err}/*.txtar`; the runner is `tests/fixtures.rs`.
//!
//! [`write_generated_app`] writes a larger app as real TypeScript, for tests that need scale
//! (the diagram layout at 50 services and 80 topics); [`write_orders_billing_app`] the
//! smallest app with a publish and a subscription, for tests of the audit and the runtime;
//! [`corpus`] the analyzer benchmark's monorepo (`cargo xtask bench analyze`), which the
//! pre-filter's equivalence test also reads at a smaller shape.

use std::fmt::Write as _;
use std::path::Path;

pub mod corpus;

/// Writes a two-service app under `root`: `orders` declares `order-placed` (exported as
/// `placed` from `orders/topics.ts`) and publishes it; `billing` subscribes to it as `charge`.
pub fn write_orders_billing_app(root: &Path) -> std::io::Result<()> {
    let service = |name: &str| {
        format!(
            "import {{ Service }} from \"encore.dev/service\";\nexport default new Service(\"{name}\");\n"
        )
    };
    let files = [
        ("orders/encore.service.ts", service("orders")),
        ("billing/encore.service.ts", service("billing")),
        (
            "orders/topics.ts",
            "import { Topic } from \"encore.dev/pubsub\";\nexport const placed = new Topic<{ id: string }>(\"order-placed\", { deliveryGuarantee: \"at-least-once\" });\nexport async function place(id: string) {\n  await placed.publish({ id });\n}\n".to_string(),
        ),
        (
            "billing/charge.ts",
            "import { Subscription } from \"encore.dev/pubsub\";\nimport { placed } from \"../orders/topics\";\nnew Subscription(placed, \"charge\", { handler: async () => {} });\n".to_string(),
        ),
    ];
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// Writes an app of `services` services and `topics` topics under `root`: each topic declared
/// in a service (one in five in a shared `events/` folder), published by one to three
/// services, and subscribed to by zero to four, with filters, ordering and exactly-once
/// topics sprinkled in. The same `seed` writes the same files.
pub fn write_generated_app(
    root: &Path,
    services: usize,
    topics: usize,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let service = |i: usize| format!("svc-{i:02}");
    let topic = |t: usize| format!("topic-{t:02}");
    let ident = |t: usize| format!("topic{t:02}");
    // Where each topic is declared: a service index, or None for the shared folder.
    let homes: Vec<Option<usize>> =
        (0..topics).map(|t| if t % 5 == 4 { None } else { Some(rng.usize(0..services)) }).collect();
    let module = |t: usize| match homes[t] {
        Some(s) => format!("../{}/topics.js", service(s)),
        None => "../events/topics.js".to_string(),
    };
    // Topic declarations per file.
    let mut declared: Vec<String> = vec![String::new(); services + 1];
    for (t, home) in homes.iter().enumerate() {
        let file = home.unwrap_or(services);
        let mut options = String::new();
        let ordered = rng.usize(0..6) == 0;
        if rng.usize(0..8) == 0 && !ordered {
            options.push_str("  deliveryGuarantee: \"exactly-once\",\n");
        } else {
            options.push_str("  deliveryGuarantee: \"at-least-once\",\n");
        }
        if ordered {
            options.push_str("  orderingAttribute: \"key\",\n");
        }
        let _ = write!(
            declared[file],
            "export const {} = new Topic<Event>(\"{}\", {{\n{options}}});\n\n",
            ident(t),
            topic(t)
        );
    }
    let header = "import { Topic, Attribute } from \"encore.dev/pubsub\";\n\nexport interface Event {\n  id: string;\n  key: Attribute<string>;\n  region: Attribute<string>;\n}\n\n";
    std::fs::create_dir_all(root.join("events"))?;
    std::fs::write(root.join("events/topics.ts"), format!("{header}{}", declared[services]))?;
    // Publishers and subscriptions per service.
    let mut publishes: Vec<Vec<usize>> = vec![Vec::new(); services];
    let mut subscribes: Vec<Vec<(usize, usize)>> = vec![Vec::new(); services];
    for (t, home) in homes.iter().enumerate() {
        let mut pubs: Vec<usize> = home.iter().copied().collect();
        while pubs.len() < 1 + rng.usize(0..3) {
            pubs.push(rng.usize(0..services));
        }
        pubs.sort_unstable();
        pubs.dedup();
        for p in pubs {
            publishes[p].push(t);
        }
        for k in 0..rng.usize(0..5) {
            subscribes[rng.usize(0..services)].push((t, k));
        }
    }
    for s in 0..services {
        let dir = root.join(service(s));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("encore.service.ts"),
            format!(
                "import {{ Service }} from \"encore.dev/service\";\n\nexport default new Service(\"{}\");\n",
                service(s)
            ),
        )?;
        std::fs::write(dir.join("topics.ts"), format!("{header}{}", declared[s]))?;
        let mut code = String::from("import { Subscription } from \"encore.dev/pubsub\";\n");
        let mut seen = std::collections::BTreeSet::new();
        for &t in publishes[s].iter().chain(subscribes[s].iter().map(|(t, _)| t)) {
            if seen.insert(t) {
                let _ = writeln!(code, "import {{ {} }} from \"{}\";", ident(t), module(t));
            }
        }
        code.push('\n');
        for &t in &publishes[s] {
            let _ = writeln!(
                code,
                "export async function publish{t:02}() {{\n  await {}.publish({{ id: \"1\", key: \"k\", region: \"eu\" }});\n}}\n",
                ident(t)
            );
        }
        for &(t, k) in &subscribes[s] {
            let filter =
                if rng.usize(0..4) == 0 { "  filter: { region: [\"eu\", \"uk\"] },\n" } else { "" };
            let _ = writeln!(
                code,
                "new Subscription({}, \"{}-{}-{k}\", {{\n  handler: async () => {{}},\n{filter}}});\n",
                ident(t),
                service(s),
                topic(t)
            );
        }
        std::fs::write(dir.join("pubsub.ts"), code)?;
    }
    Ok(())
}
