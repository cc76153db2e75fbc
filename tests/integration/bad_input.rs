//! Bad input through the whole sync (issue 7.3): every provider's subject endpoint answers
//! with wrong types, negative, NaN, huge and null values, impossible dates, HTML, an empty
//! body and a body over `max_body_bytes`. Each run records an error naming the provider,
//! account, subject, endpoint and what was wrong; nothing archived changes; with
//! `keep_raw = "errors"` the offending body is kept.

use std::collections::BTreeSet;
use std::path::Path;

use usage_archiver::config::{self, Config};
use usage_archiver::sim::{SimConfig, Simulator};
use usage_archiver::store::Store;
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

const NOW: &str = "2026-11-20T12:00:00Z";
const TODAY: &str = "2026-11-20";
const MAX_BODY: u64 = 64 * 1024;

/// One provider's subject endpoint on the simulator, and where its bodies hold a value and a date.
struct Target {
    provider: &'static str,
    account: &'static str,
    subject: &'static str,
    path: &'static str,
    /// The JSON key whose value is usage or a counter.
    value_key: &'static str,
    /// How to make the body's date impossible, where the body carries one.
    date: Option<fn(&str) -> String>,
}

const TARGETS: [Target; 4] = [
    Target {
        provider: "hydraproxy",
        account: "sim",
        subject: "37001",
        path: "/hydraproxy/api/view_usage_history/",
        value_key: "bandwidth_total_mb",
        date: Some(|body| set_value(body, "date", "\"2026-02-30\"")),
    },
    Target {
        provider: "infiniteproxies",
        account: "sim",
        subject: "customer001",
        path: "/infiniteproxies/v2/customer/@customer001/transactions",
        value_key: TODAY,
        date: Some(|body| body.replacen(&format!("\"{TODAY}\""), "\"2026-13-01\"", 1)),
    },
    Target {
        provider: "hostens",
        account: "sim",
        subject: "101",
        path: "/hostens/api/server/101",
        value_key: "bw_in",
        date: None,
    },
    Target {
        provider: "proxyshard",
        account: "sim",
        subject: "standart/owner",
        path: "/proxyshard/user/api/proxies/profile",
        value_key: "data_spent",
        date: None,
    },
];

/// Turns the real body into a bad one.
type BodyEdit = Box<dyn Fn(&str) -> String + Send + Sync>;

/// `body` with the value after the first `"key":` replaced by the text `value` (unchanged
/// without one: HydraProxy answers every order on one path, and unused orders have no rows).
fn set_value(body: &str, key: &str, value: &str) -> String {
    let needle = format!("\"{key}\":");
    let Some(start) = body.find(&needle).map(|i| i + needle.len()) else {
        return body.to_owned();
    };
    let rest = &body[start..];
    let len = if let Some(text) = rest.strip_prefix('"') {
        text.find('"').map_or(rest.len(), |i| i + 2)
    } else {
        rest.find([',', '}', ']']).unwrap_or(rest.len())
    };
    format!("{}{value}{}", &body[..start], &rest[len..])
}

fn sim_config(sim: &Simulator, db: &Path) -> Config {
    let mut config = config::parse(&sim.daemon_toml(db), Path::new("sim.toml"))
        .unwrap()
        .config;
    config.http.max_body_bytes = MAX_BODY;
    config.http.max_retries = 0;
    config
}

