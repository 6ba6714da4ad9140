//! Duration strings as Encore writes them: `"10s"`, `"500ms"`, `"1h30m"`, `"1h 30m"`, `"1.5h"`.
//! Units: ns, us (or µs), ms, s, m, h, d. The grammar is Encore's `DurationString`; no crate
//! parses exactly it (humantime accepts weeks, months and words, which Encore rejects).

use std::fmt;

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// A number without a unit, or an unknown unit.
    BadUnit(String),
    /// Something that is not a number where one should be.
    BadNumber(String),
    TooLarge,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => write!(f, "the duration is empty"),
            DurationError::BadUnit(u) if u.is_empty() => write!(f, "a number has no unit"),
            DurationError::BadUnit(u) => write!(f, "`{u}` is not a duration unit"),
            DurationError::BadNumber(n) => write!(f, "`{n}` is not a number"),
            DurationError::TooLarge => write!(f, "the duration is too large"),
        }
    }
}

const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const S: u128 = 1_000_000_000;
const M: u128 = 60 * S;
const H: u128 = 60 * M;
const D: u128 = 24 * H;
/// A hundred years; anything longer is a mistake.
const MAX_NS: u128 = 100 * 365 * D;

fn unit(name: &str) -> Option<u128> {
    Some(match name {
        "ns" => NS,
        "us" | "µs" | "μs" => US,
        "ms" => MS,
        "s" => S,
        "m" => M,
        "h" => H,
        "d" => D,
        _ => return None,
    })
}

/// Parses a duration string into nanoseconds.
pub fn parse_duration_ns(input: &str) -> Result<u128, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty()
            || number.starts_with('.')
            || number.ends_with('.')
            || number.matches('.').count() > 1
        {
            let bad: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return Err(DurationError::BadNumber(bad));
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace() || c == '.')
            .unwrap_or(rest.len());
        let unit_name = &rest[..unit_len];
        let factor =
            unit(unit_name).ok_or_else(|| DurationError::BadUnit(unit_name.to_string()))?;
        rest = &rest[unit_len..];
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        let int: u128 = int_part.parse().map_err(|_| DurationError::TooLarge)?;
        let mut value = int.checked_mul(factor).ok_or(DurationError::TooLarge)?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(18) as u32;
            let frac: u128 =
                frac_part[..digits as usize].parse().map_err(|_| DurationError::TooLarge)?;
            value += frac * factor / 10u128.pow(digits);
        }
        total = total.checked_add(value).ok_or(DurationError::TooLarge)?;
        if total > MAX_NS {
            return Err(DurationError::TooLarge);
        }
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
    fn parses_every_form() {
        let cases = [
            ("10s", 10_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("7d", 604_800_000),
            ("1.5h", 5_400_000),
            ("2000us", 2),
            ("2000µs", 2),
            ("3000000ns", 3),
            (" 1m ", 60_000),
        ];
        for (input, ms) in cases {
            assert_eq!(parse_duration_ms(input), Ok(ms), "{input}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse_duration_ms(""), Err(DurationError::Empty));
        assert_eq!(parse_duration_ms("10"), Err(DurationError::BadUnit(String::new())));
        assert_eq!(parse_duration_ms("10 s"), Err(DurationError::BadUnit(String::new())));
        assert_eq!(parse_duration_ms("10sec"), Err(DurationError::BadUnit("sec".into())));
        assert_eq!(parse_duration_ms("1w"), Err(DurationError::BadUnit("w".into())));
        assert_eq!(parse_duration_ms("-1s"), Err(DurationError::BadNumber("-1s".into())));
        assert_eq!(parse_duration_ms("s"), Err(DurationError::BadNumber("s".into())));
        assert_eq!(parse_duration_ms("1..5s"), Err(DurationError::BadNumber("1..5s".into())));
        assert_eq!(
            parse_duration_ms("99999999999999999999999999999999999d"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(parse_duration_ms("36600d"), Err(DurationError::TooLarge));
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(format_ms(5_400_000), "1h30m");
        assert_eq!(format_ms(604_800_000), "7d");
        assert_eq!(format_ms(1500), "1s500ms");
    }
}
