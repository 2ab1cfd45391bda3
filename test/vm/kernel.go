package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// metaPackage is the Debian package that always depends on the current kernel image.
const metaPackage = "linux-image-amd64"

// Kernel names one Debian kernel image package.
type Kernel struct {
	// Package is the binary package, e.g. "linux-image-6.1.0-56-amd64".
	Package string
	// Version is the package version, e.g. "6.1.192-2". A new version rebuilds the cache.
	Version string
}

// Release is the kernel release (`uname -r` in the guest), e.g. "6.1.0-56-amd64".
func (k Kernel) Release() string { return strings.TrimPrefix(k.Package, "linux-image-") }

// aptLists holds apt's package lists; they change when `apt-get update` brings news.
const aptLists = "/var/lib/apt/lists"

// resolveCached is ResolveKernel with its answer remembered in cacheRoot/resolved for as
// long as apt's package lists stay the same: apt-cache rebuilds its index on every call
// here (no pkgcache.bin), which costs seconds on a busy machine.
func resolveCached(ctx context.Context, cacheRoot string) (Kernel, error) {
	fp := listsFingerprint(aptLists) + "/" + os.Getenv("KUBEVS_VM_KERNEL")
	file := filepath.Join(cacheRoot, "resolved")
	if b, err := os.ReadFile(file); err == nil {
		lists, rest, _ := strings.Cut(string(b), "\n")
		if st := parseStamp(rest); lists == "lists="+fp && st.Kernel.Package != "" && st.Kernel.Version != "" {
			return st.Kernel, nil
		}
	}
	k, err := ResolveKernel(ctx)
	if err != nil {
		return Kernel{}, err
	}
	// Best effort: without the file the next run asks apt again.
	_ = os.WriteFile(file, []byte("lists="+fp+"\n"+stamp{Kernel: k}.String()), 0o644)
	return k, nil
}

// listsFingerprint summarises the names, sizes and times of the files in dir.
func listsFingerprint(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "none"
	}
	h := sha256.New()
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(h, "%s %d %d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ResolveKernel asks apt which kernel image linux-image-amd64 depends on now, and its
// version. The environment variable KUBEVS_VM_KERNEL, if set, names the package instead.
func ResolveKernel(ctx context.Context) (Kernel, error) {
	pkg := os.Getenv("KUBEVS_VM_KERNEL")
	if pkg == "" {
		out, err := output(ctx, "apt-cache", "depends", metaPackage)
		if err != nil {
			return Kernel{}, err
		}
		if pkg, err = parseDepends(out); err != nil {
			return Kernel{}, err
		}
	}
	out, err := output(ctx, "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return Kernel{}, err
	}
	ver := field(out, "Version")
	if ver == "" {
		return Kernel{}, fmt.Errorf("resolve kernel %s: apt-cache show gave no Version", pkg)
	}
	return Kernel{Package: pkg, Version: ver}, nil
}

// parseDepends picks the kernel image from `apt-cache depends linux-image-amd64` output.
func parseDepends(out string) (string, error) {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		// A <name> is a virtual package, which apt-get cannot download.
		if dep, ok := strings.CutPrefix(l, "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return dep, nil
		}
	}
	return "", fmt.Errorf("resolve kernel: no linux-image dependency in apt-cache depends %s output %q", metaPackage, out)
}

// field returns the value of a deb822 field in the first stanza of s.
func field(s, name string) string {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return strings.TrimSpace(v)
		}
		if l == "" {
			break
		}
	}
	return ""
}

// download fetches the kernel's .deb into dir with apt-get download and unpacks it into
// dir/root. It returns the unpacked root.
func download(ctx context.Context, k Kernel, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", k.Package+"="+k.Version)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("download kernel %s=%s: %w: %s", k.Package, k.Version, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, k.Package+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("download kernel %s: expected one .deb in %s, found %d", k.Package, dir, len(debs))
	}
	root := filepath.Join(dir, "root")
	if _, err := output(ctx, "dpkg-deb", "-x", debs[0], root); err != nil {
		return "", err
	}
	if err := os.Remove(debs[0]); err != nil {
		return "", fmt.Errorf("remove %s: %w", debs[0], err)
	}
	return root, nil
}

// cachedKernels lists the kernels already built under cacheRoot, newest release last.
func cachedKernels(cacheRoot string) []Kernel {
	dirs, _ := filepath.Glob(filepath.Join(cacheRoot, "*", stampFile))
	var ks []Kernel
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		st := parseStamp(string(b))
		if st.Kernel.Package != "" {
			ks = append(ks, st.Kernel)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].Package < ks[j].Package })
	return ks
}

// output runs a command and returns its stdout, or an error carrying its stderr.
func output(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
