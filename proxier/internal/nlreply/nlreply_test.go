package nlreply

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func ackMsg(seq uint32, errno int32) []byte {
	b := binary.NativeEndian.AppendUint32(nil, unix.SizeofNlMsghdr+4+unix.SizeofNlMsghdr)
	b = binary.NativeEndian.AppendUint16(b, unix.NLMSG_ERROR)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint32(b, uint32(errno))
	return append(b, make([]byte, unix.SizeofNlMsghdr)...) // the request's header
}

// TestParseAcks: acknowledgements land at their request's place, errors as errnos; other
// sequence numbers are skipped; a truncated buffer is an error.
func TestParseAcks(t *testing.T) {
	acks := make([]error, 3)
	b := append(ackMsg(10, 0), ackMsg(9, -int32(unix.EEXIST))...)
	b = append(b, ackMsg(12, -int32(unix.EEXIST))...)
	if n, err := ParseAcks(b, 10, acks); n != 2 || err != nil {
		t.Fatalf("first buffer: %d acks, %v; want 2", n, err)
	}
	if n, err := ParseAcks(ackMsg(11, -int32(unix.ESRCH)), 10, acks); n != 1 || err != nil {
		t.Fatalf("second buffer: %d acks, %v; want 1", n, err)
	}
	if acks[0] != nil || !errors.Is(acks[1], unix.ESRCH) || !errors.Is(acks[2], unix.EEXIST) {
		t.Errorf("acks = %v", acks)
	}
	if _, err := ParseAcks(b[:20], 10, acks); err == nil {
		t.Error("a truncated buffer parsed")
	}
}

// FuzzParseAcks: any buffer parses or fails, never panics, and never counts more
// acknowledgements than messages.
func FuzzParseAcks(f *testing.F) {
	f.Add(append(ackMsg(1, 0), ackMsg(2, -17)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		acks := make([]error, 4)
		if n, err := ParseAcks(b, 1, acks); err == nil && n > len(b)/unix.SizeofNlMsghdr {
			t.Fatalf("%d acknowledgements in %d bytes", n, len(b))
		}
	})
}
