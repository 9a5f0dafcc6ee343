#!/usr/bin/env bash
# bench/http_bench.sh: the bank sample over HTTP under wrk (docs/http.md).
# Starts bank_server on a fresh file store (sync always, 10,000 accounts) on loopback,
# runs wrk with HTTP/1.1 keep-alive deposits (bench/http_deposit.lua), prints wrk's
# figures, the server's CPU per command (in all and per thread) and wrk's own CPU, and
# stops the server. Every 200 answer is a durable command (fdatasync'd).
#
#   [SERVER_ARGS="--cairn.http.threads=2"] bench/http_bench.sh [BUILD_DIR] [CONNECTIONS] [SECONDS] [WRK_THREADS]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build}
conns=${2:-256}
secs=${3:-20}
threads=${4:-2}
command -v wrk >/dev/null || { echo "wrk not found (tools/setup installs it)" >&2; exit 1; }
data=$(mktemp -d)
out="$data/server.out"
"$build/samples/bank/bank_server" --data="$data/store" --sync=always --accounts=10000 \
  --cairn.http.port=0 --cairn.http.max-connections=4096 --cairn.log-level=warn ${SERVER_ARGS:-} \
  >"$out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do
  grep -q "serving" "$out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's|.*serving http://[^:]*:\([0-9]*\)/.*|\1|p' "$out")
[[ -n "$port" ]] || { cat "$out" >&2; exit 1; }
echo "bank_server on port $port (file store, sync always, 10,000 accounts); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "+ wrk -t$threads -c$conns -d${secs}s --latency -s bench/http_deposit.lua http://127.0.0.1:$port"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# Per thread: id, name, CPU ticks so far (utime + stime: fields 14-15 of stat, counted
# after the ")" that ends the name).
thread_ticks() {
  for t in /proc/"$server"/task/*; do
    name=$(tr -d ' ' <"$t/comm" 2>/dev/null) || continue
    ticks=$(awk '{ n = split($0, f, ")"); split(f[n], g, " "); print g[12] + g[13] }' \
      "$t/stat" 2>/dev/null) || continue
    echo "${t##*/} $name $ticks"
  done | sort
}
before=$(cpu_ticks)
thread_ticks >"$data/threads.before"
TIMEFORMAT="wrk CPU: %U s user, %S s system"
{ time wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$here/http_deposit.lua" \
  "http://127.0.0.1:$port" >"$data/wrk.out"; } 2>"$data/wrk.time"
after=$(cpu_ticks)
thread_ticks >"$data/threads.after"
cat "$data/wrk.out"
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$data/wrk.out")
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" \
  'BEGIN { printf "bank_server CPU: %.1f s, %.1f us per command\n", t / hz, n ? t / hz * 1e6 / n : 0 }'
# Where the server's CPU goes, per thread (the HTTP I/O thread is named after the
# program; caf.worker are the node's scheduler threads).
join "$data/threads.before" "$data/threads.after" | awk -v hz="$hz" -v n="$requests" \
  '{ us = ($5 - $3) / hz * 1e6 / (n ? n : 1); if (us >= 0.5) printf "  thread %s %s: %.1f us per command\n", $1, $2, us }'
awk -v n="$requests" '{ u = $3; s = $6; printf "%s (%.1f us per request)\n", $0, n ? (u + s) * 1e6 / n : 0 }' \
  "$data/wrk.time"
# The server's view: every deposit applied by the read model.
curl -s "http://127.0.0.1:$port/queries/balances" 2>/dev/null || true
echo
