package vm

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

//go:embed init.sh
var initScript string

// stampFile records, in an image directory, what the image was built from.
const stampFile = "stamp"

// busyboxPath is where Debian's busybox-static installs its binary.
const busyboxPath = "/bin/busybox"

// Image is a kernel and an initramfs ready to boot.
type Image struct {
	Kernel Kernel
	// Vmlinuz and Initrd are the files to pass to qemu's -kernel and -initrd. Vmlinuz is the
	// uncompressed ELF kernel (booted through PVH, see pvh.go) when it could be extracted,
	// else the bzImage.
	Vmlinuz, Initrd string
	// Built is true when Prepare had to download and build the image.
	Built bool
}

// DefaultCacheRoot is ~/.cache/kubevs/vm (or $XDG_CACHE_HOME/kubevs/vm).
func DefaultCacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory: %w", err)
	}
	return filepath.Join(dir, "kubevs", "vm"), nil
}

// stamp is the content of stampFile.
type stamp struct {
	Kernel Kernel
	Recipe string
}

func (s stamp) String() string {
	return fmt.Sprintf("package=%s\nversion=%s\nrecipe=%s\n", s.Kernel.Package, s.Kernel.Version, s.Recipe)
}

func parseStamp(text string) stamp {
	var s stamp
	for _, l := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "package":
			s.Kernel.Package = v
		case "version":
			s.Kernel.Version = v
		case "recipe":
			s.Recipe = v
		}
	}
	return s
}

