package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQemuArgs(t *testing.T) {
	got := QemuArgs(QemuConfig{
		Image:   &Image{Vmlinuz: "/c/vmlinuz", Initrd: "/c/initrd.cpio"},
		Control: "/tmp/kubevs-vm-1",
		Shares:  []Share{{HostDir: "/work/out", GuestDir: "/results"}, {HostDir: "/a,b", GuestDir: "/a,b"}},
		Nonce:   "n1",
	})
	want := []string{
		"-accel", "tcg,thread=multi", "-smp", "2", "-m", "6144", "-nographic", "-no-reboot",
		"-nic", "none", "-device", "virtio-rng-pci",
		"-kernel", "/c/vmlinuz", "-initrd", "/c/initrd.cpio",
		"-append", "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off no_timer_check kubevs.nonce=n1",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on",
		"-virtfs", "local,path=/tmp/kubevs-vm-1,mount_tag=kvctl,security_model=none,multidevs=remap",
		"-virtfs", "local,path=/work/out,mount_tag=kvshare0,security_model=none,multidevs=remap",
		"-virtfs", "local,path=/a,,b,mount_tag=kvshare1,security_model=none,multidevs=remap",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("QemuArgs (-want +got):\n%s", diff)
	}
	sized := QemuArgs(QemuConfig{Image: &Image{}, MemoryMiB: 1024, CPUs: 1})
	if s := strings.Join(sized, " "); !strings.Contains(s, "-smp 1 -m 1024 ") {
		t.Errorf("QemuArgs ignored the size: %s", s)
	}
}

func TestGuestScript(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	got := GuestScript("/work/my dir", []string{"KUBEVS_STRICT=1", "MSG=it's"}, []string{"sh", "-c", "exit 3"})
	want := `#!/bin/sh
# Written by kubevs-vm; run by the guest's /init in the guest's root.
cd '/work/my dir' || exit 125
exec env -i -- PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 KUBEVS_IN_VM=1 KUBEVS_STRICT=1 'MSG=it'\''s' sh -c 'exit 3'
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GuestScript (-want +got):\n%s", diff)
	}
}

// TestGuestScriptRuns runs a generated script with the host's sh: it enters the directory,
// sees only the given environment, passes arguments through unchanged and keeps the exit code.
func TestGuestScriptRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEAK", "1")
	arg := `$x "q" 'q' \ *`
	script := GuestScript(dir, []string{"X=1"}, []string{"sh", "-c", `printf '%s|%s|%s|%s\n' "$PWD" "$X" "${LEAK-unset}" "$1"; exit 7`, "sh", arg})
	out, err := exec.Command("sh", "-c", script).Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 7 {
		t.Fatalf("script exit = %v, want exit status 7", err)
	}
	if got, want := string(out), dir+"|1|unset|"+arg+"\n"; got != want {
		t.Errorf("script output = %q, want %q", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          "''",
		"plain/a-b": "plain/a-b",
		"K=V":       "K=V",
		"a b":       "'a b'",
		"it's":      `'it'\''s'`,
		"$HOME":     "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
