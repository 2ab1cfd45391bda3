#!/usr/bin/env bash
# Installs the Debian packages the tests, the test VM and the demo need.
# Idempotent and quiet on a machine that has them all: apt-get runs (and `apt-get update`
# before it) only when a package is missing. Needs root on a Debian 12 (bookworm) machine.
set -euo pipefail

# package:command pairs; the command proves the package is there without asking dpkg about
# every name (dpkg -s is the fallback for packages without a command of their own).
want=(
	qemu-system-x86:qemu-system-x86_64
	busybox-static:
	kmod:depmod
	cpio:cpio
	xz-utils:xz
	iptables:iptables
	ipset:ipset
	ipvsadm:ipvsadm
	conntrack:conntrack
	# the real node's containers (node-e2e, two-node-e2e, upstream-e2e; node-bins.sh)
	runc:runc
	nftables:nft
	iproute2:ip
	curl:curl
	openssl:openssl
)

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }

missing=()
for pair in "${want[@]}"; do
	pkg=${pair%%:*}
	cmd=${pair#*:}
	if [[ -n $cmd ]] && PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1; then
		continue
	fi
	installed "$pkg" || missing+=("$pkg")
done

# The VM's /init needs a static busybox: the dynamic one from the busybox package cannot
# run in the initramfs. busybox-static replaces it.
if ! installed busybox-static; then
	[[ " ${missing[*]-} " == *" busybox-static "* ]] || missing+=(busybox-static)
fi

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) != 0 ]]; then
	echo "deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done" >&2
