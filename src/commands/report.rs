//! `usage-archiver report`: usage totals from the archive as a table, CSV or JSON.

use super::{EXIT_OK, database_path, format_mb, load_optional_config};
use crate::cli::{ReportArgs, ReportFormat};
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
    };
    let store = Store::open_read_only(&path)?;
    let rows = store.with_conn(|c| query::load_report(c, &filter))?;
    match args.format {
        ReportFormat::Table => print_table(&rows),
        ReportFormat::Csv => print!("{}", to_csv(&rows)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
    }
    Ok(EXIT_OK)
}

fn print_table(rows: &[ReportRow]) {
    if rows.is_empty() {
        println!("No usage in the archive matches these filters.");
        return;
    }
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format_mb);
    let mut table = vec![
        [
            "period",
            "provider",
            "account",
            "subjects",
            "upload MB",
            "download MB",
            "total MB",
            "final",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in rows {
        table.push(vec![
            r.period.clone(),
            r.provider.clone(),
            r.account.clone(),
            r.subjects.to_string(),
            opt(r.upload_mb),
            opt(r.download_mb),
            format_mb(r.total_mb),
            if r.is_final { "yes" } else { "no" }.to_owned(),
        ]);
    }
    let total: f64 = rows.iter().map(|r| r.total_mb).sum();
    table.push(vec![
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        format_mb(total),
        String::new(),
    ]);
    super::print_table(&table);
}

/// RFC 4180 CSV with a header row.
pub(crate) fn to_csv(rows: &[ReportRow]) -> String {
    let mut out = String::from(
        "period,provider,account,subjects,upload_mb,download_mb,total_mb,is_final\r\n",
    );
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let fields = [
            csv_field(&r.period),
            csv_field(&r.provider),
            csv_field(&r.account),
            r.subjects.to_string(),
            num(r.upload_mb),
            num(r.download_mb),
            r.total_mb.to_string(),
            u8::from(r.is_final).to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_quotes() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
