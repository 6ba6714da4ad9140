//! `busbar.toml`: the optional project configuration at the app root.
//!
//! Read strictly: an unknown key, a value of the wrong type or a bad glob is an
//! [`codes::INVALID_CONFIG`] diagnostic pointing at the line in busbar.toml. A file that exists
//! but cannot be read is an environment error ([`ConfigError`]), exit 2.

mod audit;
mod dev;

use std::collections::BTreeMap;
use std::path::Path;

use busbar_diagnostics::{Diagnostic, Level, SeverityOverride, SourceFile, Span, codes};
use serde::Deserialize;
use toml::Spanned;

/// The file name, at the app root.
pub use audit::{AuditConfig, CrossServicePublish, Rule, RuleAction, glob_match};
pub use dev::{DevConfig, DevService};
pub mod files;

pub const FILE_NAME: &str = "busbar.toml";

/// The parsed configuration. Everything has a default, so an app without busbar.toml works.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Services mapped to directories or globs, for repos without Encore markers.
    pub services: Vec<ServiceMapping>,
    /// `[diagnostics]`: per-code severities.
    pub severities: Vec<SeverityOverride>,
    /// `[plan]`: how cloud resources are named and tagged.
    pub plan: PlanConfig,
    /// `[audit]`: the policy `busbar audit` enforces and the IAM principals of each service.
    pub audit: AuditConfig,
    /// `[dev]`: how `busbar dev` reaches and identifies each service.
    pub dev: DevConfig,
    /// The file's text, for rendering diagnostics that point into it.
    pub source: Option<SourceFile>,
}

/// `[services] name = "dir"` or `name = ["glob", ...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMapping {
    pub name: String,
    /// Globs over paths relative to the app root; a plain directory `d` becomes `d/**`.
    pub patterns: Vec<String>,
    /// The service's root directory: the directory itself, or the longest directory prefix
    /// of the first glob without glob characters.
    pub root: String,
    pub span: Span,
}

/// `[plan]` in busbar.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanConfig {
    /// The app's name (`busbar-app` tag); defaults to the app directory's name.
    pub app: Option<String>,
    /// Prepended to every resource name.
    pub prefix: String,
    /// Tags (AWS) and labels (GCP) on every resource.
    pub tags: BTreeMap<String, String>,
    /// The Dapr pub/sub component type (`pubsub.redis`); default `pubsub.aws.snssqs`.
    pub dapr_component: Option<String>,
    /// Whose runtime delivers the app's messages (`runtime = "encore"`: Encore's own, whose
    /// limits busbar then checks).
    pub runtime: Runtime,
}

/// The runtime that delivers an app's messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// busbar's runtime and SDKs (the default).
    #[default]
    Busbar,
    /// Encore's runtime: it finds no attributes on a union message type.
    Encore,
}

/// busbar.toml exists but cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: String, source: std::io::Error },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    services: BTreeMap<Spanned<String>, Spanned<RawPaths>>,
    #[serde(default)]
    diagnostics: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    plan: RawPlan,
    #[serde(default)]
    audit: audit::RawAudit,
    #[serde(default)]
    dev: dev::RawDev,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "kebab-case")]
struct RawPlan {
    app: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    dapr_component: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    runtime: Runtime,
}

/// A name prefix or app name: starts with a letter, then letters, digits, `-` and `_`, so that
/// every provider accepts it at the start of a name.
fn valid_plan_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPaths {
    One(String),
    Many(Vec<String>),
}

/// Reads `root/busbar.toml` if there is one.
pub fn load(root: &Path) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let path = root.join(FILE_NAME);
    let bytes = match files::read_regular(&path) {
        Ok(bytes) => bytes,
        Err(files::ReadError::Missing) => return Ok((Config::default(), Vec::new())),
        Err(files::ReadError::Io(source)) => {
            return Err(ConfigError::Unreadable { path: path.display().to_string(), source });
        }
        Err(e @ files::ReadError::NotRegular(_)) => {
            let source = std::io::Error::other(e.to_string());
            return Err(ConfigError::Unreadable { path: path.display().to_string(), source });
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to() as u32;
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile::new(FILE_NAME.into(), lossy);
            let d = Diagnostic::new(&codes::INVALID_CONFIG, "busbar.toml is not valid UTF-8")
                .at(file.span(valid, valid + 1))
                .with_help("save busbar.toml as UTF-8");
            return Ok((Config { source: Some(file), ..Config::default() }, vec![d]));
        }
    };
    Ok(parse(&text))
}

