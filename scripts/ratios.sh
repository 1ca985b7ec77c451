#!/usr/bin/env bash
# ratios.sh [--uri URI] [--count N] [--benchtime T] [BENCH-REGEXP]
#
# The ratio suite: runs the benchmarks of bench_test.go (each one times
# argon and a native baseline alternately on the same server and data)
# COUNT times (default 5) and prints, per benchmark, the median ratio of
# argon to the baseline with the smallest and largest of the runs, and
# the median of the other ratios they report (wal-ratio: log bytes per
# post-image byte). On the embedded engine by default; with --uri, on that
# MongoDB deployment (it is passed as ARGON_TEST_URI; the benchmarks use
# a database of their own there). Needs python3. The whole suite takes
# about 15 minutes on a 2-core machine with the defaults.
set -euo pipefail
count=5 benchtime=5x bench=.
while [ $# -gt 0 ]; do
  case "$1" in
    --uri) export ARGON_TEST_URI="$2"; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --benchtime) benchtime=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "ratios.sh: unknown flag $1" >&2; exit 2 ;;
    *) bench=$1; shift ;;
  esac
done
cd "$(dirname "$0")/.."
# The summary reads the benchmarks' output as it streams by, and passes
# each line on to standard error as it comes: no file of it to lose.
summary=$(cat <<'PY'
import re, statistics, sys
runs = {}
for line in sys.stdin:
    sys.stderr.write(line)
    sys.stderr.flush()
    if not line.startswith("Benchmark"):
        continue
    f = line.split()
    name = re.sub(r"-\d+$", "", f[0])
    metrics = {f[i + 1]: float(f[i]) for i in range(2, len(f) - 1, 2)}
    for unit, v in metrics.items():
        if unit.endswith("ratio"):
            runs.setdefault((name, unit), []).append(v)
engine = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "embedded"
print(f"\nratios on the {engine} engine (median, min-max of the runs):")
print(f"{'benchmark':<40} {'metric':<10} {'median':>8} {'min':>8} {'max':>8} {'runs':>5}")
for (name, unit), vs in sorted(runs.items()):
    print(f"{name:<40} {unit:<10} {statistics.median(vs):>8.2f} {min(vs):>8.2f} {max(vs):>8.2f} {len(vs):>5}")
PY
)
go test -run '^$' -bench "$bench" -benchtime "$benchtime" -count "$count" -timeout 120m . |
  python3 -c "$summary" "${ARGON_TEST_URI:+server}"
