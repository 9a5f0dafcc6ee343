#!/usr/bin/env bash
# The benchmark suite's smoke run: bench/run --quick against this build, so the suite
# cannot rot. Every part must run, the workload must verify, and latest.json must hold
# the figures the table shows. It checks that figures exist, never how fast they are.
# Usage: bench_smoke_test.sh SOURCE_DIR BUILD_DIR OUT_DIR
set -euo pipefail
root=$1 build=$2 out=$3
rm -rf "$out"
"$root/bench/run" --quick --no-build --any-build --build-dir "$build" --out "$out" --data "$out/data"

json=$out/latest.json
check() {
  jq -e "$1" "$json" >/dev/null || {
    echo "bench smoke: latest.json fails the check: $1" >&2
    exit 1
  }
}
check '.failed == [] and .skipped == []'
check '[.summary.end_to_end[].clients] == [1, 16] and .summary.verified'
check 'all(.summary.end_to_end[]; .verified and .commands > 0 and .commands_per_s > 0
           and .p50_us > 0 and .p99_us >= .p50_us and .p999_us >= .p99_us
           and .events_per_write >= 1 and .disk_limit_events_per_s > 0
           and .caf_oneway_round_trips_per_s > 0 and .caf_request_round_trips_per_s > 0)'
check '[.results[].part] | contains(["caf", "bank", "journal", "memory", "scale", "projection"])'
check '.results[] | select(.part == "journal") | .append_events_per_s > 0 and .recovery_ms > 0
         and .recovery_snapshot_ms > 0 and .replay_events_per_s > 0'
check '.results[] | select(.part == "memory") | .ok and .aggregates == 20000
         and .bytes_per_aggregate > 0 and .bytes_per_caf_actor > 0'
check '.results[] | select(.part == "scale") | .ok and .small.stored_events >= 20000
         and .large.stored_events >= 100000 and .small.events_per_s > 0 and .large.events_per_s > 0'
check '.results[] | select(.part == "projection") | .catch_up_events_per_s > 0 and .live_lag_p99_us >= 0'
check '.summary.peak_rss_bytes > 0 and .machine.cores > 0'
grep -q 'verification: PASSED' "$out/latest.txt"
if command -v gnuplot >/dev/null; then
  [[ -s $out/latest.png ]] || { echo "bench smoke: no plot" >&2; exit 1; }
fi
[[ ! -e $out/data ]] || { echo "bench smoke: the scratch stores were left behind" >&2; exit 1; }
echo "bench smoke: PASSED"
