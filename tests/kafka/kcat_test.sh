#!/usr/bin/env bash
# End to end with a Kafka tool that is not Cairn's: kafka_agent publishes 100 account
# events (5 streams, JSON) to a mock cluster, and kcat (Debian kcat) reads the topic.
# Checks: 100 messages, each keyed by its stream, with the cairn.* headers, a JSON
# value, and each stream's versions 1..20 in order.
set -euo pipefail
agent=$1
command -v kcat >/dev/null || { echo "kcat is not installed (tools/setup installs it)"; exit 1; }
dir=$(mktemp -d)
trap 'exec 3>&-; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkfifo "$dir/in"
"$agent" serve 100 <"$dir/in" >"$dir/out" 2>"$dir/err" &
exec 3>"$dir/in" # the agent keeps the cluster up until this closes
for _ in $(seq 300); do
  grep -q '^bootstrap ' "$dir/out" && break
  sleep 0.1
done
bootstrap=$(awk '/^bootstrap /{print $2}' "$dir/out")
[[ -n $bootstrap ]] || { echo "the agent did not start:"; cat "$dir/err"; exit 1; }
kcat -b "$bootstrap" -C -t account -o beginning -e -q -X log_level=2 \
  -f '%k\t%p\t%o\t%h\t%s\n' >"$dir/messages"
count=$(wc -l <"$dir/messages")
echo "kcat read $count messages from $bootstrap"
head -3 "$dir/messages"
[[ $count -eq 100 ]] || { echo "expected 100 messages"; exit 1; }
# Per stream, in the order kcat read them (offset order within the stream's partition):
# the key equals the cairn.stream header and versions run 1, 2, 3, ... with no gap.
awk -F'\t' '
  {
    key = $1; headers = $4; value = $5
    if (match(headers, /cairn\.stream=[^,]*/) == 0) { print "no cairn.stream header: " $0; bad = 1; next }
    stream = substr(headers, RSTART + 13, RLENGTH - 13)
    if (stream != key) { print "key " key " but stream " stream; bad = 1 }
    if (match(headers, /cairn\.version=[0-9]+/) == 0) { print "no version: " $0; bad = 1; next }
    version = substr(headers, RSTART + 14, RLENGTH - 14) + 0
    if (version != last[key] + 1) { print key ": version " version " after " last[key]; bad = 1 }
    last[key] = version
    if (headers !~ /cairn\.position=[0-9]+/ || headers !~ /cairn\.type=deposited/ ||
        headers !~ /content-type=application\/json/) { print "headers: " headers; bad = 1 }
    if (value !~ /^\{"amount":[0-9]+\}$/) { print "value: " value; bad = 1 }
  }
  END {
    n = 0
    for (k in last) { n++; if (last[k] != 20) { print k " ends at version " last[k]; bad = 1 } }
    if (n != 5) { print n " streams, expected 5"; bad = 1 }
    exit bad
  }' "$dir/messages"
echo "kcat check passed"
