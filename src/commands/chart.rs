//! `report --format html`: one self-contained page, a stacked bar chart (inline SVG) of the
//! report's series above its table. No script, no stylesheet or font from elsewhere: the
//! file opens anywhere, offline, and can be mailed or archived as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::store::query::{ReportFilter, ReportRow};

/// Series drawn on their own; the rest are summed as "other".
const TOP_SERIES: usize = 8;
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 360.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_BOTTOM: f64 = 60.0;
const MARGIN_TOP: f64 = 20.0;
/// Colours of the series, in order; "other" is grey.
const COLOURS: [&str; TOP_SERIES] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
];
const OTHER: &str = "other";

/// The page for `rows`: totals per period, stacked by provider/account (or by subject with
/// `--per-subject`, the top eight and "other").
pub(crate) fn to_html(rows: &[ReportRow], filter: &ReportFilter) -> String {
    let series_of = |r: &ReportRow| match (&r.subject, filter.per_subject) {
        (Some(s), true) => match &r.label {
            Some(l) => format!("{}/{} {s} ({l})", r.provider, r.account),
            None => format!("{}/{} {s}", r.provider, r.account),
        },
        _ => format!("{}/{}", r.provider, r.account),
    };
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    for r in rows {
        *totals.entry(series_of(r)).or_default() += r.total_mb;
    }
    let mut ranked: Vec<(String, f64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<String> = ranked
        .iter()
        .take(TOP_SERIES)
        .map(|(s, _)| s.clone())
        .collect();
    let mut stacks: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for r in rows {
        let name = series_of(r);
        let slot = top.iter().position(|s| *s == name).unwrap_or(TOP_SERIES);
        *stacks
            .entry(r.period.clone())
            .or_default()
            .entry(slot)
            .or_default() += r.total_mb;
    }
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>usage-archiver report</title>\n<style>\n\
         body{font-family:sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin-top:1.5em}\
         td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}\
         td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}\
         .legend span{display:inline-block;margin-right:1.2em}\
         .legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}\n\
         </style>\n</head>\n<body>\n",
    );
    let by = if filter.per_subject {
        "subject"
    } else {
        "account"
    };
    let _ = writeln!(
        out,
        "<h1>Usage, total MB per {} and {by}</h1>",
        period_name(filter)
    );
    if rows.is_empty() {
        out.push_str("<p>No usage in the archive matches these filters.</p>\n</body>\n</html>\n");
        return out;
    }
    out.push_str(&chart(&stacks, top.len(), ranked.len() > TOP_SERIES));
    out.push_str("<div class=\"legend\">");
    for (i, name) in top.iter().enumerate() {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            COLOURS[i],
            escape(name)
        );
    }
    if ranked.len() > TOP_SERIES {
        let _ = write!(
            out,
            "<span><i style=\"background:#bab0ac\"></i>{OTHER} ({} more)</span>",
            ranked.len() - TOP_SERIES
        );
    }
    out.push_str("</div>\n");
    out.push_str(&table(rows, filter));
    out.push_str("</body>\n</html>\n");
    out
}

fn period_name(filter: &ReportFilter) -> &'static str {
    match filter.by {
        crate::model::Period::Day => "day",
        crate::model::Period::Month => "month",
    }
}

/// The stacked bars, one per period, with a y axis of four steps.
fn chart(stacks: &BTreeMap<String, BTreeMap<usize, f64>>, series: usize, other: bool) -> String {
    let max = stacks
        .values()
        .map(|s| s.values().sum::<f64>())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot_w = WIDTH - MARGIN_LEFT - 10.0;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let step = plot_w / stacks.len().max(1) as f64;
    let bar_w = (step * 0.8).max(1.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg id=\"chart\" role=\"img\" aria-label=\"usage chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
    );
    for i in 0..=4 {
        let value = max * f64::from(i) / 4.0;
        let y = MARGIN_TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            WIDTH - 10.0,
            MARGIN_LEFT - 6.0,
            y + 4.0,
            escape(&super::format_mb(value))
        );
    }
    let label_every = (stacks.len() / 12).max(1);
    for (n, (period, parts)) in stacks.iter().enumerate() {
        let x = MARGIN_LEFT + step * n as f64 + (step - bar_w) / 2.0;
        let mut y = MARGIN_TOP + plot_h;
        let slots = (0..series).chain(other.then_some(TOP_SERIES));
        for slot in slots {
            // A series with nothing that period has no bar (zero height draws nothing).
            let Some(&mb) = parts.get(&slot).filter(|mb| **mb > 0.0) else {
                continue;
            };
            // At least a pixel, so a small figure still shows (and can be hovered).
            let h = (plot_h * mb / max).max(1.0);
            y -= h;
            let colour = COLOURS.get(slot).copied().unwrap_or("#bab0ac");
            let _ = writeln!(
                svg,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{colour}\">\
                 <title>{}: {} MB</title></rect>",
                escape(period),
                escape(&super::format_mb(mb))
            );
        }
        if n % label_every == 0 {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                MARGIN_TOP + plot_h + 16.0,
                escape(period)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The report's rows as an HTML table.
fn table(rows: &[ReportRow], filter: &ReportFilter) -> String {
    let mut out = String::from("<table>\n<tr><th>period</th><th>provider</th><th>account</th>");
    if filter.per_subject {
        out.push_str("<th>subject</th><th>label</th>");
    }
    out.push_str("<th>subjects</th><th>upload MB</th><th>download MB</th><th>total MB</th><th>final</th></tr>\n");
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), super::format_mb);
    for r in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(&r.period),
            escape(&r.provider),
            escape(&r.account)
        );
        if filter.per_subject {
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td>",
                escape(r.subject.as_deref().unwrap_or_default()),
                escape(r.label.as_deref().unwrap_or_default())
            );
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.subjects,
            opt(r.upload_mb),
            opt(r.download_mb),
            super::format_mb(r.total_mb),
            if r.is_final { "yes" } else { "no" }
        );
    }
    out.push_str("</table>\n");
    out
}

/// Text made safe inside HTML elements and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
