#!/usr/bin/env bash
# End-to-end tests of the cairn command-line tool: runs the built binary against data
# folders it creates, one named case per ctest test.
#
# Usage: cli_test.sh CAIRN_BINARY STORE_HELPER_BINARY CASE
# Cases: help usage inspect node_folder roundtrip bad_import reimport idempotent
#        dry_run_lock large bad_input unfaithful verify tail lock state_unregistered; and state,
#        whose CAIRN_BINARY is the bank sample's bank_cli
set -uo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 CAIRN_BINARY STORE_HELPER_BINARY CASE" >&2
  exit 2
fi
# Absolute paths: each case runs inside its own temporary folder.
cairn=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
helper=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
case_name=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-cli-test.XXXXXX")
background=()
cleanup() {
  local pid
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run EXPECTED_RC ARGS...: runs cairn, keeping stdout in $out and stderr in $err.
run() {
  local expected=$1
  shift
  "$cairn" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  out=$(<"$work/out")
  err=$(<"$work/err")
  if [[ $rc -ne $expected ]]; then
    fail "cairn $* exited $rc, expected $expected"
    echo "--- stdout:" >&2
    head -c 2000 "$work/out" >&2
    echo "--- stderr:" >&2
    head -c 2000 "$work/err" >&2
  fi
}

contains() { # contains TEXT NEEDLE WHAT
  if [[ "$1" != *"$2"* ]]; then
    fail "$3: expected to contain '$2', got:"
    printf '%s\n' "$1" | head -20 >&2
  fi
}

equals() { # equals ACTUAL EXPECTED WHAT
  if [[ "$1" != "$2" ]]; then
    fail "$3: expected"
    printf '%s\n' "$2" >&2
    echo "--- got" >&2
    printf '%s\n' "$1" >&2
  fi
}

# wait_for FILE PATTERN COUNT: waits up to 10 s until FILE has COUNT lines matching PATTERN.
wait_for() {
  local i
  for ((i = 0; i < 100; i++)); do
    if [[ $(grep -c -- "$2" "$1" 2>/dev/null) -ge $3 ]]; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $3 lines matching '$2' in $1"
  return 1
}

b64() { printf "$1" | base64 | tr -d '\n'; }

# A JSON-lines file: N events over streams account-0..account-(S-1), with metadata and
# payloads of varied bytes (the bank sample's encodings: opened{owner}, deposited{amount}).
generate() { # generate N S
  local n=$1 streams=$2 i s
  local opened deposited marker
  opened=$(b64 '\x01\x03ann')
  deposited=$(b64 '\x01\xac\x02')
  marker=$(b64 'CAIRN-MARKER-0123456789')
  local -A seen=()
  for ((i = 0; i < n; i++)); do
    s=$(((i * 7) % streams))
    if [[ -z "${seen[$s]:-}" ]]; then
      seen[$s]=1
      printf '{"stream":"account-%d","type":"opened","schema_version":1,"metadata":{"correlation_id":"corr-%d","causation_id":"cmd-%d","entries":{"user":"ann","tenant":"t%d"}},"payload_base64":"%s"}\n' \
        "$s" "$i" "$i" "$s" "$opened"
    elif ((i == n / 2)); then
      printf '{"stream":"account-%d","type":"marked","schema_version":2,"payload_base64":"%s"}\n' "$s" "$marker"
    else
      printf '{"stream":"account-%d","type":"deposited","schema_version":1,"metadata":{"correlation_id":"corr-%d"},"payload_base64":"%s"}\n' \
        "$s" "$i" "$deposited"
    fi
  done
}

# Removes the fields the store assigns anew on import: its commit time, and the
# metadata entry where import keeps the original time.
strip_times() {
  sed -E -e 's/"timestamp_ns":-?[0-9]+,"time":"[^"]*",//' \
         -e 's/,?"imported_timestamp_ns":"-?[0-9]+"//'
}

case_help() {
  run 0 --help
  contains "$out" "Usage: cairn [--data DIR] <subcommand>" "cairn --help"
  run 0 -h
  contains "$out" "Subcommands:" "cairn -h"
  local sub
  for sub in streams read tail stats verify export import state; do
    run 0 "$sub" --help
    contains "$out" "Usage: cairn [--data DIR] $sub" "cairn $sub --help"
    equals "$err" "" "cairn $sub --help stderr"
    run 0 --data "$work/nowhere" "$sub" -h
    contains "$out" "Usage:" "cairn $sub -h"
  done
  [[ -e "$work/nowhere" ]] && fail "--help touched the data folder"
}

case_usage() {
  run 2
  contains "$err" "no subcommand given" "no subcommand"
  run 2 frobnicate
  contains "$err" 'unknown subcommand "frobnicate"' "unknown subcommand"
  contains "$err" "Try 'cairn --help'" "unknown subcommand hint"
  run 2 --bogus streams
  contains "$err" "unknown option --bogus" "unknown global option"
  run 2 --data
  contains "$err" "--data needs a value" "--data without value"
  run 2 streams --bogus
  contains "$err" "cairn streams: unknown option --bogus" "unknown subcommand option"
  contains "$err" "Try 'cairn streams --help'" "subcommand hint"
  run 2 read
  contains "$err" "give a STREAM name" "read without stream"
  run 2 read not_a_stream_name
  contains "$err" "has no '-'" "read with a bad stream name"
  run 2 read account-1 --from x
  contains "$err" "--from needs a non-negative integer" "read --from x"
  run 2 read account-1 --from
  contains "$err" "--from needs a value" "read --from without value"
  run 2 tail --from 3 -n 4
  contains "$err" "not both" "tail --from and -n"
  run 2 import
  contains "$err" "give FILE" "import without file"
  run 2 export extra
  contains "$err" 'unexpected argument "extra"' "export with an extra argument"
  # Operations on a missing folder fail (1), not usage (2), and create nothing.
  local sub
  for sub in streams stats verify export tail; do
    run 1 --data "$work/missing" "$sub"
    contains "$err" "data folder $work/missing" "cairn $sub on a missing folder"
  done
  [[ -e "$work/missing" ]] && fail "a reader created the missing data folder"
}

case_inspect() {
  generate 40 3 >in.jsonl
  run 0 --data d import in.jsonl
  contains "$out" "imported 40 events into 3 streams (positions 1 to 40)" "import summary"
  run 0 --data d streams
  equals "$out" $'account-0\t14\naccount-1\t13\naccount-2\t13' "streams"
  run 0 streams --data d --json
  contains "$out" '{"stream":"account-1","version":13}' "streams --json"
  run 0 --data d read account-1
  equals "$(grep -c '^position ' <<<"$out")" 13 "read event count"
  contains "$out" "account-1  version 1  " "read first event"
  contains "$out" "  type: opened (schema 1)" "read type"
  contains "$out" "  correlation_id: corr-1" "read correlation"
  contains "$out" "  causation_id: cmd-1" "read causation"
  contains "$out" "  meta user: ann" "read entries"
  contains "$out" "  payload (5 bytes): 01 03 61 6e 6e" "read payload hex"
  contains "$out" "  payload (3 bytes): 01 ac 02" "read payload hex"
  if ! grep -Eq '^position [0-9]+  account-1  version 1  [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z$' <<<"$out"; then
    fail "read: no ISO-8601 UTC time in the header line"
  fi
  run 0 --data d read account-1 --from 12
  equals "$(grep -c '^position ' <<<"$out")" 2 "read --from 12"
  contains "$out" "version 12" "read --from 12"
  run 0 --data d read account-1 --from 99
  equals "$out" "" "read past the end"
  run 0 --data d read account-2 --json
  equals "$(wc -l <<<"$out")" 13 "read --json lines"
  contains "$out" '"stream":"account-2","version":1,"type":"opened","schema_version":1,' "read --json"
  contains "$out" '"entries":{"user":"ann","tenant":"t2"}' "read --json entries in stored order"
  run 1 --data d read account-7
  contains "$err" "cairn read: stream account-7 not found in d" "unknown stream"
  run 0 --data d stats
  contains "$out" "events:         40" "stats events"
  contains "$out" "streams:        3" "stats streams"
  contains "$out" "head position:  40" "stats head"
  grep -Eq '^segments: +[1-9]' <<<"$out" || fail "stats: no segment count"
  grep -Eq '^bytes: +[1-9]' <<<"$out" || fail "stats: no byte count"
  grep -Eq '^first event: +[0-9]{4}-.*Z$' <<<"$out" || fail "stats: no first time"
  grep -Eq '^last event: +[0-9]{4}-.*Z$' <<<"$out" || fail "stats: no last time"
  run 0 --data d stats --json
  contains "$out" '{"events":40,"streams":3,' "stats --json"
  run 0 --data d verify
  contains "$out" "ok: 40 records, 3 streams" "verify"
  # An empty store.
  run 0 --data empty import /dev/null
  run 0 --data empty streams
  equals "$out" "" "streams of an empty store"
  run 0 --data empty stats
  contains "$out" "first event:    -" "stats of an empty store"
  run 0 --data empty export
  equals "$out" "" "export of an empty store"
}

case_node_folder() {
  # A node's data folder keeps its events in events/: --data names the node folder.
  generate 10 2 >in.jsonl
  run 0 --data node/events import in.jsonl
  run 0 --data node streams
  equals "$out" $'account-0\t5\naccount-1\t5' "streams of a node folder"
  run 0 streams --data node
  equals "$out" $'account-0\t5\naccount-1\t5' "--data after the subcommand"
  run 0 --data node verify
  contains "$out" "ok: 10 records, 2 streams" "verify of a node folder"
}

case_roundtrip() {
  generate 3000 50 >in.jsonl
  run 0 --data a import in.jsonl
  run 0 --data a export --output e1.jsonl
  contains "$err" "wrote 3000 events to e1.jsonl" "export summary"
  [[ -e e1.jsonl.partial ]] && fail "export left its temporary file"
  equals "$(wc -l <e1.jsonl)" 3000 "exported lines"
  # The export's first line, field by field.
  if ! head -n 1 e1.jsonl | grep -Eq '^\{"position":1,"stream":"account-0","version":1,"type":"opened","schema_version":1,"timestamp_ns":[0-9]+,"time":"[0-9T:.-]+Z","metadata":\{"correlation_id":"corr-0","causation_id":"cmd-0","entries":\{"user":"ann","tenant":"t0"\}\},"payload_base64":"AQNhbm4="\}$'; then
    fail "export line format: $(head -n 1 e1.jsonl)"
  fi
  run 0 --data b import - <e1.jsonl
  contains "$out" "imported 3000 events into 50 streams (positions 1 to 3000)" "re-import summary"
  run 0 --data b export
  printf '%s\n' "$out" >e2.jsonl
  if ! cmp -s <(strip_times <e1.jsonl) <(strip_times <e2.jsonl); then
    fail "export -> import -> export changed more than timestamps"
    diff <(strip_times <e1.jsonl) <(strip_times <e2.jsonl) | head -10 >&2
  fi
  # Import kept each original commit time in metadata.
  local originals kept
  originals=$(sed -E 's/.*"timestamp_ns":([0-9]+),.*/\1/' e1.jsonl)
  kept=$(sed -E 's/.*"imported_timestamp_ns":"([0-9]+)".*/\1/' e2.jsonl)
  equals "$kept" "$originals" "imported_timestamp_ns holds the original timestamps"
  # A second migration keeps the first original time, not the intermediate store's.
  run 0 --data c import e2.jsonl
  run 0 --data c export --from 2990 --output e3.jsonl
  equals "$(sed -E 's/.*"imported_timestamp_ns":"([0-9]+)".*/\1/' e3.jsonl)" "$(tail -n 11 <<<"$originals")" \
    "imported_timestamp_ns after two imports"
  equals "$(strip_times <e3.jsonl)" "$(tail -n 11 e2.jsonl | strip_times)" "export --from 2990"
  # Without the timestamp entry the lines match exactly but for the commit times.
  run 0 --data d import --no-imported-timestamp e1.jsonl
  run 0 --data d export
  equals "$(strip_times <<<"$out")" "$(strip_times <e1.jsonl)" "import --no-imported-timestamp"
  run 0 --data d verify
}

case_bad_import() {
  generate 30 3 >good.jsonl
  run 0 --data d import good.jsonl
  run 0 --data d export
  local before=$out
  {
    head -n 5 good.jsonl
    echo '{"stream":"account-9","type":"opened","payload":{"owner":"ann"}}'
    head -n 15 good.jsonl | tail -n 10
    echo '{"stream":"account-9","type":"opened","payload_base64":"not base64!"}'
    echo 'this is not json'
    echo '{"stream":"bad name","type":"x","payload_base64":""}'
    printf '{"stream":"account-8","type":"x","payload_base64":""}\0{"stream":"account-7"}\n'
    # Over the store's 64 MiB per event: refused before anything is written.
    printf '{"stream":"account-8","type":"x","payload_base64":"'
    head -c $((64 * 1024 * 1024)) /dev/zero | base64 -w0
    printf '"}\n'
  } >bad.jsonl
  run 1 --data d import bad.jsonl
  contains "$err" 'line 6: missing payload_base64' "missing payload_base64"
  contains "$err" 'line 17: payload_base64: invalid base64' "bad base64"
  contains "$err" 'line 18: not valid JSON' "not JSON"
  contains "$err" 'line 19: stream name "bad name" has no '"'-'" "bad stream name"
  contains "$err" 'line 20: contains a NUL byte' "NUL byte"
  contains "$err" 'line 21: the event takes' "oversized event"
  # The first lines are good, but their streams already have events in d.
  contains "$err" 'line 1: stream account-0 already has 10 events in d/events and the line gives no version' "lines for existing streams"
  contains "$err" '9 bad lines in bad.jsonl; nothing was imported' "bad import summary"
  run 0 --data d export
  equals "$out" "$before" "the store after a bad import"
  # A fresh folder stays empty too (the good lines are not appended either).
  run 1 --data fresh import bad.jsonl
  [[ -e fresh ]] && fail "a bad import created the data folder"
  run 1 --data d import no-such-file.jsonl
  contains "$err" "cannot open no-such-file.jsonl" "missing input file"
  # --dry-run checks without appending.
  run 0 --data e import --dry-run good.jsonl
  contains "$out" "dry run: 30 events for 3 streams: 30 to append, 0 already stored in e/events (which does not exist yet" "dry run"
  [[ -e e ]] && fail "import --dry-run created the data folder"
}

case_reimport() {
  generate 20 2 >in.jsonl
  run 0 --data d import in.jsonl
  run 1 --data d import in.jsonl
  contains "$err" "line 1: stream account-0 already has 10 events in d/events and the line gives no version (give --append" "re-import"
  contains "$err" "2 bad lines in in.jsonl; nothing was imported" "re-import summary"
  run 0 --data d streams
  equals "$out" $'account-0\t10\naccount-1\t10' "streams after a refused re-import"
  run 0 --data d import --append in.jsonl
  run 0 --data d streams
  equals "$out" $'account-0\t20\naccount-1\t20' "streams after import --append"
  run 0 --data d verify
}

case_idempotent() {
  generate 3000 50 >in.jsonl
  run 0 --data a import in.jsonl
  run 0 --data a export --output e1.jsonl
  run 0 --data b import e1.jsonl
  contains "$out" "imported 3000 events into 50 streams (positions 1 to 3000)" "first import"
  # The same export again, from a pipe and as a file: everything is already there.
  cat e1.jsonl | "$cairn" --data b import - >out.txt 2>err.txt || fail "import - from a pipe failed: $(<err.txt)"
  contains "$(<out.txt)" "nothing to import: all 3000 events are already stored in b/events" "re-import from a pipe"
  run 0 --data b import <(cat e1.jsonl)
  contains "$out" "nothing to import: all 3000 events are already stored" "re-import from a process substitution"
  run 0 --data b import --dry-run e1.jsonl
  contains "$out" "dry run: 3000 events for 50 streams: 0 to append, 3000 already stored in b/events" "dry run of a re-import"
  run 0 --data b streams
  local streams_b=$out
  run 0 --data a streams
  equals "$streams_b" "$out" "streams after importing twice"
  # The source grows; an export that overlaps what b has adds only the new events.
  "$helper" append a/events account-3 20 || fail "helper append failed"
  "$helper" append a/events brand-1 2 || fail "helper append failed"
  run 0 --data a export --from 2900 --output e2.jsonl
  run 0 --data b import e2.jsonl
  contains "$out" "imported 22 events into 51 streams (positions 3001 to 3022); 101 already stored" "overlapping import"
  run 0 --data b streams
  streams_b=$out
  run 0 --data a streams
  equals "$streams_b" "$out" "streams after an overlapping import"
  run 0 --data b import e2.jsonl
  contains "$out" "nothing to import: all 123 events are already stored" "overlapping import again"
  # A line that differs from the stored event at its version is a conflict: nothing is imported.
  run 0 --data b export
  local before=$out
  {
    echo '{"stream":"new-1","version":1,"type":"opened","payload_base64":""}'
    sed -E '/"stream":"account-7","version":2,/ s/"payload_base64":"[^"]*"/"payload_base64":"AAEC"/' e1.jsonl
  } >conflict.jsonl
  run 1 --data b import conflict.jsonl
  contains "$err" "stream account-7 version 2 conflicts with the event stored in b/events: the payloads differ (3 bytes stored, 3 in the line)" "conflict"
  contains "$err" "1 bad line in conflict.jsonl; nothing was imported" "conflict summary"
  run 0 --data b export
  equals "$out" "$before" "the store after a refused conflict"
  # A stream whose first line leaves a gap after its stored events; versions out of order.
  printf '%s\n' '{"stream":"account-7","version":70,"type":"x","payload_base64":""}' \
    '{"stream":"other-1","version":1,"type":"x","payload_base64":""}' \
    '{"stream":"other-1","version":3,"type":"x","payload_base64":""}' >gap.jsonl
  run 1 --data b import gap.jsonl
  contains "$err" "line 1: stream account-7 version 70 would leave a gap: b/events has 60 events in it" "gap"
  contains "$err" "line 3: stream other-1 version 3 does not follow its previous line's version 1" "out of order"
  run 1 --data b import --dry-run gap.jsonl
  contains "$err" "2 bad lines in gap.jsonl; nothing was imported" "dry run of a gap"
  run 0 --data b export
  equals "$out" "$before" "the store after refused gaps"
  run 0 --data b verify
}

case_dry_run_lock() {
  generate 10 2 >in.jsonl
  run 0 --data node import in.jsonl
  [[ -d node/events && ! -e node/LOCK ]] || fail "import did not create the store in node/events"
  generate 4 4 | sed 's/account-/other-/' >more.jsonl
  run 0 --data node import --dry-run more.jsonl
  contains "$out" "dry run: 4 events for 4 streams: 4 to append, 0 already stored in node/events" "dry run"
  "$helper" hold node/events >hold.out 2>hold.err &
  local pid=$!
  background+=("$pid")
  wait_for hold.out holding 1 || { cat hold.err >&2; return; }
  run 1 --data node import --dry-run more.jsonl
  contains "$out" "dry run: 4 events for 4 streams: 4 to append" "dry run beside a writer checks the input"
  contains "$err" "the store in node/events is open for writing by another process (a node?): the import would fail" "dry run notices the lock"
  run 1 --data node import more.jsonl
  contains "$err" "writer lock" "import beside a writer"
  kill "$pid"
  wait "$pid" 2>/dev/null
  run 0 --data node import --dry-run more.jsonl
  run 0 --data node import more.jsonl
  contains "$out" "imported 4 events into 4 streams" "import once the writer is gone"
}

# An export far larger than the memory import may use: its peak RSS may grow by at
# most a few batches over a small import's, whatever the input's size.
case_large() {
  export_lines() { # export_lines N STREAMS: lines as `cairn export` writes them
    awk -v n="$1" -v s="$2" 'BEGIN {
      p = "AQID"; for (k = 0; k < 5; k++) p = p p; # 128 base64 characters
      for (i = 1; i <= n; i++) {
        st = i % s; v[st]++
        printf "{\"position\":%d,\"stream\":\"account-%d\",\"version\":%d,\"type\":\"deposited\",\"schema_version\":1,\"timestamp_ns\":%d,\"time\":\"2024-05-01T10:00:00.000000000Z\",\"metadata\":{\"correlation_id\":\"corr-%d\",\"causation_id\":\"cmd-%d\",\"entries\":{\"user\":\"ann\"}},\"payload_base64\":\"%s\"}\n", i, st, v[st], 1714557600000000000 + i, i, i, p
      }
    }'
  }
  export_lines 20000 500 >small.jsonl
  export_lines 300000 500 >large.jsonl
  local input_mib=$(( $(stat -c %s large.jsonl) >> 20 ))
  # Sanitizers keep freed memory in quarantine: keep it small here.
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
  peak() { # peak LABEL ARGS...: runs cairn under the helper, prints its peak RSS in MiB
    local label=$1
    shift
    "$helper" maxrss "$cairn" "$@" >"$label.out" 2>"$label.err" || fail "$label: cairn $* failed: $(tail -3 "$label.err")"
    sed -nE 's/^cli_store_helper: maxrss_kib=([0-9]+)$/\1/p' "$label.err" | awk '{ print int($1 / 1024) }'
  }
  local small large again
  small=$(peak small --data s import small.jsonl)
  large=$(peak large --data l import large.jsonl)
  contains "$(<large.out)" "imported 300000 events into 500 streams (positions 1 to 300000)" "large import"
  again=$(peak again --data l import - <large.jsonl)
  contains "$(<again.out)" "nothing to import: all 300000 events are already stored" "large re-import"
  echo "input ${input_mib} MiB; peak RSS: small import ${small} MiB, large ${large} MiB, re-import ${again} MiB" >&2
  local bound=$((small + 32))
  ((input_mib > 3 * 32)) || fail "the large input (${input_mib} MiB) is too small to tell"
  ((large <= bound)) || fail "the large import peaked at ${large} MiB, over ${bound} MiB"
  ((again <= bound)) || fail "the large re-import peaked at ${again} MiB, over ${bound} MiB"
  run 0 --data l stats
  grep -Eq '^events: +300000$' <<<"$out" || fail "stats after the large import: $out"
}

