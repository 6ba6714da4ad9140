//! `busbar dlq list|release`: the dead letters of the app's subscriptions, through the admin
//! API of the `busbar dev` that holds the data directory, or on the data directory when none
//! does.
//!
//! Never through a broker of another directory: the data directory's lock says whether a
//! broker holds it (and its pid); the sidecar records its port in `sidecar.json` there, and
//! is asked which directory it serves (`/v1.0-busbar/info`, with the admin token read from the
//! directory) before anything is listed or released.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::{DlqAction, DlqArgs, EXIT_FAILED, EXIT_OK, Host, pipeline};

pub(crate) fn run(
    args: &DlqArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (common, ids) = match &args.action {
        DlqAction::List(c) => (c, None),
        DlqAction::Release(r) => (&r.common, (!r.ids.is_empty()).then(|| r.ids.clone())),
    };
    let releasing = matches!(args.action, DlqAction::Release(_));
    let loaded = match pipeline::load_checked(&common.app, cwd, "dlq", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let data = loaded.data_dir(common.data.as_deref(), cwd);
    let answer = match common.backend.backend {
        crate::backend::BackendChoice::Embedded => {
            embedded(&loaded, common, &data, ids, releasing, err)
        }
        _ => on_cloud(&loaded, common, ids, releasing, err),
    };
    let answer = match answer {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_FAILED;
        }
    };
    let _ = out.write_all(render(&answer, releasing).as_bytes());
    EXIT_OK
}

/// The embedded broker's dead letters: through the `busbar dev` that holds the data directory,
/// or on the directory itself.
fn embedded(
    loaded: &pipeline::Loaded,
    common: &crate::DlqCommon,
    data: &Path,
    ids: Option<Vec<String>>,
    releasing: bool,
    err: &mut dyn Write,
) -> Result<Value, String> {
    match busbar_runtime::datadir::lock_holder(data) {
        Some(pid) => online(common, data, pid, ids.as_deref(), releasing, err),
        None => offline(loaded, common, data, ids, releasing, err),
    }
}

/// On a cloud backend: the subscriptions' dead letters (AWS: their dead-letter queues; GCP:
/// their dead-letter topics), found through the plan's names (or `--outputs`), with the
/// credentials of the environment.
fn on_cloud(
    loaded: &pipeline::Loaded,
    common: &crate::DlqCommon,
    ids: Option<Vec<String>>,
    releasing: bool,
    err: &mut dyn Write,
) -> Result<Value, String> {
    let where_ = match common.backend.backend {
        crate::backend::BackendChoice::Gcp => "on GCP: the subscriptions' dead-letter topics",
        _ => "on AWS: the subscriptions' dead-letter queues",
    };
    let _ = writeln!(err, "({where_})");
    let config = loaded.runtime_config();
    block_on(async {
        let source = crate::backend::Source::App(loaded);
        let scope = busbar_runtime::Scope::Subscriptions;
        let broker = crate::backend::connect(&common.backend, &source, config, scope)
            .await?
            .ok_or("internal: no cloud backend")?;
        on_broker(broker.as_ref(), common, ids, releasing).await
    })
}

/// The answer as text: per subscription, what was released or its dead letters.
fn render(answer: &Value, releasing: bool) -> String {
    let mut text = String::new();
    for entry in answer.as_array().into_iter().flatten() {
        let name = format!(
            "{}/{}",
            entry["topic"].as_str().unwrap_or(""),
            entry["subscription"].as_str().unwrap_or("")
        );
        if releasing {
            text.push_str(&format!("{name}: released {}\n", entry["released"]));
            continue;
        }
        let messages = entry["messages"].as_array().cloned().unwrap_or_default();
        text.push_str(&format!(
            "{name}: {} dead letter{}\n",
            messages.len(),
            if messages.len() == 1 { "" } else { "s" }
        ));
        for m in messages {
            text.push_str(&format!(
                "  {}  {} attempt{}  dead {}  {}\n",
                m["id"].as_str().unwrap_or(""),
                m["attempts"],
                if m["attempts"] == 1 { "" } else { "s" },
                m["deadAt"].as_str().unwrap_or(""),
                m["reason"].as_str().unwrap_or("")
            ));
        }
    }
    text
}

