package status

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link/linktest"
)

// The proxier puts NodePorts on the host addresses inside nodePortAddresses and refuses
// externalIPs that are host addresses, so status reads the host's addresses the same way
// and wants the same virtual servers; externalIPs outside externalIPAllowedCIDRs are
// skipped as there.
func TestRunDerivesNodePortAddressesFromHostAddresses(t *testing.T) {
	web := service("default/web", "10.96.0.10", "TCP:80")
	web.Spec.Type = v1.ServiceTypeNodePort
	web.Spec.Ports[0].NodePort = 30080
	web.Spec.ExternalIPs = []string{"203.0.113.7", "198.51.100.7"}
	tests := []struct {
		name      string
		cfg       func(*config.Configuration)
		hosts     []string
		hostsErr  error
		wantVS    []string
		wantCalls int
		wantErr   bool
	}{
		{"no nodePortAddresses: the Node's primary address; hosts read for the guard rails", nil, []string{"192.168.1.10"}, nil,
			[]string{"TCP:10.0.0.1:30080", "TCP:10.96.0.10:80", "TCP:198.51.100.7:80", "TCP:203.0.113.7:80"}, 1, false},
		{"an externalIP that is a host address is refused, as by the proxier", nil, []string{"192.168.1.10", "198.51.100.7"}, nil,
			[]string{"TCP:10.0.0.1:30080", "TCP:10.96.0.10:80", "TCP:203.0.113.7:80"}, 1, false},
		{"nodePortAddresses and the allow-list", func(c *config.Configuration) {
			c.NodePortAddresses = []string{"192.168.1.0/24"}
			c.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
		}, []string{"127.0.0.1", "192.168.1.10", "10.0.0.1"}, nil,
			[]string{"TCP:10.96.0.10:80", "TCP:192.168.1.10:30080", "TCP:203.0.113.7:80"}, 1, false},
		{"a failed read is an error", func(c *config.Configuration) { c.NodePortAddresses = []string{"192.168.1.0/24"} },
			nil, errors.New("no netlink"), nil, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := node("10.244.0.0/24")
			n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}}
			client := fake.NewClientset(objects(n, web)...)
			cfg := config.New()
			cfg.RegistrationDir = filepath.Join(t.TempDir(), "none")
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			calls := 0
			env := Env{API: clientsetSource{client}, IPVS: ipvstest.NewFake(), Link: linktest.NewFake(),
				HostAddresses: func() ([]netip.Addr, error) {
					calls++
					var out []netip.Addr
					for _, h := range tt.hosts {
						out = append(out, netip.MustParseAddr(h))
					}
					return out, tt.hostsErr
				}}
			r, err := Run(context.Background(), testNode, cfg, env)
			if calls != tt.wantCalls {
				t.Errorf("host addresses read %d times, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("Run succeeded, want the read error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range r.Services {
				for _, vs := range s.VirtualServers {
					got = append(got, vs.Protocol+":"+netip.AddrPortFrom(vs.Address, vs.Port).String())
				}
			}
			if diff := cmp.Diff(tt.wantVS, got); diff != "" {
				t.Errorf("virtual servers (-want +got):\n%s", diff)
			}
		})
	}
}
