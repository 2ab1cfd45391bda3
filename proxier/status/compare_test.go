package status

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

func key(p ipvs.Protocol, addr string, port uint16) ipvs.Key {
	return ipvs.Key{Address: netip.MustParseAddr(addr), Protocol: p, Port: port}
}

func rs(ap string, weight int) ipvs.RealServer {
	a := netip.MustParseAddrPort(ap)
	return ipvs.RealServer{Address: a.Addr(), Port: a.Port(), Weight: int32(weight)}
}

// wrs is a wanted real server.
func wrs(ap string, weight int) desired.RealServer {
	return desired.NewRealServer(netip.MustParseAddrPort(ap), int32(weight))
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// web wants TCP 10.96.0.10:80 (rr) with two endpoints, and the VIP.
func web() Want {
	return Want{
		Service: types.NamespacedName{Namespace: "default", Name: "web"},
		Type:    "ClusterIP",
		State: desired.Service{
			VirtualServers: []desired.VirtualServer{{
				VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 80), Scheduler: "rr"},
				RealServers:   []desired.RealServer{wrs("10.244.0.5:8080", 1), wrs("10.244.1.6:8080", 1)},
			}},
			VIPs: addrs("10.96.0.10"),
		},
	}
}

// dns wants UDP 10.96.0.53:53 with persistence and one endpoint.
func dns() Want {
	return Want{
		Service: types.NamespacedName{Namespace: "kube-system", Name: "dns"},
		Type:    "ClusterIP",
		State: desired.Service{
			VirtualServers: []desired.VirtualServer{{
				VirtualServer: ipvs.VirtualServer{Key: key(ipvs.UDP, "10.96.0.53", 53), Scheduler: "lc", Persistent: true, Timeout: 10800},
				RealServers:   []desired.RealServer{wrs("10.244.0.7:53", 1)},
			}},
			VIPs: addrs("10.96.0.53"),
		},
	}
}

// inSync is the kernel both Services want.
func inSync() Snapshot {
	return Snapshot{
		Dummy: "kube-ipvs0", DummyPresent: true,
		Addresses: addrs("10.96.0.10", "10.96.0.53"),
		VirtualServers: []KernelVS{
			{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 80), Scheduler: "rr"},
				RealServers: []ipvs.RealServer{rs("10.244.0.5:8080", 1), rs("10.244.1.6:8080", 1)}},
			{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.UDP, "10.96.0.53", 53), Scheduler: "lc", Persistent: true, Timeout: 10800},
				RealServers: []ipvs.RealServer{rs("10.244.0.7:53", 1)}},
		},
	}
}

