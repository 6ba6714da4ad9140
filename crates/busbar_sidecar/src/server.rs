//! The sidecar's HTTP server: what every request must be to be read at all, and the limits on
//! connections.
//!
//! - **Loopback only, from loopback pages only.** A request whose `Host` is not a loopback name
//!   (`localhost`, `*.localhost`, `127.0.0.1`, `[::1]`, with any port) is refused (a DNS
//!   rebinding page reaches 127.0.0.1 under its own name), and so is one with an `Origin` that
//!   is not a loopback origin (a page of another site, or `null`). Non-browser clients send no
//!   `Origin`.
//! - **JSON endpoints take JSON only**: bulk publish and the admin API's POSTs refuse any other
//!   content type (415), so no CORS "simple request" (`text/plain`, forms) reaches them.
//! - **Limits**: at most [`Limits::connections`] connections (beyond, new ones wait in the
//!   listen queue, and a line is logged); a connection that sends no complete request header
//!   within [`Limits::header_read`] of opening or of its last response is closed (hyper starts
//!   the header timer again while a kept-alive connection is idle); a request must finish
//!   within [`Limits::request`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::error;

/// How much the server takes before it refuses or waits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections open at once, over all the sidecar's ports.
    pub connections: usize,
    /// Time to send a request's header (from the connection's start, or its last response).
    pub header_read: Duration,
    /// Time to send a whole request and be answered.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 512,
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(60),
        }
    }
}

/// Whether `host` (a `Host` header or an origin's authority) names this machine's loopback.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[::1]` or `[::1]:3500`
        match rest.split_once(']') {
            Some((addr, port)) if port.is_empty() || port.starts_with(':') => addr,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }
        })
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// Whether an `Origin` is a page served from this machine's loopback.
fn loopback_origin(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    (scheme == "http" || scheme == "https") && !authority.contains('/') && loopback_host(authority)
}

/// Why a request is refused before any handler sees it.
fn screen(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    let text =
        |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    match text(header::HOST) {
        Some(host) if loopback_host(host) => {}
        Some(host) => {
            return Some(error(
                StatusCode::FORBIDDEN,
                "ERR_HOST_NOT_ALLOWED",
                format!(
                    "Host `{host}` is not a loopback name: busbar dev answers requests for localhost, 127.0.0.1 and [::1] only"
                ),
            ));
        }
        None => {
            return Some(error(
                StatusCode::FORBIDDEN,
                "ERR_HOST_NOT_ALLOWED",
                "the request has no Host header",
            ));
        }
    }
    if let Some(origin) = text(header::ORIGIN)
        && !loopback_origin(origin)
    {
        return Some(error(
            StatusCode::FORBIDDEN,
            "ERR_ORIGIN_NOT_ALLOWED",
            format!(
                "requests from pages of `{origin}` are refused: only loopback pages may call busbar dev"
            ),
        ));
    }
    let json_only = *method == Method::POST
        && (path.contains("/publish/bulk/") || path.starts_with("/v1.0-busbar/"));
    if json_only {
        let content_type = text(header::CONTENT_TYPE).unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Some(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "ERR_MALFORMED_REQUEST",
                format!("this endpoint takes application/json, not `{content_type}`"),
            ));
        }
    }
    None
}

/// The middleware every request passes: [`screen`], then the handler within the request limit.
pub(crate) async fn guard(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = screen(request.method(), request.uri().path(), request.headers()) {
        return refused;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "ERR_REQUEST_TIMEOUT",
            format!("the request did not finish within {limit:?}"),
        ),
    }
}

/// Serves `app` on `listener` until `stopped` says so, then lets the requests in flight finish.
/// `connections` is shared by every listener of the sidecar; `log` takes the lines an operator
/// should see.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    connections: Arc<Semaphore>,
    log: tokio::sync::mpsc::UnboundedSender<String>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    // The limit's log line, at most once every 10 s (a flood would otherwise flood the log).
    let mut said_at: Option<tokio::time::Instant> = None;
    loop {
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if said_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    said_at = Some(tokio::time::Instant::now());
                    let _ = log.send(format!(
                        "connection limit reached ({} open): new connections to port {port} wait until one closes",
                        limits.connections
                    ));
                }
                tokio::select! {
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = until_stopped(&mut stopped) => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: say so, and try again shortly.
                    let _ = log.send(format!("cannot accept a connection on port {port}: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = until_stopped(&mut stopped) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = watched.await;
            drop(permit);
        });
    }
    graceful.shutdown().await;
}

async fn until_stopped(stopped: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_and_origins_pass() {
        for ok in [
            "localhost",
            "localhost:3500",
            "127.0.0.1:3500",
            "127.8.0.1",
            "[::1]:3500",
            "[::1]",
            "app.localhost:80",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:3500",
            "127.0.0.1.evil.com",
            "localhost.evil.com",
            "[::2]:3500",
            "0.0.0.0",
            "",
            "[::1]x",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
        assert!(loopback_origin("http://localhost:3000") && loopback_origin("https://127.0.0.1"));
        for bad in [
            "null",
            "http://evil.com",
            "file://",
            "http://localhost.evil.com:3000",
            "http://127.0.0.1/x",
        ] {
            assert!(!loopback_origin(bad), "{bad}");
        }
    }
}
