package vm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2/ktesting"
)

// fakeQemu stands in for qemu-system-x86_64: it finds the run's nonce in -append and the
// control folder in -virtfs, and plays a guest per FAKE_QEMU_MODE.
const fakeQemu = `#!/bin/sh
for a; do
	case $a in
	*kubevs.nonce=*) nonce=${a##*kubevs.nonce=} ;;
	*mount_tag=kvctl*) ctl=${a#local,path=}; ctl=${ctl%%,mount_tag=*} ;;
	esac
done
M="KUBEVS-VM-$nonce"
echo "SeaBIOS (fake)"
case $FAKE_QEMU_MODE in
exit)
	echo "$M READY 1.50"
	tail -n 1 "$ctl/command.sh"
	printf 'no newline'
	echo
	echo "$M EXIT 7"
	;;
panic)
	echo "$M READY 1.50"
	echo "[    2.0] Kernel panic - not syncing: fake"
	;;
setup)
	echo "modprobe: module ip_vs not found"
	echo "$M SETUP-FAILED modprobe ip_vs"
	;;
hang)
	echo "$M READY 1.50"
	exec sleep 600
	;;
esac
`

// TestRunWithFakeQemu checks Run's handling of the console without booting anything.
func TestRunWithFakeQemu(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte(fakeQemu), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("KUBEVS_STRICT", "")
	t.Setenv("CI", "")
	_, ctx := ktesting.NewTestContext(t)
	img := &Image{Vmlinuz: "/nonexistent/vmlinux", Initrd: "/nonexistent/initrd.cpio"}

	t.Run("exit code and output", func(t *testing.T) {
		t.Setenv("FAKE_QEMU_MODE", "exit")
		var out bytes.Buffer
		res, err := Run(ctx, Options{Image: img, Command: []string{"echo", "hi there"}, Dir: "/work", Stdout: &out, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 7 || res.GuestUptime != "1.50" || res.Boot <= 0 || res.Total < res.Boot {
			t.Errorf("result = %+v, want exit code 7, guest uptime 1.50, boot and total times", res)
		}
		want := "exec env -i -- PATH=" + shellQuote(os.Getenv("PATH")) + " HOME=/root LANG=C.UTF-8 KUBEVS_IN_VM=1 echo 'hi there'\nno newline\n"
		if diff := cmp.Diff(want, out.String()); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
	})

	for _, tt := range []struct{ mode, want string }{
		{"panic", "guest stopped before the command ended"},
		{"setup", "guest setup failed"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Setenv("FAKE_QEMU_MODE", tt.mode)
			_, err := Run(ctx, Options{Image: img, Command: []string{"true"}, Timeout: time.Minute})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run error = %v, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "SeaBIOS (fake)") {
				t.Errorf("Run error lacks the console's last lines: %v", err)
			}
		})
	}

	t.Run("hang ends at the timeout", func(t *testing.T) {
		t.Setenv("FAKE_QEMU_MODE", "hang")
		start := time.Now()
		_, err := Run(ctx, Options{Image: img, Command: []string{"true"}, Timeout: 500 * time.Millisecond})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Run error = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Run took %s with a 500ms timeout", d)
		}
	})
}
