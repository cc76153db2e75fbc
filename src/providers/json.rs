//! Decoding helpers every provider uses: JSON with field paths in errors,
//! numbers that may arrive as strings, and strict UTC dates.
//!
//! Providers send numbers as `1185.46` or `"1185.46"`; both are accepted, and
//! anything else (NaN, infinity, negative usage, text) is an error that
//! names the field.

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};

/// Decodes `body` into `T`; the error names the path of the bad field (`usage[2].date`).
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    // The fast path: most bodies are fine. Only a failure is decoded again, slower,
    // tracking the path of the bad field for the error.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end()
        .map_err(|e| format!("trailing data after JSON: {e}"))?;
    Ok(value)
}

/// Decodes an already parsed value into `T`, naming the bad field.
pub(crate) fn decode_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(describe)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = bound_quotes(&err.path().to_string());
    let inner = err.into_inner();
    let syntax = inner.is_syntax() || inner.is_eof();
    let inner = bound_quotes(&inner.to_string());
    if syntax {
        format!("invalid JSON: {inner}")
    } else if path == "." {
        inner
    } else {
        format!("{path}: {inner}")
    }
}

/// `message` with every `"…"` it quotes (serde quotes the offending value) cut to
/// [`MAX_QUOTED_CHARS`] characters: a 4 MiB string in a numeric field must not become
/// a 4 MiB error.
pub(crate) fn bound_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let quoted = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let inner = &quoted[..end.unwrap_or(quoted.len())];
        match inner.char_indices().nth(MAX_QUOTED_CHARS) {
            None => out.push_str(&format!("\"{inner}\"")),
            Some((cut, _)) => out.push_str(&format!(
                "\"{}\"… ({} more bytes)",
                &inner[..cut],
                inner.len() - cut
            )),
        }
        rest = end.map_or("", |e| &quoted[e + 1..]);
    }
    out.push_str(rest);
    out
}

/// A JSON number, or a string holding one.
#[derive(Debug)]
enum NumberOrString {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrStringVisitor)
    }
}

/// Takes the number or string straight from the parser (no `serde_json::Value` in
/// between: this runs for every figure of every day).
struct NumberOrStringVisitor;

impl NumberOrStringVisitor {
    fn refuse<E: de::Error>(got: &str) -> E {
        E::custom(format!("expected a number, got {got}"))
    }
}

impl<'de> de::Visitor<'de> for NumberOrStringVisitor {
    type Value = NumberOrString;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number, or a string holding one")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(NumberOrString::Number(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(NumberOrString::Number(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(NumberOrString::Number(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(NumberOrString::Text(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(NumberOrString::Text(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(Self::refuse("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(Self::refuse("null"))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Err(Self::refuse(if v { "true" } else { "false" }))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(Self::refuse("an array"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(Self::refuse("an object"))
    }
}

/// Deserializes a finite `f64` that may arrive as a string.
pub(crate) fn flexible_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) => n,
        NumberOrString::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| de::Error::custom(format!("expected a number, got {}", quote(&s))))?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(de::Error::custom("expected a finite number"))
    }
}

/// Deserializes an optional finite `f64` that may arrive as a string; `null` is `None`.
pub(crate) fn flexible_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "flexible_f64")] f64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
}

/// Deserializes a non-negative integer id that may arrive as a string of digits.
pub(crate) fn flexible_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) if n >= 0.0 && n.fract() == 0.0 && n < 9.0e15 => Ok(n as u64),
        NumberOrString::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| de::Error::custom(format!("id {} is too large", quote(&s)))),
        NumberOrString::Number(n) => Err(de::Error::custom(format!(
            "expected an integer id, got the number {n}"
        ))),
        NumberOrString::Text(s) => Err(de::Error::custom(format!(
            "expected an integer id, got {}",
            quote(&s)
        ))),
    }
}

/// The first day a provider's usage may fall on; anything earlier is not real data.
pub(crate) const FIRST_PLAUSIBLE_YEAR: i32 = 2000;

/// Parses a `YYYY-MM-DD` date, rejecting any other shape and days before 2000.
///
/// By hand, not by chrono's `parse_from_str`, which parses its format string on every
/// call: this runs once per day of every response.
pub(crate) fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let number = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let day = match text.as_bytes() {
        [y @ .., b'-', m1, m2, b'-', d1, d2] if y.len() == 4 => {
            let year = number(y).and_then(|y| i32::try_from(y).ok());
            match (year, number(&[*m1, *m2]), number(&[*d1, *d2])) {
                (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y, m, d),
                _ => None,
            }
        }
        _ => None,
    };
    match day {
        Some(day) if chrono::Datelike::year(&day) >= FIRST_PLAUSIBLE_YEAR => Ok(day),
        Some(_) => Err(format!(
            "{} is before {FIRST_PLAUSIBLE_YEAR}, not a real usage day",
            quote(text)
        )),
        None => Err(format!("{} is not a YYYY-MM-DD date", quote(text))),
    }
}

