#!/usr/bin/env bash
# The cluster sample: three cluster_bank_node members (config/cluster/node{1,2,3}.ini) on
# a throwaway PostgreSQL server, each driving deposits through the cluster. Once a third
# of them are acknowledged, node2 is killed (SIGKILL); the others go on, node2 comes back,
# and cluster_bank_verify checks that no deposit was lost or stored twice and that every
# member's read model equals the store. Run it from the repository root after a build:
#
#   samples/cluster/run.sh [BUILD_DIR]      (default: build)
#
# Environment: COMMANDS (deposits per member, default 3000), KEEP=1 keeps the work folder.
# Exit code 0 when the verification passes.
set -uo pipefail

build=${1:-build}
src=$(cd "$(dirname "$0")/../.." && pwd)
node_bin=$build/samples/cluster/cluster_bank_node
verify_bin=$build/samples/cluster/cluster_bank_verify
commands=${COMMANDS:-3000}
for f in "$node_bin" "$verify_bin"; do
  [ -x "$f" ] || { echo "run.sh: $f not found: build the cluster_bank_node and cluster_bank_verify targets" >&2; exit 2; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "run.sh: no PostgreSQL server: install Debian's postgresql package" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-cluster-XXXXXX")
chmod 755 "$work" # the server runs as the postgres user
t0=$(date +%s%N)
declare -A pid=()
pg_started=0

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
say() { printf '%7.2fs  %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$*"; }

cleanup() {
  for n in "${!pid[@]}"; do kill -KILL "${pid[$n]}" 2>/dev/null; done
  wait 2>/dev/null
  [ $pg_started = 1 ] && as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "run.sh: $*" >&2
  for n in node1 node2 node3; do
    [ -f "$work/$n.log" ] && { echo "--- last lines of $n.log" >&2; tail -n 15 "$work/$n.log" >&2; }
  done
  exit 1
}

# --- a throwaway PostgreSQL server on a free loopback port
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work/pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 ||
  { cat "$work/initdb.log" >&2; fail "initdb failed"; }
cp "$work/pg/data/postgresql.conf" "$work/postgresql.conf.orig"
for attempt in 1 2 3 4 5; do
  pgport=$(( 20000 + RANDOM % 30000 ))
  port_busy $pgport && continue
  cp "$work/postgresql.conf.orig" "$work/pg/data/postgresql.conf"
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nmax_connections = 200\n" \
    "$pgport" "$work/pg" >>"$work/pg/data/postgresql.conf"
  if as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 start >/dev/null 2>&1; then
    pg_started=1
    break
  fi
done
[ $pg_started = 1 ] || fail "PostgreSQL did not start: $(tail -n 5 "$work/pg/server.log" 2>/dev/null)"
url="postgresql://postgres@127.0.0.1:$pgport/postgres"
say "PostgreSQL $(basename "$(dirname "$pgbin")") on 127.0.0.1:$pgport"

# --- certificates of a fresh CA
"$src/config/cluster/make-certs.sh" "$work/certs" node1 node2 node3 || fail "make-certs.sh failed"

# --- the members
# The example configs use ports 7101-7103; a busy one is replaced by any free port.
status() { cat "$work/$1.json" 2>/dev/null; }
field() { status "$1" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'; }
shards_of() { status "$1" | grep -o '"owned_shards":\[[^]]*\]' | grep -o '[0-9][0-9]*' | wc -l; }
start_node() { # NAME COMMANDS
  local n=$1 i=${1#node} port_arg=()
  port_busy $((7100 + i)) && port_arg=(--cluster.port=0)
  rm -f "$work/$n.json"
  local ack=()
  # The load starts once all three members share the shards.
  [ "$2" -gt 0 ] && ack=(--drive.ack-file="$work/$n.acks" --drive.wait-members=3)
  "$node_bin" --config-file="$src/config/cluster/$n.ini" "${port_arg[@]}" \
    --cluster.postgres-url="$url" \
    --openssl.certificate="$work/certs/$n.pem" --openssl.key="$work/certs/$n.key" \
    --openssl.cafile="$work/certs/ca.pem" \
    --status.file="$work/$n.json" --drive.commands="$2" "${ack[@]}" >>"$work/$n.log" 2>&1 &
  pid[$n]=$!
}
wait_for() { # SECONDS DESCRIPTION COMMAND...: polls every 100 ms
  local limit=$(( $(date +%s) + $1 )) seconds=$1 what=$2
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt $limit ] || fail "timed out after ${seconds}s waiting until $what"
    for n in "${!pid[@]}"; do
      kill -0 "${pid[$n]}" 2>/dev/null || fail "$n exited: $(tail -n 3 "$work/$n.log")"
    done
    sleep 0.1
  done
}
joined() { [ "$(field "$1" joined)" = true ] && [ "$(shards_of "$1")" -gt 0 ]; }
acked_total() { echo $(( $(field node1 acked || echo 0) + $(field node2 acked || echo 0) + $(field node3 acked || echo 0) )); }
shards_line() { echo "node1 $(shards_of node1), node2 $(shards_of node2), node3 $(shards_of node3)"; }

total=$((3 * commands))
for n in node1 node2 node3; do start_node $n "$commands"; done
say "started node1 node2 node3, each driving $commands deposits over 200 accounts"
for n in node1 node2 node3; do wait_for 60 "$n has joined and owns shards" joined $n; done
say "all joined; shards owned: $(shards_line)"
third() { [ "$(acked_total)" -ge $((total / 3)) ]; }
wait_for 300 "a third of the deposits are acknowledged" third
acked_before=$(acked_total)
before=$(shards_line)
kill -KILL "${pid[node2]}"
wait "${pid[node2]}" 2>/dev/null
unset 'pid[node2]'
say "SIGKILL node2 at $acked_before/$total acknowledged (node2 had acknowledged $(field node2 acked))"
cp "$work/node2.json" "$work/node2-killed.json"

shards=$(sed -n 's/^shards *= *\([0-9]*\).*/\1/p' "$src/config/cluster/node1.ini")
live() { status "$1" | grep -o '"members_live":\[[^]]*\]'; }
takeover() {
  [ "$(field node1 all_shards_owned)" = true ] && ! live node1 | grep -q '"node2"' &&
    [ $(( $(shards_of node1) + $(shards_of node3) )) -eq "$shards" ]
}
wait_for 60 "node1 and node3 own every shard" takeover
say "node1 and node3 own every shard: node1 $(shards_of node1), node3 $(shards_of node3); $(acked_total) acknowledged"

start_node node2 0
wait_for 60 "node2 has rejoined and owns shards again" joined node2
say "node2 restarted (no load) and owns shards again: $(shards_line)"

drivers_done() { [ "$(field node1 done)" = true ] && [ "$(field node3 done)" = true ]; }
wait_for 300 "node1 and node3 have every deposit acknowledged" drivers_done
say "drivers done: node1 $(field node1 acked) acked $(field node1 failed) failed, node3 $(field node3 acked) acked $(field node3 failed) failed"

store_head() { as_pg "$pgbin/psql" -h "$work/pg" -p "$pgport" -U postgres -Atc "SELECT position FROM cairn.head" postgres 2>/dev/null; }
at_head() {
  local h
  h=$(store_head) || return 1
  for n in node1 node2 node3; do [ "$(field $n position)" = "$h" ] || return 1; done
}
wait_for 120 "every read model has reached the store's head" at_head
say "every read model is at the store's head, position $(store_head)"

echo
echo "== acknowledged: node1 $(field node1 acked), node2 $(field node2-killed acked) (before the kill), node3 $(field node3 acked)"
echo "== max latency: node1 $(field node1 max_latency_ms) ms, node3 $(field node3 max_latency_ms) ms (p99 $(field node1 p99_ms) / $(field node3 p99_ms) ms)"
echo "== shards before the kill: $before; at the end: $(shards_line)"
echo "== forwarded/received/rerouted: node1 $(field node1 forwarded)/$(field node1 received)/$(field node1 rerouted), node3 $(field node3 forwarded)/$(field node3 received)/$(field node3 rerouted)"
echo
acks=()
for n in node1 node2 node3; do [ -f "$work/$n.acks" ] && acks+=(--acks "$work/$n.acks"); done
"$verify_bin" --postgres-url "$url" "${acks[@]}" \
  --status "$work/node1.json" --status "$work/node2.json" --status "$work/node3.json"
verdict=$?
echo
for n in node1 node2 node3; do kill -TERM "${pid[$n]}"; done
for n in node1 node2 node3; do
  wait "${pid[$n]}"
  rc=$?
  unset "pid[$n]"
  [ $rc = 0 ] || { echo "run.sh: $n exited with $rc after SIGTERM" >&2; verdict=1; }
done
say "members left the cluster"
[ $verdict = 0 ] || fail "verification failed"
echo "cluster sample: PASSED"
