//! `busbar dev`: the app's broker and sidecar on 127.0.0.1, the services that have a
//! `command` started and supervised ([`services`]), and with `--watch` the graph reloaded on
//! every saved change ([`watch`]), until Ctrl-C.

mod services;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use busbar_config::DevConfig;

use crate::{DevArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, pipeline};
use services::{Event, Launch, Services};

pub(crate) fn run(args: &DevArgs, cwd: &Path, host: &Host, err: &mut dyn Write) -> u8 {
    let loaded = match pipeline::load_checked(&args.app, cwd, "dev", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Err(e) = check_only(&loaded, &args.only) {
        let _ = writeln!(err, "error: {e}");
        return EXIT_USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    runtime.block_on(serve(args, cwd, host, loaded, err))
}

/// `--only` names services that have a command.
fn check_only(loaded: &pipeline::Loaded, only: &[String]) -> Result<(), String> {
    let startable: Vec<&String> = loaded
        .config
        .dev
        .services
        .iter()
        .filter(|(name, s)| s.command.is_some() && loaded.analysis.model.service(name).is_some())
        .map(|(name, _)| name)
        .collect();
    for name in only {
        if !startable.contains(&name) {
            let list: Vec<&str> = startable.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "--only names `{name}`, which is not a service with a command in busbar.toml\n  = help: the services busbar dev can start: {}",
                if list.is_empty() { "none".to_string() } else { list.join(", ") }
            ));
        }
    }
    Ok(())
}

/// The app ports of the services busbar dev starts, kept across reloads.
#[derive(Default)]
struct AppPorts(BTreeMap<String, u16>);

impl AppPorts {
    /// The dev config with each started service's URL filled in (its app port, chosen free
    /// unless busbar.toml gives one), and the names of the services to start.
    fn assign(
        &mut self,
        loaded: &pipeline::Loaded,
        args: &DevArgs,
    ) -> Result<(DevConfig, Vec<String>), String> {
        let only = &args.only;
        let mut dev = loaded.config.dev.clone();
        let mut started = Vec::new();
        for (name, service) in &mut dev.services {
            if args.no_start
                || service.command.is_none()
                || loaded.analysis.model.service(name).is_none()
                || !(only.is_empty() || only.contains(name))
            {
                continue;
            }
            let port = match self.0.get(name) {
                Some(p) => *p,
                None => {
                    let wanted = service.app_port.or_else(|| port_of_url(service.url.as_deref()));
                    let port = free_port(wanted).map_err(|e| match wanted {
                        Some(p) => format!(
                            "port {p}, the app-port of service `{name}`, is taken: {e}\n  = help: stop what listens there, or give the service another app-port in busbar.toml (or none, and busbar dev picks a free one)"
                        ),
                        None => format!("cannot find a free port for service `{name}`: {e}"),
                    })?;
                    self.0.insert(name.clone(), port);
                    port
                }
            };
            if service.url.is_none() {
                service.url = Some(format!("http://127.0.0.1:{port}"));
            }
            started.push(name.clone());
        }
        Ok((dev, started))
    }
}

/// The port of a `http://127.0.0.1:3001`-style URL.
fn port_of_url(url: Option<&str>) -> Option<u16> {
    let rest = url?.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// `wanted` if it is free on 127.0.0.1, else (with none wanted) a free one.
fn free_port(wanted: Option<u16>) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", wanted.unwrap_or(0)))?;
    Ok(listener.local_addr()?.port())
}

/// How to start `name`, with the environment the SDK reads.
fn launch(
    name: &str,
    loaded: &pipeline::Loaded,
    dev: &DevConfig,
    ports: &AppPorts,
    running: &busbar_sidecar::Running,
) -> Option<Launch> {
    let service = loaded.analysis.model.service(name)?;
    let command = dev.services.get(name)?.command.clone()?;
    let endpoint = running.endpoints.iter().find(|e| e.service == name)?;
    let sidecar_port = endpoint.port.unwrap_or(running.addr.port());
    let app_port = *ports.0.get(name)?;
    Some(Launch {
        name: name.to_string(),
        root: loaded.dir.join(&service.root),
        command,
        env: vec![
            ("APP_PORT".into(), app_port.to_string()),
            ("DAPR_HTTP_PORT".into(), sidecar_port.to_string()),
            ("DAPR_API_TOKEN".into(), endpoint.token.clone()),
            ("BUSBAR_SERVICE".into(), name.to_string()),
            ("BUSBAR_PUBSUB".into(), dev.pubsub.clone()),
        ],
    })
}

