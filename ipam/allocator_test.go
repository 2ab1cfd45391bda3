package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/ipam/store"
	"github.com/kubevs/kubevs/ipam/store/storetest"
)

var (
	v4  = netip.MustParsePrefix("10.244.1.0/24")
	v6  = netip.MustParsePrefix("fd00:10:244:1::/64")
	v4s = netip.MustParsePrefix("10.0.0.0/29") // usable .2 .. .6
)

func own(id string) store.Owner { return store.Owner{ContainerID: id, IfName: "eth0"} }

func ips(allocs []Allocation) []string {
	var out []string
	for _, a := range allocs {
		out = append(out, a.IP.String())
	}
	return out
}

// step is one operation on an allocator; the table tests run a sequence and compare what
// every step returned and the store's final dump.
type step struct {
	add, del string // owner to allocate for or release
	gc       []string
	corrupt  string // plant a torn record at this address
	want     string // "ip ip", or "err:<substring>"
}

func run(t *testing.T, f *storetest.Fake, ranges []netip.Prefix, steps []step) {
	t.Helper()
	for i, st := range steps {
		var got string
		switch {
		case st.corrupt != "":
			f.Corrupt(netip.MustParseAddr(st.corrupt))
			continue
		case st.add != "":
			a, err := Allocate(f, own(st.add), ranges)
			got = strings.Join(ips(a), " ")
			if err != nil {
				got = "err:" + err.Error()
			}
		case st.del != "":
			r, err := Release(f, own(st.del))
			got = fmt.Sprint(r)
			if err != nil {
				got = "err:" + err.Error()
			}
		case st.gc != nil:
			var valid []store.Owner
			for _, id := range st.gc {
				valid = append(valid, own(id))
			}
			r, err := GC(f, valid)
			var rs []string
			for _, e := range r {
				rs = append(rs, e.IP.String())
			}
			got = strings.Join(rs, " ")
			if err != nil {
				got = "err:" + err.Error()
			}
		}
		if n := f.Unsynced(); n != 0 {
			t.Fatalf("step %d returned with %d reservations or releases not synced: a crash could lose them", i, n)
		}
		if w, ok := strings.CutPrefix(st.want, "err:"); ok {
			if !strings.Contains(got, w) {
				t.Fatalf("step %d: got %q, want an error containing %q", i, got, w)
			}
			continue
		}
		if got != st.want {
			t.Fatalf("step %d (%+v): got %q, want %q", i, st, got, st.want)
		}
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name     string
		ranges   []netip.Prefix
		steps    []step
		wantDump []string
	}{
		{
			name:   "skips network and gateway, round robin after release",
			ranges: []netip.Prefix{v4},
			steps: []step{
				{add: "a", want: "10.244.1.2"},
				{add: "b", want: "10.244.1.3"},
				{del: "a", want: "[10.244.1.2]"},
				{add: "c", want: "10.244.1.4"}, // not the address a just freed
			},
			wantDump: []string{"10.244.1.3 b/eth0", "10.244.1.4 c/eth0"},
		},
		{
			name:   "dual-stack",
			ranges: []netip.Prefix{v4, v6},
			steps: []step{
				{add: "a", want: "10.244.1.2 fd00:10:244:1::2"},
				{add: "b", want: "10.244.1.3 fd00:10:244:1::3"},
			},
			wantDump: []string{"10.244.1.2 a/eth0", "10.244.1.3 b/eth0", "fd00:10:244:1::2 a/eth0", "fd00:10:244:1::3 b/eth0"},
		},
		{
			name:     "ipv6 only",
			ranges:   []netip.Prefix{v6},
			steps:    []step{{add: "a", want: "fd00:10:244:1::2"}},
			wantDump: []string{"fd00:10:244:1::2 a/eth0"},
		},
		{
			name:   "repeated ADD is an error and changes nothing",
			ranges: []netip.Prefix{v4},
			steps: []step{
				{add: "a", want: "10.244.1.2"},
				{add: "a", want: "err:already holds [10.244.1.2]"},
			},
			wantDump: []string{"10.244.1.2 a/eth0"},
		},
		{
			name:   "exhaustion names the range; broadcast never handed out; wrap around",
			ranges: []netip.Prefix{v4s},
			steps: []step{
				{add: "a", want: "10.0.0.2"}, {add: "b", want: "10.0.0.3"}, {add: "c", want: "10.0.0.4"},
				{add: "d", want: "10.0.0.5"}, {add: "e", want: "10.0.0.6"},
				{add: "f", want: "err:no free address in range 10.0.0.0/29: all 5 usable addresses are reserved"},
				{del: "b", want: "[10.0.0.3]"},
				{add: "f", want: "10.0.0.3"},
			},
			wantDump: []string{"10.0.0.2 a/eth0", "10.0.0.3 f/eth0", "10.0.0.4 c/eth0", "10.0.0.5 d/eth0", "10.0.0.6 e/eth0"},
		},
		{
			name:   "a torn record never blocks allocation",
			ranges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/30")}, // one usable address
			steps: []step{
				{corrupt: "10.0.0.2"},
				{add: "a", want: "10.0.0.2"},
			},
			wantDump: []string{"10.0.0.2 a/eth0"},
		},
		{
			name:   "dual-stack is all or nothing",
			ranges: []netip.Prefix{v4, netip.MustParsePrefix("fd00::/126")}, // two usable v6 addresses
			steps: []step{
				{add: "a", want: "10.244.1.2 fd00::2"},
				{add: "b", want: "10.244.1.3 fd00::3"},
				{add: "c", want: "err:no free address in range fd00::/126"},
				{add: "d", want: "err:no free address in range fd00::/126"},
			},
			wantDump: []string{"10.244.1.2 a/eth0", "10.244.1.3 b/eth0", "fd00::2 a/eth0", "fd00::3 b/eth0"},
		},
		{
			name:   "DEL is idempotent",
			ranges: []netip.Prefix{v4},
			steps: []step{
				{add: "a", want: "10.244.1.2"},
				{del: "a", want: "[10.244.1.2]"},
				{del: "a", want: "[]"},
				{del: "never-added", want: "[]"},
			},
		},
		{
			name:   "GC keeps the valid, drops the rest and torn records",
			ranges: []netip.Prefix{v4},
			steps: []step{
				{add: "a", want: "10.244.1.2"}, {add: "b", want: "10.244.1.3"}, {add: "c", want: "10.244.1.4"},
				{corrupt: "10.244.1.9"},
				{gc: []string{"b"}, want: "10.244.1.2 10.244.1.4 10.244.1.9"},
				{gc: []string{"b"}, want: ""},
			},
			wantDump: []string{"10.244.1.3 b/eth0"},
		},
		{
			name:     "range changed: the last-reserved mark outside it is ignored",
			ranges:   []netip.Prefix{v4s},
			steps:    []step{{add: "a", want: "10.0.0.2"}},
			wantDump: []string{"10.0.0.2 a/eth0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := storetest.NewFake()
			if tt.name == "range changed: the last-reserved mark outside it is ignored" {
				_ = f.Lock()
				_ = f.SetLastReserved("ipv4", netip.MustParseAddr("192.168.0.9"))
				_ = f.Unlock()
			}
			run(t, f, tt.ranges, tt.steps)
			if diff := cmp.Diff(tt.wantDump, f.Dump()); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllocateStoreFailureRollsBack(t *testing.T) {
	f := storetest.NewFake()
	boom := errors.New("disk full")
	f.FailReserve[netip.MustParseAddr("fd00:10:244:1::2")] = boom
	_, err := Allocate(f, own("a"), []netip.Prefix{v4, v6})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if d := f.Dump(); len(d) != 0 {
		t.Errorf("a failed allocation left %v", d)
	}
	if n := f.Unsynced(); n != 0 {
		t.Errorf("the rollback left %d unsynced operations", n)
	}
	got, err := Allocate(f, own("a"), []netip.Prefix{v4, v6})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.244.1.2", "fd00:10:244:1::2"}, ips(got)); diff != "" {
		t.Errorf("retry (-want +got):\n%s", diff)
	}
	if !IsExhausted(fmt.Errorf("x: %w", ErrExhausted)) {
		t.Error("IsExhausted does not see a wrapped ErrExhausted")
	}
}

func TestSizeAndBounds(t *testing.T) {
	tests := []struct {
		p           string
		size        string
		first, last string
	}{
		{"10.244.1.0/24", "253", "10.244.1.2", "10.244.1.254"},
		{"10.0.0.0/30", "1", "10.0.0.2", "10.0.0.2"},
		{"fd00::/126", "2", "fd00::2", "fd00::3"},
		{"fd00::/64", "18446744073709551614", "fd00::2", "fd00::ffff:ffff:ffff:ffff"},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.p)
		first, last := usable(p)
		got := []string{Size(p).String(), first.String(), last.String()}
		if diff := cmp.Diff([]string{tt.size, tt.first, tt.last}, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.p, diff)
		}
	}
}
