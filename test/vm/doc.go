// Package vm boots the kubevs test VM: a Debian distribution kernel under QEMU (TCG) whose
// root is this machine's own root, read-only over 9p under a throw-away tmpfs overlay, and
// runs one command in it. The host kernel lacks IPVS and dummy links; the guest kernel has
// them (see /work/shared/real-kernel.md for the recipe and its traps).
//
// Prepare downloads the kernel package named by `apt-cache depends linux-image-amd64` and
// caches it and an initramfs (static busybox, the modules kubevs needs and their
// dependencies) under ~/.cache/kubevs/vm/<kernel release>/, rebuilt only when the package
// version or the recipe changes. Run boots it, streams the command's output and returns its
// exit code, read from a marker line on the serial console. The kubevs-vm command
// (test/vm/cmd/kubevs-vm) is the command-line face of both.
//
// What the command sees in the guest:
//   - the host's whole tree at the same paths (so binaries built on the host, /tmp
//     included, run as they are), writable, but writes vanish with the guest; host files
//     changed while the guest runs may look stale (the root is mounted with cache=loose);
//   - fresh proc, sys (with cgroup2), dev, dev/pts, dev/shm and run; /lib/modules holds
//     the guest kernel's modules, and modprobe works;
//   - writable shares (Options.Shares, kubevs-vm --share) whose writes reach the host at once;
//   - loopback up and no other network device; sysctls (ip_forward...) at kernel defaults;
//   - root, the same working directory, and a clean environment (see Options.Env).
package vm