/// Binds the sidecar's ports and starts it.
async fn start_sidecar(
    args: &DevArgs,
    loaded: &pipeline::Loaded,
    dev: &DevConfig,
    data: &Path,
) -> Result<busbar_sidecar::Running, (u8, String)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.map_err(|e| {
        (
            EXIT_USAGE,
            format!(
                "cannot listen on 127.0.0.1:{}: {e}\n  = help: pass a free port with `--port`",
                args.port
            ),
        )
    })?;
    let mut services = BTreeMap::new();
    for (name, service) in &dev.services {
        let Some(port) = service.port.filter(|_| loaded.analysis.model.service(name).is_some())
        else {
            continue;
        };
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            (
                EXIT_USAGE,
                format!(
                    "cannot listen on 127.0.0.1:{port}, the port of service `{name}`: {e}\n  = help: give it a free port in busbar.toml ([dev.services.{name}] port)"
                ),
            )
        })?;
        services.insert(name.clone(), l);
    }
    let listeners = busbar_sidecar::Listeners { shared: listener, services };
    let options = busbar_sidecar::Options {
        data_dir: data.to_path_buf(),
        dev: dev.clone(),
        disk_reserve: args.min_free_disk.saturating_mul(1 << 20),
        limits: busbar_sidecar::Limits::default(),
        service: None,
        broker: None,
    };
    busbar_sidecar::start(loaded.runtime_config(), options, listeners)
        .await
        .map_err(|e| (EXIT_FAILED, e.to_string()))
}

