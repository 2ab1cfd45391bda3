//go:build linux

package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
)

// cli runs the ipset (or another) command in the test's namespace.
func cli(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cliMembers returns the members `ipset list` prints, comments stripped, sorted.
func cliMembers(t *testing.T, set string) []Entry {
	t.Helper()
	out := cli(t, "ipset", "list", set)
	_, members, _ := strings.Cut(out, "Members:\n")
	var got []Entry
	for _, line := range strings.Split(strings.TrimSpace(members), "\n") {
		if line == "" {
			continue
		}
		e, _, _ := strings.Cut(line, " ")
		got = append(got, Entry(e))
	}
	slices.Sort(got)
	return got
}

func TestLinuxEveryType(t *testing.T) {
	tests := []struct {
		set  Set
		add  []Entry // as a caller may write them
		want []Entry // as ipset list prints them
		del  []Entry
	}{
		{
			set:  Set{Name: "KUBE-LOOP-BACK", Type: HashIPPortIP, Comment: "pods reaching themselves through a Service"},
			add:  []Entry{"10.244.0.2,tcp:8080,10.244.0.2", "10.244.0.3,UDP:53,10.244.0.3"},
			want: []Entry{"10.244.0.2,tcp:8080,10.244.0.2", "10.244.0.3,udp:53,10.244.0.3"},
			del:  []Entry{"10.244.0.3,udp:53,10.244.0.3"},
		},
		{
			set:  Set{Name: "KUBE-LOOP-BACK-6", Type: HashIPPortIP, Family: IPv6},
			add:  []Entry{"fd00:10:244::2,tcp:8080,fd00:10:244::2"},
			want: []Entry{"fd00:10:244::2,tcp:8080,fd00:10:244::2"},
		},
		{
			set:  Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort},
			add:  []Entry{"10.96.0.10,udp:53", "10.96.0.10,tcp:53", "10.96.0.1,443", "10.96.0.2,sctp:9"},
			want: []Entry{"10.96.0.1,tcp:443", "10.96.0.10,tcp:53", "10.96.0.10,udp:53", "10.96.0.2,sctp:9"},
			del:  []Entry{"10.96.0.10,tcp:53"},
		},
		{
			set:  Set{Name: "KUBE-CLUSTER-IP-6", Type: HashIPPort, Family: IPv6},
			add:  []Entry{"fd00:96::a,udp:53"},
			want: []Entry{"fd00:96::a,udp:53"},
		},
		{
			set:  Set{Name: "KUBE-LB-SRC", Type: HashIPPortNet},
			add:  []Entry{"192.0.2.1,tcp:80,10.1.2.3/8", "192.0.2.1,tcp:80,203.0.113.7"},
			want: []Entry{"192.0.2.1,tcp:80,10.0.0.0/8", "192.0.2.1,tcp:80,203.0.113.7"},
		},
		{
			set:  Set{Name: "KUBE-LB-SRC-6", Type: HashIPPortNet, Family: IPv6},
			add:  []Entry{"2001:db8::1,tcp:80,fd00::/64"},
			want: []Entry{"2001:db8::1,tcp:80,fd00::/64"},
		},
		{
			set:  Set{Name: "KUBE-CLUSTER-CIDR", Type: HashNet},
			add:  []Entry{"10.244.0.0/16", "192.0.2.9/32"},
			want: []Entry{"10.244.0.0/16", "192.0.2.9"},
		},
		{
			set:  Set{Name: "KUBE-CLUSTER-CIDR-6", Type: HashNet, Family: IPv6},
			add:  []Entry{"fd00:10:244::/56"},
			want: []Entry{"fd00:10:244::/56"},
		},
		{
			set:  Set{Name: "KUBE-EXTERNAL-IP", Type: HashIP},
			add:  []Entry{"192.0.2.10", "192.0.2.11"},
			want: []Entry{"192.0.2.10", "192.0.2.11"},
			del:  []Entry{"192.0.2.10"},
		},
		{
			set:  Set{Name: "KUBE-NODE-PORT-TCP", Type: BitmapPort, PortFrom: 30000, PortTo: 32767},
			add:  []Entry{"30000", "30080", "32767"},
			want: []Entry{"30000", "30080", "32767"},
			del:  []Entry{"30080"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.set.Name, func(t *testing.T) {
			testenv.EnterNetns(t)
			l := New()
			if err := l.CreateSet(tt.set); err != nil {
				t.Fatalf("CreateSet: %v", err)
			}
			if err := l.CreateSet(tt.set); !errors.Is(err, ErrExist) {
				t.Fatalf("second CreateSet = %v, want ErrExist", err)
			}
			if err := l.AddEntries(tt.set.Name, tt.add...); err != nil {
				t.Fatalf("AddEntries: %v", err)
			}
			// Present members are not an error.
			if err := l.AddEntries(tt.set.Name, tt.add...); err != nil {
				t.Fatalf("AddEntries again: %v", err)
			}
			got, err := l.Entries(tt.set.Name)
			if err != nil {
				t.Fatalf("Entries: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, cliMembers(t, tt.set.Name)); diff != "" {
				t.Errorf("ipset list members (-want +got):\n%s", diff)
			}
			if tt.set.Comment != "" && !strings.Contains(cli(t, "ipset", "list", tt.set.Name), `comment "`+tt.set.Comment+`"`) {
				t.Errorf("ipset list does not show the set's comment on its members")
			}
			if err := l.DeleteEntries(tt.set.Name, tt.del...); err != nil {
				t.Fatalf("DeleteEntries: %v", err)
			}
			// Absent members are not an error.
			if err := l.DeleteEntries(tt.set.Name, tt.del...); err != nil {
				t.Fatalf("DeleteEntries again: %v", err)
			}
			left := slices.DeleteFunc(slices.Clone(tt.want), func(e Entry) bool { return slices.Contains(tt.del, e) })
			if diff := cmp.Diff(left, cliMembers(t, tt.set.Name), cmp.Comparer(func(a, b []Entry) bool {
				return len(a) == 0 && len(b) == 0 || slices.Equal(a, b)
			})); diff != "" {
				t.Errorf("after delete, ipset list members (-want +got):\n%s", diff)
			}
			if err := l.DestroySet(tt.set.Name); err != nil {
				t.Fatalf("DestroySet: %v", err)
			}
			if err := l.DestroySet(tt.set.Name); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second DestroySet = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestLinuxErrors(t *testing.T) {
	testenv.EnterNetns(t)
	l := New()
	if _, err := l.Entries("NOPE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Entries of a missing set = %v, want ErrNotFound", err)
	}
	if err := l.AddEntries("NOPE", "10.0.0.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddEntries to a missing set = %v, want ErrNotFound", err)
	}
	if err := l.DeleteEntries("NOPE", "10.0.0.1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteEntries from a missing set = %v, want ErrNotFound", err)
	}
	if err := l.DestroySet(""); err == nil {
		t.Errorf("DestroySet(\"\") must refuse: it would destroy every set")
	}
	// A set of the same name but another type exists: still ErrExist.
	cli(t, "ipset", "create", "KUBE-X", "hash:net")
	if err := l.CreateSet(Set{Name: "KUBE-X", Type: HashIP}); !errors.Is(err, ErrExist) {
		t.Errorf("CreateSet over another type = %v, want ErrExist", err)
	}
	// Entries that do not fit are reported; the others still land.
	err := l.AddEntries("KUBE-X", "10.0.0.0/8", "fd00::/64", "10.0.0.0,tcp:1", "192.0.2.0/24")
	if err == nil || !strings.Contains(err.Error(), "fd00::/64") {
		t.Errorf("AddEntries with misfits = %v, want an error naming fd00::/64", err)
	}
	if diff := cmp.Diff([]Entry{"10.0.0.0/8", "192.0.2.0/24"}, cliMembers(t, "KUBE-X")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	// A rule referencing the set makes it in use.
	cli(t, "iptables", "-w", "-A", "INPUT", "-m", "set", "--match-set", "KUBE-X", "src", "-j", "ACCEPT")
	if err := l.DestroySet("KUBE-X"); !errors.Is(err, ErrInUse) {
		t.Errorf("DestroySet of a referenced set = %v, want ErrInUse", err)
	}
	cli(t, "iptables", "-w", "-D", "INPUT", "-m", "set", "--match-set", "KUBE-X", "src", "-j", "ACCEPT")
	if err := l.DestroySet("KUBE-X"); err != nil {
		t.Errorf("DestroySet once unreferenced: %v", err)
	}
}

func TestLinuxSetsListsForeignSets(t *testing.T) {
	testenv.EnterNetns(t)
	l := New()
	cli(t, "ipset", "create", "foreign", "hash:ip")
	if err := l.CreateSet(Set{Name: "KUBE-A", Type: HashIP, Family: IPv6}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Sets()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"KUBE-A", "foreign"}, got); diff != "" {
		t.Errorf("Sets (-want +got):\n%s", diff)
	}
	// An adopted set (created by someone else) works without CreateSet: a fresh Linux.
	cli(t, "ipset", "create", "KUBE-B", "hash:ip,port", "comment")
	cli(t, "ipset", "add", "KUBE-B", "10.0.0.1,tcp:80", "comment", "kept")
	fresh := New()
	if _, err := fresh.Entries("KUBE-B"); err != nil {
		t.Fatal(err)
	}
	if err := fresh.AddEntries("KUBE-B", "10.0.0.2,udp:53"); err != nil {
		t.Fatal(err)
	}
	if out := cli(t, "ipset", "list", "KUBE-B"); !strings.Contains(out, `10.0.0.2,udp:53 comment "kept"`) {
		t.Errorf("adopted set's comment not carried to a new member:\n%s", out)
	}
}

// TestLinuxTenThousand measures one AddEntries of 10,000 members (the figure in the report).
func TestLinuxTenThousand(t *testing.T) {
	testenv.EnterNetns(t)
	l := New()
	for _, s := range []Set{
		{Name: "KUBE-CLUSTER-IP", Type: HashIPPort},
		{Name: "KUBE-LOOP-BACK", Type: HashIPPortIP, Comment: "kubevs loopback"},
	} {
		if err := l.CreateSet(s); err != nil {
			t.Fatal(err)
		}
		entries := make([]Entry, 10000)
		for i := range entries {
			ip := netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
			entries[i] = Entry(fmt.Sprintf("%s,tcp:%d", ip, 80+i%3))
			if s.Type == HashIPPortIP {
				entries[i] += Entry("," + ip.String())
			}
		}
		start := time.Now()
		if err := l.AddEntries(s.Name, entries...); err != nil {
			t.Fatal(err)
		}
		add := time.Since(start)
		start = time.Now()
		got, err := l.Entries(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		list := time.Since(start)
		if len(got) != len(entries) {
			t.Fatalf("%s holds %d entries, want %d", s.Name, len(got), len(entries))
		}
		start = time.Now()
		if n, err := l.Counts(); err != nil || n[s.Name] != len(entries) {
			t.Fatalf("Counts()[%s] = %d, %v; want %d", s.Name, n[s.Name], err, len(entries))
		}
		count := time.Since(start)
		start = time.Now()
		if err := l.AddEntries(s.Name, entries...); err != nil {
			t.Fatal(err)
		}
		again := time.Since(start)
		start = time.Now()
		if err := l.DeleteEntries(s.Name, entries...); err != nil {
			t.Fatal(err)
		}
		del := time.Since(start)
		if got, _ := l.Entries(s.Name); len(got) != 0 {
			t.Fatalf("%s holds %d entries after deleting all", s.Name, len(got))
		}
		t.Logf("%s (%s): add 10000 in one call %v, list %v, count %v, re-add (all present) %v, delete %v",
			s.Name, s.Type, add, list, count, again, del)
	}
}