/// How many characters of a provider's value an error quotes.
pub(crate) const MAX_QUOTED_CHARS: usize = 64;

/// A provider's value as an error quotes it: escaped like `{:?}`, and cut to
/// [`MAX_QUOTED_CHARS`] characters with the length of the rest, so a huge value
/// cannot become a huge log line or error row.
pub(crate) fn quote(text: &str) -> String {
    let mut chars = text.char_indices();
    match chars.nth(MAX_QUOTED_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

/// What kind of JSON value `value` is, for an error that must not quote it.
pub(crate) fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The largest megabyte figure believed: 2^63 bytes (8 EiB), far above any account's
/// traffic, yet below where a counter would wrap or a sum overflow.
pub(crate) const MAX_MB: f64 = 8_796_093_022_208.0; // 2^63 bytes / 2^20

/// A megabyte figure must be finite, not negative, and no more than [`MAX_MB`].
pub(crate) fn check_mb(field: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && (0.0..=MAX_MB).contains(&value) {
        Ok(value)
    } else if value > MAX_MB {
        Err(format!(
            "{field} is {value} MB, beyond any real traffic (over 2^63 bytes)"
        ))
    } else {
        Err(format!(
            "{field} is {value}, expected a non-negative number of MB"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Row {
        #[serde(deserialize_with = "flexible_f64")]
        mb: f64,
    }

    #[test]
    fn numbers_may_be_strings() {
        let rows: Vec<Row> = decode(br#"[{"mb": 1.5}, {"mb": "2.25"}]"#).unwrap();
        assert_eq!(rows[0].mb, 1.5);
        assert_eq!(rows[1].mb, 2.25);
    }

    #[test]
    fn bad_number_names_its_path() {
        let err = decode::<Vec<Row>>(br#"[{"mb": 1}, {"mb": "lots"}]"#).unwrap_err();
        assert!(err.starts_with("[1].mb:"), "{err}");
    }

    /// See: issue 15.5 (serde quotes the whole offending value; we quote 64 characters)
    #[test]
    fn serde_messages_quote_at_most_64_characters() {
        #[derive(Debug, Deserialize)]
        struct Typed {
            #[allow(dead_code)]
            n: u64,
        }
        let huge = "Z".repeat(100_000);
        let err = decode::<Typed>(format!(r#"{{"n": "{huge}"}}"#).as_bytes()).unwrap_err();
        assert!(err.len() < 300, "{} bytes: {}", err.len(), &err[..200]);
        assert!(err.starts_with("n: invalid type: string \""), "{err}");
        assert!(
            err.contains(&format!("\"{}\"… (99936 more bytes)", "Z".repeat(64))),
            "{err}"
        );
        assert_eq!(
            bound_quotes(r#"a "x\"y" b "short""#),
            r#"a "x\"y" b "short""#,
            "escaped quotes stay inside their string"
        );
    }

    #[test]
    fn days_must_be_iso() {
        assert_eq!(
            parse_day("2022-04-25"),
            Ok(NaiveDate::from_ymd_opt(2022, 4, 25).unwrap())
        );
        assert_eq!(
            parse_day("2000-01-01"),
            Ok(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap())
        );
        // See: issue 15.9 (a day before 2000 is no real reading)
        for early in ["0999-12-31", "1999-12-31", "0000-01-01"] {
            assert!(
                parse_day(early).unwrap_err().contains("before 2000"),
                "{early}"
            );
        }
        for bad in [
            "2022-4-25",
            "2022-02-30",
            "2022-13-01",
            "2022-00-10",
            "25/04/2022",
            "+202-04-25",
            "2022-04-2x",
            "2022-04-25 ",
            "2022_04_25",
            "22022-04-25",
            "",
        ] {
            assert_eq!(
                parse_day(bad),
                Err(format!("{bad:?} is not a YYYY-MM-DD date"))
            );
        }
    }

    /// Every way a figure can be wrong is named, as it was when figures went through
    /// `serde_json::Value`.
    #[test]
    fn bad_figures_are_named() {
        for (body, expected) in [
            (r#"[{"mb": null}]"#, "expected a number, got null"),
            (r#"[{"mb": true}]"#, "expected a number, got true"),
            (r#"[{"mb": [1]}]"#, "expected a number, got an array"),
            (r#"[{"mb": {"a": 1}}]"#, "expected a number, got an object"),
            (r#"[{"mb": "1,5"}]"#, "expected a number, got \"1,5\""),
        ] {
            let err = decode::<Vec<Row>>(body.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let rows: Vec<Row> = decode(br#"[{"mb": 3}, {"mb": -2}, {"mb": " 4.5 "}]"#).unwrap();
        let figures: Vec<f64> = rows.iter().map(|r| r.mb).collect();
        assert_eq!(figures, [3.0, -2.0, 4.5]);
    }
}
