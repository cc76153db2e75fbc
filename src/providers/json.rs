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
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        format!("invalid JSON: {inner}")
    } else if path == "." {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    }
}

/// A JSON number, or a string holding one.
#[derive(Debug)]
enum NumberOrString {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for NumberOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(Self::Number)
                .ok_or_else(|| de::Error::custom(format!("{n} is not a usable number"))),
            serde_json::Value::String(s) => Ok(Self::Text(s)),
            other => Err(de::Error::custom(format!(
                "expected a number, got {}",
                kind_of(&other)
            ))),
        }
    }
}

/// How a JSON value is named in an error: its type, and the value itself when short.
fn kind_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Array(_) => "an array".to_owned(),
        serde_json::Value::Object(_) => "an object".to_owned(),
        other => other.to_string(),
    }
}

/// Deserializes a finite `f64` that may arrive as a string.
pub(crate) fn flexible_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) => n,
        NumberOrString::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| de::Error::custom(format!("expected a number, got {s:?}")))?,
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

/// The body with every object key in `keys` removed, at any depth.
///
/// A body that is not JSON cannot be searched by key, so it is replaced by a
/// note rather than kept with whatever it may hold.
pub(crate) fn redact_keys(body: &bytes::Bytes, keys: &[&str]) -> bytes::Bytes {
    if !keys
        .iter()
        .any(|k| body.windows(k.len()).any(|w| w == k.as_bytes()))
    {
        return body.clone();
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            strip(&mut value, keys);
            serde_json::to_vec(&value)
                .map(bytes::Bytes::from)
                .unwrap_or_default()
        }
        Err(_) => {
            bytes::Bytes::from_static(b"[body withheld: not JSON, and it names a secret field]")
        }
    }
}

/// Removes every object key in `keys` from `value`, at any depth.
pub(crate) fn strip(value: &mut serde_json::Value, keys: &[&str]) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !keys.contains(&k.as_str()));
            map.values_mut().for_each(|v| strip(v, keys));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
        _ => {}
    }
}

/// Deserializes a non-negative integer id that may arrive as a string of digits.
pub(crate) fn flexible_id<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Number(n) if n >= 0.0 && n.fract() == 0.0 && n < 9.0e15 => Ok(n as u64),
        NumberOrString::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| de::Error::custom(format!("id {s:?} is too large"))),
        other => Err(de::Error::custom(format!(
            "expected an integer id, got {other:?}"
        ))),
    }
}

/// Parses a `YYYY-MM-DD` date, rejecting any other shape.
pub(crate) fn parse_day(text: &str) -> Result<NaiveDate, String> {
    let shape_ok = text.len() == 10 && text.as_bytes().get(4) == Some(&b'-');
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| shape_ok)
        .ok_or_else(|| format!("{text:?} is not a YYYY-MM-DD date"))
}

/// A megabyte figure must be finite and not negative.
pub(crate) fn check_mb(field: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
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

    #[test]
    fn days_must_be_iso() {
        assert!(parse_day("2022-04-25").is_ok());
        assert!(parse_day("2022-4-25").is_err());
        assert!(parse_day("2022-02-30").is_err());
        assert!(parse_day("25/04/2022").is_err());
    }
}
