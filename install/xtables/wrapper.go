package xtables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
)

// Name is the wrapper's own name: run under it, it takes subcommands (detect).
const Name = "kubevs-iptables-wrapper"

// Tools are the names the image links to the wrapper and the wrapper relinks to the chosen
// backend. The suffixed names (iptables-nft-save, iptables-legacy-restore, ...) come with
// Debian's iptables package and always name their own backend.
var Tools = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// Wrapper is kubevs-iptables-wrapper. Dir holds the multi-call binaries and the links in
// Tools (/usr/sbin in the image).
type Wrapper struct {
	Dir    string
	Run    Runner
	Exec   func(path string, argv, env []string) error // replaces the process on success
	Stdout io.Writer
	Stderr io.Writer
}

// ExecRunner runs the program and returns its standard output.
func ExecRunner(ctx context.Context, path string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, path, args...).Output()
}

// Main runs the wrapper with the process's arguments and returns the exit code (when the exec
// of the backend fails or the usage is wrong). Run as one of Tools, it detects the backend,
// relinks Tools to it, and execs it with the same arguments; a relink that fails (a read-only
// image) is reported and the tool still runs on the detected backend. Run as Name, `detect`
// prints the backend and the reason, changing nothing.
func (w *Wrapper) Main(ctx context.Context, argv []string) int {
	name := filepath.Base(argv[0])
	if name == Name {
		if len(argv) != 2 || argv[1] != "detect" {
			fmt.Fprintf(w.Stderr, "usage: %s detect\n  (or run it as one of %v)\n", Name, Tools)
			return 2
		}
		mode, reason := Detect(ctx, w.Dir, w.Run)
		fmt.Fprintf(w.Stdout, "%s: %s\n", mode.Multi(), reason)
		return 0
	}
	if !slices.Contains(Tools, name) {
		fmt.Fprintf(w.Stderr, "%s: run as %q, want one of %v\n", Name, name, Tools)
		return 2
	}
	mode, _ := Detect(ctx, w.Dir, w.Run)
	if err := Relink(w.Dir, mode); err != nil {
		// Never print "nf_tables" here: the proxier reads the combined output of
		// `iptables --version` and takes that word for the backend.
		fmt.Fprintf(w.Stderr, "%s: warning: %v\n", Name, err)
	}
	bin := filepath.Join(w.Dir, mode.Multi())
	if err := w.Exec(bin, append([]string{name}, argv[1:]...), os.Environ()); err != nil {
		fmt.Fprintf(w.Stderr, "%s: exec %s: %v\n", Name, bin, err)
		return 1
	}
	return 0 // only a fake Exec returns
}

// Relink points every name in Tools in dir at the backend's multi-call binary (a relative
// symlink, replaced atomically). It is idempotent; concurrent calls that chose the same
// backend agree.
func Relink(dir string, m Mode) error {
	var errs []error
	for _, tool := range Tools {
		dst := filepath.Join(dir, tool)
		tmp := filepath.Join(dir, "."+tool+".tmp"+strconv.Itoa(os.Getpid()))
		_ = os.Remove(tmp)
		if err := os.Symlink(m.Multi(), tmp); err != nil {
			errs = append(errs, fmt.Errorf("link %s to %s: %w", dst, m.Multi(), err))
			continue
		}
		if err := os.Rename(tmp, dst); err != nil {
			_ = os.Remove(tmp)
			errs = append(errs, fmt.Errorf("link %s to %s: %w", dst, m.Multi(), err))
		}
	}
	return errors.Join(errs...)
}
