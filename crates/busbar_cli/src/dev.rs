//! `busbar dev`: the app's broker and sidecar on 127.0.0.1, until Ctrl-C.

use std::io::Write;
use std::path::Path;

use crate::{DevArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, pipeline};

pub(crate) fn run(args: &DevArgs, cwd: &Path, host: &Host, err: &mut dyn Write) -> u8 {
    let loaded = match pipeline::load_checked(&args.app, cwd, "dev", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let data = loaded.data_dir(args.data.as_deref(), cwd);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let app_name = loaded.app_name();
    let pubsub = loaded.config.dev.pubsub.clone();
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(
                    err,
                    "error: cannot listen on 127.0.0.1:{}: {e}\n  = help: pass a free port with `--port`",
                    args.port
                );
                return EXIT_USAGE;
            }
        };
        let mut services = std::collections::BTreeMap::new();
        for (name, service) in &loaded.config.dev.services {
            let Some(port) = service.port.filter(|_| loaded.analysis.model.service(name).is_some())
            else {
                continue;
            };
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => {
                    services.insert(name.clone(), l);
                }
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "error: cannot listen on 127.0.0.1:{port}, the port of service `{name}`: {e}\n  = help: give it a free port in busbar.toml ([dev.services.{name}] port)"
                    );
                    return EXIT_USAGE;
                }
            }
        }
        let listeners = busbar_sidecar::Listeners { shared: listener, services };
        let options = busbar_sidecar::Options {
            data_dir: data.clone(),
            dev: loaded.config.dev.clone(),
            disk_reserve: args.min_free_disk.saturating_mul(1 << 20),
            limits: busbar_sidecar::Limits::default(),
        };
        let model = loaded.analysis.model.clone();
        let mut running = match busbar_sidecar::start(model, &loaded.graph, options, listeners).await {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_FAILED;
            }
        };
        let _ = writeln!(
            err,
            "busbar dev: the Dapr pub/sub API of `{app_name}` on http://{} (pubsub `{pubsub}`), data in {}",
            running.addr,
            data.display()
        );
        let width = running.endpoints.iter().map(|e| e.service.len()).max().unwrap_or(0);
        for e in &running.endpoints {
            let port = e.port.map(|p| format!("DAPR_HTTP_PORT={p}  ")).unwrap_or_default();
            let from = if e.generated {
                format!("generated, in {}", busbar_sidecar::identity::tokens_file(&data).display())
            } else {
                "from busbar.toml".to_string()
            };
            let _ = writeln!(
                err,
                "  {:width$}  {port}DAPR_API_TOKEN={} ({from})",
                e.service, e.token
            );
        }
        for w in &running.warnings {
            let _ = writeln!(err, "warning: {w}");
        }
        // One line per failed delivery, and the server's lines, until Ctrl-C.
        let mut failures = running.failures.take();
        let mut lines = running.log.take();
        let log = async {
            loop {
                let line = tokio::select! {
                    Some(f) = async { failures.as_mut()?.recv().await } => {
                        let what = if f.dead_lettered { "dead-lettered" } else { "will retry" };
                        format!(
                            "delivery failed: subscription {} message {} attempt {}: {} ({what})",
                            f.subscription, f.message_id, f.attempt, f.error
                        )
                    }
                    Some(line) = async { lines.as_mut()?.recv().await } => format!("warning: {line}"),
                    else => break,
                };
                let _ = writeln!(err, "{line}");
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = log => {}
        }
        let _ = writeln!(err, "busbar dev: stopping after the deliveries in flight");
        running.shutdown().await;
        EXIT_OK
    })
}
