package vm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// Exit codes of the kubevs-vm command besides the guest command's own.
const (
	// ExitUsage means the command line was wrong.
	ExitUsage = 2
	// ExitTimeout means the guest did not finish in time (as timeout(1) reports it).
	ExitTimeout = 124
	// ExitHarness means the VM could not be prepared or booted, or died.
	ExitHarness = 125
	// ExitInterrupted means kubevs-vm was interrupted (SIGINT or SIGTERM) and stopped the VM.
	ExitInterrupted = 130
)

const usage = `usage:
  kubevs-vm run [--timeout 20m] [--env K=V]... [--share HOSTDIR[:GUESTDIR]]...
                [--memory MiB] [--cpus N] [--link LOCALPORT:PEERPORT | --user-net] [--boot-log]
                -- command args...
      boot the test VM, run the command in the current directory (the host's root is
      read-only, with a throw-away writable layer over it; shares are writable), print its
      output and exit with its exit code (124: timeout, 125: VM failure, 130: interrupted);
      --link gives it eth0 on an L2 segment with the guest run with the ports crossed;
      --user-net gives it eth0 on qemu's user-mode network, where 10.0.2.2 is the loopback
      of kubevs-vm's own network namespace (the command sets eth0 to 10.0.2.15/24)
  kubevs-vm prepare
      download the kernel and build the initramfs into the cache, if needed
`

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Main is the kubevs-vm command: it parses args (without the program name), runs the
// subcommand and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := klog.FromContext(ctx)
	if len(args) == 0 || (args[0] != "run" && args[0] != "prepare") {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	fs := flag.NewFlagSet("kubevs-vm "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var env, shares listFlag
	timeout := fs.Duration("timeout", 20*time.Minute, "bound on the whole run, boot included")
	fs.Var(&env, "env", "KEY=VALUE added to the command's environment (repeatable)")
	fs.Var(&shares, "share", "HOSTDIR[:GUESTDIR] mounted writable in the guest (repeatable)")
	memory := fs.Int("memory", 6144, "guest memory in MiB")
	cpus := fs.Int("cpus", 2, "guest CPUs")
	link := fs.String("link", "", "LOCALPORT:PEERPORT: eth0 on a segment shared with another guest (UDP on 127.0.0.1)")
	userNet := fs.Bool("user-net", false, "eth0 on qemu's user-mode network: 10.0.2.2 is this namespace's loopback")
	bootLog := fs.Bool("boot-log", false, "print the kernel and /init console output to stderr")
	cacheRoot := fs.String("cache", "", "image cache (default ~/.cache/kubevs/vm)")
	if err := fs.Parse(args[1:]); err != nil {
		return ExitUsage
	}
	if args[0] == "run" && fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	var l2 *Link
	if *link != "" {
		var err error
		if l2, err = ParseLink(*link); err != nil {
			fmt.Fprintf(stderr, "kubevs-vm: --link: %v\n", err)
			return ExitUsage
		}
	}
	if l2 != nil && *userNet {
		fmt.Fprintln(stderr, "kubevs-vm: --link and --user-net both give eth0; use one")
		return ExitUsage
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			fmt.Fprintf(stderr, "kubevs-vm: --env %q is not KEY=VALUE\n", kv)
			return ExitUsage
		}
	}
	if *cacheRoot == "" {
		root, err := DefaultCacheRoot()
		if err != nil {
			logger.Error(err, "Cannot find the image cache")
			return ExitHarness
		}
		*cacheRoot = root
	}
	start := time.Now()
	img, err := Prepare(ctx, *cacheRoot)
	if err != nil {
		logger.Error(err, "Cannot prepare the test VM image")
		return ExitHarness
	}
	if args[0] == "prepare" {
		logger.Info("Test VM image ready", "kernel", img.Kernel.Package, "built", img.Built, "elapsed", time.Since(start).Round(time.Millisecond))
		return 0
	}
	o := Options{
		Image: img, Command: fs.Args(), Env: env, Timeout: *timeout, Stdout: stdout,
		MemoryMiB: *memory, CPUs: *cpus, Link: l2, UserNet: *userNet,
	}
	for _, s := range shares {
		host, guest, _ := strings.Cut(s, ":")
		o.Shares = append(o.Shares, Share{HostDir: host, GuestDir: guest})
	}
	if *bootLog {
		o.BootLog = stderr
	}
	res, err := Run(ctx, o)
	if err != nil {
		logger.Error(err, "Test VM run failed")
		switch {
		case errors.Is(err, ErrTimeout):
			return ExitTimeout
		case ctx.Err() != nil:
			return ExitInterrupted
		}
		return ExitHarness
	}
	logger.Info("Test VM command finished", "exitCode", res.ExitCode,
		"boot", res.Boot.Round(time.Millisecond), "total", res.Total.Round(time.Millisecond),
		"prepare", img.Built)
	return res.ExitCode
}
