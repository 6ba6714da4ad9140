//! Duration strings exactly as Encore's parser reads them (`encore build`: the
//! `duration-string` grammar): one or more groups of an unsigned integer and a unit, summed
//! (`"10s"`, `"500ms"`, `"1h30m"`); whitespace anywhere is ignored (`"1h 30m"`). Units, case
//! sensitive: ns, us, ms, s, m, h, d, w (7 d), y (365.2422 d). Refused as Encore refuses them: a
//! decimal (`"1.5h"`), a bare number (`"10"`), a sign, `µs`, any other unit. No crate parses
//! exactly this (humantime accepts months, words and decimals).

use std::fmt;

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// A number without a unit, or an unknown unit.
    BadUnit(String),
    /// Something that is not an unsigned integer where one should be.
    BadNumber(String),
    TooLarge,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => write!(f, "the duration is empty"),
            DurationError::BadUnit(u) if u.is_empty() => write!(f, "a number has no unit"),
            DurationError::BadUnit(u) => write!(f, "`{u}` is not a duration unit"),
            DurationError::BadNumber(n) => {
                write!(f, "`{n}` is not a whole number of a unit (no decimals, no sign)")
            }
            DurationError::TooLarge => write!(f, "the duration is too large"),
        }
    }
}

/// The forms a duration takes, for help lines.
pub const GRAMMAR: &str = "whole numbers with a unit (ns, us, ms, s, m, h, d, w, y), summed: \"10s\", \"500ms\", \"1h30m\"";

const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const S: u128 = 1_000_000_000;
const M: u128 = 60 * S;
const H: u128 = 60 * M;
const D: u128 = 24 * H;
const W: u128 = 7 * D;
const Y: u128 = 31_556_926 * S;
/// What Encore can store: nanoseconds in an i64 (about 292 years).
const MAX_NS: u128 = i64::MAX as u128;

fn unit(name: &str) -> Option<u128> {
    Some(match name {
        "ns" => NS,
        "us" => US,
        "ms" => MS,
        "s" => S,
        "m" => M,
        "h" => H,
        "d" => D,
        "w" => W,
        "y" => Y,
        _ => return None,
    })
}

/// Parses a duration string into nanoseconds.
pub fn parse_duration_ns(input: &str) -> Result<u128, DurationError> {
    let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    let mut rest = s.as_str();
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (number, after) = rest.split_at(num_len);
        if number.is_empty() {
            let bad: String = rest.chars().take_while(|c| !c.is_ascii_digit()).collect();
            return Err(DurationError::BadNumber(bad));
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let (unit_name, next) = after.split_at(unit_len);
        let factor =
            unit(unit_name).ok_or_else(|| DurationError::BadUnit(unit_name.to_string()))?;
        let n: u64 = number.parse().map_err(|_| DurationError::TooLarge)?;
        let value = u128::from(n).checked_mul(factor).ok_or(DurationError::TooLarge)?;
        total = total.checked_add(value).ok_or(DurationError::TooLarge)?;
        if total > MAX_NS {
            return Err(DurationError::TooLarge);
        }
        rest = next;
    }
    Ok(total)
}

/// Parses a duration string into whole milliseconds (rounded down).
pub fn parse_duration_ms(input: &str) -> Result<u64, DurationError> {
    parse_duration_ns(input).map(|ns| (ns / MS) as u64)
}

/// Writes milliseconds the way a user would (`10s`, `1h30m`, `500ms`), for summaries.
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
    {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_encore_accepts() {
        let cases = [
            ("10s", 10_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("30m1h", 5_400_000),
            ("1s1s", 2_000),
            ("1h 30m", 5_400_000),
            ("1 0s", 10_000),
            ("7d", 604_800_000),
            ("1w", 604_800_000),
            ("1y", 31_556_926_000),
            ("2000us", 2),
            ("3000000ns", 3),
            (" 1m ", 60_000),
            ("0s", 0),
        ];
        for (input, ms) in cases {
            assert_eq!(parse_duration_ms(input), Ok(ms), "{input}");
        }
    }

    #[test]
    fn rejects_what_encore_rejects() {
        assert_eq!(parse_duration_ms(""), Err(DurationError::Empty));
        assert_eq!(parse_duration_ms("  "), Err(DurationError::Empty));
        assert_eq!(parse_duration_ms("10"), Err(DurationError::BadUnit(String::new())));
        assert_eq!(parse_duration_ms("1h30"), Err(DurationError::BadUnit(String::new())));
        assert_eq!(parse_duration_ms("10sec"), Err(DurationError::BadUnit("sec".into())));
        assert_eq!(parse_duration_ms("1S"), Err(DurationError::BadUnit("S".into())));
        assert_eq!(parse_duration_ms("2000µs"), Err(DurationError::BadUnit("µs".into())));
        assert_eq!(parse_duration_ms("1.5h"), Err(DurationError::BadUnit(".".into())));
        assert_eq!(parse_duration_ms("-1s"), Err(DurationError::BadNumber("-".into())));
        assert_eq!(parse_duration_ms("+1s"), Err(DurationError::BadNumber("+".into())));
        assert_eq!(parse_duration_ms("s"), Err(DurationError::BadNumber("s".into())));
        assert_eq!(parse_duration_ms("1e3s"), Err(DurationError::BadUnit("e".into())));
        assert_eq!(
            parse_duration_ms("99999999999999999999999999999999999d"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(parse_duration_ms("300y"), Err(DurationError::TooLarge));
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(format_ms(5_400_000), "1h30m");
        assert_eq!(format_ms(604_800_000), "7d");
        assert_eq!(format_ms(1500), "1s500ms");
    }
}