fn archived(db: &Path) -> BTreeSet<String> {
    let conn = open(db);
    let mut stmt = conn
        .prepare(
            "SELECT provider || '|' || account || '|' || subject || '|' || day || '|' || \
             ifnull(upload_mb, '-') || '|' || ifnull(download_mb, '-') || '|' || total_mb || '|' || is_final \
             FROM usage_daily \
             UNION ALL SELECT provider || '|' || account || '|' || subject || '|' || month || '|' || total_mb \
             FROM usage_monthly",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every bad body, for every provider: a recorded, specific error; an unchanged archive;
/// the body kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_fail_the_subject_name_it_and_change_nothing() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    sim.clock().set(at(NOW));
    let dir = TestDir::new();
    let config = sim_config(&sim, &dir.db());
    let store = Store::open(&dir.db()).unwrap();
    assert_all_ok(&sync_all(&sim, &config, &store, at(NOW)).await);
    let before = archived(&dir.db());
    assert!(before.len() > 100);

    for target in &TARGETS {
        let key = target.value_key;
        let mut cases: Vec<(&str, BodyEdit, String)> = vec![
            (
                "wrong type",
                Box::new(move |b| set_value(b, key, "\"lots\"")),
                key.to_owned(),
            ),
            (
                "negative",
                Box::new(move |b| set_value(b, key, "-5")),
                key.to_owned(),
            ),
            (
                "null",
                Box::new(move |b| set_value(b, key, "null")),
                key.to_owned(),
            ),
            (
                "NaN",
                Box::new(move |b| set_value(b, key, "NaN")),
                "invalid JSON".into(),
            ),
            (
                "huge",
                Box::new(move |b| set_value(b, key, "1e999")),
                "invalid JSON".into(),
            ),
            (
                "HTML",
                Box::new(|_| "<html><body><h1>502 Bad Gateway</h1></body></html>".into()),
                "invalid JSON".into(),
            ),
            ("empty", Box::new(|_| String::new()), "invalid JSON".into()),
            (
                "over max_body_bytes",
                Box::new(|_| format!("[{}0]", "0,".repeat(MAX_BODY as usize))),
                format!("response body larger than {MAX_BODY} bytes"),
            ),
        ];
        if let Some(date) = target.date {
            cases.push(("impossible date", Box::new(date), "date".into()));
        }
        let kept_sql = format!(
            "SELECT count(*) FROM raw_response WHERE provider = '{}' AND subject = '{}'",
            target.provider, target.subject
        );
        let account = config
            .accounts
            .iter()
            .find(|a| a.kind.as_str() == target.provider && a.name == target.account)
            .unwrap();
        for (what, edit, expected) in cases {
            let case = format!("{} {what}", target.provider);
            let kept_before = count(&dir.db(), &kept_sql);
            let edit_bytes = move |b: &[u8]| edit(&String::from_utf8_lossy(b)).into_bytes();
            sim.faults().tamper(target.path, edit_bytes);
            let report = sync_with(&config, &store, account, at(NOW)).await;
            sim.faults().untamper();

            assert_ne!(report.status, RunStatus::Ok, "{case}");
            let (provider, account_name, subject, error): (String, String, Option<String>, String) =
                open(&dir.db())
                    .query_row(
                        "SELECT r.provider, r.account, e.subject, e.error FROM sync_error e \
                         JOIN sync_run r ON r.id = e.run_id WHERE e.run_id = ?1 AND e.subject = ?2",
                        rusqlite::params![report.run_id, target.subject],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .unwrap_or_else(|e| {
                        panic!(
                            "{case}: no error recorded for the subject: {e}; {:?}",
                            report.errors
                        )
                    });
            assert_eq!(
                (provider.as_str(), account_name.as_str(), subject.as_deref()),
                (target.provider, target.account, Some(target.subject)),
                "{case}"
            );
            assert!(
                error.contains(&expected),
                "{case}: {error:?} does not say {expected:?}"
            );
            assert!(
                report
                    .errors
                    .iter()
                    .any(|e| e.starts_with("subject ") && e.contains(&expected)),
                "{case}: summary errors {:?}",
                report.errors
            );
            assert_eq!(archived(&dir.db()), before, "{case} changed the archive");
            // A body over the cap is never read whole, so there is nothing to keep.
            if what != "over max_body_bytes" {
                assert!(
                    count(&dir.db(), &kept_sql) > kept_before,
                    "{case}: offending body not kept"
                );
            }
        }
    }
}
