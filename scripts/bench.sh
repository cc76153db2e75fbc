#!/usr/bin/env bash
# Runs every benchmark of SPEC §6 (issues 8 and 16) in release mode and prints their figures;
# BENCHMARKS.md records them with the machine they ran on.
#
#   scripts/bench.sh            # all of them (about 10 minutes on 2 cores)
#   scripts/bench.sh store      # only some: store backfill idle query growth plan
#
# Knobs: BENCH_RUNS (runs per store, backfill and query figure, default 3), BENCH_ROWS
# (rows per store phase, default 1,000,000), BENCH_IDLE_SECS
# (default 60), BENCH_DAYS (daily syncs in the growth bench, default 30), BENCH_PLAN_DAYS
# (simulated days of hourly `run --once` in the plan bench, default 3), BENCH_WRAP
# (a profiler command for the backfill bench, e.g. "perf record -g -o perf.data").
set -euo pipefail
cd "$(dirname "$0")/.."

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(store backfill idle query growth plan)
fi

echo "== machine"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory: $(free -h | awk '/^Mem:/ {print $2}'), $(rustc --version)"
for bench in "${benches[@]}"; do
    echo
    echo "== cargo bench --bench $bench"
    cargo bench --locked --quiet --bench "$bench"
done
