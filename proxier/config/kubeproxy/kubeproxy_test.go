package kubeproxy

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/proxier/config"
)

const header = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nhostnameOverride: Node-1\n"

func dur(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

// want returns kube-proxy's defaults in kubevs's words for node-1, changed by edit.
func want(edit func(c *config.Configuration)) *config.Configuration {
	c := &config.Configuration{
		APIVersion: config.APIVersion, Kind: config.Kind, NodeName: "node-1",
		Scheduler: "rr", SyncPeriod: dur(30 * time.Second), MinSyncPeriod: ptr.To(dur(0)),
		FullReadMillicores:      ptr.To[int32](config.DefaultFullReadMillicores),
		IPVS:                    config.IPVSConfiguration{StrictARP: ptr.To(false), GracefulTerminationPeriod: ptr.To(dur(60 * time.Second))},
		NodePortAddresses:       []string{"0.0.0.0/0", "::/0"},
		HealthzBindAddress:      "0.0.0.0:10256",
		MetricsBindAddress:      "127.0.0.1:10249",
		MetricsAllowNonLoopback: true,
		NodeAPISocket:           config.DefaultNodeAPISocket,
		RegistrationDir:         config.DefaultRegistrationDir,
		StateDir:                config.DefaultStateDir,
		Conntrack: config.ConntrackConfiguration{
			MaxPerCore: ptr.To[int32](32768), Min: ptr.To[int32](131072),
			TCPEstablishedTimeout: dur(24 * time.Hour), TCPCloseWaitTimeout: dur(time.Hour),
		},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func TestDecodeKubeadmConfigMap(t *testing.T) {
	data, err := os.ReadFile("testdata/kubeadm-ipvs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), `hostnameOverride: ""`, `hostnameOverride: node-1`, 1))
	// kube-proxy's own defaults written out are not reported either.
	data = []byte(strings.ReplaceAll(string(data), "  masqueradeBit: null", "  masqueradeBit: 14"))
	data = []byte(strings.Replace(string(data), "oomScoreAdj: null", "oomScoreAdj: -999", 1))
	c, rep, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	// kubeadm writes every field, nearly all empty: none is worth a report.
	if len(rep) != 0 {
		t.Errorf("report: %v, want none", rep)
	}
	exp := want(func(c *config.Configuration) {
		c.Kubeconfig = "/var/lib/kube-proxy/kubeconfig.conf"
		c.ClusterCIDRs = []string{"10.244.0.0/16", "fd00:10:244::/56"}
	})
	if d := cmp.Diff(exp, c); d != "" {
		t.Errorf("configuration (-want +got):\n%s", d)
	}
}

func TestDecodeHonoured(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		edit       func(c *config.Configuration)
	}{
		{"empty file: kube-proxy's defaults", "", nil},
		{"ipvs block", `
ipvs:
  scheduler: lc
  syncPeriod: 1m
  minSyncPeriod: 2s
  excludeCIDRs: [192.0.2.0/24]
  strictARP: true
  tcpTimeout: 900s
  tcpFinTimeout: 120s
  udpTimeout: 300s
`, func(c *config.Configuration) {
			c.Scheduler = "lc"
			c.SyncPeriod = dur(time.Minute)
			c.MinSyncPeriod = ptr.To(dur(2 * time.Second))
			c.IPVS.ExcludeCIDRs = []string{"192.0.2.0/24"}
			c.IPVS.StrictARP = ptr.To(true)
			c.IPVS.TCPTimeout, c.IPVS.TCPFinTimeout, c.IPVS.UDPTimeout = dur(900*time.Second), dur(120*time.Second), dur(300*time.Second)
		}},
		{"top-level sync periods", "syncPeriod: 45s\nminSyncPeriod: 3s\n", func(c *config.Configuration) {
			c.SyncPeriod = dur(45 * time.Second)
			c.MinSyncPeriod = ptr.To(dur(3 * time.Second))
		}},
		{"ipvs sync periods win over top-level", "syncPeriod: 45s\nminSyncPeriod: 3s\nipvs:\n  syncPeriod: 20s\n  minSyncPeriod: 1s\n", func(c *config.Configuration) {
			c.SyncPeriod = dur(20 * time.Second)
			c.MinSyncPeriod = ptr.To(dur(time.Second))
		}},
		{"nodePortAddresses primary", "nodePortAddresses: [primary]\n", func(c *config.Configuration) { c.NodePortAddresses = nil }},
		{"nodePortAddresses CIDRs", "nodePortAddresses: [10.0.0.0/8]\n", func(c *config.Configuration) { c.NodePortAddresses = []string{"10.0.0.0/8"} }},
		{"addresses: IP without port gets kube-proxy's port", "healthzBindAddress: 10.0.0.1\nmetricsBindAddress: \"::\"\n", func(c *config.Configuration) {
			c.HealthzBindAddress = "10.0.0.1:10256"
			c.MetricsBindAddress = "[::]:10249"
		}},
		{"addresses with ports", "healthzBindAddress: 127.0.0.1:1234\nmetricsBindAddress: 0.0.0.0:9999\n", func(c *config.Configuration) {
			c.HealthzBindAddress = "127.0.0.1:1234"
			c.MetricsBindAddress = "0.0.0.0:9999"
		}},
		{"masqueradeAll, clusterCIDR list with spaces, kubeconfig", "iptables:\n  masqueradeAll: true\n  masqueradeBit: 14\nclusterCIDR: \" 10.244.0.0/16 , fd00::/48\"\nclientConnection:\n  kubeconfig: /k\n  qps: 5\n  burst: 10\n", func(c *config.Configuration) {
			c.MasqueradeAll = true
			c.ClusterCIDRs = []string{"10.244.0.0/16", "fd00::/48"}
			c.Kubeconfig = "/k"
			c.ClientConnection = config.ClientConnectionConfiguration{QPS: 5, Burst: 10}
		}},
		{"client connection", "clientConnection: {qps: 50, burst: 100, contentType: application/json, acceptContentTypes: application/json}\n", func(c *config.Configuration) {
			c.ClientConnection = config.ClientConnectionConfiguration{QPS: 50, Burst: 100, ContentType: "application/json", AcceptContentTypes: "application/json"}
		}},
		{"conntrack", "conntrack:\n  maxPerCore: 0\n  min: 1000\n  tcpEstablishedTimeout: 0s\n  tcpCloseWaitTimeout: 30m\n  tcpBeLiberal: true\n  udpTimeout: 30s\n  udpStreamTimeout: 2m\n", func(c *config.Configuration) {
			c.Conntrack = config.ConntrackConfiguration{
				MaxPerCore: ptr.To[int32](0), Min: ptr.To[int32](1000),
				TCPEstablishedTimeout: dur(0), TCPCloseWaitTimeout: dur(30 * time.Minute), TCPBeLiberal: true,
				UDPTimeout: dur(30 * time.Second), UDPStreamTimeout: dur(2 * time.Minute),
			}
		}},
		{"mode ipvs and detectLocalMode ClusterCIDR", "mode: ipvs\ndetectLocalMode: ClusterCIDR\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rep, err := Decode([]byte(header + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if len(rep) != 0 {
				t.Errorf("report: %v, want none", rep)
			}
			if d := cmp.Diff(want(tc.edit), c); d != "" {
				t.Errorf("configuration (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeReportsIgnoredFieldsOnce(t *testing.T) {
	yaml := `
bindAddress: 10.0.0.5
oomScoreAdj: -999
configSyncPeriod: 10m
featureGates: {SomeGate: true}
logging: {verbosity: 4}
iptables: {syncPeriod: 30s, minSyncPeriod: 5s, localhostNodePorts: false}
nftables: {syncPeriod: 30s, minSyncPeriod: 1s, masqueradeBit: 14}
winkernel: {networkName: x}
ipvs: {scheduler: rr, someFutureField: 3}
notAField: true
`
	_, rep, err := Decode([]byte(header + yaml))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep {
		if f.Verdict != Ignored || f.Reason == "" {
			t.Errorf("%v: want ignored with a reason", f)
		}
		got = append(got, f.Path)
	}
	exp := []string{
		"bindAddress", "configSyncPeriod",
		"featureGates", "iptables.minSyncPeriod",
		"ipvs.someFutureField", "logging", "notAField", "winkernel",
	}
	if d := cmp.Diff(exp, got); d != "" {
		t.Errorf("reported paths (-want +got):\n%s", d)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct{ name, yaml, wantErr string }{
		{"iptables mode", "mode: iptables\n", `mode: mode "iptables" is not supported`},
		{"nftables mode", "mode: nftables\n", `mode: mode "nftables" is not supported`},
		{"another masquerade bit", "iptables: {masqueradeBit: 12}\n", "iptables.masqueradeBit: masqueradeBit 12 is not supported"},
		{"detect local by node CIDR", "detectLocalMode: NodeCIDR\n", "detectLocalMode: detectLocalMode \"NodeCIDR\" is not supported"},
		{"primary among CIDRs", "nodePortAddresses: [primary, 10.0.0.0/8]\n", `nodePortAddresses: "primary" must be the only entry`},
		{"unknown scheduler", "ipvs: {scheduler: fastest}\n", `ipvs.scheduler: Unsupported value: "fastest"`},
		{"bad cluster CIDR", "clusterCIDR: 10.244.0.0/16,nonsense\n", `clusterCIDR[1]: Invalid value: "nonsense"`},
		{"two CIDRs of one family", "clusterCIDR: 10.244.0.0/16,10.245.0.0/16\n", "clusterCIDR[1]: Invalid value"},
		{"bad exclude CIDR", "ipvs: {excludeCIDRs: [x]}\n", `ipvs.excludeCIDRs[0]: Invalid value: "x"`},
		{"bad healthz address", "healthzBindAddress: localhost\n", `healthzBindAddress: Invalid value: "localhost"`},
		{"min above max sync period", "ipvs: {syncPeriod: 10s, minSyncPeriod: 20s}\n", "ipvs.minSyncPeriod: Invalid value"},
		{"negative conntrack", "conntrack: {min: -1}\n", "conntrack.min: Invalid value"},
		{"content type", "clientConnection: {contentType: text/plain}\n", `clientConnection.contentType: Unsupported value: "text/plain"`},
		{"bad hostname", "hostnameOverride: a_b\n", "hostnameOverride: Invalid value"},
		{"duplicate field", "mode: ipvs\nmode: ipvs\n", `key "mode" already set`},
		{"wrong type", "ipvs: {strictARP: yes-please}\n", "strictARP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := header + tc.yaml
			if strings.HasPrefix(tc.yaml, "hostnameOverride") {
				data = strings.Replace(data, "hostnameOverride: Node-1\n", "", 1)
			}
			_, _, err := Decode([]byte(data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeRefusesOtherVersions(t *testing.T) {
	for _, data := range []string{
		"apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration\n",
		"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: Other\n",
	} {
		if _, _, err := Decode([]byte(data)); err == nil || !strings.Contains(err.Error(), "Unsupported value") {
			t.Errorf("%q: error %v, want Unsupported value", data, err)
		}
	}
}

func TestIsKubeProxyConfiguration(t *testing.T) {
	for data, exp := range map[string]bool{
		header: true,
		"apiVersion: kubeproxy.config.k8s.io/v1alpha2\n":               true,
		"kind: KubeProxyConfiguration\n":                               true,
		"apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\n": false,
		"":  false,
		"{": false,
	} {
		if got := IsKubeProxyConfiguration([]byte(data)); got != exp {
			t.Errorf("IsKubeProxyConfiguration(%q) = %v, want %v", data, got, exp)
		}
	}
}
