//! busbar.toml's `[dev]` section: how `busbar dev` reaches each service and knows who calls.
//!
//! ```toml
//! [dev]
//! pubsub = "pubsub"                  # the Dapr pub/sub component name apps publish to
//! trust-app-id = false               # on the shared port, take a `dapr-app-id` without a token
//! [dev.services.billing]
//! url = "http://127.0.0.1:3001"      # where its subscriptions are delivered
//! token = "billing-secret"           # its `dapr-api-token` (default: generated into the data dir)
//! port = 3501                        # its own sidecar port: a call there is billing's
//! command = "node --import tsx main.ts"  # busbar dev starts it, in the service's root
//! app-port = 3001                    # its APP_PORT (default: a free port, or the url's)
//! ```
//!
//! (The design put `url` under `[services.<name>]`; that table already maps services to
//! directories, and a development endpoint is not part of what a service *is*, so it lives here.)

use std::collections::BTreeMap;

use busbar_diagnostics::{Diagnostic, SourceFile, codes};
use serde::Deserialize;
use toml::Spanned;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevConfig {
    /// The pub/sub component name in `/v1.0/publish/{pubsub}/{topic}`.
    pub pubsub: String,
    /// On the shared port, a `dapr-app-id` header without a token identifies the caller (any
    /// local process can then act as any service).
    pub trust_app_id: bool,
    /// Published JSON bodies are checked against their topic's message schema (400 when one
    /// does not match; nothing stored). `validate-messages = false` turns it off.
    pub validate_messages: bool,
    pub services: BTreeMap<String, DevService>,
}

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig {
            pubsub: "pubsub".to_string(),
            trust_app_id: false,
            validate_messages: true,
            services: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevService {
    /// The service's base URL (`http://127.0.0.1:3001`).
    pub url: Option<String>,
    /// The `dapr-api-token` that identifies it.
    pub token: Option<String>,
    /// A sidecar port of its own, where every call is the service's.
    pub port: Option<u16>,
    /// The shell command `busbar dev` starts the service with, in the service's root.
    pub command: Option<String>,
    /// The port the started service serves on (`APP_PORT`).
    pub app_port: Option<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawDev {
    pubsub: Option<String>,
    #[serde(default)]
    trust_app_id: bool,
    validate_messages: Option<bool>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawDevService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDevService {
    url: Option<String>,
    token: Option<String>,
    port: Option<u16>,
    command: Option<String>,
    app_port: Option<u16>,
}

pub(crate) fn convert(raw: RawDev, file: &SourceFile) -> (DevConfig, Vec<Diagnostic>) {
    let mut config = DevConfig::default();
    let mut diagnostics = Vec::new();
    if let Some(p) = raw.pubsub {
        config.pubsub = p;
    }
    config.trust_app_id = raw.trust_app_id;
    config.validate_messages = raw.validate_messages.unwrap_or(true);
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for (name, service) in raw.services {
        let span = file.span(service.span().start as u32, service.span().end as u32);
        let service = service.into_inner();
        if let Some(url) = &service.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            diagnostics.push(
                Diagnostic::new(&codes::INVALID_CONFIG, format!("`{url}` is not an http(s) URL"))
                    .at_labelled(span, "here")
                    .with_help("write the service's base URL, such as \"http://127.0.0.1:3001\""),
            );
            continue;
        }
        if let Some(port) = service.port {
            if port == 0 {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::INVALID_CONFIG,
                        "port 0 is not a port a service can call",
                    )
                    .at_labelled(span, "here")
                    .with_help("write a free TCP port, such as 3501"),
                );
                continue;
            }
            // The first holder keeps the port (an error names it, not a refused entry).
            if let Some(other) = ports.get(&port).cloned() {
                diagnostics.push(
                    Diagnostic::new(
                        &codes::INVALID_CONFIG,
                        format!("services `{other}` and `{name}` both have port {port}"),
                    )
                    .at_labelled(span, "here")
                    .with_help("the port identifies the caller: give each service its own"),
                );
                continue;
            }
            ports.insert(port, name.clone());
        }
        if service.token.as_deref() == Some("") {
            diagnostics.push(
                Diagnostic::new(
                    &codes::INVALID_CONFIG,
                    format!("service `{name}` has an empty token"),
                )
                .at_labelled(span, "here")
                .with_help("write a secret, or leave `token` out and busbar dev generates one"),
            );
            continue;
        }
        if let Some(token) = &service.token
            && let Some(other) = tokens.insert(token.clone(), name.clone())
        {
            diagnostics.push(
                Diagnostic::new(
                    &codes::INVALID_CONFIG,
                    format!("services `{other}` and `{name}` have the same token"),
                )
                .at_labelled(span, "here")
                .with_help("the token identifies the caller: give each service its own"),
            );
            continue;
        }
        if let Some(d) = check_command(&name, &service, &mut ports, span) {
            diagnostics.push(d);
            continue;
        }
        config.services.insert(
            name,
            DevService {
                url: service.url,
                token: service.token,
                port: service.port,
                command: service.command,
                app_port: service.app_port,
            },
        );
    }
    (config, diagnostics)
}

/// What is wrong with a service's `command` and `app-port`, if anything. `ports` holds the
/// ports taken so far (sidecar and app ports alike: each is bound once).
fn check_command(
    name: &str,
    service: &RawDevService,
    ports: &mut BTreeMap<u16, String>,
    span: busbar_diagnostics::Span,
) -> Option<Diagnostic> {
    let invalid = |message: String, help: &str| {
        Some(
            Diagnostic::new(&codes::INVALID_CONFIG, message)
                .at_labelled(span, "here")
                .with_help(help.to_string()),
        )
    };
    if service.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return invalid(
            format!("service `{name}` has an empty command"),
            "write the shell command that starts it, such as \"node --import tsx main.ts\", or leave `command` out to start it yourself",
        );
    }
    let port = service.app_port?;
    if service.command.is_none() {
        return invalid(
            format!("service `{name}` has an app-port but no command"),
            "app-port is the APP_PORT busbar dev gives the command it starts; for a service you start yourself, write its `url`",
        );
    }
    if port == 0 {
        return invalid(
            "app-port 0 is not a port a service can serve on".to_string(),
            "write a free TCP port, such as 3001, or leave it out and busbar dev picks a free one",
        );
    }
    if let Some(other) = ports.get(&port) {
        return invalid(
            format!("port {port} is taken twice (by `{other}` and the app-port of `{name}`)"),
            "give each service its own app-port, apart from the sidecar ports",
        );
    }
    ports.insert(port, name.to_string());
    None
}
