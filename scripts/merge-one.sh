#!/usr/bin/env bash
# A merge, a diff and a revert of one changed document on a long log, as
# whole argon processes on the embedded engine: median of RUNS runs, in
# seconds.
#
#   scripts/merge-one.sh [ARGON_BINARY] [DOCS] [COLLS] [RUNS]
#
# The log: COLLS collections of DOCS documents of about 300 bytes each,
# each inserted by one command (one spilled commit each, COLLS x DOCS
# entries). Branch s1 then changes one document of the first collection;
# each run makes a new branch from main and merges s1 into it (a
# fast-forward: the base value of the changed document is looked up in
# the log), diffs main with s1 and reverts s1's commit on a branch of its
# own. A second argon binary (OTHER=path) is timed on the same workspace,
# alternating, when given.
set -euo pipefail
bin=$(realpath "$(command -v "${1:-argon}")")
docs=${2:-100000}
colls=${3:-1}
runs=${4:-3}
other=${OTHER:-}

# shellcheck source=scripts/timing.sh
. "$(dirname "$0")/timing.sh"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
export ARGON_AUTHOR=bench
"$bin" init bench >/dev/null 2>&1
python3 -c "
import json
for i in range($docs): print(json.dumps({'_id': 'k%06d' % i, 'v': i, 'age': i % 90, 'pad': 'x' * 250}))" >docs.ndjson
for c in $(seq 1 "$colls"); do
	"$bin" insert "c$c" --file docs.ndjson >/dev/null 2>&1
done
"$bin" checkout -b s1 >/dev/null 2>&1
"$bin" update c1 '{"_id": "k000007"}' '{"$set": {"v": -1}}' >/dev/null 2>&1
"$bin" checkout main >/dev/null 2>&1
declare -A times
bins=("$bin")
if [ -n "$other" ]; then
	bins+=("$(realpath "$(command -v "$other")")")
fi
n=0
for i in $(seq 1 "$runs"); do
	for b in "${bins[@]}"; do
		n=$((n + 1))
		"$b" checkout -b "m$n" >/dev/null 2>&1
		times[$b merge]+="$(t "$b" merge s1) "
		times[$b diff]+="$(t "$b" diff main s1 --stat) "
		"$b" checkout -b "r$n" s1 >/dev/null 2>&1
		times[$b revert]+="$(t "$b" revert s1) "
		"$b" checkout main >/dev/null 2>&1
	done
done
for b in "${bins[@]}"; do
	for k in merge diff revert; do
		printf 'docs=%s colls=%s %s %-7s %s s\n' "$docs" "$colls" "$b" "$k" "$(echo "${times[$b $k]}" | tr ' ' '\n' | grep . | median)"
	done
done
