//! Figures that cannot be right are never silent (issue 22.4, 22.5): a final day above
//! its counter's allocation or the account's `max_day_mb` is kept and marked, and
//! `status` counts the revisions of final figures and warns about large ones.

use std::path::Path;
use std::process::{Command, Output};

use httpmock::MockServer;
use serde_json::json;
use usage_archiver::config::{self, Config};

use crate::common::*;

const MB: f64 = 1_048_576.0;

/// A ProxyShard account on `server` whose owner counter reads `owner_mb` (allocation
/// 5,000 MB) and whose one sub-user reads `user_mb` (allocation 100,000 MB).
async fn proxyshard(owner_mb: f64, user_mb: f64, db: &Path, extra: &str) -> (MockServer, Config) {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/me");
            then.status(200)
                .json_body(json!({"active_orders": 0, "wallet_balance": 100}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/profile");
            then.status(200).json_body(json!({"success": true, "data": 5000.0 * MB, "data_remain": 0, "data_spent": owner_mb * MB}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/sub-users");
            then.status(200).json_body(json!({"success": true, "count": 1, "data": [
                {"user_id": "7", "first_name": "Ann", "data": 100_000.0 * MB, "data_spent": user_mb * MB, "data_remain": 0}
            ]}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/orders");
            then.status(200).json_body(
                json!({"success": true, "orders": [], "count": 0, "prev": null, "next": null}),
            );
        })
        .await;
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n\
         [[proxyshard]]\nname = \"main\"\nbase_url = \"{}\"\nallow_insecure_http = true\n\
         token = \"{TOKEN}\"\nproxy_types = [\"standart\"]\n{extra}\n",
        db.display().to_string(),
        server.base_url()
    );
    (
        server,
        config::parse(&text, Path::new("t.toml")).unwrap().config,
    )
}

fn status(db: &Path, now: &str, json: bool) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--db", db.to_str().unwrap(), "--now", now])
        .env_remove("USAGE_ARCHIVER_CONFIG")
        .current_dir(db.parent().unwrap());
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

/// A final day above the counter's own allocation (ProxyShard `data`) and one above the
/// account's `max_day_mb` are kept as the provider gave them, marked in `suspect_days`,
/// and make `status` warn and exit 1, listing them in `--json`; a week later the mark
/// stays but no longer degrades the account.
// See: issue 22.4
#[tokio::test]
async fn implausible_final_days_are_kept_marked_and_reported() {
    let dir = TestDir::new();
    let (_a, first) = proxyshard(100.0, 1_000.0, &dir.db(), "max_day_mb = 20000").await;
    assert_all_ok(&[sync_at(&first, at("2026-04-01T00:10:00Z")).await]);
    let (_b, second) = proxyshard(9_100.0, 31_000.0, &dir.db(), "max_day_mb = 20000").await;
    assert_all_ok(&[sync_at(&second, at("2026-04-02T00:10:00Z")).await]);

    let kept = day_rows(&dir.db(), "standart/owner");
    assert_eq!(
        kept[0],
        ("2026-04-01".into(), None, None, 9_000.0, true),
        "kept as given"
    );
    let marks: Vec<(String, String, f64, f64)> = open(&dir.db())
        .prepare("SELECT subject, reason, total_mb, limit_mb FROM suspect_days ORDER BY subject")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        marks,
        [
            (
                "standart/7".into(),
                "over_ceiling".into(),
                30_000.0,
                20_000.0
            ),
            (
                "standart/owner".into(),
                "over_allocation".into(),
                9_000.0,
                5_000.0
            ),
        ]
    );
    // The same answers again: no new mark, nothing rewritten.
    let again = sync_at(&second, at("2026-04-02T00:20:00Z")).await;
    assert_eq!(again.totals.rows_updated, 0);

    let out = status(&dir.db(), "2026-04-02T01:00:00Z", false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("WARNING: 1 of 1 accounts degraded: proxyshard/main"),
        "{text}"
    );
    assert!(text.contains("2 implausible final days"), "{text}");
    let out = status(&dir.db(), "2026-04-02T01:00:00Z", true);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = &json["accounts"][0]["suspect_days"];
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(listed[1]["reason"], "over_allocation");
    assert_eq!(listed[1]["day"], "2026-04-01");

    let out = status(&dir.db(), "2026-04-10T01:00:00Z", false);
    assert_eq!(
        out.status.code(),
        Some(1),
        "days are lost by then: the plan's own verdict"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("implausible"));
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM suspect_days"),
        2,
        "the marks stay"
    );
}

/// A final day that is revised is counted per account in `status` and the metrics; a
/// revision by more than tenfold degrades the account and is listed.
// See: issue 22.5
#[tokio::test]
async fn revisions_of_final_figures_are_counted_and_large_ones_warned_about() {
    let body = |mb: f64| {
        format!(
            r#"{{"status":"OK","order_id":1,"usage":[{{"date":"2026-05-01","bandwidth_upload_mb":0,"bandwidth_download_mb":{mb},"bandwidth_total_mb":{mb}}}]}}"#
        )
    };
    let dir = TestDir::new();
    for (mb, when) in [
        (100.0, "2026-05-02T01:00:00Z"),
        (120.0, "2026-05-02T02:00:00Z"),
        (5_000.0, "2026-05-02T03:00:00Z"),
    ] {
        let (server, dir_) = hydra_server().await;
        drop(dir_);
        mock_usage(&server, body(mb)).await;
        let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
        assert_all_ok(&[sync_at(&config, at(when)).await]);
    }
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM usage_revisions"), 2);
    let out = status(&dir.db(), "2026-05-02T03:30:00Z", true);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = &json["accounts"][0];
    assert_eq!(account["revisions_recent"], 2, "{account}");
    assert_eq!(account["large_revisions"].as_array().map(Vec::len), Some(1));
    assert_eq!(account["large_revisions"][0]["new_total_mb"], 5000.0);
    assert!(
        account["reason"]
            .as_str()
            .unwrap()
            .contains("revised by more than 10x")
    );
    let text = String::from_utf8_lossy(&status(&dir.db(), "2026-05-02T03:30:00Z", false).stdout)
        .into_owned();
    let row = text.lines().find(|l| l.starts_with("hydraproxy")).unwrap();
    assert!(
        row.split_whitespace().any(|c| c == "2"),
        "a revised-7d column of 2: {row}"
    );
    let metrics =
        usage_archiver::metrics::render(&open(&dir.db()), at("2026-05-02T03:30:00Z")).unwrap();
    assert!(
        metrics.contains(
            "usage_archiver_final_revisions_7d{provider=\"hydraproxy\",account=\"main\"} 2"
        ),
        "{metrics}"
    );
    // A week later the revisions are old news.
    let later = status(&dir.db(), "2026-05-10T03:30:00Z", true);
    let json: serde_json::Value = serde_json::from_slice(&later.stdout).unwrap();
    assert_eq!(json["accounts"][0]["revisions_recent"], 0);
}
