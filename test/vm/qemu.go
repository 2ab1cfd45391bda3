package vm

import (
	"fmt"
	"os"
	"strings"
)

// QemuConfig is what QemuArgs needs to know.
type QemuConfig struct {
	Image *Image
	// Control is the host folder holding command.sh and the share list.
	Control string
	// Shares are the writable shares, GuestDir filled in.
	Shares []Share
	// Nonce marks this run's console markers.
	Nonce string
	// MemoryMiB and CPUs size the guest; zero means 6144 and 2.
	MemoryMiB, CPUs int
	// Link, if set, gives the guest a network card on a segment shared with another guest.
	Link *Link
	// UserNet gives the guest a network card on qemu's user-mode network (see UserNet).
	UserNet bool
}

// KernelCmdline is the guest kernel's command line for a run marked with nonce. panic=-1
// reboots at once on a panic, and qemu's -no-reboot turns that into qemu's exit.
// no_timer_check skips the boot-time test of the IO-APIC timer, which a TCG guest on a
// loaded host fails ("Kernel panic - not syncing: IO-APIC + timer doesn't work!", seen with
// four other guests running on the 2 cores).
func KernelCmdline(nonce string) string {
	return "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off no_timer_check kubevs.nonce=" + nonce
}

// QemuArgs builds qemu-system-x86_64's arguments: TCG (KVM hangs on these machines), no
// display and the serial console on stdio, no network card (the guest only needs loopback)
// unless a Link or the user-mode network is asked for, the host's root read-only over 9p, and the control folder and
// shares read-write.
func QemuArgs(c QemuConfig) []string {
	mem, cpus := c.MemoryMiB, c.CPUs
	if mem == 0 {
		mem = 6144
	}
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		"-accel", "tcg,thread=multi",
		"-smp", fmt.Sprint(cpus),
		"-m", fmt.Sprint(mem),
		"-nographic", "-no-reboot",
		"-nic", "none",
		"-device", "virtio-rng-pci",
		"-kernel", c.Image.Vmlinuz,
		"-initrd", c.Image.Initrd,
		"-append", KernelCmdline(c.Nonce),
		"-virtfs", virtfs("/", "hostroot", true),
		"-virtfs", virtfs(c.Control, "kvctl", false),
	}
	for i, s := range c.Shares {
		args = append(args, "-virtfs", virtfs(s.HostDir, shareTag(i), false))
	}
	if c.Link != nil {
		args = append(args, c.Link.qemuArgs()...)
	}
	if c.UserNet {
		args = append(args, userNetArgs...)
	}
	return args
}

func shareTag(i int) string { return fmt.Sprintf("kvshare%d", i) }

// virtfs is one -virtfs value. Commas in a path are doubled, as qemu's option syntax wants.
func virtfs(path, tag string, readonly bool) string {
	v := "local,path=" + strings.ReplaceAll(path, ",", ",,") + ",mount_tag=" + tag + ",security_model=none,multidevs=remap"
	if readonly {
		v += ",readonly=on"
	}
	return v
}

// GuestScript is the shell script the guest runs in its root: enter dir, then exec argv
// with a clean environment (PATH from the host, HOME=/root, LANG=C.UTF-8, KUBEVS_IN_VM=1)
// plus env, which may override those.
func GuestScript(dir string, env, argv []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by kubevs-vm; run by the guest's /init in the guest's root.\n")
	fmt.Fprintf(&b, "cd %s || exit 125\n", shellQuote(dir))
	base := []string{"PATH=" + hostPath(), "HOME=/root", "LANG=C.UTF-8", "KUBEVS_IN_VM=1"}
	b.WriteString("exec env -i --")
	for _, kv := range append(base, env...) {
		b.WriteString(" " + shellQuote(kv))
	}
	for _, a := range argv {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

func hostPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
