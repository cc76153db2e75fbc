//! The ProxyShard source against httpmock: counters, paging, orders, errors, no proxy passwords.
//!
//! ProxyShard's pages give field lists, not JSON examples, so bodies are built here from
//! those lists (see tests/fixtures/README.md).

use std::path::Path;

use httpmock::MockServer;
use serde_json::json;
use usage_archiver::config::{self, Config, KeepRaw};
use usage_archiver::store::runs::RunStatus;

use crate::common::*;

mod paging;

const MB: f64 = 1_048_576.0;

fn ps_config(server: &MockServer, db: &Path) -> Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 1\nbackoff_initial_ms = 1\n\n\
         [[proxyshard]]\nname = \"main\"\nbase_url = \"{}\"\nallow_insecure_http = true\n\
         token = \"{TOKEN}\"\nproxy_types = [\"standart\"]\n",
        db.display().to_string(),
        server.base_url()
    );
    config::parse(&text, Path::new("t.toml")).unwrap().config
}

/// A body from `tests/fixtures/proxyshard/` (built from the documents' field lists).
fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/proxyshard")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// `fixture` with `fields` set (each a JSON pointer and its value).
fn fixture_with(name: &str, fields: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut body = fixture(name);
    for (pointer, value) in fields {
        *body.pointer_mut(pointer).unwrap() = value.clone();
    }
    body
}

fn user(id: &str, spent_mb: f64) -> serde_json::Value {
    fixture_with(
        "sub_users__fields.json",
        &[
            ("/data/0/user_id", json!(id)),
            ("/data/0/data", json!(1000.0 * MB)),
            ("/data/0/data_spent", json!(spent_mb * MB)),
            ("/data/0/data_remain", json!((1000.0 - spent_mb) * MB)),
        ],
    )["data"][0]
        .clone()
}

/// Mocks /me and the owner's profile.
async fn mock_owner(server: &MockServer, owner_mb: f64) {
    server
        .mock_async(|when, then| {
            when.path("/user/api/me")
                .header("authorization", format!("Bearer {TOKEN}"));
            then.status(200).json_body(fixture("me__fields.json"));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/profile")
                .query_param("proxy_type", "standart");
            then.status(200).json_body(fixture_with(
                "profile__fields.json",
                &[
                    ("/data", json!(5000.0 * MB)),
                    ("/data_remain", json!((5000.0 - owner_mb) * MB)),
                    ("/data_spent", json!(owner_mb * MB)),
                ],
            ));
        })
        .await;
}

/// Mocks one page of sub-users at `offset`, saying `count` exist in all.
async fn mock_sub_users(
    server: &MockServer,
    offset: usize,
    count: usize,
    users: Vec<serde_json::Value>,
) {
    server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/sub-users")
                .query_param("offset", offset.to_string());
            then.status(200)
                .json_body(json!({"success": true, "count": count, "data": users}));
        })
        .await;
}

/// Mocks one page of the order listing at `offset`.
async fn mock_orders(server: &MockServer, offset: usize, ids: &[u64], next: Option<&str>) {
    let row = fixture("orders__fields.json")["orders"][0].clone();
    let list: Vec<_> = ids
        .iter()
        .map(|id| {
            let mut row = row.clone();
            row["order_id"] = json!(id);
            row
        })
        .collect();
    server
        .mock_async(|when, then| {
            when.path("/user/api/orders").query_param("status", "all").query_param("offset", offset.to_string());
            then.status(200).json_body(json!({"success": true, "orders": list, "count": list.len(), "prev": null, "next": next}));
        })
        .await;
}

/// An account with one page of sub-users and one of orders.
async fn mock_account(
    server: &MockServer,
    owner_mb: f64,
    users: Vec<serde_json::Value>,
    orders: &[u64],
) {
    mock_owner(server, owner_mb).await;
    let count = users.len();
    mock_sub_users(server, 0, count, users).await;
    mock_orders(server, 0, orders, None).await;
}

