package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

func init() {
	hostname = func() (string, error) { return "Node-A", nil }
}

const header = "apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\n"

func ptr[T any](v T) *T { return &v }

func defaults() *Configuration {
	return &Configuration{
		APIVersion:         APIVersion,
		Kind:               Kind,
		NodeName:           "node-a",
		Scheduler:          "rr",
		SyncPeriod:         metav1.Duration{Duration: 30 * time.Second},
		MinSyncPeriod:      &metav1.Duration{Duration: time.Second},
		FullReadMillicores: ptr[int32](5),
		IPVS:               IPVSConfiguration{StrictARP: ptr(true), GracefulTerminationPeriod: &metav1.Duration{Duration: 60 * time.Second}},
		MetricsBindAddress: "127.0.0.1:10249",
		HealthzBindAddress: "127.0.0.1:10256",
		NodeAPISocket:      "/run/kubevs/proxier.sock",
		RegistrationDir:    "/run/kubevs/registrations",
		StateDir:           "/var/lib/kubevs",
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(c *Configuration)
	}{
		{name: "header only gives the defaults", yaml: header, want: func(*Configuration) {}},
		{
			name: "every field",
			yaml: header + `nodeName: worker-1
kubeconfig: /etc/kubevs/kubeconfig
clusterCIDRs: [10.244.0.0/16, "fd00:10:244::/56"]
masqueradeAll: true
scheduler: wlc
syncPeriod: 1m
minSyncPeriod: 0s
fullReadMillicores: 50
ipvs:
  tcpTimeout: 900s
  tcpFinTimeout: 120s
  udpTimeout: 300s
  excludeCIDRs: [192.168.10.0/24]
  strictARP: false
  gracefulTerminationPeriod: 0s
nodePortAddresses: [192.168.1.0/24]
externalIPAllowedCIDRs: [203.0.113.0/24]
loadBalancerIngressAllowedCIDRs: [198.51.100.0/24, "2001:db8::/64"]
serviceCIDRs: [10.96.0.0/12, "fd00:10:96::/108"]
metricsBindAddress: 0.0.0.0:9100
metricsAllowNonLoopback: true
healthzBindAddress: 0.0.0.0:10256
nodeAPISocket: /run/kv/p.sock
registrationDir: /run/kv/regs
stateDir: /var/lib/kv
conntrack:
  maxPerCore: 32768
  min: 131072
  tcpEstablishedTimeout: 24h
  tcpCloseWaitTimeout: 1h
  tcpBeLiberal: true
  udpTimeout: 30s
  udpStreamTimeout: 2m
`,
			want: func(c *Configuration) {
				c.NodeName = "worker-1"
				c.Kubeconfig = "/etc/kubevs/kubeconfig"
				c.ClusterCIDRs = []string{"10.244.0.0/16", "fd00:10:244::/56"}
				c.MasqueradeAll = true
				c.Scheduler = "wlc"
				c.SyncPeriod.Duration = time.Minute
				c.MinSyncPeriod = &metav1.Duration{}
				c.FullReadMillicores = ptr[int32](50)
				c.IPVS = IPVSConfiguration{
					TCPTimeout:                metav1.Duration{Duration: 900 * time.Second},
					TCPFinTimeout:             metav1.Duration{Duration: 120 * time.Second},
					UDPTimeout:                metav1.Duration{Duration: 300 * time.Second},
					ExcludeCIDRs:              []string{"192.168.10.0/24"},
					StrictARP:                 ptr(false),
					GracefulTerminationPeriod: &metav1.Duration{},
				}
				c.NodePortAddresses = []string{"192.168.1.0/24"}
				c.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
				c.LoadBalancerIngressAllowedCIDRs = []string{"198.51.100.0/24", "2001:db8::/64"}
				c.ServiceCIDRs = []string{"10.96.0.0/12", "fd00:10:96::/108"}
				c.MetricsBindAddress = "0.0.0.0:9100"
				c.MetricsAllowNonLoopback = true
				c.HealthzBindAddress = "0.0.0.0:10256"
				c.NodeAPISocket = "/run/kv/p.sock"
				c.RegistrationDir = "/run/kv/regs"
				c.StateDir = "/var/lib/kv"
				c.Conntrack = ConntrackConfiguration{
					MaxPerCore: ptr[int32](32768), Min: ptr[int32](131072),
					TCPEstablishedTimeout: metav1.Duration{Duration: 24 * time.Hour},
					TCPCloseWaitTimeout:   metav1.Duration{Duration: time.Hour},
					TCPBeLiberal:          true,
					UDPTimeout:            metav1.Duration{Duration: 30 * time.Second},
					UDPStreamTimeout:      metav1.Duration{Duration: 2 * time.Minute},
				}
			},
		},
		{
			name: "deny all externalIPs",
			yaml: header + "denyAllExternalIPs: true\n",
			want: func(c *Configuration) { c.DenyAllExternalIPs = true },
		},
		{
			name: "ipv6 loopback metrics",
			yaml: header + "metricsBindAddress: \"[::1]:10249\"\n",
			want: func(c *Configuration) { c.MetricsBindAddress = "[::1]:10249" },
		},
		{
			name: "metrics off",
			yaml: header + "metricsDisabled: true\n",
			want: func(c *Configuration) { c.MetricsBindAddress, c.MetricsDisabled = "", true },
		},
		{
			name: "profiling",
			yaml: header + "enableProfiling: true\n",
			want: func(c *Configuration) { c.EnableProfiling = true },
		},
		{
			name: "per-Service traffic metrics",
			yaml: header + "metricsServiceTraffic: true\n",
			want: func(c *Configuration) { c.MetricsServiceTraffic = true },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := defaults()
			tt.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // substring of the error
	}{
		{"unknown field", header + "nodeNmae: x\n", `unknown field "nodeNmae"`},
		{"unknown nested field", header + "ipvs:\n  strictArp: true\n", `unknown field "ipvs.strictArp"`},
		{"field names are case-sensitive", header + "NodeName: x\n", `unknown field "NodeName"`},
		{"duplicate field", header + "scheduler: rr\nscheduler: wrr\n", `"scheduler" already set`},
		{"wrong type", header + "masqueradeAll: [1]\n", `masqueradeAll`},
		{"bad duration", header + "syncPeriod: soon\n", `soon`},
		{"not yaml", "\t:::", `decode configuration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Configuration)
		want   []string // "field: type" of each error, in order
	}{
		{"defaults are valid", func(*Configuration) {}, nil},
		{"apiVersion", func(c *Configuration) { c.APIVersion = "kubevs.io/v1" }, []string{"apiVersion: FieldValueNotSupported"}},
		{"kind", func(c *Configuration) { c.Kind = "KubeProxyConfiguration" }, []string{"kind: FieldValueNotSupported"}},
		{"nodeName missing", func(c *Configuration) { c.NodeName = "" }, []string{"nodeName: FieldValueRequired"}},
		{"nodeName invalid", func(c *Configuration) { c.NodeName = "Node_A" }, []string{"nodeName: FieldValueInvalid"}},
		{"clusterCIDRs not a CIDR", func(c *Configuration) { c.ClusterCIDRs = []string{"10.244.0.0/16", "10.0.0.1"} }, []string{"clusterCIDRs[1]: FieldValueInvalid"}},
		{"clusterCIDRs two of one family", func(c *Configuration) { c.ClusterCIDRs = []string{"10.244.0.0/16", "10.245.0.0/16"} }, []string{"clusterCIDRs[1]: FieldValueInvalid"}},
		{"scheduler", func(c *Configuration) { c.Scheduler = "random" }, []string{"scheduler: FieldValueNotSupported"}},
		{"syncPeriod", func(c *Configuration) { c.SyncPeriod.Duration = -time.Second }, []string{"syncPeriod: FieldValueInvalid", "minSyncPeriod: FieldValueInvalid"}},
		{"minSyncPeriod negative", func(c *Configuration) { c.MinSyncPeriod.Duration = -1 }, []string{"minSyncPeriod: FieldValueInvalid"}},
		{"minSyncPeriod above syncPeriod", func(c *Configuration) { c.MinSyncPeriod.Duration = time.Hour }, []string{"minSyncPeriod: FieldValueInvalid"}},
		{"fullReadMillicores zero", func(c *Configuration) { c.FullReadMillicores = ptr[int32](0) }, []string{"fullReadMillicores: FieldValueInvalid"}},
		{"fullReadMillicores above one CPU", func(c *Configuration) { c.FullReadMillicores = ptr[int32](1001) }, []string{"fullReadMillicores: FieldValueInvalid"}},
		{"ipvs timeouts", func(c *Configuration) {
			c.IPVS.TCPTimeout.Duration = -1
			c.IPVS.TCPFinTimeout.Duration = -1
			c.IPVS.UDPTimeout.Duration = -1
		}, []string{"ipvs.tcpTimeout: FieldValueInvalid", "ipvs.tcpFinTimeout: FieldValueInvalid", "ipvs.udpTimeout: FieldValueInvalid"}},
		{"ipvs.excludeCIDRs", func(c *Configuration) { c.IPVS.ExcludeCIDRs = []string{"x"} }, []string{"ipvs.excludeCIDRs[0]: FieldValueInvalid"}},
		{"ipvs.gracefulTerminationPeriod", func(c *Configuration) { c.IPVS.GracefulTerminationPeriod.Duration = -1 }, []string{"ipvs.gracefulTerminationPeriod: FieldValueInvalid"}},
		{"conntrack", func(c *Configuration) {
			c.Conntrack.MaxPerCore = ptr[int32](-1)
			c.Conntrack.UDPStreamTimeout.Duration = -1
		}, []string{"conntrack.maxPerCore: FieldValueInvalid", "conntrack.udpStreamTimeout: FieldValueInvalid"}},
		{"clientConnection", func(c *Configuration) {
			c.ClientConnection = ClientConnectionConfiguration{QPS: -1, Burst: -1, ContentType: "text/plain"}
		}, []string{"clientConnection.qps: FieldValueInvalid", "clientConnection.burst: FieldValueInvalid", "clientConnection.contentType: FieldValueNotSupported"}},
		{"nodePortAddresses", func(c *Configuration) { c.NodePortAddresses = []string{"primary"} }, []string{"nodePortAddresses[0]: FieldValueInvalid"}},
		{"externalIPAllowedCIDRs", func(c *Configuration) { c.ExternalIPAllowedCIDRs = []string{"1.2.3.4/33"} }, []string{"externalIPAllowedCIDRs[0]: FieldValueInvalid"}},
		{"denyAllExternalIPs with an allow-list", func(c *Configuration) {
			c.DenyAllExternalIPs = true
			c.ExternalIPAllowedCIDRs = []string{"203.0.113.0/24"}
		}, []string{"externalIPAllowedCIDRs: FieldValueForbidden"}},
		{"loadBalancerIngressAllowedCIDRs", func(c *Configuration) {
			c.LoadBalancerIngressAllowedCIDRs = []string{"198.51.100.0/24", "198.51.100.1"}
		}, []string{"loadBalancerIngressAllowedCIDRs[1]: FieldValueInvalid"}},
		{"serviceCIDRs", func(c *Configuration) { c.ServiceCIDRs = []string{"10.96.0.0/12", "fd00::/129"} }, []string{"serviceCIDRs[1]: FieldValueInvalid"}},
		{"metricsBindAddress not host:port", func(c *Configuration) { c.MetricsBindAddress = "127.0.0.1" }, []string{"metricsBindAddress: FieldValueInvalid"}},
		{"metricsBindAddress not loopback", func(c *Configuration) { c.MetricsBindAddress = "0.0.0.0:10249" }, []string{"metricsBindAddress: FieldValueInvalid"}},
		{"metricsBindAddress host name", func(c *Configuration) { c.MetricsBindAddress = "localhost:10249" }, []string{"metricsBindAddress: FieldValueInvalid"}},
		{"metricsBindAddress port", func(c *Configuration) { c.MetricsBindAddress = "127.0.0.1:0" }, []string{"metricsBindAddress: FieldValueInvalid"}},
		{"metricsDisabled with an address", func(c *Configuration) { c.MetricsDisabled = true }, []string{"metricsBindAddress: FieldValueForbidden"}},
		{"metricsDisabled without an address", func(c *Configuration) { c.MetricsDisabled, c.MetricsBindAddress = true, "" }, nil},
		{"traffic metrics without a metrics server", func(c *Configuration) {
			c.MetricsDisabled, c.MetricsBindAddress, c.MetricsServiceTraffic = true, "", true
		}, []string{"metricsServiceTraffic: FieldValueForbidden"}},
		{"profiling without a metrics server", func(c *Configuration) { c.MetricsDisabled, c.MetricsBindAddress, c.EnableProfiling = true, "", true }, []string{"enableProfiling: FieldValueForbidden"}},
		{"healthzBindAddress", func(c *Configuration) { c.HealthzBindAddress = "127.0.0.1:http" }, []string{"healthzBindAddress: FieldValueInvalid"}},
		{"healthzBindAddress same as metrics", func(c *Configuration) { c.HealthzBindAddress = c.MetricsBindAddress }, []string{"healthzBindAddress: FieldValueDuplicate"}},
		{"nodeAPISocket", func(c *Configuration) { c.NodeAPISocket = "proxier.sock" }, []string{"nodeAPISocket: FieldValueInvalid"}},
		{"registrationDir", func(c *Configuration) { c.RegistrationDir = "regs" }, []string{"registrationDir: FieldValueInvalid"}},
		{"stateDir", func(c *Configuration) { c.StateDir = "state" }, []string{"stateDir: FieldValueInvalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.mutate(c)
			var got []string
			for _, e := range Validate(c) {
				got = append(got, e.Field+": "+string(e.Type))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeReportsFieldPath(t *testing.T) {
	_, err := Decode([]byte(header + "ipvs:\n  excludeCIDRs: [10.0.0.0/8, nope]\n"))
	if err == nil || !strings.Contains(err.Error(), "ipvs.excludeCIDRs[1]") {
		t.Fatalf("Decode error = %v, want the field path ipvs.excludeCIDRs[1]", err)
	}
}

func TestSetDefaultsIdempotent(t *testing.T) {
	c := New()
	again := New()
	SetDefaults(again)
	if diff := cmp.Diff(c, again); diff != "" {
		t.Errorf("second SetDefaults changed the configuration (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(defaults(), c); diff != "" {
		t.Errorf("New (-want +got):\n%s", diff)
	}
}

func TestParsedCIDRs(t *testing.T) {
	got := ParsedCIDRs([]string{"10.244.1.7/16", "bad", "fd00::1/64"})
	want := []string{"10.244.0.0/16", "fd00::/64"}
	var gotS []string
	for _, p := range got {
		gotS = append(gotS, p.String())
	}
	if diff := cmp.Diff(want, gotS); diff != "" {
		t.Errorf("ParsedCIDRs (-want +got):\n%s", diff)
	}
}

// FuzzDecode checks that Decode never panics and that a configuration it accepts survives a
// round trip through YAML unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(header))
	f.Add([]byte(header + "scheduler: wrr\nipvs:\n  excludeCIDRs: [10.0.0.0/8]\n"))
	f.Add([]byte(header + "syncPeriod: 1m\nminSyncPeriod: 2m\n"))
	f.Add([]byte("kind: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted configuration: %v", err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("decode own output %q: %v", out, err)
		}
		// An empty list and an absent one mean the same for every list field (all omitempty,
		// none defaulted), so "excludeCIDRs: []" comes back absent (testdata/fuzz/FuzzDecode).
		if diff := cmp.Diff(c, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the configuration (-first +second):\n%s", diff)
		}
	})
}

func TestDefaultsAgreeWithNodeAPI(t *testing.T) {
	if DefaultNodeAPISocket != nodeapi.DefaultSocket {
		t.Errorf("DefaultNodeAPISocket = %q, nodeapi.DefaultSocket = %q", DefaultNodeAPISocket, nodeapi.DefaultSocket)
	}
	if DefaultRegistrationDir != nodeapi.DefaultStoreDir {
		t.Errorf("DefaultRegistrationDir = %q, nodeapi.DefaultStoreDir = %q", DefaultRegistrationDir, nodeapi.DefaultStoreDir)
	}
}
