//! `busbar dlq list|release`: the dead letters of the app's subscriptions, through the admin
//! API of a running `busbar dev` (on `--port`), or on the data directory when none runs.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::{DlqAction, DlqArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, pipeline};

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
    let base = format!("http://127.0.0.1:{}/v1.0-busbar", common.port);
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    // A running `busbar dev` owns the data: ask it.
    let online = if releasing {
        let body = json!({ "subscription": common.subscription, "ids": ids });
        agent.post(format!("{base}/dlq/release")).send_json(&body)
    } else {
        let mut req = agent.get(format!("{base}/dlq"));
        if let Some(s) = &common.subscription {
            req = req.query("subscription", s);
        }
        req.call()
    };
    let answer: Result<Value, String> = match online {
        Ok(mut response) => {
            let status = response.status();
            let body: Value = response.body_mut().read_json().unwrap_or(Value::Null);
            if status.is_success() {
                let _ = writeln!(err, "(through busbar dev on 127.0.0.1:{})", common.port);
                Ok(body)
            } else {
                Err(body["message"].as_str().unwrap_or("the admin API refused").to_string())
            }
        }
        Err(_) => offline(common, ids, releasing, cwd, host, err),
    };
    let answer = match answer {
        Ok(v) => v,
        Err(e) if e.is_empty() => return EXIT_USAGE,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return EXIT_FAILED;
        }
    };
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
    let _ = out.write_all(text.as_bytes());
    EXIT_OK
}

/// The same on the data directory. `Err("")` means the error was already printed.
fn offline(
    common: &crate::DlqCommon,
    ids: Option<Vec<String>>,
    releasing: bool,
    cwd: &Path,
    host: &Host,
    err: &mut dyn Write,
) -> Result<Value, String> {
    let loaded =
        pipeline::load_checked(&common.app, cwd, "dlq", host, err).map_err(|_| String::new())?;
    let data = loaded.data_dir(common.data.as_deref(), cwd);
    if !data.join("busbar.db").is_file() {
        return Err(format!(
            "no busbar dev answers on 127.0.0.1:{}, and {} holds no broker data",
            common.port,
            data.display()
        ));
    }
    let _ = writeln!(
        err,
        "(from {}: no busbar dev answers on 127.0.0.1:{})",
        data.display(),
        common.port
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let config = busbar_runtime::BrokerConfig::from_model(&loaded.analysis.model);
    runtime.block_on(async {
        let broker = busbar_runtime::Broker::open(&data, config, busbar_runtime::Clock::System)
            .map_err(|e| e.to_string())?;
        let filter = common.subscription.as_deref();
        if releasing {
            busbar_sidecar::admin::release(&broker, filter, ids).await
        } else {
            busbar_sidecar::admin::dead_letters(&broker, filter).await
        }
    })
}
