#!/usr/bin/env bash
# make image: build bin/kubevs-image.tar, kubevs's OCI image (see install/image), without a
# container engine: the five static binaries, and iptables with both backends from the Debian
# packages pinned in install/image/debs.lock (downloaded once with apt-get download into the
# cache; the builder refuses a file whose sha256 differs from the lock). Prints the archive,
# the image's name and its digest.
#
# Environment:
#   KUBEVS_IMAGE_OUT=FILE   the archive to write (default bin/kubevs-image.tar)
#   SOURCE_DATE_EPOCH=SECS  the date of every file and of the image (default 0: 1970-01-01)
#   KUBEVS_CACHE=DIR        where the .deb files are kept (default ~/.cache/kubevs)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${KUBEVS_IMAGE_OUT:-bin/kubevs-image.tar}
debs=${KUBEVS_CACHE:-$HOME/.cache/kubevs}/debs
lock=$root/install/image/debs.lock
work=$(mktemp -d /tmp/kubevs-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$debs" "$work/bin" "$(dirname "$out")"

# 1. The binaries: static, no build paths, no VCS stamp (the digest depends on the source
# only), without symbol tables and DWARF (-s -w: the kubevs layer shrinks from 40 to 22 MB gzipped).
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$work/bin/" \
	./plugin/cmd/kubevs ./proxier/cmd/kubevs-proxier ./ipam/cmd/kubevs-ipam \
	./install/cmd/kubevs-install ./install/cmd/kubevs-iptables-wrapper
(cd install/image && CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$work/" ./cmd/kubevs-image)

# 2. The pinned packages, downloaded once (apt-get update only if a version is not found).
source test/scripts/lib.sh
fetch_debs "$lock" "$debs"

# 3. The image.
"$work/kubevs-image" --lock "$lock" --debs "$debs" --bin "$work/bin" --out "$out"
