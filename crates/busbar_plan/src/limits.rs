//! Provider ranges (CLOUD.md, "Limits: clamp or error"): a value outside is clamped, with a
//! warning at the declaration when the user wrote it, silently when it is busbar's default.

use busbar_diagnostics::{Diagnostic, codes};
use busbar_model::Subscription;

/// A setting of a subscription checked against a provider range.
pub(crate) struct Setting<'a> {
    pub sub: &'a Subscription,
    pub topic: &'a str,
    /// The key in the code (`ackDeadline`, `retryPolicy.maxRetries`): the warning is given
    /// only when it is among the subscription's explicit settings.
    pub key: &'a str,
    /// What the provider calls it, for the message.
    pub what: &'a str,
    pub provider: &'a str,
    pub unit: &'a str,
}

/// Clamps `value` into `min..=max`, warning when the user set it.
pub(crate) fn clamp(
    setting: &Setting<'_>,
    value: u64,
    min: u64,
    max: u64,
    diagnostics: &mut Vec<Diagnostic>,
) -> u64 {
    let clamped = value.clamp(min, max);
    if let (true, Some(span)) = (clamped != value, setting.sub.setting_spans.get(setting.key)) {
        let bound = if value < min { "minimum" } else { "maximum" };
        let u = setting.unit;
        diagnostics.push(
            Diagnostic::new(
                &codes::PLAN_VALUE_CLAMPED,
                format!(
                    "{} of subscription `{}` on `{}` is {value}{u}; {} allows {min}{u} to {max}{u}, so the plan uses the {bound} {clamped}{u}",
                    setting.what, setting.sub.name, setting.topic, setting.provider
                ),
            )
            .at_labelled(span.clone(), format!("{} allows {min}{u}..{max}{u}", setting.provider))
            .with_help(format!(
                "set `{}` within {min}{u}..{max}{u} to make the {} plan say what the code says",
                setting.key, setting.provider
            )),
        );
    }
    clamped
}

/// Milliseconds to whole seconds, rounding up (a deadline must not get shorter).
pub(crate) fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}
