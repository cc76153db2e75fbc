//! Hostens days derived from counters: a reset across a month boundary, a panel that syncs late.

use super::*;

/// Derived days over several snapshots a day, a counter reset at the month boundary, and a day
/// without snapshots that stays a gap.
#[tokio::test]
async fn counter_reset_across_a_month_boundary_and_derived_days() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let auth = basic_header();
    get(
        &server,
        "/balance",
        Some(&auth),
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(&auth),
        200,
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(&server, "/server/113/history", Some(&auth), 200, "[]").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let snapshots = [
        ("2026-10-30T00:30:00Z", 1000.0, 100.0),
        ("2026-10-30T12:00:00Z", 1400.0, 150.0),
        ("2026-10-30T23:30:00Z", 1900.0, 180.0),
        ("2026-10-31T00:30:00Z", 2000.0, 200.0),
        ("2026-10-31T23:00:00Z", 2600.0, 260.0),
        // The billing period starts: both counters are reset.
        ("2026-11-01T00:20:00Z", 30.0, 5.0),
        ("2026-11-01T12:00:00Z", 330.0, 55.0),
        // No snapshot at all on 2026-11-02.
        ("2026-11-03T00:10:00Z", 900.0, 90.0),
    ];
    for (when, bw_in, bw_out) in snapshots {
        let mock = get(
            &server,
            "/server/113",
            Some(&auth),
            200,
            details(bw_in, bw_out),
        )
        .await;
        let report = sync_at(&config, at(when)).await;
        assert_eq!(report.status, RunStatus::Ok, "{when}: {:?}", report.errors);
        mock.delete_async().await;
    }
    assert_eq!(
        day_rows(&dir.db(), "113"),
        [
            ("2026-10-30".into(), Some(100.0), Some(1000.0), 1100.0, true),
            // 600 and 60 before the reset, plus the new values counted from zero.
            ("2026-10-31".into(), Some(65.0), Some(630.0), 695.0, true),
            // Its end is unknown: no snapshot on 11-02, so it stays provisional.
            ("2026-11-01".into(), Some(50.0), Some(300.0), 350.0, false),
            ("2026-11-03".into(), Some(0.0), Some(0.0), 0.0, false),
        ]
    );
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE derived = 0 OR total_mb < 0"
        ),
        0
    );
}

/// The panel reads its counters at its own time (`synch_date`): a reading taken at 23:50
/// and fetched after midnight puts its traffic on the day it was read, and that day stays
/// provisional until a reading of the next day comes. Implausible dates (in the future,
/// days old, before the previous snapshot) fall back to the fetch time.
// See: issue 18.4
#[tokio::test]
async fn a_panel_that_syncs_late_puts_traffic_on_the_right_day() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let auth = basic_header();
    get(
        &server,
        "/balance",
        Some(&auth),
        200,
        fixture("hostens", "balance__braces_fixed.json"),
    )
    .await;
    get(
        &server,
        "/server",
        Some(&auth),
        200,
        fixture("hostens", "server__documented_single.json"),
    )
    .await;
    get(&server, "/server/113/history", Some(&auth), 200, "[]").await;
    let config = hostens_config(&server, &dir.db(), &basic_auth());
    let reading = |bw_in: f64, bw_out: f64, synch: &str| {
        let mut v: Value = serde_json::from_str(&details(bw_in, bw_out)).unwrap();
        v["synch_date"] = json!(synch);
        v.to_string()
    };
    // (fetched at, bw_in, bw_out, synch_date)
    let snapshots = [
        ("2026-10-30T00:30:00Z", 1000.0, 100.0, "2026-10-30 00:20:00"),
        // Read at 23:50, fetched at 00:10: still 10-30's traffic.
        ("2026-10-31T00:10:00Z", 1900.0, 190.0, "2026-10-30 23:50:00"),
        (
            "2026-10-31T01:10:00Z",
            1950.0,
            195.0,
            "2026-10-31T00:40:00+00:00",
        ),
        // A panel clock ahead of ours, then a date older than the previous reading, then a
        // stale one: all taken as of the fetch.
        ("2026-10-31T12:00:00Z", 2100.0, 210.0, "2026-10-31 18:00:00"),
        ("2026-10-31T13:00:00Z", 2200.0, 220.0, "2026-10-31 11:00:00"),
        ("2026-11-01T00:30:00Z", 2400.0, 240.0, "2026-10-20 00:00:00"),
    ];
    let mut seen = Vec::new();
    for (when, bw_in, bw_out, synch) in snapshots {
        let mock = get(
            &server,
            "/server/113",
            Some(&auth),
            200,
            reading(bw_in, bw_out, synch),
        )
        .await;
        let report = sync_at(&config, at(when)).await;
        assert_eq!(report.status, RunStatus::Ok, "{when}: {:?}", report.errors);
        mock.delete_async().await;
        seen.push(day_rows(&dir.db(), "113"));
    }
    assert_eq!(
        seen[1],
        [("2026-10-30".into(), Some(90.0), Some(900.0), 990.0, false)],
        "read on 10-30: that day's traffic, provisional (its end is not known yet)"
    );
    assert_eq!(
        seen[2],
        [
            ("2026-10-30".into(), Some(95.0), Some(950.0), 1045.0, true),
            ("2026-10-31".into(), Some(0.0), Some(0.0), 0.0, false),
        ],
        "the first reading of 10-31 settles 10-30"
    );
    let taken: Vec<String> = open(&dir.db())
        .prepare(
            "SELECT taken_at FROM counter_snapshot WHERE subject = '113' AND counter = 'download' \
             ORDER BY day, slot",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        taken,
        [
            "2026-10-30T00:20:00Z", // first of 10-30, the panel's time
            "2026-10-30T23:50:00Z", // latest of 10-30
            "2026-10-31T00:40:00Z", // first of 10-31
            "2026-10-31T13:00:00Z", // latest of 10-31: a date before the previous, fetch time
            "2026-11-01T00:30:00Z", // first of 11-01: a stale date, fetch time
            "2026-11-01T00:30:00Z",
        ]
    );
}
