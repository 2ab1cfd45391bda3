#!/usr/bin/env bash
# make upstream-e2e-build: builds what running upstream's own e2e specs against the real node
# needs (issue 10), from the pinned module k8s.io/kubernetes in test/tools/kube, into the same
# version-keyed cache as the control plane, only when missing (temporary name, then rename):
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/kube-<version>/e2e.test   go test -c k8s.io/kubernetes/test/e2e
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/bin/kube-<version>/agnhost    test/images/agnhost, CGO_ENABLED=0
#   ${KUBEVS_CACHE:-~/.cache/kubevs}/images/kube-<version>/*.tar   the images the Services and
#       Conntrack specs pull, named as e2e.test <version> names them (test/utils/image/manifest.go),
#       built by install/image's kubevs-static-image (see upstream_images below).
# e2e.test runs alone (--ginkgo.focus, --ginkgo.skip, --ginkgo.dry-run): no ginkgo CLI is built.
#
#   upstream-build.sh          build what is missing; prints the images' names and digests
#   upstream-build.sh --path   the same, then print the binary dir and the image dir
#
# A cold e2e.test takes long on 2 shared cores: it is built under nice.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cache=${KUBEVS_CACHE:-$HOME/.cache/kubevs}

source test/scripts/lib.sh
kube_version=$(pinned test/tools/kube k8s.io/kubernetes)
[[ -n $kube_version ]] || { echo "upstream-build.sh: cannot read the pinned k8s.io/kubernetes" >&2; exit 1; }
kube_dir=$cache/bin/kube-$kube_version
image_dir=$cache/images/kube-$kube_version

# The same lock as control-plane.sh and node-bins.sh: all write kube-<version>.
mkdir -p "$cache/bin"
exec 9>"$cache/bin/.control-plane.lock"
flock 9

minor=${kube_version#v1.}
minor=${minor%%.*}
vpkg=k8s.io/component-base/version
kube_ldflags="-X $vpkg.gitVersion=$kube_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"

# build BINARY [go test -c|go build] PACKAGE LDFLAGS: into a temporary name, then rename.
build() {
	local bin=$1 how=$2 pkg=$3 ldflags=$4
	[[ -x $kube_dir/$bin ]] && return 0
	mkdir -p "$kube_dir"
	echo "upstream-build.sh: building $bin ($pkg) into $kube_dir" >&2
	local start=$SECONDS
	case $how in
	test) (cd "$root/test/tools/kube" && CGO_ENABLED=0 nice go test -c -vet=off -trimpath -buildvcs=false \
		-ldflags "-s -w $ldflags" -o "$kube_dir/.$bin.tmp" "$pkg") ;;
	build) (cd "$root/test/tools/kube" && CGO_ENABLED=0 nice go build -trimpath -buildvcs=false \
		-ldflags "-s -w $ldflags" -o "$kube_dir/.$bin.tmp" "$pkg") ;;
	esac
	mv "$kube_dir/.$bin.tmp" "$kube_dir/$bin"
	echo "upstream-build.sh: built $bin in $((SECONDS - start))s" >&2
}

kube_src=$(cd test/tools/kube && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
agnhost_version=$(<"$kube_src/test/images/agnhost/VERSION")
build e2e.test test k8s.io/kubernetes/test/e2e "$kube_ldflags"
build agnhost build k8s.io/kubernetes/test/images/agnhost "-X main.Version=$agnhost_version"
build regression-issue-74839 build k8s.io/kubernetes/test/images/regression-issue-74839 ""

# e2e_image NAME: the image e2e.test names NAME (its configs[...] line in
# test/utils/image/manifest.go, registry promoterE2eRegistry), e.g.
# registry.k8s.io/e2e-test-images/agnhost:2.63.0. Read from the pinned source, not copied.
e2e_image() {
	local manifest=$kube_src/test/utils/image/manifest.go registry ref
	registry=$(sed -n 's/^[[:space:]]*PromoterE2eRegistry:[[:space:]]*"\([^"]*\)",$/\1/p' "$manifest")
	ref=$(sed -n "s/^[[:space:]]*configs\[$1\] = Config{list.PromoterE2eRegistry, \"\([^\"]*\)\", \"\([^\"]*\)\"}$/\1:\2/p" "$manifest")
	[[ -n $registry && -n $ref ]] || { echo "upstream-build.sh: no image $1 in $manifest" >&2; return 1; }
	echo "$registry/$ref"
}

# The pinned Debian packages into $cache/debs, once (shared with image.sh).
debs=$cache/debs

work=$(mktemp -d /tmp/kubevs-upstream.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd install/image && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$work/" ./cmd/kubevs-static-image)

# busybox_links LOCK [SKIP...]: a --link for each applet of the lock's busybox-static
# (busybox --list-full), but those whose name a package of the lock installs in a bin
# directory or that SKIP names.
busybox_links() {
	local lock=$1 pkg version arch sha deb applet
	shift
	declare -A skip=([busybox]=1)
	for applet in "$@"; do skip[$applet]=1; done
	while read -r pkg version arch sha; do
		[[ -z $pkg || $pkg == \#* ]] && continue
		deb=$debs/${pkg}_${version//:/%3a}_$arch.deb
		if [[ $pkg == busybox-static ]]; then
			dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./bin/busybox
			continue
		fi
		while read -r applet; do skip[$applet]=1; done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t |
			sed -n 's@^\./\(usr/\)\{0,1\}s\{0,1\}bin/\([^/]\{1,\}\)$@\2@p')
	done <"$lock"
	while read -r applet; do
		[[ -n ${skip[${applet##*/}]:-} ]] || echo "--link=/$applet=/bin/busybox"
	done < <("$work/bin/busybox" --list-full | sort)
}

# image NAME ARGS...: the archive of e2e.test's image NAME, built by kubevs-static-image ARGS
# when missing; its digest is kept beside it.
mkdir -p "$image_dir"
image() {
	local name=$1 ref file
	shift
	ref=$(e2e_image "$name")
	file=$image_dir/${ref##*/}.tar
	file=${file/:/-}
	if [[ ! -f $file ]]; then
		"$work/kubevs-static-image" --tag "$ref" --out "$file" "$@" | awk '{print $3}' >"$file.digest.tmp"
		mv "$file.digest.tmp" "$file.digest"
	fi
	echo "upstream-build.sh: $file $ref $(<"$file.digest")" >&2
}

# agnhost: upstream's image is alpine with the tools its specs exec (test/upstream/agnhost.lock
# says which); /agnhost-2 as upstream's entrypoint-tester specs expect.
lock=$root/test/upstream/agnhost.lock
fetch_debs "$lock" "$debs"
mapfile -t links < <(busybox_links "$lock" nc)
image Agnhost --lock "$lock" --debs "$debs" --entrypoint /agnhost --cmd pause \
	"${links[@]}" --link /usr/bin/nc=/bin/nc.openbsd --link /agnhost-2=agnhost \
	/agnhost="$kube_dir/agnhost"
lock=$root/test/upstream/busybox.lock
fetch_debs "$lock" "$debs"
mapfile -t links < <(busybox_links "$lock")
image BusyBox --lock "$lock" --debs "$debs" --cmd /bin/sh "${links[@]}"
image RegressionIssue74839 --entrypoint /regression-issue-74839 \
	/regression-issue-74839="$kube_dir/regression-issue-74839"

if [[ ${1:-} == --path ]]; then
	echo "$kube_dir:$image_dir"
fi
