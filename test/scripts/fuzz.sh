#!/usr/bin/env bash
# Runs every fuzz target of the module, one at a time, for FUZZTIME each (default 60s).
# Targets are found, not listed: every "func FuzzX(" in a *_test.go file of the module.
# Stops at the first failure and prints where Go saved the crasher (testdata/fuzz/FuzzX/<hash>
# in the target's package: commit it with the fix, plain `go test` then replays it).
# Usage: FUZZTIME=30s test/scripts/fuzz.sh [extended regexp selecting targets, matched on
# "./dir FuzzX", e.g. nodeapi or FuzzParseSave]
# Env: FUZZTIME (a go test -fuzztime value: 60s, 10000x), FUZZPARALLEL (workers, default the
# go default: GOMAXPROCS). A count (Nx) is immune to go.dev/issue/75804, which makes Go before
# 1.27 fail a duration run at its deadline with no input; CI's short run uses a count.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
select=${1:-.}
par=()
if [ -n "${FUZZPARALLEL:-}" ]; then par=(-parallel "$FUZZPARALLEL"); fi

# "dir FuzzName" per target, sorted; files of other modules (install/image) are left out.
mapfile -t targets < <(
	grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
		while read -r f; do
			d=$(dirname "$f")
			case "$d" in ./install/image | ./install/image/*) continue ;; esac
			sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f" | sed "s|^|$d |"
		done | sort -u | grep -E -- "$select" || true
)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz target matches $select" >&2
	exit 1
fi
echo "# fuzz: ${#targets[@]} targets, ${FUZZTIME} each, $(nproc) CPUs, $($GO version | cut -d' ' -f3-)"
printf '%-28s %-26s %12s %10s %8s\n' package target execs execs/s wall
start_all=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	start=$SECONDS
	if ! $GO test "$dir" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "${par[@]}" >"$log" 2>&1; then
		# go.dev/issue/75804 (fixed in Go 1.27): with a duration -fuzztime, a worker still busy
		# when the deadline fires is reported as a bare "context deadline exceeded" failure, with
		# no input written. Counted only as that race when no crasher was written and the
		# target's corpus (seeds and saved crashers) replays cleanly; anything else fails.
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log" &&
			! grep -qE '^panic:|--- FAIL: .*\(|fuzz: minimizing' <(grep -v -- "--- FAIL: ${name} (" "$log") &&
			$GO test "$dir" -run "^${name}\$" >/dev/null 2>&1; then
			echo "fuzz.sh: $dir $name: the fuzz coordinator's deadline race (go.dev/issue/75804), no crasher, corpus replays clean"
			printf '%-28s %-26s %12s %10s %7ss\n' "${dir#./}" "$name" "race" "-" "$((SECONDS - start))"
			continue
		fi
		cat "$log"
		echo
		echo "fuzz.sh: FAIL $dir $name"
		crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -1)
		if [ -n "$crasher" ]; then
			echo "fuzz.sh: crasher saved in ${dir#./}/$crasher"
			echo "fuzz.sh: replay it with: $GO test $dir -run '^${name}\$/$(basename "$crasher")\$' -v"
		else
			echo "fuzz.sh: no crasher file was written (build failure, or the seed corpus fails: $GO test $dir -run '^${name}\$' -v)"
		fi
		exit 1
	fi
	# The last progress line: "fuzz: elapsed: 5s, execs: 12345 (2469/sec), new interesting: ..."
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+) .*/\1/p' <<<"$last")
	# Go's final line gives the rate of its last interval only: divide by the elapsed time.
	rate=$(sed -nE 's/^fuzz: elapsed: ([0-9hms]+),.*/\1/p' <<<"$last" |
		awk -v n="${execs:-0}" '{ s = 0; d = $0
			if (match(d, /[0-9]+h/)) s += 3600 * substr(d, RSTART, RLENGTH - 1)
			if (match(d, /[0-9]+m/)) s += 60 * substr(d, RSTART, RLENGTH - 1)
			if (match(d, /[0-9]+s/)) s += substr(d, RSTART, RLENGTH - 1)
			if (s > 0) printf "%d", n / s }')
	printf '%-28s %-26s %12s %10s %7ss\n' "${dir#./}" "$name" "${execs:-?}" "${rate:-?}" "$((SECONDS - start))"
done
echo "# fuzz: all ${#targets[@]} targets passed in $((SECONDS - start_all))s"