case_bad_input() {
  generate 6 2 >in.jsonl
  run 0 --data d import in.jsonl
  run 0 --data d export
  local before=$out
  # export onto a folder fails and leaves no temporary file behind.
  mkdir taken
  run 1 --data d export --output taken
  contains "$err" "cannot rename taken.partial to taken" "export onto a folder"
  [[ -e taken.partial ]] && fail "a failed export left taken.partial"
  # A folder, deeply nested JSON, or invalid UTF-8 as input: clear errors, no crash.
  run 1 --data d import taken
  contains "$err" "cannot read taken: Is a directory; nothing was imported" "a folder as input"
  head -c 2000000 /dev/zero | tr '\0' '[' >deep.jsonl
  echo >>deep.jsonl
  run 1 --data d import deep.jsonl
  contains "$err" "line 1: not valid JSON" "deeply nested JSON"
  printf '{"stream":"account-\xff","type":"t","payload_base64":""}\n' >utf.jsonl
  run 1 --data d import utf.jsonl
  contains "$err" "line 1: not valid JSON" "invalid UTF-8"
  run 1 --data /dev/null import in.jsonl
  contains "$err" "cannot create the store in /dev/null/events" "a data folder that cannot be"
  run 0 --data d export
  equals "$out" "$before" "the store after bad input"
  # A byte order mark at the start of a file is not content.
  { printf '\xef\xbb\xbf'; generate 2 2 | sed 's/account-/bom-/'; } >bom.jsonl
  run 0 --data d import bom.jsonl
  contains "$out" "imported 2 events into 2 streams" "a file with a byte order mark"
}

