//! The one integration-test binary: real SQLite files, real HTTP over loopback.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared helpers: temp archives, httpmock configs, fixtures.
mod common;
// daemon.toml parsing and validation, secrets, permission warning.
mod config;
// Schema, migrations, WAL, idempotent upserts, finality, revisions.
mod store;
// The HydraProxy source against httpmock: every documented response and quirk.
mod hydraproxy;
// The InfiniteProxies source against httpmock.
mod infiniteproxies;
// The ProxyShard source against httpmock.
mod clock;
mod crash;
mod faults;
mod fuzz;
mod hostens;
mod output;
mod proxyshard;
mod readers;
mod secrets;
// Retries, backoff, Retry-After, 401/403, size cap, per-account concurrency.
mod http;
// Days derived from counter snapshots.
mod counters;
// Coverage and gaps, migrations.
mod coverage;
// The binary: check-config, backfill, status, report, demo, secrets in output.
mod bad_input;
mod cli;
// The daemon: catch-up, no overlapping runs, READY/STOPPING, SIGTERM.
mod daemon;
