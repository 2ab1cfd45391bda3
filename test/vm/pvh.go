package vm

// Booting the uncompressed kernel. Under TCG, a bzImage spends many seconds before the kernel
// proper starts: firmware and real-mode setup, then the decompressor unpacking ~60 MB with xz
// in emulated code. qemu can instead load the ELF vmlinux inside the bzImage directly
// through its PVH entry point (a Xen ELF note, which Debian kernels carry), so Prepare
// extracts it once, natively, and the guest starts straight in the kernel. The bzImage stays
// the fallback.

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// xenElfnotePhys32Entry is the note type of the PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY).
const xenElfnotePhys32Entry = 18

// bzPayload returns the compressed kernel inside a bzImage, as the x86 boot protocol's
// header (version 2.08 or later) locates it, and its uncompressed size, which the kernel's
// build appends to the payload as a little-endian uint32.
func bzPayload(b []byte) ([]byte, int64, error) {
	if len(b) < 0x250 || string(b[0x202:0x206]) != "HdrS" {
		return nil, 0, errors.New("not a bzImage: no HdrS boot header")
	}
	if v := binary.LittleEndian.Uint16(b[0x206:]); v < 0x208 {
		return nil, 0, fmt.Errorf("bzImage boot protocol %#x predates payload fields", v)
	}
	setup := int(b[0x1f1])
	if setup == 0 {
		setup = 4
	}
	start := (setup + 1) * 512
	off := int(binary.LittleEndian.Uint32(b[0x248:]))
	n := int(binary.LittleEndian.Uint32(b[0x24c:]))
	if start+off+n > len(b) || n <= 4 {
		return nil, 0, fmt.Errorf("bzImage payload of %d bytes at %d does not fit in %d", n, start+off, len(b))
	}
	p := b[start+off : start+off+n]
	return p[:n-4], int64(binary.LittleEndian.Uint32(p[n-4:])), nil
}

// decompressor names the tool that decompresses a kernel payload, from its magic bytes.
func decompressor(p []byte) (string, error) {
	for _, d := range []struct{ magic, tool string }{
		{"\xfd7zXZ\x00", "xz"}, {"\x1f\x8b", "gzip"}, {"\x28\xb5\x2f\xfd", "zstd"},
	} {
		if bytes.HasPrefix(p, []byte(d.magic)) {
			return d.tool, nil
		}
	}
	return "", fmt.Errorf("unknown kernel compression (magic % x)", p[:min(len(p), 6)])
}

// hasPVHEntry reports whether the ELF file has a PVH entry point note.
func hasPVHEntry(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("open kernel %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return false, fmt.Errorf("read notes of %s: %w", path, err)
		}
		for len(data) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(data[0:]))
			descsz := int(binary.LittleEndian.Uint32(data[4:]))
			typ := binary.LittleEndian.Uint32(data[8:])
			name := data[12:min(len(data), 12+namesz)]
			if typ == xenElfnotePhys32Entry && bytes.Equal(bytes.TrimRight(name, "\x00"), []byte("Xen")) {
				return true, nil
			}
			next := 12 + align4(namesz) + align4(descsz)
			if next > len(data) {
				break
			}
			data = data[next:]
		}
	}
	return false, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// extractVmlinux writes the ELF kernel inside bzImage to dst and checks that it has a PVH
// entry point.
func extractVmlinux(ctx context.Context, bzImage, dst string) error {
	b, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("read kernel: %w", err)
	}
	payload, size, err := bzPayload(b)
	if err != nil {
		return fmt.Errorf("find compressed kernel in %s: %w", bzImage, err)
	}
	tool, err := decompressor(payload)
	if err != nil {
		return fmt.Errorf("decompress %s: %w", bzImage, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, tool, "-dc")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(payload), out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("decompress %s with %s: %w: %s", bzImage, tool, err, stderr.String())
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Size() != size {
		return fmt.Errorf("decompress %s: got %v bytes, the header says %d (%w)", bzImage, fi.Size(), size, err)
	}
	ok, err := hasPVHEntry(dst)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("kernel %s has no PVH entry point", bzImage)
	}
	return nil
}
