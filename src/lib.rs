//! `usage-archiver` keeps a permanent SQLite archive of the usage history that
//! proxy and hosting providers only keep for a short while.
//!
//! The layers, from the outside in:
//! - [`cli`] and [`commands`]: the subcommands; the only code that prints.
//! - [`scheduler`] and [`service`]: the daemon's cron jobs, catch-up, signals and systemd notify.
//! - [`sync`]: one account once, the only bridge between providers and the store.
//! - [`providers`]: one module per provider; HTTP in, domain rows ([`model`]) out.
//! - [`store`]: the archive (schema, migrations, upserts, queries).
//! - [`http`], [`config`], [`error`], [`telemetry`], [`critical`], [`files`], [`redact`]: shared plumbing.
//! - [`sim`]: loopback simulators of the providers, for the demo, tests and benchmarks.
//!
//! The daemon lives in the library so that tests can run it in-process.

pub mod cli;
pub mod commands;
pub mod config;
pub mod critical;
pub mod error;
pub mod files;
pub mod http;
pub mod metrics;
pub mod model;
pub mod providers;
pub mod redact;
pub mod scheduler;
pub mod service;
pub mod sim;
pub mod store;
pub mod sync;
pub mod telemetry;