case_unfaithful() {
  "$helper" unfaithful d || fail "helper unfaithful failed"
  run 1 --data d export --output out.jsonl
  contains "$err" 'position 1: metadata key "k" appears more than once' "duplicate key"
  [[ -e out.jsonl || -e out.jsonl.partial ]] && fail "a failed export left a file"
  # Display is lossy instead: read and tail still show the events.
  run 0 --data d read odd-1 --json
  equals "$(wc -l <<<"$out")" 2 "read --json of unfaithful events"
  run 0 --data d read odd-1
  contains "$out" "meta k: 1" "text shows the first entry"
  contains "$out" "meta k: 2" "text shows the second entry"
}

# Flips one byte of the file in data folder DIR that holds MARKER; prints "file offset".
flip_marker_byte() { # flip_marker_byte DIR MARKER
  local file offset byte
  file=$(grep -rlaF -- "$2" "$1" | head -n 1)
  [[ -n "$file" ]] || return 1
  offset=$(grep -obaF -- "$2" "$file" | head -n 1 | cut -d: -f1)
  offset=$((offset + 3))
  byte=$(od -An -tu1 -j "$offset" -N1 "$file" | tr -d ' ')
  printf "$(printf '\\%03o' $(((byte ^ 0x20) & 0xff)))" |
    dd of="$file" bs=1 seek="$offset" count=1 conv=notrunc status=none
  echo "$file $offset"
}

