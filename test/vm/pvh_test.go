package vm

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeBzImage builds the parts of a bzImage that bzPayload reads: setup sectors, the boot
// header, then the payload followed by its uncompressed size.
func fakeBzImage(setupSects byte, version uint16, off int, payload string, size uint32) []byte {
	setup := int(setupSects)
	if setup == 0 {
		setup = 4
	}
	start := (setup + 1) * 512
	b := make([]byte, start+off+len(payload)+4)
	b[0x1f1] = setupSects
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], version)
	binary.LittleEndian.PutUint32(b[0x248:], uint32(off))
	binary.LittleEndian.PutUint32(b[0x24c:], uint32(len(payload)+4))
	copy(b[start+off:], payload)
	binary.LittleEndian.PutUint32(b[start+off+len(payload):], size)
	return b
}

func TestBzPayload(t *testing.T) {
	tests := []struct {
		name     string
		image    []byte
		want     string
		wantSize int64
		wantErr  string
	}{
		{name: "xz payload", image: fakeBzImage(27, 0x20f, 0x3b0, "\xfd7zXZ\x00rest", 1234), want: "\xfd7zXZ\x00rest", wantSize: 1234},
		{name: "zero setup sectors mean four", image: fakeBzImage(0, 0x20f, 16, "\x1f\x8bgz", 99), want: "\x1f\x8bgz", wantSize: 99},
		{name: "not a bzImage", image: make([]byte, 4096), wantErr: "no HdrS"},
		{name: "old protocol", image: fakeBzImage(4, 0x206, 0, "x", 1), wantErr: "predates"},
		{name: "truncated", image: fakeBzImage(4, 0x20f, 0, "abcdef", 1)[:2565], wantErr: "does not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, size, err := bzPayload(tt.image)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("bzPayload error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" || size != tt.wantSize {
				t.Errorf("bzPayload = %q (size %d), want %q (size %d)", got, size, tt.want, tt.wantSize)
			}
		})
	}
}

func TestDecompressor(t *testing.T) {
	for in, want := range map[string]string{"\xfd7zXZ\x00..": "xz", "\x1f\x8b\x08": "gzip", "\x28\xb5\x2f\xfd..": "zstd", "BZh9": ""} {
		got, err := decompressor([]byte(in))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("decompressor(% x) = %q, %v; want %q", in, got, err, want)
		}
	}
}
