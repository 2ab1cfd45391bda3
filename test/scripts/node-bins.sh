#!/usr/bin/env bash
# Builds what the real node (test/node, make node-e2e) runs besides the control plane, from the
# pinned Go modules, into a cache outside the source tree, only when missing:
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/kube-<version>/{kubelet,kube-scheduler,kubectl}
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/containerd-<version>/{containerd,containerd-shim-runc-v2,ctr}
# runc is Debian's (/usr/sbin/runc, package runc): building it from modules needs cgo (its
# nsenter is C) and libseccomp-dev, while the package is already what image-import.sh uses.
#
#   node-bins.sh          build what is missing
#   node-bins.sh --path   the same, then print the two binary dirs as a PATH-style list
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=${KUBEVS_CACHE:-$HOME/.cache/kubevs}

source test/scripts/lib.sh
kube_version=$(pinned test/tools/kube k8s.io/kubernetes)
ctrd_version=$(pinned test/tools/containerd github.com/containerd/containerd/v2)
[[ -n $kube_version && -n $ctrd_version ]] || { echo "node-bins.sh: cannot read pinned versions" >&2; exit 1; }
kube_dir=$cache/bin/kube-$kube_version
ctrd_dir=$cache/bin/containerd-$ctrd_version

# The same lock as control-plane.sh: both write kube-<version>.
mkdir -p "$cache/bin"
exec 9>"$cache/bin/.control-plane.lock"
flock 9

# build MODULE_DIR OUT_DIR BINARY PACKAGE TAGS LDFLAGS: into a temporary name, then rename.
build() {
	local dir=$1 out=$2 bin=$3 pkg=$4 tags=$5 ldflags=$6
	[[ -x $out/$bin ]] && return 0
	mkdir -p "$out"
	echo "node-bins.sh: building $bin ($pkg) into $out" >&2
	local start=$SECONDS
	(cd "$root/$dir" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out/.$bin.tmp" "$pkg")
	mv "$out/.$bin.tmp" "$out/$bin"
	echo "node-bins.sh: built $bin in $((SECONDS - start))s" >&2
}

minor=${kube_version#v1.}
minor=${minor%%.*}
vpkg=k8s.io/component-base/version
kube_ldflags="-X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
for b in kubelet kube-scheduler kubectl; do
	build test/tools/kube "$kube_dir" "$b" "k8s.io/kubernetes/cmd/$b" "" "$kube_ldflags"
done
# Without cgo: btrfs and devmapper need C headers, and the node's snapshotter is overlayfs.
for b in containerd containerd-shim-runc-v2 ctr; do
	build test/tools/containerd "$ctrd_dir" "$b" "github.com/containerd/containerd/v2/cmd/$b" \
		"no_btrfs no_devmapper no_zfs" "-X github.com/containerd/containerd/v2/version.Version=$ctrd_version"
done

if [[ ${1:-} == --path ]]; then
	echo "$kube_dir:$ctrd_dir"
fi
