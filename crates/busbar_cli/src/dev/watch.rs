//! `busbar dev --watch`: the app's saved changes, in batches.
//!
//! The app directory is watched recursively (inotify on Linux, through `notify`). A batch is
//! the paths changed until 300 ms pass without another change (an editor's save writes
//! several files, or one file several times). Only what can change the analysis counts:
//! TypeScript sources, `busbar.toml`, `tsconfig.json` and `package.json`, outside
//! `node_modules`, `.busbar` and the data directory; Rust sources and `Cargo.toml`, outside
//! `target` (where cargo writes generated `.rs` files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// The quiet time that ends a batch.
const SETTLE: Duration = Duration::from_millis(300);

/// Whether a changed path can change the analysis.
fn relevant(path: &Path, data: &Path) -> bool {
    if path.starts_with(data)
        || path
            .components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("node_modules" | ".busbar" | ".git")))
    {
        return false;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.ends_with(".rs") || name == "Cargo.toml" {
        return !path.components().any(|c| c.as_os_str() == "target");
    }
    matches!(name, "busbar.toml" | "tsconfig.json" | "package.json")
        || [".ts", ".tsx", ".mts", ".cts"].iter().any(|e| name.ends_with(e))
}

/// A running watch; dropping it stops watching.
pub(crate) struct Watch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir`; each batch of relevant changed paths arrives on the receiver.
pub(crate) fn watch(
    dir: &Path,
    data: &Path,
) -> Result<(Watch, mpsc::UnboundedReceiver<BTreeSet<PathBuf>>), String> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<PathBuf>();
    let data = data.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                if relevant(&path, &data) {
                    let _ = raw_tx.send(path);
                }
            }
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(first) = raw_rx.recv().await {
            let mut batch = BTreeSet::from([first]);
            loop {
                match tokio::time::timeout(SETTLE, raw_rx.recv()).await {
                    Ok(Some(path)) => {
                        batch.insert(path);
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if tx.send(batch).is_err() {
                return;
            }
        }
    });
    Ok((Watch { _watcher: watcher }, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_analysis_reads_counts() {
        let data = Path::new("/app/.busbar/data");
        assert!(relevant(Path::new("/app/orders/api.ts"), data));
        assert!(relevant(Path::new("/app/busbar.toml"), data));
        assert!(relevant(Path::new("/app/tsconfig.json"), data));
        assert!(!relevant(Path::new("/app/node_modules/x/index.ts"), data));
        assert!(!relevant(Path::new("/app/.busbar/data/busbar.db"), data));
        assert!(!relevant(Path::new("/app/orders/notes.md"), data));
        assert!(relevant(Path::new("/app/fraud/src/main.rs"), data));
        assert!(relevant(Path::new("/app/fraud/Cargo.toml"), data));
        assert!(!relevant(Path::new("/app/target/debug/build/x/out/gen.rs"), data));
        assert!(!relevant(Path::new("/elsewhere/data/a.ts"), Path::new("/elsewhere/data")));
    }
}