async fn serve(
    args: &DevArgs,
    cwd: &Path,
    host: &Host,
    mut loaded: pipeline::Loaded,
    err: &mut dyn Write,
) -> u8 {
    let data = loaded.data_dir(args.data.as_deref(), cwd);
    let mut ports = AppPorts::default();
    let (mut dev, names) = match ports.assign(&loaded, args) {
        Ok(assigned) => assigned,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut running = match start_sidecar(args, &loaded, &dev, &data).await {
        Ok(r) => r,
        Err((code, e)) => {
            let _ = writeln!(err, "error: {e}");
            return code;
        }
    };
    // The services busbar dev starts do not answer yet, as expected: no warning about them.
    running.warnings.retain(|w| {
        !names.iter().any(|n| w.starts_with(&format!("service `{n}` does not answer")))
    });
    announce(&loaded, &running, &data, &ports, err);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let launches = names.iter().filter_map(|n| launch(n, &loaded, &dev, &ports, &running));
    let mut services = Services::start(launches.collect(), events_tx);
    let mut changes = None;
    let _watch = if args.watch {
        match watch::watch(&loaded.dir, &data) {
            Ok((w, rx)) => {
                changes = Some(rx);
                let _ = writeln!(err, "busbar dev: watching {} for changes", loaded.dir.display());
                Some(w)
            }
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut failures = running.failures.take();
    let mut lines = running.log.take();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(()) = async { terminate.as_mut()?.recv().await } => break,
            Some(f) = async { failures.as_mut()?.recv().await } => {
                let _ = writeln!(err, "{}", failure_line(&f));
            }
            Some(line) = async { lines.as_mut()?.recv().await } => {
                let _ = writeln!(err, "warning: {line}");
            }
            Some(Event::Restarted(name)) = events.recv() => running.service_restarted(&name),
            Some(batch) = async { changes.as_mut()?.recv().await } => {
                let reloaded = reload(args, cwd, host, &loaded, &mut ports, &mut running, &batch, err).await;
                if let Some((new, new_dev, restart)) = reloaded {
                    sync_services(&mut services, &new, &new_dev, &ports, &running, &restart);
                    loaded = new;
                    dev = new_dev;
                }
            }
        }
    }
    let _ = writeln!(
        err,
        "busbar dev: stopping the services, then the sidecar after the deliveries in flight"
    );
    services.stop().await;
    running.shutdown().await;
    let _ = dev;
    EXIT_OK
}

/// The log line of a failed delivery.
pub(crate) fn failure_line(f: &busbar_runtime::Failure) -> String {
    let what = if f.dead_lettered { "dead-lettered" } else { "will retry" };
    format!(
        "delivery failed: subscription {} message {} attempt {}: {} ({what})",
        f.subscription, f.message_id, f.attempt, f.error
    )
}

/// The start lines: where the API is, and each service's token and ports.
fn announce(
    loaded: &pipeline::Loaded,
    running: &busbar_sidecar::Running,
    data: &Path,
    ports: &AppPorts,
    err: &mut dyn Write,
) {
    let _ = writeln!(
        err,
        "busbar dev: the Dapr pub/sub API of `{}` on http://{} (pubsub `{}`), data in {}",
        loaded.app_name(),
        running.addr,
        loaded.config.dev.pubsub,
        data.display()
    );
    let width = running.endpoints.iter().map(|e| e.service.len()).max().unwrap_or(0);
    for e in &running.endpoints {
        let port = e.port.map(|p| format!("DAPR_HTTP_PORT={p}  ")).unwrap_or_default();
        let app = ports.0.get(&e.service).map(|p| format!("APP_PORT={p}  ")).unwrap_or_default();
        let from = if e.generated {
            format!("generated, in {}", busbar_sidecar::identity::tokens_file(data).display())
        } else {
            "from busbar.toml".to_string()
        };
        let _ =
            writeln!(err, "  {:width$}  {app}{port}DAPR_API_TOKEN={} ({from})", e.service, e.token);
    }
    for w in &running.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
}

/// Analyzes the app again after `changed`; a valid graph replaces the running one. Returns
/// the new load, its dev config, and the services to restart.
#[expect(clippy::too_many_arguments, reason = "the state of one busbar dev run")]
async fn reload(
    args: &DevArgs,
    cwd: &Path,
    host: &Host,
    old: &pipeline::Loaded,
    ports: &mut AppPorts,
    running: &mut busbar_sidecar::Running,
    changed: &BTreeSet<PathBuf>,
    err: &mut dyn Write,
) -> Option<(pipeline::Loaded, DevConfig, BTreeSet<String>)> {
    let shown: Vec<String> = changed
        .iter()
        .map(|p| p.strip_prefix(&old.dir).unwrap_or(p).display().to_string())
        .collect();
    let _ = writeln!(err, "busbar dev: changed: {}; analyzing again", shown.join(", "));
    let mut report = Vec::new();
    let loaded = tokio::task::block_in_place(|| {
        pipeline::load_checked(&args.app, cwd, "dev", host, &mut report)
    });
    let _ = err.write_all(&report);
    let Ok(loaded) = loaded else {
        let _ = writeln!(err, "busbar dev: the app has errors: the running graph stays as it was");
        return None;
    };
    let (dev, _) = match ports.assign(&loaded, args) {
        Ok(assigned) => assigned,
        Err(e) => {
            let _ = writeln!(err, "error: {e}\nbusbar dev: the running graph stays as it was");
            return None;
        }
    };
    match running.reload(loaded.runtime_config(), dev.clone()).await {
        Ok(warnings) => {
            for w in warnings {
                let _ = writeln!(err, "warning: {w}");
            }
            let _ = writeln!(
                err,
                "busbar dev: reloaded: {} topics, {} subscriptions",
                loaded.analysis.model.topics.len(),
                loaded.analysis.model.topics.iter().map(|t| t.subscriptions.len()).sum::<usize>()
            );
        }
        Err(e) => {
            let _ = writeln!(err, "error: cannot reload: {e}");
            return None;
        }
    }
    let restart = affected(&loaded, changed);
    Some((loaded, dev, restart))
}

/// The services whose code a change touched: those whose root holds a changed file, or all
/// of them when a changed file lies outside every service (shared code, busbar.toml).
fn affected(loaded: &pipeline::Loaded, changed: &BTreeSet<PathBuf>) -> BTreeSet<String> {
    let services = &loaded.analysis.model.services;
    let all = || services.iter().map(|s| s.name.clone()).collect();
    let mut out = BTreeSet::new();
    for path in changed {
        let owner = services
            .iter()
            .filter(|s| s.root != "." && path.starts_with(loaded.dir.join(&s.root)))
            .max_by_key(|s| s.root.len());
        match owner {
            Some(s) => {
                out.insert(s.name.clone());
            }
            None => return all(),
        }
    }
    out
}

/// Starts the services the new graph has and busbar dev does not run yet, stops those it
/// lost, and restarts those whose code changed.
fn sync_services(
    services: &mut Services,
    loaded: &pipeline::Loaded,
    dev: &DevConfig,
    ports: &AppPorts,
    running: &busbar_sidecar::Running,
    restart: &BTreeSet<String>,
) {
    let wanted: BTreeSet<String> = ports
        .0
        .keys()
        .filter(|n| {
            loaded.analysis.model.service(n).is_some()
                && dev.services.get(*n).is_some_and(|s| s.command.is_some())
        })
        .cloned()
        .collect();
    let current: BTreeSet<String> = services.names().cloned().collect();
    for gone in current.difference(&wanted) {
        services.remove(gone);
    }
    for name in &wanted {
        let Some(new) = launch(name, loaded, dev, ports, running) else { continue };
        if !current.contains(name) {
            services.add(new);
        } else if services.launch_of(name) != Some(&new) {
            // Its command (or environment) changed: the old process goes, the new one starts.
            services.remove(name);
            running.service_restarted(name);
            services.add(new);
        } else if restart.contains(name) {
            running.service_restarted(name);
            services.restart(name);
        }
    }
}
