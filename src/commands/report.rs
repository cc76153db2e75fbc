//! `usage-archiver report`: usage totals from the archive as a table, CSV or JSON.

use super::{EXIT_OK, database_path, format_mb, load_optional_config};
use crate::cli::{ReportArgs, ReportFormat};
use crate::model::Period;
use crate::store::Store;
use crate::store::query::{self, ReportFilter, ReportRow};

pub(super) async fn execute(args: ReportArgs) -> anyhow::Result<u8> {
    let config = load_optional_config(&args.paths)?;
    let path = database_path(&args.paths, config.as_ref());
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    let filter = ReportFilter {
        by: args.by,
        provider: args.provider,
        account: args.account,
        subject: args.subject,
        from: day(args.from),
        to: day(args.to),
        per_subject: args.per_subject,
    };
    show(&path, &filter, args.format)?;
    Ok(EXIT_OK)
}

/// Prints the report of the archive at `path`.
pub(super) fn show(
    path: &std::path::Path,
    filter: &ReportFilter,
    format: ReportFormat,
) -> anyhow::Result<()> {
    let store = Store::open_read_only(path)?;
    let rows = store.with_conn(|c| query::load_report(c, filter))?;
    match format {
        ReportFormat::Table => print!("{}", render_report(&rows, filter)),
        ReportFormat::Csv => print!("{}", to_csv(&rows, filter.per_subject)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ReportFormat::Html => print!("{}", super::chart::to_html(&rows, filter)),
    }
    Ok(())
}

/// Width of the daily bar column, in characters.
const BAR_WIDTH: usize = 20;

/// `value` as a bar of eighth-blocks, `max` filling [`BAR_WIDTH`].
fn bar(value: f64, max: f64) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if max <= 0.0 || value <= 0.0 {
        return String::new();
    }
    let eighths = ((value / max) * (BAR_WIDTH * 8) as f64).round() as usize;
    let eighths = eighths.max(1);
    format!("{}{}", "█".repeat(eighths / 8), PARTS[eighths % 8])
}

/// The report as an aligned table with a totals row; the daily view gets a bar per row.
pub(crate) fn render_report(rows: &[ReportRow], filter: &ReportFilter) -> String {
    if rows.is_empty() {
        return "No usage in the archive matches these filters.\n".to_owned();
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format_mb);
    let bars = filter.by == Period::Day;
    let max = rows.iter().map(|r| r.total_mb).fold(0.0, f64::max);
    let mut header = vec!["period", "provider", "account"];
    if filter.per_subject {
        header.extend(["subject", "label"]);
    }
    header.extend(["subjects", "upload MB", "download MB", "total MB", "final"]);
    if bars {
        header.push("");
    }
    let mut table = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in rows {
        let mut line = vec![r.period.clone(), r.provider.clone(), r.account.clone()];
        if filter.per_subject {
            line.push(r.subject.clone().unwrap_or_default());
            line.push(r.label.clone().unwrap_or_default());
        }
        line.extend([
            r.subjects.to_string(),
            opt(r.upload_mb),
            opt(r.download_mb),
            format_mb(r.total_mb),
            if r.is_final { "yes" } else { "no" }.to_owned(),
        ]);
        if bars {
            line.push(bar(r.total_mb, max));
        }
        table.push(line);
    }
    let sum = |f: fn(&ReportRow) -> Option<f64>| -> Option<f64> {
        rows.iter().map(f).sum::<Option<f64>>()
    };
    let mut total = vec!["total".to_owned(), String::new(), String::new()];
    if filter.per_subject {
        total.extend([String::new(), String::new()]);
    }
    total.extend([
        String::new(),
        opt(sum(|r| r.upload_mb)),
        opt(sum(|r| r.download_mb)),
        format_mb(rows.iter().map(|r| r.total_mb).sum()),
        String::new(),
    ]);
    table.push(total);
    super::render_columns(&table)
}

/// RFC 4180 CSV with a header row; numbers unformatted, empty where unknown.
pub(crate) fn to_csv(rows: &[ReportRow], per_subject: bool) -> String {
    let mut out = String::from("period,provider,account,");
    if per_subject {
        out.push_str("subject,label,");
    }
    out.push_str("subjects,upload_mb,download_mb,total_mb,is_final\r\n");
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let mut fields = vec![
            csv_field(&r.period),
            csv_field(&r.provider),
            csv_field(&r.account),
        ];
        if per_subject {
            fields.push(csv_field(r.subject.as_deref().unwrap_or_default()));
            fields.push(csv_field(r.label.as_deref().unwrap_or_default()));
        }
        fields.extend([
            r.subjects.to_string(),
            num(r.upload_mb),
            num(r.download_mb),
            r.total_mb.to_string(),
            u8::from(r.is_final).to_string(),
        ]);
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A text cell as RFC 4180 writes it. A cell a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@`, tab or carriage return first: a provider-controlled subject name
/// could be one) gets a `'` in front, so it is shown as text and never run.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_row() {
        assert_eq!(bar(10.0, 10.0), "█".repeat(BAR_WIDTH));
        assert_eq!(bar(5.0, 10.0), "█".repeat(BAR_WIDTH / 2));
        assert_eq!(bar(0.0, 10.0), "");
        assert_eq!(bar(0.001, 10.0), "▏", "a tiny day still shows");
    }

    #[test]
    fn csv_quotes_commas_and_quotes() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    /// See: issue 15.11 (provider-controlled names must not run as spreadsheet formulas)
    #[test]
    fn csv_neutralises_formula_cells() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("2026-11"), "2026-11");
        assert_eq!(csv_field("standart/u1"), "standart/u1");
    }
}
