#!/usr/bin/env bash
# Proves that the archive `make image` writes is accepted by real container tools, and that
# the image runs: Debian's containerd (a private instance: its own root, state, socket and
# namespace, stopped at the end) imports it, lists it under its name, runs the binaries with
# runc, and runs the image's iptables in two network namespaces whose kubelet canary lives in
# the legacy and in the nft backend: the wrapper must follow each. Then podman load (rootful,
# its own storage). Needs root and the Debian packages containerd, runc, podman, iptables.
#
#   bash test/scripts/image-import.sh [bin/kubevs-image.tar]
set -euo pipefail
cd "$(dirname "$0")/../.."
archive=$(realpath "${1:-bin/kubevs-image.tar}")
tag=$(tar -xOf "$archive" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)"\].*/\1/p')
[[ -n $tag ]] || { echo "image-import.sh: no RepoTags in $archive's manifest.json" >&2; exit 1; }
work=$(mktemp -d /tmp/kubevs-image-import.XXXXXX)
ns=kubevs-image-$$
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

pid=
cleanup() {
	for n in legacy nft; do ip netns del "$ns-$n" 2>/dev/null || true; done
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# 1. containerd, private.
cat >"$work/config.toml" <<TOML
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -S $work/containerd.sock ]] && break; sleep 0.1; done
ctr() { command ctr -a "$work/containerd.sock" -n kubevs-image-test "$@"; }
ctr version >/dev/null || { cat "$work/containerd.log" >&2; fail "containerd did not start"; }

ctr images import "$archive" >"$work/import.out" || fail "ctr images import: $(cat "$work/import.out")"
ctr images ls -q | grep -qx "$tag" || fail "ctr images ls does not list $tag: $(ctr images ls -q)"
pass "ctr images import $(basename "$archive"): ctr images ls lists $tag ($(command ctr --version))"

# kind load image-archive runs, inside each node, `ctr --namespace=k8s.io images import
# [--all-platforms --digests] -` with the archive on stdin: the same, in k8s.io.
command ctr -a "$work/containerd.sock" -n k8s.io images import --all-platforms --digests - <"$archive" >"$work/import-kind.out" ||
	fail "ctr images import - (as kind load image-archive): $(cat "$work/import-kind.out")"
command ctr -a "$work/containerd.sock" -n k8s.io images ls -q | grep -qx "$tag" || fail "k8s.io namespace: no $tag"
pass "ctr -n k8s.io images import --all-platforms --digests - (what kind load image-archive runs in a node): $tag"

# 2. The binaries run from the image (a fresh network namespace; runc).
run() { ctr run --rm "$@"; }
out=$(run --env CNI_COMMAND=VERSION "$tag" kubevs-version /opt/kubevs/bin/kubevs </dev/null 2>&1) ||
	fail "kubevs VERSION: $out"
[[ $out == *'"supportedVersions"'* ]] || fail "kubevs VERSION printed $out"
pass "ctr run: kubevs VERSION -> $out"
for b in kubevs-proxier kubevs-install; do
	out=$(run "$tag" "$b-help" "/opt/kubevs/bin/$b" --help 2>&1) || [[ $out == *Usage* ]] || fail "$b --help: $out"
	pass "ctr run: $b --help ($(grep -c -- ' -' <<<"$out") flags)"
done

# 3. The wrapper follows the backend of the kubelet's canary, per network namespace.
for n in legacy nft; do
	ip netns add "$ns-$n"
	printf '*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n' | ip netns exec "$ns-$n" "iptables-$n-restore"
	want=$([[ $n == nft ]] && echo nf_tables || echo legacy)
	out=$(run --privileged --with-ns "network:/run/netns/$ns-$n" "$tag" "iptables-$n" /usr/sbin/iptables --version 2>&1) ||
		fail "iptables --version with the canary in $n: $out"
	[[ $out == *"($want)"* ]] || fail "canary in $n: the image's iptables --version printed $out"
	out2=$(run --privileged --with-ns "network:/run/netns/$ns-$n" "$tag" "iptables-save-$n" /usr/sbin/iptables-save -t mangle 2>&1)
	[[ $out2 == *":KUBE-KUBELET-CANARY"* ]] || fail "canary in $n: the image's iptables-save -t mangle does not show it: $out2"
	why=$(run --privileged --with-ns "network:/run/netns/$ns-$n" "$tag" "detect-$n" /opt/kubevs/bin/kubevs-iptables-wrapper detect 2>&1)
	[[ $why == "xtables-$n-multi: "* ]] || fail "canary in $n: kubevs-iptables-wrapper detect printed $why"
	pass "ctr run --privileged in a netns with the kubelet canary in $n: iptables --version -> $out; iptables-save sees the canary; detect: $why"
done

# 4. podman load, rootful, with its own storage.
if command -v podman >/dev/null; then
	pm() { podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver vfs "$@"; }
	out=$(pm load -i "$archive" 2>&1) || fail "podman load: $out"
	pm image exists "$tag" || fail "podman load: no $tag: $out"
	pass "podman load: $(tail -1 <<<"$out") ($(podman --version))"
else
	echo "SKIP: podman load: podman is not installed"
fi
