package vm

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// ErrTimeout is returned (wrapped) by Run when the guest did not finish in time.
var ErrTimeout = errors.New("test VM timed out")

// Share is a writable host folder mounted in the guest.
type Share struct {
	// HostDir is the folder on the host; Run creates it if missing.
	HostDir string
	// GuestDir is where it appears inside the guest's root; empty means HostDir.
	GuestDir string
}

// Options configure one guest run.
type Options struct {
	// Image is what to boot (see Prepare).
	Image *Image
	// Command is the program and its arguments, run inside the guest's root.
	Command []string
	// Dir is the working directory of the command; it names a host folder, which the guest
	// sees at the same path. Empty means the current directory.
	Dir string
	// Env holds KEY=VALUE pairs added to the command's environment, which otherwise holds
	// only PATH (the host's), HOME=/root, LANG=C.UTF-8, KUBEVS_IN_VM=1, and CI and
	// KUBEVS_STRICT when the host sets them (so strictness carries into the guest).
	Env []string
	// Shares are writable folders; the host's root itself is read-only in the guest, under a
	// writable layer that is thrown away when the guest stops.
	Shares []Share
	// Timeout bounds the whole run, boot included; zero means 20 minutes.
	Timeout time.Duration
	// MemoryMiB and CPUs size the guest; zero means 6144 MiB and 2 CPUs.
	MemoryMiB, CPUs int
	// Link, if set, gives the guest eth0 on an L2 segment shared with one other guest.
	Link *Link
	// UserNet gives the guest eth0 on qemu's user-mode network, where UserNetHost is the
	// loopback of kubevs-vm's network namespace (usernet.go). Not with Link.
	UserNet bool
	// Stdout receives the command's output (stdout and stderr, merged by the console) line
	// by line as it comes. Nil discards it.
	Stdout io.Writer
	// BootLog, if not nil, receives the console output before the command starts (kernel
	// and /init messages). Run always keeps the last lines for its errors.
	BootLog io.Writer
}

// Result describes a finished guest run.
type Result struct {
	// ExitCode is the command's exit code inside the guest.
	ExitCode int
	// Boot is the time from starting qemu to the command starting in the guest.
	Boot time.Duration
	// GuestUptime is the guest's own uptime when the command started, as /proc/uptime says.
	GuestUptime string
	// Total is the time from starting qemu to the command's end.
	Total time.Duration
}

// Run boots the guest, runs the command in it and returns its exit code. A guest that does
// not boot, panics, or stops before the command ends is an error, and so is the timeout
// (wrapping ErrTimeout); qemu never outlives Run (nor this process: it gets SIGKILL when
// the parent dies).
func Run(ctx context.Context, o Options) (Result, error) {
	logger := klog.FromContext(ctx)
	if len(o.Command) == 0 {
		return Result{}, errors.New("run in test VM: no command")
	}
	if o.Link != nil && o.UserNet {
		return Result{}, errors.New("run in test VM: a link and the user-mode network would both be eth0")
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
	}
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return Result{}, fmt.Errorf("find working directory: %w", err)
		}
		o.Dir = wd
	}
	ctl, err := os.MkdirTemp("", "kubevs-vm-")
	if err != nil {
		return Result{}, fmt.Errorf("create control folder: %w", err)
	}
	defer os.RemoveAll(ctl)
	shares, err := writeControl(ctl, o)
	if err != nil {
		return Result{}, err
	}
	nonce := newNonce()
	args := QemuArgs(QemuConfig{
		Image: o.Image, Control: ctl, Shares: shares, Nonce: nonce, MemoryMiB: o.MemoryMiB, CPUs: o.CPUs,
		Link: o.Link, UserNet: o.UserNet,
	})
	ctx, cancel := context.WithTimeoutCause(ctx, o.Timeout, fmt.Errorf("%w after %s", ErrTimeout, o.Timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	var qemuErr strings.Builder
	cmd.Stderr = &qemuErr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("pipe qemu output: %w", err)
	}
	logger.V(1).Info("Starting qemu", "args", args)
	start := time.Now()
	if err := startPinned(cmd); err != nil {
		return Result{}, fmt.Errorf("start qemu: %w", err)
	}
	res, last, seen := follow(ctx, cmd, stdout, nonce, start, o)
	waitErr := cmd.Wait()
	switch {
	case seen == Exit:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("run %q in test VM: %w; last console lines:\n%s", o.Command, context.Cause(ctx), last)
	case seen == SetupFailed:
		return res, fmt.Errorf("run %q in test VM: guest setup failed; last console lines:\n%s", o.Command, last)
	default:
		qemu := "exited"
		if waitErr != nil {
			qemu = waitErr.Error()
		}
		if e := strings.TrimSpace(qemuErr.String()); e != "" {
			qemu += ": " + e
		}
		return res, fmt.Errorf("run %q in test VM: guest stopped before the command ended (kernel panic or qemu failure; qemu %s); last console lines:\n%s",
			o.Command, qemu, last)
	}
}

