//! ProxyShard paging: sub-users and orders collected whole whatever count and next say, repeated and capped pages.

use super::*;

/// Sub-users are read over every page; a server that repeats a page does not loop forever.
#[tokio::test]
async fn sub_user_paging_and_repeated_pages() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_owner(&server, 1.0).await;
    mock_orders(&server, 0, &[], None).await;
    mock_sub_users(
        &server,
        0,
        103,
        (0..100).map(|i| user(&format!("a{i}"), 1.0)).collect(),
    )
    .await;
    mock_sub_users(
        &server,
        100,
        103,
        vec![user("b1", 1.0), user("b2", 1.0), user("b3", 1.0)],
    )
    .await;
    let config = ps_config(&server, &dir.db());
    sync_at(&config, at("2026-03-01T00:05:00Z")).await;
    let subs = "SELECT count(DISTINCT subject) FROM usage_daily WHERE subject LIKE 'standart/%' AND subject <> 'standart/owner'";
    assert_eq!(count(&dir.db(), subs), 103);

    // A server that ignores offset answers the first page again: stop there.
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_owner(&server, 1.0).await;
    mock_orders(&server, 0, &[], None).await;
    let repeated = server
        .mock_async(|when, then| {
            when.path("/user/api/proxies/sub-users");
            then.status(200).json_body(json!({"success": true, "count": 1000, "data": (0..100).map(|i| user(&format!("r{i}"), 1.0)).collect::<Vec<_>>()}));
        })
        .await;
    let config = ps_config(&server, &dir.db());
    let report = sync_at(&config, at("2026-03-01T00:05:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    repeated.assert_calls_async(2).await;
    assert_eq!(count(&dir.db(), subs), 100);
}

/// Orders are read over pages following `next`.
#[tokio::test]
async fn order_paging_follows_next() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_owner(&server, 1.0).await;
    mock_sub_users(&server, 0, 0, vec![]).await;
    let first: Vec<u64> = (1..=100).collect();
    let second: Vec<u64> = (101..=130).collect();
    mock_orders(
        &server,
        0,
        &first,
        Some("/user/api/orders?status=all&offset=100&limit=100"),
    )
    .await;
    mock_orders(&server, 100, &second, None).await;
    server
        .mock_async(|when, then| {
            when.path_matches(r"^/user/api/orders/\d+$");
            then.status(200)
                .json_body(json!({"success": true, "order": {"order_id": 1, "status": "active"}}));
        })
        .await;
    let config = ps_config(&server, &dir.db());
    sync_at(&config, at("2026-03-01T00:05:00Z")).await;
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM proxyshard_order_history"),
        130
    );
}

/// An order listing that answers the same page for every offset is read once, not forever.
#[tokio::test]
async fn repeated_order_page_stops() {
    let server = MockServer::start_async().await;
    let dir = TestDir::new();
    mock_owner(&server, 1.0).await;
    mock_sub_users(&server, 0, 0, vec![]).await;
    let ids: Vec<_> = (1..=100).map(|id| json!({"order_id": id})).collect();
    let listing = server
        .mock_async(|when, then| {
            when.path("/user/api/orders");
            then.status(200).json_body(json!({"success": true, "orders": ids, "count": 100, "prev": null, "next": "/user/api/orders?offset=100"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path_matches(r"^/user/api/orders/\d+$");
            then.status(200)
                .json_body(json!({"success": true, "order": {"order_id": 1, "status": "active"}}));
        })
        .await;
    let report = sync_at(&ps_config(&server, &dir.db()), at("2026-03-01T00:05:00Z")).await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    listing.assert_calls_async(2).await;
    assert_eq!(
        count(&dir.db(), "SELECT count(*) FROM proxyshard_order_history"),
        100
    );
}

/// Paging never stops early, whatever `count` means and whatever `limit` the server
/// honours: with `count` the page's size and no `next` (the user API document's reading),
/// and with pages capped at 40 rows while 100 are asked, every sub-user and every order
/// is archived.
// See: issue 23.2
#[tokio::test]
async fn paging_collects_every_row_whatever_count_means() {
    use usage_archiver::sim::{SimConfig, Simulator};
    for (terse_paging, page_cap) in [(true, 100), (false, 40), (true, 40)] {
        let mut sim_config = SimConfig::demo();
        sim_config.proxyshard.sub_users = 250;
        sim_config.proxyshard.orders = 230;
        sim_config.proxyshard.terse_paging = terse_paging;
        sim_config.proxyshard.page_cap = page_cap;
        let sim = Simulator::start(sim_config).await.unwrap();
        let dir = TestDir::new();
        let mut config = config::parse(&sim.daemon_toml(&dir.db()), Path::new("t.toml"))
            .unwrap()
            .config;
        config.accounts.retain(|a| a.kind.as_str() == "proxyshard");
        let store = usage_archiver::store::Store::open(&dir.db()).unwrap();
        assert_all_ok(&sync_all(&sim, &config, &store, at("2026-04-01T10:00:00Z")).await);
        let case = format!("terse {terse_paging}, cap {page_cap}");
        let sub_users = count(
            &dir.db(),
            "SELECT count(*) FROM subjects WHERE subject GLOB '*/u*'",
        );
        assert_eq!(sub_users, 2 * 250, "{case}");
        let orders = count(
            &dir.db(),
            "SELECT count(DISTINCT order_id) FROM proxyshard_order_history",
        );
        assert_eq!(orders, 230, "{case}");
    }
}
