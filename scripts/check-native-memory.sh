#!/usr/bin/env bash
# Runs the native engine under valgrind memcheck, twice:
#   1. native/test/memcheck.cc: the C++ hot path (signatures, add, replace, remove,
#      compaction, filtered and unfiltered queries, clear) linked directly, so every
#      allocation is checked and any leak counts;
#   2. native/test/memcheck.cjs: the same through the built addon in node, checking
#      the N-API layer (node's own still-reachable blocks are not counted).
# Exit status 0 when both report 0 errors and 0 bytes definitely/indirectly lost.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "check-native-memory: valgrind is not installed" >&2; exit 2; }
CXX=${CXX:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

addon=native/build/Release/haarseek.node
if [ ! -f "$addon" ]; then
  echo "building the addon (node-gyp)..."
  npx --no-install node-gyp rebuild -C native >/dev/null
fi

"$CXX" -std=c++17 -O1 -g -ffp-contract=off -o "$work/memcheck" native/test/memcheck.cc native/src/index.cc native/src/signature.cc

status=0
run() {
  local name=$1 leak_kinds=$2
  shift 2
  local log="$work/$name.log"
  if valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds="$leak_kinds" \
       --errors-for-leak-kinds="$leak_kinds" --log-file="$log" "$@" >"$work/$name.out" 2>&1; then
    echo "PASS $name: $(grep -h 'ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //')"
  else
    status=1
    echo "FAIL $name (see below)"
    cat "$log"
  fi
  grep -hE 'definitely lost|indirectly lost|possibly lost|All heap blocks were freed|total heap usage' "$log" | sed "s/^==[0-9]*==  */    /"
}

run "c++ hot path" definite,indirect,possible "$work/memcheck"
run "node addon" definite,indirect node native/test/memcheck.cjs "$PWD/$addon"
exit $status
