#!/usr/bin/env bash
# Install test: installs a cairn build into a temporary prefix, then configures, builds
# and runs tests/install/consumer against that prefix alone: a program on cairn::cairn,
# a cairn-style tool on cairn::cli, and programs on cairn::http and cairn::kafka when
# the build has them.
#
# Usage: install_test.sh BUILD_DIR [CONFIG]
# Environment: CMAKE (cmake binary to use), CMAKE_GENERATOR and CXX are honoured by cmake.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [CONFIG]" >&2
  exit 2
fi

build_dir=$(cd "$1" && pwd)
config=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${CMAKE:-cmake}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
consumer_build="$work/consumer-build"

config_args=()
if [[ -n "$config" ]]; then
  config_args=(--config "$config")
fi

echo "== installing $build_dir into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" "${config_args[@]}"

echo "== configuring the consumer against $prefix"
"$cmake" -S "$here/consumer" -B "$consumer_build" \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE="${config:-Release}" \
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON

# The package must come from the temporary prefix, not from a system-wide install.
cairn_dir=$(sed -n 's/^cairn_DIR:PATH=//p' "$consumer_build/CMakeCache.txt")
if [[ "$cairn_dir" != "$prefix"/* ]]; then
  echo "FAIL: the consumer found cairn in '$cairn_dir', not under $prefix" >&2
  exit 1
fi

echo "== building the consumer"
"$cmake" --build "$consumer_build" "${config_args[@]}"

program=$(find "$consumer_build" -type f -name cairn_consumer -perm -u+x | head -n 1)
if [[ -z "$program" ]]; then
  echo "FAIL: the consumer build produced no cairn_consumer executable" >&2
  exit 1
fi

echo "== running $program"
"$program"

# The consumer's own cairn-style tool (cairn::cli): it imports events and rebuilds its
# counter aggregate from them with `state`.
tool=$(find "$consumer_build" -type f -name cairn_consumer_tool -perm -u+x | head -n 1)
if [[ -z "$tool" ]]; then
  echo "FAIL: the consumer build produced no cairn_consumer_tool executable" >&2
  exit 1
fi
echo "== running $tool"
help=$("$tool" --help)
if [[ "$help" != *'Aggregate types `state` knows: counter'* ]]; then
  echo "FAIL: $tool --help does not list the counter type:" >&2
  printf '%s\n' "$help" >&2
  exit 1
fi
# added{by} in the binary encoding (docs/encoding.md): schema version 1, then the varint.
printf '%s\n' '{"stream":"counter-1","version":1,"type":"added","payload_base64":"AQU="}' \
  '{"stream":"counter-1","version":2,"type":"added","payload_base64":"AQI="}' |
  "$tool" --data "$work/data" import -
state=$("$tool" --data "$work/data" state counter-1)
if [[ "$state" != *'"version":2'*'"state":{"count":7}'* ]]; then
  echo "FAIL: the consumer tool's state of counter-1 is not a count of 7 at version 2: $state" >&2
  exit 1
fi
"$tool" --data "$work/data" verify
# The optional libraries this build has (CMakeCache.txt: CAIRN_BUILD_HTTP/KAFKA) must
# be installed, found and linkable: a program on each.
built=(cairn::cairn cairn::cli)
for part in http kafka; do
  flag=$(sed -n "s/^CAIRN_BUILD_${part^^}:BOOL=//p" "$build_dir/CMakeCache.txt")
  [[ "$flag" == ON ]] || continue
  program=$(find "$consumer_build" -type f -name "cairn_consumer_$part" -perm -u+x | head -n 1)
  if [[ -z "$program" ]]; then
    echo "FAIL: this build has cairn::$part, but the installed package does not define it" >&2
    exit 1
  fi
  echo "== running $program"
  "$program"
  built+=("cairn::$part")
done
echo "PASS: out-of-tree programs built against the installed cairn (${built[*]}) and ran"
