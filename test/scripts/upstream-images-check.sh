#!/usr/bin/env bash
# Checks the images upstream-build.sh made, without a container engine: unpacks each archive's
# layer into a directory and runs there, chrooted in a fresh network namespace, what upstream's
# Services and Conntrack specs exec in those pods (the commands of test/e2e/network/service.go,
# conntrack.go and the framework's network and service helpers): agnhost netexec serving, curl
# with the specs' flags, nc -u -w -p and nc -v -t -w against it, the busybox applets of the
# specs' shell loops (sh, seq, wget, timeout, nslookup, hostname). Needs root (chroot, unshare).
#
#   upstream-images-check.sh IMAGE_DIR
set -euo pipefail
dir=${1:?usage: upstream-images-check.sh IMAGE_DIR}
work=$(mktemp -d /tmp/kubevs-upstream-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# unpack ARCHIVE ROOT: the layers of the archive's only image into ROOT.
unpack() {
	local archive=$1 root=$2 blobs=$work/blobs manifest layer
	rm -rf "$blobs" && mkdir -p "$blobs" "$root"
	tar -xf "$archive" -C "$blobs"
	manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$blobs/index.json")
	for layer in $(python3 -c 'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(open(sys.argv[1]))["layers"]]' "$blobs/blobs/sha256/$manifest"); do
		tar -xzf "$blobs/blobs/sha256/$layer" -C "$root"
	done
}

fail=0
# check NAME ROOT SCRIPT: run SCRIPT with the image's /bin/sh in ROOT, in a fresh netns (its
# loopback up).
check() {
	local name=$1 root=$2 script=$3 out
	# What a runtime gives every container: /dev and /proc (mounted in a private mount namespace).
	mkdir -p "$root/dev" "$root/proc"
	if out=$(unshare --net --mount /bin/sh -c 'mount --bind /dev "$1/dev" && mount -t proc proc "$1/proc" &&
		ip link set lo up && exec chroot "$1" /bin/sh -c "$2"' - "$root" "$script" 2>&1); then
		echo "ok   $name"
	else
		echo "FAIL $name:"
		echo "$out" | sed 's/^/     /'
		fail=1
	fi
}

unpack "$dir/agnhost-2.63.0.tar" "$work/agnhost"
mkdir -p "$work/agnhost/etc" && echo "nameserver 127.0.0.1" >"$work/agnhost/etc/resolv.conf"
# The specs' commands, verbatim in their flags, against agnhost netexec in the same netns.
check "agnhost: netexec, curl, nc, shell loop" "$work/agnhost" '
	set -e
	/agnhost netexec --http-port=8080 --udp-port=8081 >/dev/null 2>&1 &
	for i in $(seq 1 50); do curl -q -s --connect-timeout 2 http://127.0.0.1:8080/hostname >/dev/null && break; sleep 0.2; done
	h=$(curl -q -s --connect-timeout 2 --max-time 60 http://127.0.0.1:8080/hostname)
	[ -n "$h" ]
	code=$(curl -g -q -s -o /dev/null -w %{http_code} http://127.0.0.1:8080/hostname)
	[ "$code" = 200 ]
	curl -g -q -s "http://127.0.0.1:8080/dial?request=hostname&protocol=http&host=127.0.0.1&port=8080&tries=1" | grep -q responses
	[ "$(echo hostName | nc -u -w 1 -p 40001 127.0.0.1 8081)" = "$h" ]
	echo hostName | nc -v -t -w 2 127.0.0.1 8080 >/dev/null 2>&1
	wget -T 5 -qO- http://127.0.0.1:8080/hostname | grep -q .
	wget -q -O - -T 1 http://127.0.0.1:8080/hostname | grep -q .
	timeout 5 sh -c "for i in \$(seq 0 2); do echo; done" >/dev/null
	hostname >/dev/null
	command -v nslookup >/dev/null
	[ -L /agnhost-2 ] && /agnhost --version | grep -q 2.63.0
'
unpack "$dir/busybox-1.37.0-1.tar" "$work/busybox"
# The conntrack spec's client dials the server by its Service's name: /etc/hosts stands in
# for the cluster's DNS.
mkdir -p "$work/busybox/etc" "$work/busybox/tmp" && echo "127.0.0.1 boom-server" >"$work/busybox/etc/hosts"
check "busybox: init container, client loop" "$work/busybox" '
	set -e
	/bin/sh -c "echo Pausing start. && sleep 0" | grep -q Pausing
	nc -l -p 9000 >/tmp/got &
	for i in $(seq 1 50); do echo boom | nc boom-server 9000 && break; sleep 0.2; done
	wait
	grep -q boom /tmp/got
'
unpack "$dir/regression-issue-74839-1.4.tar" "$work/regression"
if [[ -x $work/regression/regression-issue-74839 ]]; then
	echo "ok   regression-issue-74839: /regression-issue-74839 present"
else
	echo "FAIL regression-issue-74839: no /regression-issue-74839"
	fail=1
fi
exit "$fail"
