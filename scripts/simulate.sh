#!/usr/bin/env bash
# Run the simulated year (tests/integration/simulation) for many seeds in parallel.
#
#   scripts/simulate.sh 200            seeds 1..200
#   scripts/simulate.sh 500 701        seeds 500..701
#   JOBS=4 DAYS=90 scripts/simulate.sh 50
#
# One line per seed (its figures, or where it broke), then a summary. A failing seed
# replays exactly: SIMULATION_SEED=N cargo test simulation::a_year -- --nocapture
# Its archive as it was is kept in target/simulation-seed-N.db; logs in target/simulate/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: scripts/simulate.sh COUNT | FIRST LAST" >&2
    exit 2
fi
if [ $# -eq 1 ]; then first=1 last=$1; else first=$1 last=$2; fi
jobs=${JOBS:-$(nproc)}
days=${DAYS:-365}

# The test binary, built once (the test profile: what `cargo test` runs).
binary=$(cargo test --locked --test integration --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration":
        print(m["executable"])')
[ -x "$binary" ] || { echo "could not build the integration test binary" >&2; exit 1; }

logs=target/simulate
mkdir -p "$logs"
# A copy, so a rebuild while the seeds run does not change what the later ones run.
cp "$binary" "$logs/integration.new" && mv -f "$logs/integration.new" "$logs/integration"
binary=$PWD/$logs/integration
export binary days logs
one() {
    local seed=$1 log="$logs/seed-$1.log"
    if SIMULATION_SEED=$seed SIMULATION_DAYS=$days "$binary" --exact \
        simulation::a_year_of_every_provider_keeps_every_promise --nocapture >"$log" 2>&1; then
        grep -m1 '^SIMULATION seed' "$log" || echo "SIMULATION seed $seed ok (no figures printed)"
    else
        echo "SIMULATION seed $seed FAILED: $(grep -m1 -o 'seed [0-9]*, tick .*' "$log" | cut -c1-300 || echo "see $log")"
    fi
}
export -f one

began=$(date +%s)
seq "$first" "$last" | xargs -P "$jobs" -I{} bash -c 'one {}' | tee "$logs/summary.txt"
elapsed=$(( $(date +%s) - began ))

python3 - "$logs/summary.txt" "$elapsed" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
ok = [l for l in lines if " ok" in l]
failed = [l for l in lines if "FAILED" in l]
keys = ["days", "ticks", "runs", "requests", "faults", "outage hours", "restarts",
        "crashes", "clock steps", "checks"]
total = dict.fromkeys(keys, 0)
for l in ok:
    for k in keys:
        m = re.search(r"(\d+) " + k + r"\b", l)
        if m:
            total[k] += int(m.group(1))
figures = ", ".join(f"{total[k]:,} {k}" for k in keys)
print(f"SUMMARY: {len(ok)} seeds ok, {len(failed)} failed in {sys.argv[2]} s; {figures}")
for l in failed:
    print("  " + l)
sys.exit(1 if failed else 0)
EOF