async fn mock_order<'a>(server: &'a MockServer, id: u64, status: &str) -> httpmock::Mock<'a> {
    let body = fixture_with(
        "order__fields.json",
        &[
            ("/order/order_id", json!(id)),
            ("/order/status", json!(status)),
        ],
    );
    server
        .mock_async(|when, then| {
            when.path(format!("/user/api/orders/{id}"));
            then.status(200).json_body(body);
        })
        .await
}

/// A sync snapshots owner and sub-user counters, balances, wallet and orders.
#[tokio::test]
async fn sync_snapshots_counters_balances_and_orders() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_account(&server, 10.0, vec![user("u1", 3.0)], &[7]).await;
    mock_order(&server, 7, "active").await;
    let config = ps_config(&server, &dir.db());
    let report = sync_at(&config, at("2026-03-01T00:05:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        count(
            &dir.db(),
            "SELECT count(*) FROM usage_daily WHERE derived = 1 AND subject IN ('standart/owner', 'standart/u1')"
        ),
        2
    );
    let wallet: (f64, String) = open(&dir.db())
        .query_row(
            "SELECT value, unit FROM balance_snapshots WHERE metric = 'wallet_balance'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(wallet, (123.45, "USD".to_owned()));
    let remain: f64 = open(&dir.db())
        .query_row(
            "SELECT value FROM balance_snapshots WHERE metric = 'standart/u1:data_remain_mb'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(remain, 997.0);
    let status: String = open(&dir.db())
        .query_row(
            "SELECT status FROM proxyshard_order_history WHERE order_id = '7'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "active");
}

/// Days come from successive snapshots, a recreated sub-user's drop counts from zero, and today stays open.
#[tokio::test]
async fn derived_days_over_snapshots_and_a_drop() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let config = ps_config(&server, &dir.db());
    for (when, owner, sub) in [
        ("2026-03-01T00:05:00Z", 100.0, 50.0),
        ("2026-03-01T12:00:00Z", 160.0, 80.0),
        ("2026-03-01T18:00:00Z", 170.0, 5.0), // sub-user recreated: its counter restarts
        ("2026-03-02T00:05:00Z", 200.0, 20.0),
        ("2026-03-02T09:00:00Z", 230.0, 25.0),
    ] {
        server.reset_async().await;
        mock_account(&server, owner, vec![user("u1", sub)], &[]).await;
        sync_at(&config, at(when)).await;
    }
    let owner: Vec<_> = day_rows(&dir.db(), "standart/owner")
        .into_iter()
        .map(|r| (r.0, r.3, r.4))
        .collect();
    assert_eq!(
        owner,
        [
            ("2026-03-01".into(), 100.0, true),
            ("2026-03-02".into(), 30.0, false)
        ]
    );
    let sub: Vec<_> = day_rows(&dir.db(), "standart/u1")
        .into_iter()
        .map(|r| (r.0, r.3, r.4))
        .collect();
    assert_eq!(
        sub[0],
        ("2026-03-01".into(), 30.0 + 5.0 + 15.0, true),
        "50→80, drop to 5, 5→20"
    );
    assert_eq!(
        sub[1],
        ("2026-03-02".into(), 5.0, false),
        "no closing snapshot yet: provisional"
    );
}

/// A status change is a new day row; an unchanged order on the same day is not rewritten.
#[tokio::test]
async fn order_status_history() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let config = ps_config(&server, &dir.db());
    let first_seen =
        "SELECT count(*) FROM proxyshard_order_history WHERE taken_at = '2026-03-01T01:00:00Z'";
    for (when, status) in [
        ("2026-03-01T01:00:00Z", "active"),
        ("2026-03-01T02:00:00Z", "active"),
        ("2026-03-02T01:00:00Z", "on-hold"),
    ] {
        server.reset_async().await;
        mock_account(&server, 1.0, vec![], &[7]).await;
        mock_order(&server, 7, status).await;
        sync_at(&config, at(when)).await;
        if when == "2026-03-01T02:00:00Z" {
            assert_eq!(
                count(&dir.db(), first_seen),
                1,
                "unchanged order not rewritten"
            );
        }
    }
    let history: Vec<(String, String)> = open(&dir.db())
        .prepare(
            "SELECT day, status FROM proxyshard_order_history WHERE order_id = '7' ORDER BY day",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        history,
        [
            ("2026-03-01".into(), "active".into()),
            ("2026-03-02".into(), "on-hold".into())
        ]
    );
}

