//! The environment `busbar dev` gives each service, and log lines.

use std::sync::OnceLock;

use crate::sidecar::EnvError;

/// The service's name for log lines, set once by the server or the embedded app.
static SERVICE: OnceLock<String> = OnceLock::new();

/// Names the service in log lines (the first name set stays).
pub(crate) fn set_service(name: &str) {
    let _ = SERVICE.set(name.to_string());
}

fn service() -> String {
    match SERVICE.get() {
        Some(name) => name.clone(),
        None => var("BUSBAR_SERVICE").unwrap_or_else(|| "app".to_string()),
    }
}

/// Writes one line to stderr, prefixed with the service's name.
pub(crate) fn log(text: &str) {
    let line = text.split('\n').map(str::trim).collect::<Vec<_>>().join(" | ");
    #[expect(
        clippy::print_stderr,
        reason = "the SDK's log lines go to stderr, as busbar dev shows them"
    )]
    {
        eprintln!("busbar[{}]: {line}", service());
    }
}

/// A variable's value, unless unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A TCP port from the environment: `None` when unset, an error when not a port.
pub(crate) fn port(name: &'static str) -> Result<Option<u16>, EnvError> {
    let Some(raw) = var(name) else { return Ok(None) };
    match raw.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(Some(port)),
        _ => Err(EnvError::NotAPort { var: name, value: raw }),
    }
}

/// Milliseconds from the environment (`None`: unset or not a whole number).
pub(crate) fn millis(name: &str) -> Option<u64> {
    var(name).and_then(|raw| raw.trim().parse::<u64>().ok())
}

/// The backend `BUSBAR_BACKEND` names: `aws` or `gcp`, `None` for the sidecar (unset, or
/// `sidecar`).
pub(crate) fn backend() -> Result<Option<&'static str>, EnvError> {
    match var("BUSBAR_BACKEND").as_deref().map(str::trim) {
        None | Some("sidecar") => Ok(None),
        Some("aws") => Ok(Some("aws")),
        Some("gcp") => Ok(Some("gcp")),
        Some(other) => Err(EnvError::NotABackend { value: other.to_string() }),
    }
}