/// Parses busbar.toml text.
pub fn parse(text: &str) -> (Config, Vec<Diagnostic>) {
    let file = SourceFile::new(FILE_NAME.into(), text);
    let mut diagnostics = Vec::new();
    let mut config = Config::default();
    match toml::from_str::<RawConfig>(text) {
        Ok(raw) => {
            for (key, value) in [("app", raw.plan.app), ("prefix", raw.plan.prefix)] {
                let Some(value) = value else { continue };
                let span = file.span(value.span().start as u32, value.span().end as u32);
                if !valid_plan_word(value.get_ref()) {
                    diagnostics.push(
                        Diagnostic::new(
                            &codes::INVALID_CONFIG,
                            format!("`{}` is not a valid plan {key}", value.get_ref()),
                        )
                        .at_labelled(span, "here")
                        .with_help(
                            "start with a letter; use letters, digits, `-` and `_` (`shop-`)",
                        ),
                    );
                } else if key == "app" {
                    config.plan.app = Some(value.into_inner());
                } else {
                    config.plan.prefix = value.into_inner();
                }
            }
            config.plan.tags = raw.plan.tags;
            config.plan.runtime = raw.plan.runtime;
            let (audit, found) = audit::convert(raw.audit, &file);
            config.audit = audit;
            diagnostics.extend(found);
            let (dev, found) = dev::convert(raw.dev, &file);
            config.dev = dev;
            diagnostics.extend(found);
            if let Some(component) = raw.plan.dapr_component {
                let span = file.span(component.span().start as u32, component.span().end as u32);
                let valid = component.get_ref().strip_prefix("pubsub.").is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                });
                if valid {
                    config.plan.dapr_component = Some(component.into_inner());
                } else {
                    diagnostics.push(
                        Diagnostic::new(
                            &codes::INVALID_CONFIG,
                            format!("`{}` is not a Dapr pub/sub component type", component.get_ref()),
                        )
                        .at_labelled(span, "here")
                        .with_help("write a Dapr pub/sub type such as \"pubsub.redis\" or \"pubsub.gcp.pubsub\""),
                    );
                }
            }
            for (name, paths) in raw.services {
                let span = file.span(name.span().start as u32, paths.span().end as u32);
                let patterns_raw = match paths.into_inner() {
                    RawPaths::One(p) => vec![p],
                    RawPaths::Many(ps) => ps,
                };
                match service_patterns(&patterns_raw) {
                    Ok((patterns, root)) => config.services.push(ServiceMapping {
                        name: name.into_inner(),
                        patterns,
                        root,
                        span,
                    }),
                    Err(message) => diagnostics.push(
                        Diagnostic::new(&codes::INVALID_CONFIG, message)
                            .at(span)
                            .with_help("give a directory relative to the app root (`services/billing`) or globs (`libs/mail/**`)"),
                    ),
                }
            }
            for (code, level) in raw.diagnostics {
                let span = file.span(code.span().start as u32, level.span().end as u32);
                match Level::parse(level.get_ref()) {
                    Some(level) => config.severities.push(SeverityOverride {
                        code: code.into_inner(),
                        level,
                        span,
                    }),
                    None => diagnostics.push(
                        Diagnostic::new(
                            &codes::INVALID_CONFIG,
                            format!("`{}` is not a severity", level.get_ref()),
                        )
                        .at_labelled(
                            file.span(level.span().start as u32, level.span().end as u32),
                            "unknown severity",
                        )
                        .with_help("use \"error\", \"warning\", \"note\" or \"off\""),
                    ),
                }
            }
        }
        Err(e) => {
            let range = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            let help = if message.starts_with("unknown field") {
                "remove the key or fix its spelling; busbar.toml knows `[services]`, `[diagnostics]`, `[plan]` (`app`, `prefix`, `tags`, `dapr-component`), `[audit]` (`cross-service-publish`, `deny`, `allow`, `aws-roles`, `gcp-service-accounts`) and `[dev]` (`pubsub`, `services.NAME.url`, `services.NAME.token`, `services.NAME.port`)"
            } else {
                "see the busbar.toml section of README.md for the format"
            };
            diagnostics.push(
                Diagnostic::new(&codes::INVALID_CONFIG, format!("busbar.toml: {message}"))
                    .at(file.span(range.start as u32, range.end as u32))
                    .with_help(help),
            );
        }
    }
    config.source = Some(file);
    (config, diagnostics)
}

