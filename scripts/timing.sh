# Shared by the benchmark scripts (sourced, not run).

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# t CMD...: the seconds CMD takes, its output thrown away; a CMD that
# fails is said on stderr and fails t.
t() {
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || {
		echo "failed: $*" >&2
		return 1
	}
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}
