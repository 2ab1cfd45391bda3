#!/usr/bin/env bash
# make two-node-e2e: kubevs on two real nodes (test/node TestTwoNodes), each its own guest, with
# eth0 on one L2 link between them (kubevs-vm --link: qemu's UDP socket netdev on the host's
# loopback). The first guest runs the control plane, kube-scheduler and the first node, and
# judges; the second runs containerd + kubelet and joins over the link. What the guests run is
# built as for make node-e2e (see node-e2e.sh).
#
# Environment:
#   NODE_E2E_TIMEOUT=DURATION   bound of each guest's run (default 60m)
#   NODE_E2E_LOGDIR=DIR         keep component logs there, DIR/first and DIR/second (default: a
#                               temporary dir, kept and printed when the test fails)
#   NODE_E2E_MEMORY=MIB         first guest's memory (default 4096); the second has 2560
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
t0=$SECONDS
stamp() { echo "two-node-e2e.sh: $* ($((SECONDS - t0))s)" >&2; }

work=$(mktemp -d /tmp/kubevs-two-node.XXXXXX)
logs=${NODE_E2E_LOGDIR:-$(mktemp -d /tmp/kubevs-two-node-logs.XXXXXX)}
mkdir -p "$work/cni" "$work/bin" "$work/shared" "$logs/first" "$logs/second"
keep_logs=${NODE_E2E_LOGDIR:+1}
second_pid=
cleanup() {
	[[ -z $second_pid ]] || kill "$second_pid" 2>/dev/null || true
	rm -rf "$work"
	[[ -n $keep_logs ]] || rm -rf "$logs"
}
trap cleanup EXIT

# 1. What the node runs, built on the host (node-build.sh).
source test/scripts/node-build.sh
node_build

# Two UDP ports on the host's loopback, one per end of the link.
port=$((20000 + RANDOM % 20000))
guest() { # ROLE LINK MEMORY
	node_env "$logs/$1"
	cd test/node && "$work/kubevs-vm" run --timeout "${NODE_E2E_TIMEOUT:-60m}" --memory "$3" --link "$2" \
		--share "$logs/$1" --share "$work/shared" \
		"${node_env[@]}" \
		--env "KUBEVS_NODE_SHARED=$work/shared" \
		--env "KUBEVS_NODE_ROLE=$1" \
		-- "$work/node.test" -test.v -test.count=1 -test.run '^TestTwoNodes$' -test.timeout 58m
}
start=$SECONDS
set +e
guest second "$((port + 1)):$port" 2560 >"$logs/second/output" 2>&1 &
second_pid=$!
guest first "$port:$((port + 1))" "${NODE_E2E_MEMORY:-4096}" 2>&1 | tee "$work/output"
rc=${PIPESTATUS[0]}
wait "$second_pid"
rc2=$?
second_pid=
set -e
echo "--- the second guest's output (tail)"
tail -n 30 "$logs/second/output"
echo
grep -E '^(--- |ok |FAIL|PASS$)|timings:' "$work/output" || true
if ((rc == 0 && rc2 == 0)); then
	printf 'ok  \tgithub.com/kubevs/kubevs/test/node\t%ds in the guests\n' "$((SECONDS - start))"
else
	printf 'FAIL\tgithub.com/kubevs/kubevs/test/node\t%ds in the guests (exit %d, second %d)\n' "$((SECONDS - start))" "$rc" "$rc2"
	keep_logs=1
	echo "two-node-e2e.sh: logs kept in $logs" >&2
	rc=1
fi
stamp "done"
exit "$rc"
