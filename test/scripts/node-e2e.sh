#!/usr/bin/env bash
# make node-e2e: kubevs on a real node (test/node). Builds on the host what the node runs
# (control plane: control-plane.sh; kubelet, kube-scheduler, kubectl, containerd: node-bins.sh;
# runc: Debian's), kubevs's image (make image), the sandbox image registry.k8s.io/pause:3.10.2
# and the workload image kubevs.io/node-test:0.1.0 (install/image's kubevs-static-image), the
# CNI reference plugins, then runs TestRealNode in its own guest and prints its timings.
#
# Environment:
#   NODE_E2E_TIMEOUT=DURATION   bound of the VM run (default 60m)
#   NODE_E2E_LOGDIR=DIR         keep component logs there (default: a temporary dir, kept and
#                               printed when the test fails)
#   NODE_E2E_MEMORY=MIB         guest memory (default 4096)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
t0=$SECONDS
stamp() { echo "node-e2e.sh: $* ($((SECONDS - t0))s)" >&2; }

work=$(mktemp -d /tmp/kubevs-node-e2e.XXXXXX)
logs=${NODE_E2E_LOGDIR:-$(mktemp -d /tmp/kubevs-node-e2e-logs.XXXXXX)}
mkdir -p "$work/cni" "$work/bin" "$logs"
keep_logs=${NODE_E2E_LOGDIR:+1}
cleanup() {
	rm -rf "$work"
	[[ -n $keep_logs ]] || rm -rf "$logs"
}
trap cleanup EXIT

# 1. What the node runs, built on the host (node-build.sh).
source test/scripts/node-build.sh
node_build
node_env "$logs"

# 2. The node: its own guest.
start=$SECONDS
set +e
(cd test/node && "$work/kubevs-vm" run --timeout "${NODE_E2E_TIMEOUT:-60m}" --memory "${NODE_E2E_MEMORY:-4096}" \
	--share "$logs" \
	"${node_env[@]}" --env "KUBEVS_NODE_DNS=$work/bin/clusterdns" \
	-- "$work/node.test" -test.v -test.count=1 -test.run '^TestRealNode$' -test.timeout 58m) 2>&1 | tee "$work/output"
rc=${PIPESTATUS[0]}
set -e
echo
grep -E '^(--- |ok |FAIL|PASS$)|timings:' "$work/output" || true
if ((rc == 0)); then
	printf 'ok  \tgithub.com/kubevs/kubevs/test/node\t%ds in the guest\n' "$((SECONDS - start))"
else
	printf 'FAIL\tgithub.com/kubevs/kubevs/test/node\t%ds in the guest (exit %d)\n' "$((SECONDS - start))" "$rc"
	keep_logs=1
	echo "node-e2e.sh: logs kept in $logs" >&2
fi
stamp "done"
exit "$rc"
