#!/usr/bin/env bash
# make bench-e2e / bench-e2e-short: the real kubevs-proxier against kube-proxy v1.36.3 in IPVS
# mode, side by side in the test VM (package test/bench, issue 12). One guest per Service count,
# each with the bed's real etcd and kube-apiserver inside it; results (markdown + JSON, and the
# component logs) go to bin/bench-e2e/ on the host through a writable share.
#
# Environment:
#   BENCH_N="1000 10000"   Service counts, one guest each (default 1000)
#   BENCH_K=20             single changes per proxier
#   BENCH_BURST=1000       changes in the burst
#   BENCH_IDLE=60s         idle period
#   BENCH_RUN=kube-proxy,kubevs   proxiers, in order
#   BENCH_ARGS="..."       more kubevs-bench-e2e flags (e.g. -change-timeout=1m)
#   BENCH_TIMEOUT=3h       bound of each guest's run
#   BENCH_OUT=bin/bench-e2e
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS
stamp() { echo "bench-e2e.sh: $* ($((SECONDS - t0))s)" >&2; }

out=$(realpath -m "${BENCH_OUT:-bin/bench-e2e}")
mkdir -p "$out"
work=$(mktemp -d /tmp/kubevs-bench-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT

cp_bin=$(bash test/scripts/control-plane.sh --path)
stamp "control plane ready ($cp_bin)"
export CGO_ENABLED=0
go build -trimpath -o "$work/" ./proxier/cmd/kubevs-proxier ./test/bench/cmd/kubevs-bench-e2e
go build -o "$work/kubevs-vm" ./test/vm/cmd/kubevs-vm
stamp "built kubevs-proxier, kubevs-bench-e2e, kubevs-vm"

rc=0
for n in ${BENCH_N:-1000}; do
	start=$SECONDS
	load0=$(cut -d' ' -f1-3 /proc/loadavg)
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
	"$work/kubevs-vm" run --timeout "${BENCH_TIMEOUT:-3h}" --share "$out" -- \
		"$work/kubevs-bench-e2e" -services="$n" -changes="${BENCH_K:-20}" -burst="${BENCH_BURST:-1000}" \
		-idle="${BENCH_IDLE:-60s}" -run="${BENCH_RUN:-kube-proxy,kubevs}" -out="$out" \
		-control-plane-bin="$cp_bin" -kubevs-proxier="$work/kubevs-proxier" \
		-host-kernel="$(uname -r)" -host-nproc="$(nproc)" ${BENCH_ARGS:-} || rc=$?
	# The guest cannot see the host's load, which decides the absolute figures under TCG.
	line="host load average (1/5/15 min): $load0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end; guest run $((SECONDS - start)) s"
	[[ ! -f "$out/bench-e2e-N$n.md" ]] || printf '\n%s\n' "$line" >>"$out/bench-e2e-N$n.md"
	stamp "N=$n done in $((SECONDS - start))s (exit $rc); $out/bench-e2e-N$n.md; $line"
	((rc == 0)) || break
done
exit "$rc"