// recipe hashes everything besides the kernel that goes into an image, so that a change to
// /init or to the module lists rebuilds the cache.
func recipe() string {
	h := sha256.New()
	fmt.Fprintf(h, "pvh cpio\x00%s\x00%s\x00%s\x00", initScript, strings.Join(BootModules, ","), strings.Join(PackedModules, ","))
	if fi, err := os.Stat(busyboxPath); err == nil {
		fmt.Fprintf(h, "%d", fi.Size())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Prepare returns the image for the current Debian kernel, building it under
// cacheRoot/<kernel release>/ when it is missing or was built from another kernel package
// version or recipe. Without apt (offline), it falls back to the newest image in the cache.
// Concurrent callers, also in other processes, serialise on a lock file; the cache is only
// ever replaced whole.
func Prepare(ctx context.Context, cacheRoot string) (*Image, error) {
	logger := klog.FromContext(ctx)
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return nil, fmt.Errorf("create cache %s: %w", cacheRoot, err)
	}
	k, err := resolveCached(ctx, cacheRoot)
	if err != nil && os.Geteuid() == 0 {
		// A fresh machine may have no package lists yet.
		logger.Info("Cannot resolve the kernel package; running apt-get update", "err", err)
		if _, uerr := output(ctx, "apt-get", "update", "-qq"); uerr == nil {
			k, err = resolveCached(ctx, cacheRoot)
		}
	}
	if err != nil {
		cached := cachedKernels(cacheRoot)
		if len(cached) == 0 {
			return nil, err
		}
		k = cached[len(cached)-1]
		logger.Info("Cannot ask apt for the current kernel; using the cached one", "kernel", k.Package, "err", err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheRoot, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock cache %s: %w", cacheRoot, err)
	}
	dir := filepath.Join(cacheRoot, k.Release())
	img := &Image{Kernel: k, Vmlinuz: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.cpio")}
	want := stamp{Kernel: k, Recipe: recipe()}
	if b, err := os.ReadFile(filepath.Join(dir, stampFile)); err == nil && string(b) == want.String() {
		if _, err := os.Stat(filepath.Join(dir, "vmlinux")); err == nil {
			img.Vmlinuz = filepath.Join(dir, "vmlinux")
		}
		return img, nil
	}
	start := time.Now()
	logger.Info("Building the test VM image", "kernel", k.Package, "version", k.Version, "dir", dir)
	tmp, err := os.MkdirTemp(cacheRoot, ".build-")
	if err != nil {
		return nil, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	root, err := download(ctx, k, tmp)
	if err != nil {
		return nil, err
	}
	logger.V(1).Info("Downloaded kernel", "elapsed", time.Since(start).Round(time.Millisecond))
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", out, err)
	}
	if err := copyFile(filepath.Join(root, "boot", "vmlinuz-"+k.Release()), filepath.Join(out, "vmlinuz"), 0o644); err != nil {
		return nil, err
	}
	if err := extractVmlinux(ctx, filepath.Join(out, "vmlinuz"), filepath.Join(out, "vmlinux")); err != nil {
		logger.Info("Booting the compressed kernel (slower under TCG)", "reason", err)
		_ = os.Remove(filepath.Join(out, "vmlinux"))
	} else {
		img.Vmlinuz = filepath.Join(dir, "vmlinux")
	}
	if err := buildInitramfs(ctx, root, k.Release(), filepath.Join(tmp, "stage"), filepath.Join(out, "initrd.cpio")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, stampFile), []byte(want.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write stamp: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove old image %s: %w", dir, err)
	}
	if err := os.Rename(out, dir); err != nil {
		return nil, fmt.Errorf("install image %s: %w", dir, err)
	}
	img.Built = true
	pruneOthers(ctx, cacheRoot, k.Release())
	logger.Info("Built the test VM image", "kernel", k.Package, "elapsed", time.Since(start).Round(time.Millisecond))
	return img, nil
}

// pruneOthers removes the images of other kernel releases from the cache. A guest still
// running from one keeps its open files.
func pruneOthers(ctx context.Context, cacheRoot, keep string) {
	stamps, _ := filepath.Glob(filepath.Join(cacheRoot, "*", stampFile))
	for _, st := range stamps {
		if dir := filepath.Dir(st); filepath.Base(dir) != keep {
			if err := os.RemoveAll(dir); err != nil {
				klog.FromContext(ctx).Info("Cannot remove an old image", "dir", dir, "err", err)
			}
		}
	}
}

// buildInitramfs packs busybox, /init and the module closure of the unpacked kernel package
// at root into a newc cpio archive at out, staging the files in stage. The archive is not
// compressed: gunzip in the guest costs more under TCG than reading the larger file.
func buildInitramfs(ctx context.Context, root, release, stage, out string) error {
	modRoot := filepath.Join(root, "lib", "modules", release)
	if _, err := output(ctx, "depmod", "-b", root, release); err != nil {
		return err
	}
	md, builtin, err := readModuleIndex(modRoot)
	if err != nil {
		return err
	}
	files, err := md.Closure(BootModules, PackedModules, builtin)
	if err != nil {
		return fmt.Errorf("compute module closure of kernel %s: %w", release, err)
	}
	stageMods := filepath.Join(stage, "lib", "modules", release)
	for _, f := range files {
		if err := copyModule(ctx, filepath.Join(modRoot, f), filepath.Join(stageMods, f)); err != nil {
			return err
		}
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		if err := copyFile(filepath.Join(modRoot, f), filepath.Join(stageMods, f), 0o644); err != nil {
			return err
		}
	}
	if _, err := output(ctx, "depmod", "-b", stage, release); err != nil {
		return err
	}
	if err := stageBusybox(stage); err != nil {
		return err
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "ctl", "mnt/host", "mnt/rw", "newroot", "etc/kubevs-vm"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "init"), []byte(initScript), 0o755); err != nil {
		return fmt.Errorf("write init: %w", err)
	}
	list := strings.Join(BootModules, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(stage, "etc", "kubevs-vm", "modules"), []byte(list), 0o644); err != nil {
		return fmt.Errorf("write module list: %w", err)
	}
	return packCpio(ctx, stage, out)
}

func readModuleIndex(modRoot string) (*ModuleDeps, map[string]bool, error) {
	f, err := os.Open(filepath.Join(modRoot, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("open modules.dep: %w", err)
	}
	defer f.Close()
	md, err := ParseModulesDep(f)
	if err != nil {
		return nil, nil, err
	}
	b, err := os.Open(filepath.Join(modRoot, "modules.builtin"))
	if err != nil {
		return nil, nil, fmt.Errorf("open modules.builtin: %w", err)
	}
	defer b.Close()
	builtin, err := ParseBuiltin(b)
	return md, builtin, err
}

// copyModule copies one module, decompressing .ko.xz and .ko.zst: busybox modprobe, which
// the kernel calls for on-demand loads, reads only plain .ko files.
func copyModule(ctx context.Context, src, dst string) error {
	var tool string
	switch {
	case strings.HasSuffix(src, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(src, ".ko.zst"):
		tool = "zstd"
	default:
		return copyFile(src, dst, 0o644)
	}
	dst = dst[:strings.LastIndex(dst, ".ko")+3]
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	data, err := output(ctx, tool, "-dc", src)
	if err != nil {
		return fmt.Errorf("decompress module %s: %w", src, err)
	}
	if err := os.WriteFile(dst, []byte(data), 0o644); err != nil {
		return fmt.Errorf("write module %s: %w", dst, err)
	}
	return nil
}

// stageBusybox copies the static busybox and links sh and modprobe to it; /init installs
// the other applets. The kernel's request_module runs /sbin/modprobe.
func stageBusybox(stage string) error {
	f, err := elf.Open(busyboxPath)
	if err != nil {
		return fmt.Errorf("open %s (install busybox-static): %w", busyboxPath, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("stage busybox: %s is dynamically linked; install busybox-static", busyboxPath)
		}
	}
	if err := copyFile(busyboxPath, filepath.Join(stage, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(stage, "sbin"), 0o755); err != nil {
		return fmt.Errorf("create sbin: %w", err)
	}
	for link, target := range map[string]string{"bin/sh": "busybox", "sbin/modprobe": "/bin/busybox"} {
		if err := os.Symlink(target, filepath.Join(stage, link)); err != nil {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return nil
}

// packCpio writes the tree at stage as a newc archive owned by root.
func packCpio(ctx context.Context, stage, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "sh", "-c", "find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet")
	cmd.Dir = stage
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pack initramfs %s: %w: %s", out, err, stderr.String())
	}
	return f.Close()
}

// copyFile copies src to dst (creating dst's directory) with the given mode.
func copyFile(src, dst string, mode os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}