case_verify() {
  generate 500 10 >in.jsonl
  run 0 --data d import in.jsonl
  run 0 --data d verify
  contains "$out" "ok: 500 records, 10 streams" "verify of a sound store"
  equals "$err" "" "verify prints no progress bar when stderr is not a terminal"
  run 0 --data d verify --quiet
  equals "$out" "" "verify --quiet"
  local flipped file
  flipped=$(flip_marker_byte d CAIRN-MARKER) || { fail "no segment file holds the marker payload"; return; }
  file=${flipped% *}
  run 1 --data d verify
  contains "$out$err" "$(basename "$file")" "verify names the damaged file"
  contains "$out$err" "offset" "verify names the offset"
  contains "$err" "problem" "verify summary"
}

case_tail() {
  generate 25 3 >in.jsonl
  run 0 --data d import in.jsonl
  run 0 --data d tail
  equals "$(grep -c '^position ' <<<"$out")" 10 "tail shows the last 10"
  contains "$out" "position 16  " "tail starts at 16"
  contains "$out" "position 25  " "tail ends at 25"
  run 0 --data d tail -n 3 --json
  equals "$(sed -E 's/^\{"position":([0-9]+),.*/\1/' <<<"$out" | tr '\n' ' ')" "23 24 25 " "tail -n 3 --json"
  run 0 --data d tail --from 24
  equals "$(grep -c '^position ' <<<"$out")" 2 "tail --from 24"

  "$cairn" --data d tail --follow --from 20 >follow.out 2>follow.err &
  local pid=$!
  background+=("$pid")
  wait_for follow.out '^position ' 6
  "$helper" append d/events tick-1 3 || fail "helper append failed"
  wait_for follow.out '  tick-1  ' 3
  "$helper" append d/events tick-2 2 || fail "helper append failed"
  wait_for follow.out '  tick-2  ' 2
  kill -INT "$pid"
  wait "$pid"
  local rc=$?
  equals "$rc" 0 "tail --follow exit code after SIGINT"
  equals "$(grep -c '^position ' follow.out)" 11 "tail --follow printed each event once"
  contains "$(<follow.out)" "position 30  tick-2  version 2" "tail --follow order"

  "$cairn" --data d tail --follow --json >follow2.out 2>follow2.err &
  pid=$!
  background+=("$pid")
  wait_for follow2.out '"position"' 10
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  equals "$rc" 0 "tail --follow exit code after SIGTERM"
}

