package store

import (
	"bytes"
	"testing"
)

// FuzzParseRecord: parseRecord accepts exactly what record writes, so no cut-short or
// altered reservation file can pass for a complete one.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("c1\neth0\n"), "c1", "eth0")
	f.Add([]byte(""), "a", "b")
	f.Add([]byte("abc\neth"), "abc", "eth0")
	f.Fuzz(func(t *testing.T, data []byte, id, ifname string) {
		if o, ok := parseRecord(data); ok && !bytes.Equal(record(o), data) {
			t.Fatalf("parseRecord(%q) = %+v, but record of it is %q", data, o, record(o))
		}
		o := Owner{ContainerID: id, IfName: ifname}
		if ValidateOwner(o) != nil {
			return
		}
		full := record(o)
		if got, ok := parseRecord(full); !ok || got != o {
			t.Fatalf("round trip of %+v: %+v, %v", o, got, ok)
		}
		for i := range len(full) {
			if _, ok := parseRecord(full[:i]); ok {
				t.Fatalf("the first %d bytes of %q parse as a complete record", i, full)
			}
		}
	})
}
