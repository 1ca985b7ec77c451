#!/usr/bin/env bash
# bench-history.sh ARGON DIR: times diff, merge and a first read of a past
# state over a long history on the embedded engine (docs/BENCHMARKS.md,
# "Diff and merge over a long history").
#
# It builds, in DIR (emptied first), a workspace of 40 imports of 5,000
# documents into four collections (200,000 log entries), branches s1,
# changes 1,680 documents of c1 there, then times, with the binary ARGON:
# argon diff main s1 --stat, argon merge s1, and a first
# argon find c1 '{"age": 0}' --at main~1. Building the workspace takes
# about ten minutes on a 2-core machine. IMPORTS (default 40) sets the
# number of imports. Needs python3 and bc.
set -euo pipefail
argon=$(realpath "$1")
dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
"$argon" init -q bench >/dev/null
for i in $(seq 1 "${IMPORTS:-40}"); do
  python3 - "$i" >chunk.json <<'PY'
import json, sys
i = int(sys.argv[1])
for j in range(5000):
    print(json.dumps({"_id": i * 100000 + j, "name": "u%d" % j, "age": j % 90}))
PY
  "$argon" import chunk.json -c "c$((i % 4))" -q >/dev/null 2>&1
done
rm chunk.json
"$argon" branch create s1 >/dev/null
"$argon" checkout s1 >/dev/null
"$argon" update c1 '{"age": {"$lt": 3}}' '{"$inc": {"age": 1}}' --many >/dev/null 2>&1
"$argon" checkout main >/dev/null
timed() {
  local start end
  start=$(date +%s.%N)
  "$argon" "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  printf '%-45s %8.1f s\n' "argon $*" "$(echo "$end - $start" | bc)"
}
timed diff main s1 --stat
timed merge s1
timed find c1 '{"age": 0}' --at 'main~1'