case_lock() {
  generate 10 2 >in.jsonl
  run 0 --data d import in.jsonl
  "$helper" hold d/events >hold.out 2>hold.err & # as a node holds its store
  local pid=$!
  background+=("$pid")
  wait_for hold.out holding 1 || { cat hold.err >&2; return; }
  run 0 --data d streams
  equals "$out" $'account-0\t5\naccount-1\t5' "streams beside a writer"
  run 0 --data d stats
  run 0 --data d verify
  run 0 --data d export
  equals "$(wc -l <<<"$out")" 10 "export beside a writer"
  generate 4 4 | sed 's/account-/other-/' >more.jsonl
  run 1 --data d import more.jsonl
  contains "$err" "cairn import: cannot open d/events for writing" "import beside a writer"
  contains "$err" "writer lock" "import names the lock"
  kill "$pid"
  wait "$pid" 2>/dev/null
  run 0 --data d import more.jsonl
  contains "$out" "imported 4 events into 4 streams" "import once the writer is gone"
}

# The stock tool knows no aggregate types: `state` says so.
case_state_unregistered() {
  generate 4 1 >in.jsonl
  run 0 --data d import in.jsonl
  run 1 --data d state account-0
  contains "$err" "cairn state: no aggregate types are registered in this program" "state without types"
  run 0 state --help
  contains "$out" "Aggregate types in this program: none" "state --help without types"
  run 2 state
  contains "$err" "give a STREAM name" "state without stream"
}

