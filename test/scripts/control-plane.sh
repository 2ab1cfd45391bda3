#!/usr/bin/env bash
# Builds the test bed's control plane (etcd, kube-apiserver, kube-controller-manager) and kube-proxy from the
# pinned Go modules in test/tools into a cache outside the source tree, only when missing.
#
#   control-plane.sh            build what is missing; quiet when everything is cached
#   control-plane.sh --path     the same, then print the binary dirs as a PATH-style list
#                               (what test/bed reads from KUBEVS_CONTROL_PLANE_BIN)
#
# The cache is keyed on the pinned versions read from the tools' go.mod files:
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/kube-<version>/{kube-apiserver,kube-controller-manager,kube-proxy}
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/etcd-<version>/etcd
# A cold build takes several minutes on 2 cores (kube-apiserver alone about 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=${KUBEVS_CACHE:-$HOME/.cache/kubevs}

source test/scripts/lib.sh

kube_version=$(pinned test/tools/kube k8s.io/kubernetes)
etcd_version=$(pinned test/tools/etcd go.etcd.io/etcd/server/v3)
[[ -n $kube_version && -n $etcd_version ]] || { echo "control-plane.sh: cannot read pinned versions" >&2; exit 1; }
kube_dir=$cache/bin/kube-$kube_version
etcd_dir=$cache/bin/etcd-$etcd_version

# One build at a time: go test runs packages in parallel, and several of them (ipam, test/e2e)
# call this script; a second caller waits for the first one's binaries instead of racing it
# on the same temporary names.
mkdir -p "$cache/bin"
exec 9>"$cache/bin/.control-plane.lock"
flock 9

# build MODULE_DIR OUT_DIR BINARY PACKAGE [LDFLAGS]: go build into a temporary name, then rename,
# so an interrupted build never leaves a half-written binary in the cache.
build() {
	local dir=$1 out=$2 bin=$3 pkg=$4 ldflags=${5:-}
	[[ -x $out/$bin ]] && return 0
	mkdir -p "$out"
	echo "control-plane.sh: building $bin ($pkg) into $out" >&2
	local start=$SECONDS
	(cd "$root/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/.$bin.tmp" "$pkg")
	mv "$out/.$bin.tmp" "$out/$bin"
	echo "control-plane.sh: built $bin in $((SECONDS - start))s" >&2
}

minor=${kube_version#v1.}
minor=${minor%%.*}
vpkg=k8s.io/component-base/version
kube_ldflags="-X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"

build test/tools/etcd "$etcd_dir" etcd go.etcd.io/etcd/server/v3
build test/tools/kube "$kube_dir" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build test/tools/kube "$kube_dir" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
# kube-proxy is no control-plane component: the takeover scenarios run it on the node (about 11 s
# once kube-apiserver's packages are in the build cache).
build test/tools/kube "$kube_dir" kube-proxy k8s.io/kubernetes/cmd/kube-proxy "$kube_ldflags"

if [[ ${1:-} == --path ]]; then
	echo "$kube_dir:$etcd_dir"
fi
