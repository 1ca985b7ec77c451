#!/usr/bin/env bash
# A branch created after the workspace engine (argon serve) started: its
# working database is created through the serve. Times whole argon
# processes on it, in seconds.
#
#   scripts/servebranch.sh [ARGON_BINARY] [DOCS]
set -euo pipefail
bin=$(command -v "${1:-argon}")
docs=${2:-20000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
export ARGON_ENGINE=shared ARGON_ENGINE_IDLE=10m ARGON_AUTHOR=bench
"$bin" init bench >/dev/null 2>&1
python3 -c "
import json
for i in range($docs): print(json.dumps({'_id': 'k%05d' % i, 'v': i}))" >docs.ndjson
"$bin" insert c --file docs.ndjson >/dev/null 2>&1
"$bin" branch create feat >/dev/null 2>&1
"$bin" checkout feat >/dev/null 2>&1
t() {
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	printf '%s s: %s\n' "$(echo "$e - $s" | bc)" "${*:2}"
}
t "$bin" update c '{}' '{"$inc": {"v": 1}}' --many
t "$bin" find c '{"_id": "k01999"}'
t "$bin" status
t "$bin" log -n 20
t "$bin" update c '{"_id": "k01999"}' '{"$set": {"w": 1}}'
kill "$(jq -r .pid .argon/serve.json)" 2>/dev/null || true
sleep 1
