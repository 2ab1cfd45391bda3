#!/bin/sh
# /init of the kubevs test VM (busybox sh in the initramfs).
#
# It loads the modules listed in /etc/kubevs-vm/modules, mounts the host's root (9p, read
# only) under a tmpfs overlay at /newroot, mounts proc, sys, dev, run, the module tree, the
# control folder (/run/kubevs-vm) and the caller's writable shares inside it, and runs
# /run/kubevs-vm/command.sh there with chroot. Progress and the result are marker lines on
# the console, "KUBEVS-VM-<nonce> <WORD> <value>", which the host parses:
#   READY <uptime>         the command starts now
#   EXIT <code>            the command ended with this exit code
#   SETUP-FAILED <step>    the guest could not be set up; the command did not run
# Afterwards the guest powers off. If this script dies, the kernel panics, and panic=-1 with
# qemu's -no-reboot ends qemu as well.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

nonce=
for w in $(cat /proc/cmdline); do
	case $w in kubevs.nonce=*) nonce=${w#kubevs.nonce=} ;; esac
done
M="KUBEVS-VM-$nonce"

# stage prints progress with the guest's uptime (seen with kubevs-vm run --boot-log).
stage() { echo "kubevs-vm init: $* at $(cut -d' ' -f1 /proc/uptime)s"; }

fail() {
	echo "$M SETUP-FAILED $*"
	poweroff -f
	exit 1
}

stage "loading modules"
while read -r m args; do
	modprobe "$m" $args || fail "modprobe $m"
done </etc/kubevs-vm/modules
ip link set lo up || fail "loopback up"
hostname kubevs-vm
stage "mounting the host's root"

opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro,cache=loose" hostroot /mnt/host || fail "mount host root"
mount -t 9p -o "$opts" kvctl /ctl || fail "mount control folder"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw || fail "mount overlay tmpfs"
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot ||
	fail "mount overlay root"

R=/newroot
mount -t proc proc $R/proc || fail "mount proc"
mount -t sysfs sysfs $R/sys || fail "mount sys"
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs $R/dev || fail "mount dev"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "mount run"
mkdir -p $R/lib/modules $R/run/kubevs-vm
mount --bind /lib/modules $R/lib/modules || fail "bind module tree"
mount --bind /ctl $R/run/kubevs-vm || fail "bind control folder"
while read -r tag dir; do
	[ -n "$tag" ] || continue
	mkdir -p "$R$dir" && mount -t 9p -o "$opts" "$tag" "$R$dir" || fail "mount share $dir"
done </ctl/shares

echo "$M READY $(cut -d' ' -f1 /proc/uptime)"
chroot $R /bin/sh /run/kubevs-vm/command.sh </dev/null
rc=$?
echo
echo "$M EXIT $rc"
sync
poweroff -f