/// Through the admin API of the `busbar dev` that holds `data` (process `holder`).
fn online(
    common: &crate::DlqCommon,
    data: &Path,
    holder: Option<u32>,
    ids: Option<&[String]>,
    releasing: bool,
    err: &mut dyn Write,
) -> Result<Value, String> {
    let who = holder.map_or("another process".to_string(), |pid| format!("process {pid}"));
    let recorded: Option<Value> = std::fs::read(busbar_sidecar::sidecar_file(data))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let recorded_port = recorded
        .as_ref()
        .filter(|r| holder.is_some() && r["pid"].as_u64() == holder.map(u64::from))
        .and_then(|r| r["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok());
    let Some(port) = common.port.or(recorded_port) else {
        return Err(format!(
            "{} is in use by {who}, which serves no admin API busbar dlq can find (no busbar dev recorded its port there): stop it, or pass the port of the busbar dev that holds it with --port",
            data.display()
        ));
    };
    let token_file = busbar_sidecar::identity::admin_token_file(data);
    let token = std::fs::read_to_string(&token_file)
        .map_err(|e| format!("cannot read the admin token in {}: {e}", token_file.display()))?;
    let bearer = format!("Bearer {}", token.trim());
    let base = format!("http://127.0.0.1:{port}/v1.0-busbar");
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let ask = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut response =
            response.map_err(|e| format!("no answer from busbar dev on 127.0.0.1:{port}: {e}"))?;
        let status = response.status();
        let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(body["message"].as_str().unwrap_or("the admin API refused").to_string())
        }
    };
    // The broker on that port must serve this very directory.
    let info = ask(agent.get(format!("{base}/info")).header("authorization", &bearer).call())
        .map_err(|e| {
            format!("127.0.0.1:{port} is not the busbar dev of {}: {e}", data.display())
        })?;
    let served = info["dataDir"].as_str().unwrap_or_default();
    let ours = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    if Path::new(served) != ours {
        return Err(format!(
            "the busbar dev on 127.0.0.1:{port} serves {served}, not {}: nothing was done",
            ours.display()
        ));
    }
    let _ = writeln!(err, "(through busbar dev on 127.0.0.1:{port}, {who})");
    if releasing {
        let body = json!({ "subscription": common.subscription, "ids": ids });
        ask(agent
            .post(format!("{base}/dlq/release"))
            .header("authorization", &bearer)
            .send_json(&body))
    } else {
        let mut req = agent.get(format!("{base}/dlq")).header("authorization", &bearer);
        if let Some(s) = &common.subscription {
            req = req.query("subscription", s);
        }
        ask(req.call())
    }
}

/// On the data directory itself, holding its lock while it works.
fn offline(
    loaded: &pipeline::Loaded,
    common: &crate::DlqCommon,
    data: &Path,
    ids: Option<Vec<String>>,
    releasing: bool,
    err: &mut dyn Write,
) -> Result<Value, String> {
    if !data.join(busbar_runtime::datadir::DATABASE).is_file() {
        return Err(format!(
            "no busbar dev holds {0}, and {0} holds no broker data",
            data.display()
        ));
    }
    let _ = writeln!(err, "(from {}: no busbar dev holds it)", data.display());
    let config = loaded.runtime_config();
    block_on(async {
        let embedded =
            busbar_runtime::EmbeddedBroker::open(data, config, busbar_runtime::Clock::System)
                .map_err(|e| e.to_string())?;
        on_broker(&embedded, common, ids, releasing).await
    })
}

/// Runs `work` on a runtime of its own.
fn block_on(work: impl Future<Output = Result<Value, String>>) -> Result<Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(work)
}

/// Lists or releases through the broker interface (the same calls on every backend), then
/// closes the broker.
async fn on_broker(
    broker: &dyn busbar_runtime::Broker,
    common: &crate::DlqCommon,
    ids: Option<Vec<String>>,
    releasing: bool,
) -> Result<Value, String> {
    let filter = common.subscription.as_deref();
    let answer = if releasing {
        busbar_sidecar::admin::release(broker, filter, ids).await
    } else {
        busbar_sidecar::admin::dead_letters(broker, filter).await
    };
    let _ = broker.close().await;
    answer
}
