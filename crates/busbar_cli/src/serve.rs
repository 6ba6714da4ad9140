//! `busbar serve`: the sidecar for production, one per service as Dapr runs one per app. The
//! same Dapr pub/sub HTTP API and graph enforcement as `busbar dev`, for one fixed service:
//! a publish it has no grant for is 403 before any broker call; its subscriptions are delivered
//! to `--app-url`. The broker is the embedded one or a cloud backend (`--backend`), found and
//! checked before the port opens. SIGTERM or Ctrl-C: no new deliveries, the ones in flight
//! finish and are settled, then it exits.

use std::io::Write;
use std::path::{Path, PathBuf};

use busbar_config::{DevConfig, DevService};
use busbar_sidecar::{FixedService, GivenBroker};

use crate::backend::{self, Source};
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, ServeArgs, pipeline};

/// What one `busbar serve` serves, before it starts.
struct Serving {
    config: busbar_plan::RuntimeConfig,
    loaded: Option<pipeline::Loaded>,
    service: String,
    app_url: Option<String>,
    token: Option<String>,
    data: PathBuf,
    pubsub: String,
}

pub(crate) fn run(args: &ServeArgs, cwd: &Path, host: &Host, err: &mut dyn Write) -> u8 {
    let serving = match prepare(args, cwd, host, err) {
        Ok(s) => s,
        Err((code, e)) => {
            if !e.is_empty() {
                let _ = writeln!(err, "error: {e}");
            }
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    runtime.block_on(serve(args, cwd, serving, err))
}

/// Reads what is served and checks the service and where it listens.
fn prepare(
    args: &ServeArgs,
    cwd: &Path,
    host: &Host,
    err: &mut dyn Write,
) -> Result<Serving, (u8, String)> {
    let (config, loaded) = match &args.config {
        Some(path) => {
            let config = backend::read_config(&cwd.join(path)).map_err(|e| (EXIT_USAGE, e))?;
            (config, None)
        }
        None => {
            let loaded = pipeline::load_checked(&args.app, cwd, "serve", host, err)
                .map_err(|code| (code, String::new()))?;
            (loaded.runtime_config(), Some(loaded))
        }
    };
    let service = args.service.clone();
    if config.service(&service).is_none() {
        let known: Vec<&str> = config.services.iter().map(|s| s.service.as_str()).collect();
        return Err((
            EXIT_USAGE,
            format!("the app has no service `{service}` (its services: {})", known.join(", ")),
        ));
    }
    let app_url = match (&args.app_url, std::env::var("APP_PORT").ok()) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(port)) if !port.is_empty() => Some(format!("http://127.0.0.1:{port}")),
        _ => None,
    };
    if app_url.is_none() && !config.subscriptions_of(&service).is_empty() {
        return Err((
            EXIT_USAGE,
            format!(
                "service `{service}` has subscriptions: say where it listens with --app-url URL (or APP_PORT)"
            ),
        ));
    }
    let token = std::env::var("DAPR_API_TOKEN").ok().filter(|t| !t.is_empty());
    let data = match (&args.data, &loaded) {
        (Some(d), _) => cwd.join(d),
        (None, Some(l)) => l.dir.join(".busbar").join(format!("serve-{service}")),
        (None, None) => cwd.join(".busbar").join(format!("serve-{service}")),
    };
    let pubsub = match &loaded {
        Some(l) => l.config.dev.pubsub.clone(),
        None => DevConfig::default().pubsub,
    };
    Ok(Serving { config, loaded, service, app_url, token, data, pubsub })
}

async fn serve(args: &ServeArgs, cwd: &Path, s: Serving, err: &mut dyn Write) -> u8 {
    let config_path = args.config.as_ref().map(|p| cwd.join(p));
    let source = match (&s.loaded, &config_path) {
        (Some(l), _) => Source::App(l),
        (None, Some(p)) => Source::Built(p),
        (None, None) => return EXIT_USAGE,
    };
    let scope = busbar_runtime::Scope::Service(s.service.clone());
    let broker = match backend::connect(&args.backend, &source, s.config.clone(), scope).await {
        Ok(broker) => broker.map(GivenBroker),
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_FAILED;
        }
    };
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
    let service = DevService { url: s.app_url.clone(), ..DevService::default() };
    let dev = DevConfig {
        pubsub: s.pubsub.clone(),
        services: [(s.service.clone(), service)].into_iter().collect(),
        ..DevConfig::default()
    };
    let options = busbar_sidecar::Options {
        data_dir: s.data.clone(),
        dev,
        disk_reserve: busbar_runtime::DEFAULT_DISK_RESERVE,
        limits: busbar_sidecar::Limits::default(),
        service: Some(FixedService { name: s.service.clone(), token: s.token.clone() }),
        broker,
    };
    let listeners = busbar_sidecar::Listeners { shared: listener, services: Default::default() };
    let mut running = match busbar_sidecar::start(s.config, options, listeners).await {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_FAILED;
        }
    };
    let backend = args.backend.backend.describe(&s.data);
    let _ = writeln!(
        err,
        "busbar serve: service `{}` on http://{} (pubsub `{}`), delivering {} on {backend}{}",
        s.service,
        running.addr,
        s.pubsub,
        s.app_url.as_deref().map_or("nothing".to_string(), |u| format!("to {u}")),
        if s.token.is_some() { "; requests need DAPR_API_TOKEN" } else { "" },
    );
    for w in &running.warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    let mut failures = running.failures.take();
    let mut lines = running.log.take();
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(()) = async { terminate.as_mut()?.recv().await } => break,
            Some(f) = async { failures.as_mut()?.recv().await } => {
                let _ = writeln!(err, "{}", crate::dev::failure_line(&f));
            }
            Some(line) = async { lines.as_mut()?.recv().await } => {
                let _ = writeln!(err, "warning: {line}");
            }
        }
    }
    let _ = writeln!(err, "busbar serve: stopping after the deliveries in flight");
    running.shutdown().await;
    EXIT_OK
}