fn service_patterns(raw: &[String]) -> Result<(Vec<String>, String), String> {
    if raw.is_empty() {
        return Err("a service mapping needs at least one directory or glob".to_string());
    }
    let mut patterns = Vec::new();
    let mut root = None;
    for p in raw {
        let p = p.trim().trim_start_matches("./").trim_end_matches('/');
        if p.is_empty() || p.starts_with('/') || p.split('/').any(|seg| seg == "..") {
            return Err(format!("`{p}` is not a path inside the app root"));
        }
        let is_glob = p.contains(['*', '?', '[', '{']);
        let pattern = if is_glob { p.to_string() } else { format!("{p}/**") };
        if let Err(e) = globset::Glob::new(&pattern) {
            return Err(format!("`{p}` is not a valid glob: {e}"));
        }
        if root.is_none() {
            root = Some(if is_glob {
                let literal: Vec<&str> =
                    p.split('/').take_while(|seg| !seg.contains(['*', '?', '[', '{'])).collect();
                if literal.is_empty() { ".".to_string() } else { literal.join("/") }
            } else {
                p.to_string()
            });
        }
        patterns.push(pattern);
    }
    Ok((patterns, root.unwrap_or_else(|| ".".to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_services_and_severities() {
        let (config, diags) = parse(
            "[services]\nbilling = \"services/billing\"\nemail = [\"mail/**/*.ts\", \"libs/mail\"]\n\n[diagnostics]\nBB0104 = \"error\"\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.services[0].patterns, ["services/billing/**"]);
        assert_eq!(config.services[0].root, "services/billing");
        assert_eq!(config.services[1].patterns, ["mail/**/*.ts", "libs/mail/**"]);
        assert_eq!(config.services[1].root, "mail");
        assert_eq!(config.services[1].span.line, 3);
        assert_eq!(config.severities[0].level, Level::Error);
    }

    #[test]
    fn reads_plan_settings() {
        let (config, diags) =
            parse("[plan]\napp = \"shop\"\nprefix = \"prod-\"\n[plan.tags]\nteam = \"core\"\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.plan.app.as_deref(), Some("shop"));
        assert_eq!(config.plan.prefix, "prod-");
        assert_eq!(config.plan.tags["team"], "core");
        let (_, diags) = parse("[plan]\nprefix = \"9 lives\"\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].span.as_ref().unwrap().line, 2);
        let (config, diags) = parse("[plan]\ndapr-component = \"pubsub.redis\"\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(config.plan.dapr_component.as_deref(), Some("pubsub.redis"));
        let (_, diags) = parse("[plan]\ndapr-component = \"redis\"\n");
        assert_eq!(diags[0].span.as_ref().unwrap().line, 2, "{:?}", diags[0]);
        let (_, diags) = parse("[plan]\nprefx = \"a\"\n");
        assert_eq!(diags[0].span.as_ref().unwrap().line, 2, "{:?}", diags[0]);
    }

    #[test]
    fn unknown_key_points_at_its_line() {
        let (_, diags) = parse("[services]\na = \"a\"\n\n[servics]\nb = \"b\"\n");
        assert_eq!(diags.len(), 1);
        let span = diags[0].span.as_ref().unwrap();
        assert_eq!(span.line, 4, "{:?}", diags[0]);
        assert!(diags[0].message.contains("unknown field `servics`"), "{}", diags[0].message);
    }

    #[test]
    fn bad_values_are_diagnostics() {
        let (_, diags) =
            parse("[services]\na = \"../x\"\nb = \"[\"\n[diagnostics]\nBB0104 = \"loud\"\n");
        let lines: Vec<_> = diags.iter().map(|d| d.span.as_ref().unwrap().line).collect();
        assert_eq!(lines, [2, 3, 5]);
        let (_, diags) = parse("[services]\na = 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].span.as_ref().unwrap().line, 2);
    }
}
