//! Who is calling: one token per service, and optionally one port per service.
//!
//! A service's token is the one `busbar.toml` gives it (`[dev.services.NAME] token`), else one
//! generated into the data directory (`tokens.json`, readable by its owner only) on first start
//! and reused after, so an app's `DAPR_API_TOKEN` stays valid across restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use busbar_config::DevConfig;
use busbar_model::runtime::RuntimeConfig;

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

/// Every service's endpoint, in the contract's order: configured tokens as they are, the
/// others from `tokens.json` or freshly generated (and then written there).
pub fn endpoints(
    config: &RuntimeConfig,
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
    for service in config.services.iter().map(|p| &p.service) {
        let configured = dev.services.get(service);
        let port = configured.and_then(|s| s.port);
        if let Some(token) = configured.and_then(|s| s.token.clone()) {
            out.push(Endpoint { service: service.clone(), token, generated: false, port });
            continue;
        }
        let token = match stored.get(service) {
            Some(t) if !t.is_empty() => t.clone(),
            _ => {
                let t = new_token()?;
                stored.insert(service.clone(), t.clone());
                changed = true;
                t
            }
        };
        out.push(Endpoint { service: service.clone(), token, generated: true, port });
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
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Who may call, and how each caller is recognised.
pub(crate) struct Callers {
    /// Token → service.
    tokens: BTreeMap<String, String>,
    /// Service → token.
    by_service: BTreeMap<String, String>,
    /// The app's services (for `dapr-app-id`).
    services: std::collections::BTreeSet<String>,
    /// `[dev] trust-app-id`.
    trust_app_id: bool,
    /// `busbar serve`: every caller is this service.
    fixed: Option<crate::FixedService>,
}

impl Callers {
    pub fn new(
        endpoints: &[Endpoint],
        config: &RuntimeConfig,
        trust_app_id: bool,
        fixed: Option<crate::FixedService>,
    ) -> Callers {
        Callers {
            tokens: endpoints.iter().map(|e| (e.token.clone(), e.service.clone())).collect(),
            by_service: endpoints.iter().map(|e| (e.service.clone(), e.token.clone())).collect(),
            services: config.services.iter().map(|s| s.service.clone()).collect(),
            trust_app_id,
            fixed,
        }
    }

    /// The calling service. On a service's own port (`owner`), only that service's token
    /// identifies it: the port says which service, the token that it is really that service.
    /// On the shared port, the service whose `dapr-api-token` is sent; a `dapr-app-id` without
    /// a token only when `[dev] trust-app-id = true`. A token that is not the port owner's, or
    /// that no service has, is refused rather than ignored.
    pub fn identify(
        &self,
        owner: Option<&str>,
        headers: &axum::http::HeaderMap,
    ) -> Result<String, String> {
        let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let token = header_text("dapr-api-token");
        if let Some(fixed) = &self.fixed {
            // One sidecar per service, as Dapr runs one per app: the caller is the service,
            // proven by its token when one is set.
            return match (&fixed.token, token) {
                (None, _) => Ok(fixed.name.clone()),
                (Some(want), Some(sent)) if want == sent => Ok(fixed.name.clone()),
                (Some(_), Some(_)) => Err(format!(
                    "the dapr-api-token sent is not service `{}`'s (DAPR_API_TOKEN of busbar serve)",
                    fixed.name
                )),
                (Some(_), None) => Err(format!(
                    "this sidecar is service `{}`'s and needs its dapr-api-token (DAPR_API_TOKEN)",
                    fixed.name
                )),
            };
        }
        let by_token = token.map(|t| self.tokens.get(t));
        match (owner, by_token) {
            (Some(owner), None) => Err(format!(
                "this port is service `{owner}`'s: send its dapr-api-token (DAPR_API_TOKEN, as busbar dev printed at start{})",
                if self.by_service.contains_key(owner) { "" } else { "; the service has none" }
            )),
            (Some(owner), Some(Some(s))) if s == owner => Ok(owner.to_string()),
            (Some(owner), Some(_)) => Err(format!(
                "this port is service `{owner}`'s, but the dapr-api-token sent is not `{owner}`'s token"
            )),
            (None, Some(Some(service))) => Ok(service.clone()),
            (None, Some(None)) => Err(
                "the dapr-api-token sent is no service's token: use the one busbar dev printed at start (or [dev.services.NAME] token in busbar.toml)".into(),
            ),
            (None, None) => match header_text("dapr-app-id") {
                Some(app) if !self.trust_app_id => Err(format!(
                    "a dapr-app-id (`{app}`) without a dapr-api-token does not identify a caller: send the service's token (DAPR_API_TOKEN, printed at start), or set `trust-app-id = true` under [dev] in busbar.toml to let any local process name itself"
                )),
                Some(app) if self.services.contains(app) => Ok(app.to_string()),
                Some(app) => Err(format!("dapr-app-id `{app}` names no service of the app")),
                None => Err(
                    "unidentified caller: send the service's dapr-api-token (DAPR_API_TOKEN, printed at start), or call the service's own port with it".into(),
                ),
            },
        }
    }
}

/// The file of the admin token in a data directory.
pub fn admin_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// The token the admin API (`/v1.0-busbar/`) asks for, as `Authorization: Bearer TOKEN`: read
/// from the data directory's `admin-token`, or generated there (readable by its owner only), so
/// only a user who can read the data directory can list or release dead letters.
pub fn admin_token(data_dir: &Path) -> Result<String, String> {
    let file = admin_token_file(data_dir);
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    }
    let token = new_token()?;
    write_private(&file, format!("{token}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(token)
}
