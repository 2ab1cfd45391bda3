#!/usr/bin/env bash
# make bench-e2e / bench-e2e-short: the real kubevs-proxier against kube-proxy v1.36.3 in IPVS
# mode, side by side in the test VM (package test/bench, issue 12). One guest per Service count,
# against the bed's real etcd and kube-apiserver; results (markdown + JSON, and the component
# logs) go to bin/bench-e2e/ on the host through a writable share.
#
# By default (BENCH_API=host) the host runs etcd and kube-apiserver natively, in a network
# namespace of their own that qemu shares, and the guest reaches them over qemu's user-mode
# network (test/bench/serve.go): emulated, they took most of a large run. BENCH_API=guest runs
# them inside the guest, as the runs before stop 16 (7 Dec) did. With the host's control
# plane, the host also writes the Services and slices before the guest starts (-preload; its
# log says how long), and the guest adopts them: from the guest's emulated client, 50,000
# Services were out of reach (BENCH_PRELOAD=0 writes them from the guest).
#
# Environment:
#   BENCH_API=host         where the control plane runs: host or guest
#   BENCH_PRELOAD=1        with BENCH_API=host: the host writes the objects (0: the guest)
#   BENCH_PRELOAD_CACHE=~/.cache/kubevs/bench-preload  keeps each size's written cluster
#                          (etcd data) for the next run; empty: none
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

# guest_runs runs one guest per Service count; with BENCH_API=host, in the control plane's
# network namespace.
guest_runs() {
	rc=0
	for n in ${BENCH_N:-1000}; do
		start=$SECONDS
		load0=$(cut -d' ' -f1-3 /proc/loadavg)
		vm_flags=() wrap=() bench_args=() api_pid=
		if [[ $api == host ]]; then
			kc=$work/api-N$n/kubeconfig
			mkdir -p "$(dirname "$kc")" "$out/logs-N$n/host"
			preload=() cache=()
			[[ ${BENCH_PRELOAD:-1} == 0 ]] || preload=(-preload -services="$n" -setup-writers=16)
			# The written cluster's etcd data is kept (BENCH_PRELOAD_CACHE=: none): the next
			# run of this size starts from a copy instead of writing it again.
			[[ -z ${preload[*]} || -z ${BENCH_PRELOAD_CACHE-x} ]] ||
				cache=(-preload-cache="${BENCH_PRELOAD_CACHE:-$HOME/.cache/kubevs/bench-preload}")
			"$work/kubevs-bench-e2e" -serve-api="$kc" -control-plane-bin="$cp_bin" -log-dir="$out/logs-N$n/host" \
				"${preload[@]}" "${cache[@]}" >"$out/logs-N$n/host/serve-api.log" 2>&1 &
			api_pid=$!
			until [[ -f $kc ]]; do
				kill -0 "$api_pid" 2>/dev/null || { stamp "the host's control plane did not start: $out/logs-N$n/host"; return 1; }
				# Preloading 50,000 Services takes over an hour (kube-apiserver's ClusterIP
				# allocator costs O(Services) a create): wait as long as a guest may run.
				((SECONDS - start < 10800)) || { stamp "the host's control plane not ready after 3 hours"; kill "$api_pid"; return 1; }
				sleep 1
			done
			stamp "N=$n: control plane ready on the host${preload:+, objects written}"
			# The guest configures its end of the user-mode network, then runs the benchmark.
			vm_flags=(--user-net)
			wrap=(sh -c 'ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && exec "$@"' sh)
			bench_args=(-kubeconfig="$kc" -setup-writers=16 "${preload[@]:0:1}") # BENCH_ARGS may override
		fi
		# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
		"$work/kubevs-vm" run --timeout "${BENCH_TIMEOUT:-3h}" --share "$out" "${vm_flags[@]}" -- \
			"${wrap[@]}" "$work/kubevs-bench-e2e" -services="$n" -changes="${BENCH_K:-20}" -burst="${BENCH_BURST:-1000}" \
			-idle="${BENCH_IDLE:-60s}" -run="${BENCH_RUN:-kube-proxy,kubevs}" -out="$out" \
			-control-plane-bin="$cp_bin" -kubevs-proxier="$work/kubevs-proxier" \
			-host-kernel="$(uname -r)" -host-nproc="$(nproc)" "${bench_args[@]}" ${BENCH_ARGS:-} || rc=$?
		if [[ -n $api_pid ]]; then
			kill "$api_pid" && wait "$api_pid" || true
		fi
		# The guest cannot see the host's load, which decides the absolute figures under TCG.
		line="host load average (1/5/15 min): $load0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end; guest run $((SECONDS - start)) s"
		[[ ! -f "$out/bench-e2e-N$n.md" ]] || printf '\n%s\n' "$line" >>"$out/bench-e2e-N$n.md"
		stamp "N=$n done in $((SECONDS - start))s (exit $rc); $out/bench-e2e-N$n.md; $line"
		((rc == 0)) || return "$rc"
	done
}

api=${BENCH_API:-host}
case $api in
host)
	# A fresh network namespace for the control plane and qemu: the API server listens on
	# its loopback only, and its fixed ports collide with nothing on the host.
	export -f guest_runs stamp
	export api work out cp_bin
	export t0=$((t0 - SECONDS)) # the inner shell's SECONDS starts at 0
	unshare --net -- bash -c 'ip link set lo up && guest_runs'
	;;
guest) guest_runs ;;
*)
	echo "bench-e2e.sh: BENCH_API=$api: want host or guest" >&2
	exit 2
	;;
esac