/// 401 is rejected credentials with the provider's message; 400 is an error carrying its message.
#[tokio::test]
async fn error_bodies_carry_their_message() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    let me = server
        .mock_async(|when, then| {
            when.path("/user/api/me");
            then.status(401)
                .json_body(fixture("error__unauthenticated.json"));
        })
        .await;
    let report = sync_at(&ps_config(&server, &dir.db()), at("2026-03-01T00:05:00Z")).await;
    me.assert_calls_async(1).await;
    assert!(
        report.errors[0].contains("credentials rejected: Unauthenticated."),
        "{:?}",
        report.errors
    );

    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_account(&server, 1.0, vec![], &[9]).await;
    server
        .mock_async(|when, then| {
            when.path("/user/api/orders/9");
            then.status(400)
                .json_body(json!({"success": false, "message": "Invalid order id"}));
        })
        .await;
    let report = sync_at(&ps_config(&server, &dir.db()), at("2026-03-01T00:05:00Z")).await;
    assert_eq!(report.status, RunStatus::Partial);
    assert!(
        report.errors[0]
            .contains("subject order/9: user/api/orders/{id}: provider error: Invalid order id"),
        "{:?}",
        report.errors
    );
}

/// No proxy_password reaches the archive, raw bodies included.
#[tokio::test]
async fn proxy_passwords_never_reach_the_archive() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_account(&server, 10.0, vec![user("u1", 3.0)], &[7]).await;
    mock_order(&server, 7, "active").await;
    let mut config = ps_config(&server, &dir.db());
    config.archive.keep_raw = KeepRaw::All;
    sync_at(&config, at("2026-03-01T00:05:00Z")).await;
    assert!(
        count(&dir.db(), "SELECT count(*) FROM raw_response") >= 4,
        "bodies were kept"
    );
    for file in ["archive.db", "archive.db-wal"] {
        let bytes = std::fs::read(dir.path(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [
            "pw-secret-1",
            "pw-owner-secret",
            "pw-order-secret",
            "proxy_password",
        ] {
            assert!(!text.contains(secret), "{secret} found in {file}");
        }
    }
}

/// [[proxyshard]] config: defaults and errors naming its keys.
#[test]
fn proxyshard_config_section() {
    let parse = |t: &str| config::parse(t, Path::new("d.toml")).map(|p| p.config);
    let c = parse("[[proxyshard]]\nname = \"m\"\ntoken = \"t\"\n").unwrap();
    let usage_archiver::config::ProviderSettings::ProxyShard(s) = &c.accounts[0].settings else {
        panic!()
    };
    assert_eq!(
        (s.proxy_types.clone(), s.currency.as_str()),
        (vec!["standart".to_owned(), "premium".to_owned()], "USD")
    );
    assert_eq!(
        (
            c.accounts[0].retention_days,
            c.accounts[0].schedule.as_str()
        ),
        (1, "0 0 * * * *")
    );
    let err =
        parse("[[proxyshard]]\nname = \"m\"\ntoken = \"t\"\nproxy_types = [\"Standard Plus\"]\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("proxyshard.proxy_types") && err.contains(":4:"),
        "{err}"
    );
    let err = parse("[[proxyshard]]\nname = \"m\"\ntoken = \"t\"\ncurrency = \"dollars\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("proxyshard.currency"), "{err}");
}
