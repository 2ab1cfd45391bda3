// Package vm boots the kubevs test VM: a Debian distribution kernel under QEMU (TCG) whose
// root is this machine's own root, read-only over 9p under a throw-away tmpfs overlay, and
// runs one command in it. The host kernel lacks IPVS and dummy links; the guest kernel has
// them (see /work/shared/real-kernel.md for the recipe and its traps).
//
// Prepare downloads the kernel package named by `apt-cache depends linux-image-amd64` and
// caches its vmlinuz and an initramfs (static busybox, the modules kubevs needs and their
// dependencies) under ~/.cache/kubevs/vm/<kernel release>/, rebuilt only when the package
// version or the recipe changes. Run boots it, streams the command's output and returns its
// exit code, read from a marker line on the serial console. The kubevs-vm command
// (test/vm/cmd/kubevs-vm) is the command-line face of both.
package vm