# Run with bank_cli as CAIRN_BINARY: the tool plus the bank's account type.
case_state() {
  local b64_opened b64_deposited b64_withdrawn
  b64_opened=$(b64 '\x01\x03ann')    # opened{"ann"}
  b64_deposited=$(b64 '\x01\xac\x02') # deposited{150}
  b64_withdrawn=$(b64 '\x01\x14')     # withdrawn{10}
  # One import per event, so each has its own commit time.
  local type payload n=0
  for type in opened deposited withdrawn deposited; do
    case $type in
      opened) payload=$b64_opened ;;
      deposited) payload=$b64_deposited ;;
      withdrawn) payload=$b64_withdrawn ;;
    esac
    printf '{"stream":"account-42","type":"%s","payload_base64":"%s"}\n' "$type" "$payload" >e$n.jsonl
    run 0 --data d import --append e$n.jsonl
    n=$((n + 1))
  done
  run 0 --data d state account-42 --version 3
  contains "$out" '{"stream":"account-42","version":3,"timestamp_ns":' "state --version 3"
  contains "$out" '"state":{"balance":140,"is_open":true}}' "state --version 3 state"
  run 0 --data d state account-42
  contains "$out" '"version":4,' "state with no point is the latest"
  contains "$out" '"state":{"balance":290,"is_open":true}}' "latest state"
  run 0 state account-42 --version=0 --data d
  equals "$out" '{"stream":"account-42","version":0,"timestamp_ns":null,"time":null,"state":{"balance":0,"is_open":false}}' "state --version 0"
  # --at, as ISO-8601 and as nanoseconds, from the commit times the store reports.
  run 0 --data d read account-42 --json
  local times stamps
  times=$(sed -E 's/.*"time":"([^"]*)".*/\1/' <<<"$out")
  stamps=$(sed -E 's/.*"timestamp_ns":([0-9]+),.*/\1/' <<<"$out")
  run 0 --data d state account-42 --at "$(sed -n 2p <<<"$times")"
  contains "$out" '"version":2,' "state --at the second event's time"
  contains "$out" "\"time\":\"$(sed -n 2p <<<"$times")\"" "state --at reports the event's time"
  contains "$out" '"state":{"balance":150,"is_open":true}}' "state --at ISO"
  run 0 --data d state account-42 --at "$(sed -n 3p <<<"$stamps")"
  contains "$out" '"version":3,' "state --at nanoseconds"
  run 0 --data d state account-42 --at "$(($(sed -n 3p <<<"$stamps") - 1))"
  contains "$out" '"version":2,' "state --at just before the third event"
  run 0 --data d state account-42 --at 2000-01-01T00:00:00Z
  contains "$out" '"version":0,' "state --at before the first event"
  # Errors.
  run 1 --data d state account-42 --version 5
  contains "$err" "cairn state: not_found: stream account-42 is at version 4, there is no version 5" "state beyond the head"
  run 1 --data d state account-7
  contains "$err" "stream account-7 has no events" "state of an unknown stream"
  run 1 --data d state other-1
  contains "$err" 'no aggregate type is registered for category "other" (this program knows: account)' "state of an unknown category"
  run 2 --data d state account-42 --version 1 --at 2000-01-01T00:00:00Z
  contains "$err" "give --version or --at, not both" "state --version and --at"
  run 2 --data d state account-42 --at yesterday
  contains "$err" '--at needs a UTC time' "state --at with a bad time"
  run 2 --data d state account-42 --at 2024-02-30T00:00:00Z
  contains "$err" '--at needs a UTC time' "state --at with a date that does not exist"
  run 2 --data d state account-42 --version x
  contains "$err" "--version needs a non-negative integer" "state --version x"
  run 1 --data "$work/missing" state account-42
  contains "$err" "data folder $work/missing" "state on a missing folder"
  run 0 state --help
  contains "$out" "Usage: cairn [--data DIR] state STREAM" "state --help"
  contains "$out" "Aggregate types in this program: account" "state --help lists the types"
  run 0 --help
  contains "$out" "Aggregate types \`state\` knows: account" "--help lists the types"
  # The rest of the tool works as in the stock binary.
  run 0 --data d streams
  equals "$out" $'account-42\t4' "bank_cli streams"
}

if ! declare -F "case_$case_name" >/dev/null; then
  echo "unknown case: $case_name" >&2
  exit 2
fi
"case_$case_name"
if ((failures > 0)); then
  echo "$case_name: $failures check(s) failed" >&2
  exit 1
fi
echo "PASS: $case_name"
