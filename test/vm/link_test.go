package vm

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		in, local, peer, mac, err string
	}{
		{in: "7001:7002", local: "127.0.0.1:7001", peer: "127.0.0.1:7002", mac: "52:54:00:4b:1b:59"},
		{in: "7002:7001", local: "127.0.0.1:7002", peer: "127.0.0.1:7001", mac: "52:54:00:4b:1b:5a"},
		{in: "7001", err: "want LOCALPORT:PEERPORT"},
		{in: "0:7002", err: "local port"},
		{in: "7001:70000", err: "peer port"},
		{in: "7001:7001", err: "the same"},
	} {
		l, err := ParseLink(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseLink(%q) error = %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLink(%q): %v", tc.in, err)
			continue
		}
		if got := []string{l.Local.String(), l.Peer.String(), l.mac()}; !cmp.Equal(got, []string{tc.local, tc.peer, tc.mac}) {
			t.Errorf("ParseLink(%q) = local, peer, mac %v, want %s %s %s", tc.in, got, tc.local, tc.peer, tc.mac)
		}
	}
}

// TestQemuArgsLink: a Link adds one virtio card on a UDP socket netdev after the shares, and
// keeps -nic none (no user-mode network besides it).
func TestQemuArgsLink(t *testing.T) {
	l, err := ParseLink("7001:7002")
	if err != nil {
		t.Fatal(err)
	}
	got := QemuArgs(QemuConfig{Image: &Image{}, Link: l})
	want := []string{"-netdev", "socket,id=l2,udp=127.0.0.1:7002,localaddr=127.0.0.1:7001",
		"-device", "virtio-net-pci,netdev=l2,mac=52:54:00:4b:1b:59"}
	if diff := cmp.Diff(want, got[len(got)-4:]); diff != "" {
		t.Errorf("QemuArgs tail (-want +got):\n%s", diff)
	}
	if s := strings.Join(got, " "); !strings.Contains(s, "-nic none") {
		t.Errorf("QemuArgs with a link dropped -nic none: %s", s)
	}
	if s := strings.Join(QemuArgs(QemuConfig{Image: &Image{}}), " "); strings.Contains(s, "-netdev") {
		t.Errorf("QemuArgs without a link has a netdev: %s", s)
	}
}

// TestQemuArgsUserNet: the user-mode network is one virtio card on qemu's slirp, IPv4 only,
// with the host's loopback at UserNetHost; the default -nic stays none.
func TestQemuArgsUserNet(t *testing.T) {
	got := QemuArgs(QemuConfig{Image: &Image{}, UserNet: true})
	want := []string{"-netdev", "user,id=un,ipv6=off,net=10.0.2.0/24,host=10.0.2.2", "-device", "virtio-net-pci,netdev=un"}
	if diff := cmp.Diff(want, got[len(got)-4:]); diff != "" {
		t.Errorf("QemuArgs tail (-want +got):\n%s", diff)
	}
	if s := strings.Join(got, " "); !strings.Contains(s, "-nic none") {
		t.Errorf("QemuArgs with the user-mode network dropped -nic none: %s", s)
	}
}
