//! The one integration-test binary: real SQLite files, real HTTP over loopback.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared helpers: temp archives, httpmock configs, fixtures.
mod common;

// Bad bodies through the whole sync: each fails only its subject and names what was wrong.
mod bad_input;
// Online backups: consistent, restorable, pruned, and failing cleanly.
mod backup;
// The binary: check-config, backfill, status, report, demo, exit codes, config discovery.
mod cli;
// Clock edges: a run across midnight, future dates, leap days, a non-UTC local zone.
mod clock;
// daemon.toml parsing and validation, secrets, permission warning.
mod config;
// Days derived from counter snapshots.
mod counters;
// Coverage and gaps: recoverable and lost days.
mod coverage;
// SIGKILL mid-backfill leaves a sound archive that a re-run completes.
mod crash;
// The daemon: catch-up, no overlapping runs, READY/STOPPING, SIGTERM.
mod daemon;
// The archive file: ours, private, free of credentials, bounded, readable by readers.
mod archive_file;
// Finality, month re-syncs, coverage extension and run totals (promises issue 19 guards).
mod finality;
// Field hardening: credentials, redirects, clocks, files, failures that stay visible.
mod hardening;
// Objects that end are recorded ended: one snapshot of the change, none after.
mod endings;
// Fault injection through the simulator: retried or recorded, never archived.
mod faults;
// Every provider parser fed random and mutated documented bodies.
mod fuzz;
// The Hostens source against httpmock: both auth modes, the rotating token, history, counters.
mod hostens;
// Retries, backoff, Retry-After, 401/403, size cap, per-account concurrency.
mod http;
// Hostens' domains and certificates from the document's examples.
mod hostens_billing;
// The HydraProxy source against httpmock: every documented response and quirk.
mod hydraproxy;
// The InfiniteProxies source against httpmock: both payload shapes, auth forms, 404 as gone.
mod infiniteproxies;
// What a listing may name: no control characters, at most max_subjects.
mod listings;
// The README's money queries add up on the documents' own examples.
mod money;
// Golden outputs of status and report, CSV, metrics.
mod output;
// Counter snapshots placed by time, not arrival; inflated archives repaired.
mod order;
// Backups that keep what they made; credential files and directories that follow no links.
mod private_files;
// The ProxyShard source against httpmock: counters, paging, orders, no proxy passwords.
mod proxyshard;
// The fetch plan: cost follows activity, every closed day still fetched in time.
mod plan;
// Secrets under any spelling stripped from kept bodies, credentials in values masked.
mod redaction;
// Readers beside the writer: nobody sees "database is locked".
mod readers;
// Secrets appear in no output, log, error or shared table.
mod secrets;
// A year in a minute: seeded histories of every provider through virtual time.
mod simulation;
// Implausible final days marked, revisions of final figures counted, in status and metrics.
mod suspect;
// Rotating refresh tokens across processes and across shutdown.
mod tokens;
// Schema, migrations, WAL, idempotent upserts, finality, revisions.
mod store;
