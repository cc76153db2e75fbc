//! The plan in the commands: run --once, daily snapshots, a subject waking up, backfill ignoring the plan.

use super::*;

/// `run --once`, as the timer's unit starts it, runs the accounts a tick made due, records
/// the runs like the daemon, skips those that already ran since their last tick, and
/// exits as `backfill` does.
// See: issue 16 (`run --once` exit codes and run records)
#[tokio::test]
async fn run_once_runs_what_is_due_and_exits_like_backfill() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let cfg = dir.write("daemon.toml", &sim.daemon_toml(&dir.db()), 0o600);
    // The command line of the timer's unit, with this test's config.
    let unit = std::fs::read_to_string("systemd/usage-archiver-once.service").unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/usage-archiver "))
        .expect("the unit runs usage-archiver");
    let args: Vec<String> = exec
        .split_whitespace()
        .map(|a| a.replace("/etc/usage-archiver/daemon.toml", cfg.to_str().unwrap()))
        .collect();
    assert_eq!(args[..2], ["run", "--once"], "{exec}");
    let once = |now: &str| {
        let (args, now) = (args.clone(), now.to_owned());
        let clock = sim.clock().clone();
        async move {
            clock.set(at(&now));
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(BIN)
                    .args(&args)
                    .args(["--now", &now])
                    .env_remove("USAGE_ARCHIVER_CONFIG")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let first = once("2026-03-01T00:10:30Z").await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("Run summary") && stdout.contains("not due"),
        "{stdout}"
    );
    let runs = count(
        &dir.db(),
        "SELECT count(*) FROM sync_run WHERE status = 'ok'",
    );
    assert_eq!(runs, 5, "one run per account, recorded ok");
    // Five minutes later no schedule has ticked: nothing runs.
    let again = once("2026-03-01T00:15:00Z").await;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(count(&dir.db(), "SELECT count(*) FROM sync_run"), 5);
    assert!(String::from_utf8_lossy(&again.stdout).contains("No account is due"));
    // An hour on: the hourly accounts (ProxyShard at :00, HydraProxy at :10) are due.
    sim.faults().set(1.0, &[Fault::ServerError]);
    let failing = once("2026-03-01T01:10:30Z").await;
    sim.faults().off();
    assert_eq!(failing.status.code(), Some(1), "a failed run exits 1");
    let stdout = String::from_utf8_lossy(&failing.stdout);
    assert!(
        stdout.contains("hydraproxy/sim") && stdout.contains("proxyshard/sim"),
        "{stdout}"
    );
    assert!(stdout.contains("not due"), "{stdout}");
    let failed = count(
        &dir.db(),
        "SELECT count(*) FROM sync_run WHERE status <> 'ok'",
    );
    assert!(failed >= 1, "the failed runs are recorded");
    let bad = std::process::Command::new(BIN)
        .args([
            "run",
            "--once",
            "--config",
            cfg.to_str().unwrap(),
            "--source",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad --source is a usage error"
    );
}

/// ProxyShard order details are fetched once per UTC day, and again only for an order
/// whose listing row changed; the counters stay on every tick.
// See: issue 16 (ProxyShard order details fetched once a day)
#[tokio::test]
async fn proxyshard_order_details_once_a_day() {
    let sim = Simulator::start(SimConfig::demo()).await.unwrap();
    let dir = TestDir::new();
    let text = sim.daemon_toml(&dir.db());
    let config = config::parse(&text, std::path::Path::new("test.toml"))
        .unwrap()
        .config;
    let account = config
        .accounts
        .iter()
        .find(|a| a.kind.as_str() == "proxyshard")
        .unwrap();
    let store = Store::open(&dir.db()).unwrap();
    let detail = |id: u64| {
        sim.requests()
            .count(&format!("GET /proxyshard/user/api/orders/{id}"))
    };
    let counters = || {
        sim.requests()
            .count("GET /proxyshard/user/api/proxies/sub-users")
    };
    for tick in hourly("2026-03-01T00:00:00Z", "2026-03-01T04:00:00Z") {
        sim.clock().set(tick);
        let report = sync_planned(&config, &store, account, tick).await;
        assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    }
    assert_eq!(detail(1), 1, "once on the first day");
    assert_eq!(detail(130), 1);
    let counted = counters();
    assert!(counted >= 4, "counters on every tick: {counted}");
    // The listing shows order 7 changed (its tag): only it is fetched again.
    sim.faults()
        .tamper("/proxyshard/user/api/orders", |body: &[u8]| {
            let mut page: serde_json::Value = serde_json::from_slice(body).unwrap();
            for order in page["orders"].as_array_mut().unwrap() {
                if order["order_id"] == 7 {
                    order["tag"] = serde_json::json!("vip");
                }
            }
            serde_json::to_vec(&page).unwrap()
        });
    let t = at("2026-03-01T05:00:00Z");
    sim.clock().set(t);
    sync_planned(&config, &store, account, t).await;
    sim.faults().untamper();
    assert_eq!(detail(7), 2, "its listing row changed");
    assert_eq!(detail(8), 1, "unchanged");
    let t = at("2026-03-02T00:00:00Z");
    sim.clock().set(t);
    sync_planned(&config, &store, account, t).await;
    assert_eq!(detail(8), 2, "a new UTC day");
}

/// A dormant order is left alone between probes while its listing shows it ended; it is
/// fetched on every tick again as soon as the listing shows it active, or a probe finds
/// usage on one no listing watches.
// See: issue 16 (a subject that wakes up)
#[tokio::test]
async fn a_subject_that_wakes_up() {
    let server = MockServer::start_async().await;
    mock_account_info(&server).await;
    let dir = TestDir::new();
    let config = hydra_config(&server, &dir.db(), "orders = [2]\nretention_days = 7", "");
    let listing = |status: &'static str, body: &'static str| {
        let server = &server;
        async move {
            server
                .mock_async(|when, then| {
                    when.method("POST")
                        .path("/reseller/get_orders_status/")
                        .body_includes(form_field("status", status));
                    then.status(200).body(body);
                })
                .await
        }
    };
    let terminated =
        r#"[{"id": 1, "network_type": "RESIDENTIAL", "status": "TERMINATED", "price_usd": 3.0}]"#;
    let active =
        r#"[{"id": 1, "network_type": "RESIDENTIAL", "status": "ACTIVE", "price_usd": 3.0}]"#;
    let mut mocks = Vec::new();
    for status in ["CANCELED", "PENDING", "PROCESSING", "NO_FUNDS"] {
        mocks.push(listing(status, "[]").await);
    }
    let ended_listing = listing("TERMINATED", terminated).await;
    let active_listing = listing("ACTIVE", "[]").await;
    let usage = |order: &'static str, body: String| {
        let server = &server;
        async move {
            server
                .mock_async(|when, then| {
                    when.method("POST")
                        .path("/api/view_usage_history/")
                        .body_includes(form_field("order_id", order));
                    then.status(200).body(body);
                })
                .await
        }
    };
    let silent = |order: &str| format!(r#"{{"status":"OK","order_id":{order},"usage":null}}"#);
    let mut one = usage("1", silent("1")).await;
    let mut two = usage("2", silent("2")).await;
    let store = Store::open(&dir.db()).unwrap();
    let tick = |t: DateTime<Utc>| sync_planned(&config, &store, &config.accounts[0], t);
    for t in hourly("2026-03-01T00:10:00Z", "2026-03-01T03:00:00Z") {
        tick(t).await;
    }
    assert_eq!(
        (one.calls_async().await, two.calls_async().await),
        (1, 1),
        "dormant after the first fetch"
    );
    let class = |subject: &str| {
        open(&dir.db())
            .query_row(
                "SELECT state FROM subjects WHERE subject = ?1",
                [subject],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
    };
    assert_eq!(class("1"), "dormant");
    assert_eq!(class("2"), "dormant");
    // A week of hourly ticks: the ended order is probed about weekly, the unwatched one
    // every six days; no day is a gap.
    for t in hourly("2026-03-01T03:10:00Z", "2026-03-08T00:00:00Z") {
        tick(t).await;
    }
    let (probes_1, probes_2) = (one.calls_async().await, two.calls_async().await);
    assert!(
        probes_1 <= 2,
        "ended: the first fetch and at most one probe: {probes_1}"
    );
    assert!(
        (2..=3).contains(&probes_2),
        "unwatched: the first fetch and one probe or two: {probes_2}"
    );
    let gaps = store
        .with_conn(|c| load_gaps(c, "hydraproxy", "main", day("2026-03-07"), 7))
        .unwrap();
    assert!(gaps.is_empty(), "{gaps:?}");
    // The listing shows order 1 active again: fetched on the next tick and every tick on.
    ended_listing.delete_async().await;
    active_listing.delete_async().await;
    listing("TERMINATED", "[]").await;
    listing("ACTIVE", active).await;
    one.delete_async().await;
    one = usage("1", r#"{"status":"OK","order_id":1,"usage":[{"date":"2026-03-08","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}]}"#.to_owned()).await;
    tick(at("2026-03-08T00:10:00Z")).await;
    tick(at("2026-03-08T01:10:00Z")).await;
    assert_eq!(one.calls_async().await, 2, "hot: every tick");
    assert_eq!(class("1"), "hot");
    // Order 2 starts using traffic: its next probe finds it, and it is hot from then on.
    two.delete_async().await;
    let mut woke = None;
    for d in 8..15 {
        let date = format!("2026-03-{d:02}");
        let body = format!(
            r#"{{"status":"OK","order_id":2,"usage":[{{"date":"{date}","bandwidth_upload_mb":1,"bandwidth_download_mb":2,"bandwidth_total_mb":3}}]}}"#
        );
        two = usage("2", body).await;
        let from = if d == 8 { "02:10" } else { "00:10" };
        for t in hourly(&format!("{date}T{from}:00Z"), &format!("{date}T23:59:00Z")) {
            tick(t).await;
            if two.calls_async().await > 0 {
                woke = Some(t);
                break;
            }
        }
        if woke.is_some() {
            break;
        }
        two.delete_async().await;
    }
    let woke = woke.expect("probed within six days");
    tick(woke + TimeDelta::hours(1)).await;
    assert_eq!(two.calls_async().await, 2, "fetched on the next tick too");
    assert_eq!(class("2"), "hot", "the class the next run planned with");
    assert_eq!(
        day_rows(&dir.db(), "2").len(),
        1,
        "the day it woke on is archived"
    );
}

/// `backfill` ignores the plan: a dormant order it would leave for a week is fetched.
// See: issue 16 (backfill ignores the plan)
#[tokio::test]
async fn backfill_ignores_the_plan() {
    let (server, dir) = hydra_server().await;
    let config = hydra_config(&server, &dir.db(), "orders = [1]", "");
    let usage = mock_usage(&server, r#"{"status":"OK","order_id":1,"usage":null}"#).await;
    let store = Store::open(&dir.db()).unwrap();
    let t = at("2026-03-01T00:10:00Z");
    sync_planned(&config, &store, &config.accounts[0], t).await;
    let later = t + TimeDelta::hours(1);
    let planned = sync_planned(&config, &store, &config.accounts[0], later).await;
    assert_eq!(
        (usage.calls_async().await, planned.planned_skips),
        (1, 1),
        "dormant: left"
    );
    let backfill = sync_with(&config, &store, &config.accounts[0], later).await;
    assert_eq!(
        (usage.calls_async().await, backfill.planned_skips),
        (2, 0),
        "backfill fetches it"
    );
}