// follow reads the console until EOF and returns the result, the last console lines, and the
// kind of the final marker seen (BootLine if none). Once the EXIT marker is seen, the guest
// gets a few seconds to power off before qemu is killed.
func follow(ctx context.Context, cmd *exec.Cmd, r io.Reader, nonce string, start time.Time, o Options) (Result, string, EventKind) {
	logger := klog.FromContext(ctx)
	var res Result
	seen := BootLine
	con := NewConsole(nonce)
	tail := newTail(40)
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			for _, ev := range con.Line(strings.TrimSuffix(line, "\n")) {
				switch ev.Kind {
				case BootLine:
					tail.add(ev.Text)
					if o.BootLog != nil {
						fmt.Fprintln(o.BootLog, ev.Text)
					}
				case Output:
					tail.add(ev.Text)
					if o.Stdout != nil {
						fmt.Fprintln(o.Stdout, ev.Text)
					}
				case Ready:
					res.Boot, res.GuestUptime = time.Since(start), ev.Text
					logger.Info("Test VM ready", "boot", res.Boot.Round(time.Millisecond), "guestUptime", ev.Text+"s")
				case Exit:
					res.ExitCode, res.Total, seen = ev.Code, time.Since(start), Exit
					time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
				case SetupFailed:
					seen = SetupFailed
					tail.add("setup failed: " + ev.Text)
				}
			}
		}
		if err != nil {
			return res, tail.String(), seen
		}
	}
}

// startPinned starts cmd from an OS thread that stays alive until cmd has exited. The
// parent-death signal (SIGKILL for qemu) fires when the thread that started the child ends,
// not the process, and Go may end threads; so a goroutine locks one and keeps it.
func startPinned(cmd *exec.Cmd) error {
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			// Process.Wait is not called here (cmd.Wait owns it); waitid with WNOWAIT
			// blocks until the child ends without reaping it.
			var info unix.Siginfo
			_ = unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		}
	}()
	return <-started
}

// writeControl fills the control folder the guest mounts at /run/kubevs-vm: the command
// script and the list of shares (9p tag and guest path). It returns the shares with
// GuestDir filled in.
func writeControl(ctl string, o Options) ([]Share, error) {
	var shares []Share
	var list strings.Builder
	for i, s := range o.Shares {
		host, err := filepath.Abs(s.HostDir)
		if err != nil {
			return nil, fmt.Errorf("resolve share %s: %w", s.HostDir, err)
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			return nil, fmt.Errorf("create share %s: %w", host, err)
		}
		guest := s.GuestDir
		if guest == "" {
			guest = host
		}
		if !filepath.IsAbs(guest) || strings.ContainsAny(guest, "\n") {
			return nil, fmt.Errorf("share %s: guest path %q must be absolute and on one line", host, guest)
		}
		shares = append(shares, Share{HostDir: host, GuestDir: guest})
		fmt.Fprintf(&list, "%s %s\n", shareTag(i), filepath.Clean(guest))
	}
	if err := os.WriteFile(filepath.Join(ctl, "shares"), []byte(list.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write share list: %w", err)
	}
	var env []string
	for _, k := range []string{"CI", "KUBEVS_STRICT"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	script := GuestScript(o.Dir, append(env, o.Env...), o.Command)
	if err := os.WriteFile(filepath.Join(ctl, "command.sh"), []byte(script), 0o755); err != nil {
		return nil, fmt.Errorf("write command script: %w", err)
	}
	return shares, nil
}

func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail keeps the last n lines.
type tail struct {
	n     int
	lines []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }
