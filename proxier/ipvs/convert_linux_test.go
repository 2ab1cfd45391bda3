package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

var addrs = cmpopts.EquateComparable(netip.Addr{})

func TestServiceConversion(t *testing.T) {
	tests := []struct {
		name string
		vs   VirtualServer
		want libipvs.Service
	}{
		{
			name: "v4 tcp",
			vs:   VirtualServer{Key: Key{netip.MustParseAddr("10.96.0.1"), TCP, 80}, Scheduler: "rr"},
			want: libipvs.Service{Address: net.IP{10, 96, 0, 1}, Protocol: unix.IPPROTO_TCP, Port: 80, SchedName: "rr", Netmask: 0xFFFFFFFF, AddressFamily: unix.AF_INET},
		},
		{
			name: "v4 in v6 form is v4",
			vs:   VirtualServer{Key: Key{netip.MustParseAddr("::ffff:10.96.0.1"), UDP, 53}, Scheduler: "wrr", Persistent: true, Timeout: 10800},
			want: libipvs.Service{Address: net.IP{10, 96, 0, 1}, Protocol: unix.IPPROTO_UDP, Port: 53, SchedName: "wrr", Flags: 1, Timeout: 10800, Netmask: 0xFFFFFFFF, AddressFamily: unix.AF_INET},
		},
		{
			name: "v6 sctp persistent",
			vs:   VirtualServer{Key: Key{netip.MustParseAddr("fd00::1"), SCTP, 9}, Scheduler: "mh", Persistent: true, Timeout: 60},
			want: libipvs.Service{Address: net.ParseIP("fd00::1"), Protocol: unix.IPPROTO_SCTP, Port: 9, SchedName: "mh", Flags: 1, Timeout: 60, Netmask: 128, AddressFamily: unix.AF_INET6},
		},
		{
			name: "timeout without persistence is not sent",
			vs:   VirtualServer{Key: Key{netip.MustParseAddr("fd00::1"), TCP, 80}, Scheduler: "sh", Timeout: 60},
			want: libipvs.Service{Address: net.ParseIP("fd00::1"), Protocol: unix.IPPROTO_TCP, Port: 80, SchedName: "sh", Netmask: 128, AddressFamily: unix.AF_INET6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toService(tt.vs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("toService (-want +got):\n%s", diff)
			}
			// What the kernel answers: the same plus the hashed flag and statistics.
			got.Flags |= 0x2
			got.Stats.Connections = 3
			back, _, ok, err := parseService(svcMsg(1, got, Stats{})[unix.SizeofNlMsghdr:])
			if err != nil {
				t.Fatal(err)
			}
			want := tt.vs
			want.Address = want.Address.Unmap()
			if !want.Persistent {
				want.Timeout = 0
			}
			if !ok {
				t.Fatal("parseService refused toService's output")
			}
			if diff := cmp.Diff(want, back, addrs); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConversionRefusals(t *testing.T) {
	if _, err := toService(VirtualServer{Key: Key{Protocol: TCP, Port: 80}, Scheduler: "rr"}); err == nil {
		t.Error("toService accepted a virtual server without address")
	}
	if _, err := toService(VirtualServer{Key: Key{netip.MustParseAddr("10.0.0.1"), "ICMP", 0}, Scheduler: "rr"}); err == nil {
		t.Error("toService accepted ICMP")
	}
	k := Key{netip.MustParseAddr("10.96.0.1"), TCP, 80}
	for _, rs := range []RealServer{
		{Address: netip.MustParseAddr("fd00::2"), Port: 80, Weight: 1},
		{Address: netip.MustParseAddr("10.244.0.2"), Port: 80, Weight: -1},
		{Port: 80},
	} {
		if _, err := toDestination(k, rs); err == nil {
			t.Errorf("toDestination accepted %v", rs)
		}
	}
	if _, _, ok, _ := parseService(svcMsg(1, &libipvs.Service{FWMark: 7, AddressFamily: unix.AF_INET, SchedName: "rr"}, Stats{})[unix.SizeofNlMsghdr:]); ok {
		t.Error("parseService described a firewall-mark service")
	}
}

func TestDestinationConversion(t *testing.T) {
	k := Key{netip.MustParseAddr("10.96.0.1"), TCP, 80}
	rs := RealServer{Address: netip.MustParseAddr("10.244.0.2"), Port: 8080, Weight: 3, ActiveConns: 9}
	d, err := toDestination(k, rs)
	if err != nil {
		t.Fatal(err)
	}
	want := libipvs.Destination{Address: net.IP{10, 244, 0, 2}, Port: 8080, Weight: 3, ConnectionFlags: libipvs.ConnectionFlagMasq, AddressFamily: unix.AF_INET}
	if diff := cmp.Diff(want, *d); diff != "" {
		t.Errorf("toDestination (-want +got):\n%s", diff)
	}
}

func TestMapErr(t *testing.T) {
	other := errors.New("other")
	tests := []struct {
		name     string
		err      error
		cmd      errnoMeaning
		sentinel error // nil: neither ErrExist nor ErrNotFound
	}{
		{"duplicate service", unix.EEXIST, serviceCmd, ErrExist},
		{"duplicate destination", unix.EEXIST, destCmd, ErrExist},
		{"absent service", unix.ESRCH, serviceCmd, ErrNotFound},
		{"absent service of destination", unix.ESRCH, destCmd, ErrNotFound},
		{"absent destination", unix.ENOENT, destCmd, ErrNotFound},
		{"unknown scheduler", unix.ENOENT, serviceCmd, nil},
		{"invalid", unix.EINVAL, serviceCmd, nil},
		{"wrapped errno", fmt.Errorf("x: %w", unix.EEXIST), serviceCmd, ErrExist},
		{"not an errno", other, destCmd, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapErr(tt.err, tt.cmd)
			if !errors.Is(got, tt.err) {
				t.Errorf("%v no longer matches %v", got, tt.err)
			}
			for _, s := range []error{ErrExist, ErrNotFound} {
				if errors.Is(got, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(%v, %v) = %v", got, s, errors.Is(got, s))
				}
			}
		})
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error // returned by successive attempts; nil after they run out
		wantCalls int
		wantErr   error
		wantWaits []time.Duration
	}{
		{"success", nil, 1, nil, nil},
		{"permanent", []error{unix.EEXIST}, 1, unix.EEXIST, nil},
		{"transient then success", []error{unix.EINTR, unix.ENOBUFS}, 3, nil, []time.Duration{time.Millisecond, 2 * time.Millisecond}},
		{"transient then permanent", []error{unix.EBUSY, unix.ESRCH}, 2, unix.ESRCH, []time.Duration{time.Millisecond}},
		{"gives up", []error{unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY}, 5, unix.EBUSY,
			[]time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var waits []time.Duration
			err := retry(func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			}, func(d time.Duration) { waits = append(waits, d) })
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}
