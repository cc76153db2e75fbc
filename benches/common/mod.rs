//! What the benchmarks share: their runtime, their knobs, and `/proc` readings.

#![allow(dead_code)] // Each bench uses its own part.

/// Runs `bench` on a 2-worker runtime (the machine's core count, as the daemon runs).
#[allow(clippy::expect_used)] // A bench without a runtime has nothing to measure.
pub fn block_on(bench: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench);
}

/// The environment variable `name` parsed, or `default` when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `kB` line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), while the process lives.
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
