//! Who is calling: one token per service, and optionally one port per service.
//!
//! A service's token is the one `busbar.toml` gives it (`[dev.services.NAME] token`), else one
//! generated into the data directory (`tokens.json`, readable by its owner only) on first start
//! and reused after, so an app's `DAPR_API_TOKEN` stays valid across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use busbar_config::DevConfig;
use busbar_model::AppModel;

/// How a service reaches the sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub service: String,
    /// Its `dapr-api-token`.
    pub token: String,
    /// The token was generated (it is in `tokens.json`), not written in busbar.toml.
    pub generated: bool,
    /// Its own sidecar port, when busbar.toml gives one.
    pub port: Option<u16>,
}

/// The file of generated tokens in a data directory.
pub fn tokens_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

/// Every service's endpoint, in model order: configured tokens as they are, the others from
/// `tokens.json` or freshly generated (and then written there).
pub fn endpoints(
    model: &AppModel,
    dev: &DevConfig,
    data_dir: &Path,
) -> Result<Vec<Endpoint>, String> {
    let file = tokens_file(data_dir);
    let mut stored: BTreeMap<String, String> = match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a JSON object of tokens ({e}); delete it to generate new ones",
                file.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let mut changed = false;
    let mut out = Vec::new();
    for service in &model.services {
        let configured = dev.services.get(&service.name);
        let port = configured.and_then(|s| s.port);
        if let Some(token) = configured.and_then(|s| s.token.clone()) {
            out.push(Endpoint { service: service.name.clone(), token, generated: false, port });
            continue;
        }
        let token = match stored.get(&service.name) {
            Some(t) if !t.is_empty() => t.clone(),
            _ => {
                let t = new_token()?;
                stored.insert(service.name.clone(), t.clone());
                changed = true;
                t
            }
        };
        out.push(Endpoint { service: service.name.clone(), token, generated: true, port });
    }
    if changed {
        write_private(&file, &serde_json::to_vec_pretty(&stored).unwrap_or_default())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(out)
}

/// 128 random bits from the operating system, as hex.
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot generate a token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `bytes` to `path` through a temporary file, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
