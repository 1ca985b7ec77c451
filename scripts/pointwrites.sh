#!/usr/bin/env bash
# One-document writes on a large branch, and the status after each, as
# whole argon processes: median of RUNS runs, in seconds.
#
#   scripts/pointwrites.sh [ARGON_BINARY] [DOCS] [RUNS]
#
# On the embedded engine run by each command (engine=embedded) and on the
# workspace engine (engine=shared, argon serve started by the first
# command). Each write names a document that exists, by a string _id;
# before them, a checkout of a new branch (one run).
set -euo pipefail
bin=${1:-argon}
docs=${2:-20000}
runs=${3:-5}
bin=$(command -v "$bin")

# shellcheck source=scripts/timing.sh
. "$(dirname "$0")/timing.sh"

for engine in embedded shared; do
	dir=$(mktemp -d)
	(
		cd "$dir"
		export ARGON_ENGINE=$engine ARGON_ENGINE_IDLE=10m ARGON_AUTHOR=bench
		"$bin" init bench >/dev/null 2>&1
		python3 -c "
import json
for i in range($docs): print(json.dumps({'_id': 'k%06d' % i, 'v': i}))" >docs.ndjson
		"$bin" insert c --file docs.ndjson >/dev/null 2>&1
		declare -A times
		# A new branch's working database, built at checkout.
		times[checkout-new-branch]="$(t "$bin" checkout -b feat)"
		times[status-after-checkout]="$(t "$bin" status)"
		"$bin" checkout main >/dev/null 2>&1
		"$bin" status >/dev/null
		for i in $(seq 1 "$runs"); do
			id=$(printf 'k%06d' $((i * 7)))
			times[update]+="$(t "$bin" update c "{\"_id\": \"$id\"}" '{"$inc": {"v": 1}}') "
			times[status-after-update]+="$(t "$bin" status) "
			times[replace]+="$(t "$bin" replace c "{\"_id\": \"$id\"}" '{"v": 0}') "
			times[status-after-replace]+="$(t "$bin" status) "
			times[delete]+="$(t "$bin" delete c "{\"_id\": \"$id\"}") "
			times[status-after-delete]+="$(t "$bin" status) "
			times[insert]+="$(t "$bin" insert c "{\"_id\": \"$id\", \"v\": 1}") "
			times[status-after-insert]+="$(t "$bin" status) "
		done
		for k in checkout-new-branch status-after-checkout update status-after-update replace status-after-replace delete status-after-delete insert status-after-insert; do
			printf 'engine=%s docs=%s %-22s %s s\n' "$engine" "$docs" "$k" "$(echo "${times[$k]}" | tr ' ' '\n' | grep . | median)"
		done
		if [ -f .argon/serve.json ]; then
			kill "$(jq -r .pid .argon/serve.json)" 2>/dev/null || true
			sleep 1
		fi
	)
	rm -rf "$dir"
done