func TestCompareDrift(t *testing.T) {
	const webVS, dnsVS = "TCP:10.96.0.10:80", "UDP:10.96.0.53:53"
	tests := []struct {
		name    string
		opts    CompareOptions
		edit    func(*Snapshot)
		want    []Drift
		rsState map[string]string // real server -> state, for the checked ones
	}{
		{name: "in sync", edit: func(*Snapshot) {}, want: []Drift{},
			rsState: map[string]string{"10.244.0.5:8080": RSOk, "10.244.0.7:53": RSOk}},
		{name: "missing virtual server", edit: func(s *Snapshot) { s.VirtualServers = s.VirtualServers[1:] },
			want:    []Drift{{Kind: MissingVirtualServer, Service: "default/web", VirtualServer: webVS, Want: "rr, 2 real servers"}},
			rsState: map[string]string{"10.244.0.5:8080": RSMissing}},
		{name: "wrong scheduler and persistence", edit: func(s *Snapshot) {
			s.VirtualServers[1].Scheduler = "rr"
			s.VirtualServers[1].Timeout = 60
		}, want: []Drift{
			{Kind: WrongScheduler, Service: "kube-system/dns", VirtualServer: dnsVS, Want: "lc", Have: "rr"},
			{Kind: WrongPersistence, Service: "kube-system/dns", VirtualServer: dnsVS, Want: "persistent 10800s", Have: "persistent 60s"},
		}},
		{name: "persistence off", edit: func(s *Snapshot) { s.VirtualServers[1].Persistent = false }, want: []Drift{
			{Kind: WrongPersistence, Service: "kube-system/dns", VirtualServer: dnsVS, Want: "persistent 10800s", Have: "not persistent"},
		}},
		{name: "missing real server", edit: func(s *Snapshot) { s.VirtualServers[0].RealServers = s.VirtualServers[0].RealServers[1:] },
			want:    []Drift{{Kind: MissingRealServer, Service: "default/web", VirtualServer: webVS, Object: "10.244.0.5:8080", Want: "weight 1", Have: "absent"}},
			rsState: map[string]string{"10.244.0.5:8080": RSMissing, "10.244.1.6:8080": RSOk}},
		{name: "wrong weight (a wanted real server left draining)", edit: func(s *Snapshot) { s.VirtualServers[0].RealServers[1].Weight = 0 },
			want:    []Drift{{Kind: WrongWeight, Service: "default/web", VirtualServer: webVS, Object: "10.244.1.6:8080", Want: "weight 1", Have: "weight 0"}},
			rsState: map[string]string{"10.244.1.6:8080": RSWrongWeight}},
		{name: "extra real server with weight", edit: func(s *Snapshot) {
			s.VirtualServers[0].RealServers = append(s.VirtualServers[0].RealServers, rs("10.244.2.9:8080", 1))
		}, want: []Drift{{Kind: ExtraRealServer, Service: "default/web", VirtualServer: webVS, Object: "10.244.2.9:8080", Want: "absent", Have: "weight 1"}},
			rsState: map[string]string{"10.244.2.9:8080": RSExtra}},
		{name: "TCP real server at weight 0 is draining, no drift", edit: func(s *Snapshot) {
			s.VirtualServers[0].RealServers = append(s.VirtualServers[0].RealServers, rs("10.244.2.9:8080", 0))
		}, want: []Drift{}, rsState: map[string]string{"10.244.2.9:8080": RSDraining}},
		{name: "UDP real server at weight 0 is extra: the proxier deletes those at once", edit: func(s *Snapshot) {
			s.VirtualServers[1].RealServers = append(s.VirtualServers[1].RealServers, rs("10.244.2.9:53", 0))
		}, want: []Drift{{Kind: ExtraRealServer, Service: "kube-system/dns", VirtualServer: dnsVS, Object: "10.244.2.9:53", Want: "absent", Have: "weight 0"}}},
		{name: "missing VIP", edit: func(s *Snapshot) { s.Addresses = addrs("10.96.0.53") },
			want: []Drift{{Kind: MissingVIP, Service: "default/web", Object: "10.96.0.10", Want: "bound to kube-ipvs0", Have: "not bound"}}},
		{name: "missing dummy link reported once", edit: func(s *Snapshot) { s.DummyPresent, s.Addresses = false, nil },
			want: []Drift{{Kind: MissingDummy, Object: "kube-ipvs0", Want: "2 addresses bound", Have: "no such link"}}},
		{name: "orphans: a virtual server and an address nobody wants", edit: func(s *Snapshot) {
			s.Addresses = addrs("10.96.0.10", "10.96.0.53", "10.96.0.99")
			s.VirtualServers = append(s.VirtualServers,
				KernelVS{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 443), Scheduler: "rr"}},
				KernelVS{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.99", 80), Scheduler: "wrr"},
					RealServers: []ipvs.RealServer{rs("10.1.1.1:80", 1)}})
		}, want: []Drift{
			{Kind: OrphanVirtualServer, VirtualServer: "TCP:10.96.0.10:443", Have: "rr, 0 real servers"},
			{Kind: OrphanVirtualServer, VirtualServer: "TCP:10.96.0.99:80", Have: "wrr, 1 real servers"},
			{Kind: OrphanVIP, Object: "10.96.0.99", Have: "bound to kube-ipvs0"},
		}},
		{name: "virtual servers on unbound addresses are not kubevs's", edit: func(s *Snapshot) {
			s.VirtualServers = append(s.VirtualServers, KernelVS{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "192.0.2.1", 80), Scheduler: "rr"}})
		}, want: []Drift{}},
		{name: "excludeCIDRs protect a bound virtual server", opts: CompareOptions{ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.10/32")}},
			edit: func(s *Snapshot) {
				s.VirtualServers = append(s.VirtualServers, KernelVS{VirtualServer: ipvs.VirtualServer{Key: key(ipvs.TCP, "10.96.0.10", 22), Scheduler: "rr"}})
			}, want: []Drift{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := inSync()
			tt.edit(&snap)
			r := Compare(tt.opts, []Want{web(), dns()}, snap)
			if diff := cmp.Diff(tt.want, r.Drift); diff != "" {
				t.Errorf("drift (-want +got):\n%s", diff)
			}
			got := map[string]string{}
			for _, s := range r.Services {
				for _, v := range s.VirtualServers {
					for _, x := range v.RealServers {
						ap := netip.AddrPortFrom(x.Address, x.Port).String()
						if _, ok := tt.rsState[ap]; ok {
							got[ap] = x.State
						}
					}
				}
			}
			if diff := cmp.Diff(tt.rsState, got, cmpEmptyMap); diff != "" {
				t.Errorf("real server states (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpAddr compares netip values by ==.
var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

var cmpEmptyMap = cmp.FilterValues(func(a, b map[string]string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestCompareReportShape(t *testing.T) {
	snap := inSync()
	snap.VirtualServers[0].RealServers[0].ActiveConns = 3
	snap.VirtualServers[0].RealServers[0].InactiveConns = 7
	skipped := dns()
	skipped.Skipped = []string{`service kube-system/dns: annotation kubevs.io/scheduler: unknown scheduler "x", using "lc"`}
	dup := Want{Service: types.NamespacedName{Namespace: "default", Name: "copy"}, Type: "NodePort", State: web().State}
	r := Compare(CompareOptions{Node: "node-a"}, []Want{web(), skipped, dup}, snap)
	want := Report{
		Node: "node-a", Dummy: "kube-ipvs0", Drift: []Drift{},
		Services: []ServiceReport{
			{Namespace: "default", Name: "web", Type: "ClusterIP", VirtualServers: []VSReport{{
				Protocol: "TCP", Address: netip.MustParseAddr("10.96.0.10"), Port: 80, Scheduler: "rr", InKernel: true,
				RealServers: []RSReport{
					{Address: netip.MustParseAddr("10.244.0.5"), Port: 8080, Weight: 1, ActiveConns: 3, InactiveConns: 7, State: RSOk},
					{Address: netip.MustParseAddr("10.244.1.6"), Port: 8080, Weight: 1, State: RSOk},
				},
			}}},
			{Namespace: "kube-system", Name: "dns", Type: "ClusterIP", VirtualServers: []VSReport{{
				Protocol: "UDP", Address: netip.MustParseAddr("10.96.0.53"), Port: 53, Scheduler: "lc", Persistent: true, Timeout: 10800, InKernel: true,
				RealServers: []RSReport{{Address: netip.MustParseAddr("10.244.0.7"), Port: 53, Weight: 1, State: RSOk}},
			}}},
			{Namespace: "default", Name: "copy", Type: "NodePort", VirtualServers: []VSReport{}},
		},
		Warnings: []string{
			skipped.Skipped[0],
			"service default/copy: virtual server TCP:10.96.0.10:80 is also wanted by default/web",
		},
	}
	if diff := cmp.Diff(want, r, cmpAddr); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}
