//! Guards on what providers answer, before anything is written: periods dated after the
//! fetch, labels with control characters or too long, subject ids too long.

use chrono::{Datelike, TimeDelta};

use crate::error::ProviderError;
use crate::model::{FetchTime, RawResponse, SubjectUsage};

/// The longest subject id a listing may name: a longer one is no real id, and would make
/// every error about it long.
pub(super) const MAX_SUBJECT_BYTES: usize = 256;

/// Checks a subject's periods against the fetch. A day after tomorrow (UTC) cannot be a
/// reading: the answer is malformed and nothing of it is stored. Tomorrow (a provider a
/// little ahead of UTC) and months after the fetch's month are dropped with a warning.
pub(super) fn check_periods(
    subject: &str,
    mut data: SubjectUsage,
    fetched: FetchTime,
) -> Result<SubjectUsage, ProviderError> {
    let today = fetched.day();
    let tomorrow = today + TimeDelta::days(1);
    if let Some(far) = data
        .days
        .iter()
        .map(|d| d.day)
        .filter(|d| *d > tomorrow)
        .max()
    {
        let raw = data.raw.first().cloned().unwrap_or_else(|| RawResponse {
            endpoint: "response".to_owned(),
            status: 0,
            body: bytes::Bytes::new(),
            secret_keys: &[],
        });
        return Err(ProviderError::Malformed {
            endpoint: raw.endpoint.clone(),
            reason: format!("day {far} is after tomorrow ({tomorrow}) at the fetch; not a reading"),
            raw: Box::new(raw),
        });
    }
    let this_month = today.with_day(1).unwrap_or(today);
    let mut future: Vec<String> = Vec::new();
    data.days.retain(|d| {
        let keep = d.day <= today;
        if !keep {
            future.push(d.day.to_string());
        }
        keep
    });
    data.months.retain(|m| {
        let keep = m.month <= this_month;
        if !keep {
            future.push(m.month.format("%Y-%m").to_string());
        }
        keep
    });
    data.month_resources.retain(|m| m.month <= this_month);
    if !future.is_empty() {
        tracing::warn!(
            subject = %subject,
            periods = %future.join(", "),
            fetched_day = %today,
            "Refused periods dated after the fetch; they were not stored"
        );
    }
    Ok(data)
}

/// A provider's name for a subject as the archive keeps it: control characters (which a
/// terminal would act on) dropped, whitespace trimmed, at most [`MAX_LABEL_CHARS`]
/// characters; `None` when nothing is left.
pub(super) fn clean_label(label: &str) -> Option<String> {
    let clean: String = label
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_LABEL_CHARS)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

/// The longest label kept.
const MAX_LABEL_CHARS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels come from providers: no control character (a terminal escape) is kept, and
    /// none is longer than the cap.
    #[test]
    fn labels_are_cleaned() {
        assert_eq!(clean_label("  Sub 0 "), Some("Sub 0".to_owned()));
        assert_eq!(
            clean_label("\u{1b}[31mred\u{1b}[0m\n"),
            Some("[31mred[0m".to_owned())
        );
        assert_eq!(clean_label(" \t\r\n"), None);
        assert_eq!(
            clean_label(&"é".repeat(300)).map(|l| l.chars().count()),
            Some(MAX_LABEL_CHARS)
        );
    }
}
