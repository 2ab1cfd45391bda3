#!/usr/bin/env bash
# make demo: kubevs seen working on one node, from a fresh machine.
#
# On the host: the Debian packages (deps.sh), the control plane from Go modules
# (control-plane.sh, cached), the CNI reference plugins, the pod workload, kubevs's four
# binaries and the demo, all with go build. Then it boots the test VM, whose kernel has IPVS,
# and runs the demo there (package test/demo): the real control plane, kubevs installed with
# kubevs-install as on a real node, three pods behind a Service, curl through the ClusterIP,
# the NodePort and back to a pod itself, and `kubevs status`. Exits non-zero if any step fails.
#
# Environment:
#   DEMO_TIMEOUT=DURATION  bound of the whole VM run (default 20m)
#   DEMO_LOGDIR=DIR        keep component logs there (default: a temporary dir, kept only when
#                          the demo fails)
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$SECONDS
stamp() { echo "demo.sh: $* ($((SECONDS - t0))s)"; }

work=$(mktemp -d /tmp/kubevs-demo.XXXXXX)
logs=${DEMO_LOGDIR:-$(mktemp -d /tmp/kubevs-demo-logs.XXXXXX)}
mkdir -p "$work/tools" "$work/kubevs" "$logs"
keep_logs=${DEMO_LOGDIR:+1}
cleanup() {
	rm -rf "$work"
	[[ -n $keep_logs ]] || rm -rf "$logs"
}
trap cleanup EXIT

stamp "installing Debian packages if missing (test/scripts/deps.sh)"
bash test/scripts/deps.sh
stamp "building the control plane if not cached (test/scripts/control-plane.sh; the first time takes minutes)"
cp_bin=$(bash test/scripts/control-plane.sh --path)

stamp "building the CNI reference plugins, testserver, kubevs binaries and the demo"
export CGO_ENABLED=0
(cd test/tools/cni && go build -trimpath -o "$work/tools/" \
	github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/main/loopback \
	github.com/containernetworking/plugins/plugins/meta/portmap)
go build -trimpath -o "$work/tools/" ./test/testserver/cmd/testserver
go build -trimpath -o "$work/kubevs/" ./plugin/cmd/kubevs ./proxier/cmd/kubevs-proxier \
	./ipam/cmd/kubevs-ipam ./install/cmd/kubevs-install
go build -o "$work/demo" ./test/demo/cmd/demo
go build -o "$work/kubevs-vm" ./test/vm/cmd/kubevs-vm
stamp "preparing the test VM (kernel and initramfs, cached)"
"$work/kubevs-vm" prepare

stamp "booting the test VM and running the demo in it"
set +e
"$work/kubevs-vm" run --timeout "${DEMO_TIMEOUT:-20m}" --share "$logs" \
	--env "KUBEVS_CONTROL_PLANE_BIN=$cp_bin" \
	--env "KUBEVS_E2E_BIN=$work/tools" \
	--env "KUBEVS_BIN=$work/kubevs" \
	--env "KUBEVS_DEMO_LOGDIR=$logs" \
	-- "$work/demo" --repo "$PWD"
rc=$?
set -e
if ((rc == 0)); then
	stamp "kubevs demo passed"
else
	keep_logs=1
	case $rc in
	124) why="the VM run timed out (DEMO_TIMEOUT=${DEMO_TIMEOUT:-20m})" ;;
	125) why="the VM failed to boot or run" ;;
	*) why="a demo step failed (see the FAILED line above)" ;;
	esac
	stamp "kubevs demo FAILED, exit $rc: $why; logs kept in $logs"
fi
exit "$rc"
