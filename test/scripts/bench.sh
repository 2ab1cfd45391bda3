#!/usr/bin/env bash
# Benchmarks (the IPVS adapter's 10k scale benchmark runs in the VM: see README).
# Benchmarks of the proxier core on the in-memory fakes (issue 3's performance targets):
# 10,000 and 50,000 Services x 10 endpoints.
#   BenchmarkComputeService  Compute of one Service (2 ports x 10 endpoints)
#   BenchmarkCold            Compute of every Service + Start + Resync on an empty kernel
#   BenchmarkEndpointChange  one endpoint added/removed: Compute of one Service + Apply
#                            (ops/change = kernel writes issued per change); mix=node-facing
#                            makes one Service in ten a NodePort or LoadBalancer (source
#                            ranges, half externalTrafficPolicy=Local) and changes only those
#   BenchmarkRestart         a new Reconciler adopting a populated kernel (writes/op must be 0),
#                            also with mix=node-facing (NodePort virtual servers on the node
#                            address are adopted through the NodePort sets)
#   BenchmarkHeldMemory      heap held by the Reconciler after a cold sync (MiB-held)
# Targets: one change well under 1 ms of CPU at 50,000 Services; cold 10,000 Services under
# 2 s of CPU. cpu-ms/op and cpu-µs/op are process CPU time (getrusage), ns/op is wall time.
# Usage: test/scripts/bench.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
echo "# machine: $(nproc) CPUs, $(uname -r), $($GO version | cut -d' ' -f3-)"
run() {
	local pkg=$1
	shift
	# klog lines on stderr are noise here; results go to stdout.
	$GO test "$pkg" -run '^$' -benchmem -count=1 "$@" 2>/dev/null |
		grep -E '^(Benchmark|pkg|ok|FAIL)' || {
		echo "bench.sh: benchmark failed; rerun with stderr: $GO test $pkg -run '^\$' $*" >&2
		exit 1
	}
}
run ./proxier/desired/ -bench 'BenchmarkComputeService' "$@"
run ./proxier/reconcile/ -bench 'BenchmarkCold|BenchmarkRestart|BenchmarkHeldMemory' -benchtime=1x "$@"
run ./proxier/reconcile/ -bench 'BenchmarkEndpointChange' -benchtime=2000x "$@"
# The kubevs CNI plugin: ADD and DEL latency through exec (libcni) with the node API running,
# 200 pods on the reference bridge plugin (root; p50/p99 reported as custom metrics).
if [ "$(id -u)" = 0 ]; then
	run ./plugin/ -bench 'AddDelLatency' -benchtime=1x "$@"
fi
# The proxier end to end on fakes: an EndpointSlice update in the fake clientset to the fake IPVS.
run ./proxier/daemon/ -bench 'BenchmarkEndpointChangeToKernel' -benchtime=300x "$@"
