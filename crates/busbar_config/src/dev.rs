//! busbar.toml's `[dev]` section: how `busbar dev` reaches each service and knows who calls.
//!
//! ```toml
//! [dev]
//! pubsub = "pubsub"                  # the Dapr pub/sub component name apps publish to
//! [dev.services.billing]
//! url = "http://127.0.0.1:3001"      # where its subscriptions are delivered
//! token = "billing-secret"           # its `dapr-api-token`
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
    pub services: BTreeMap<String, DevService>,
}

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig { pubsub: "pubsub".to_string(), services: BTreeMap::new() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevService {
    /// The service's base URL (`http://127.0.0.1:3001`).
    pub url: Option<String>,
    /// The `dapr-api-token` that identifies it.
    pub token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDev {
    pubsub: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawDevService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevService {
    url: Option<String>,
    token: Option<String>,
}

pub(crate) fn convert(raw: RawDev, file: &SourceFile) -> (DevConfig, Vec<Diagnostic>) {
    let mut config = DevConfig::default();
    let mut diagnostics = Vec::new();
    if let Some(p) = raw.pubsub {
        config.pubsub = p;
    }
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
        config.services.insert(name, DevService { url: service.url, token: service.token });
    }
    (config, diagnostics)
}
