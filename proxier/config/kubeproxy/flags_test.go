package kubeproxy

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/kubevs/kubevs/proxier/config"
)

// parse builds Options from a command line as kubevs-proxier's main does.
func parse(t *testing.T, args ...string) Options {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o Options
	fs.StringVar(&o.ConfigPath, "config", "", "")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&o.HostnameOverride, "hostname-override", "", "")
	o.Flags.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	o.Flags.Parsed(fs)
	return o
}

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.conf")
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func paths(rep Report) []string {
	var out []string
	for _, f := range rep {
		out = append(out, f.Path)
	}
	return out
}

func TestBootstrapFlagsWithoutConfig(t *testing.T) {
	// A kube-proxy command line of a DaemonSet without --config.
	o := parse(t, "--proxy-mode=ipvs", "--ipvs-scheduler=wrr", "--ipvs-sync-period=1m", "--ipvs-min-sync-period=5s",
		"--ipvs-exclude-cidrs=192.0.2.0/24,198.51.100.0/24", "--ipvs-strict-arp", "--masquerade-all",
		"--cluster-cidr=10.244.0.0/16,fd00::/48", "--nodeport-addresses=primary",
		"--healthz-bind-address=0.0.0.0:12345", "--metrics-bind-address=0.0.0.0",
		"--kubeconfig=/var/lib/kube-proxy/kubeconfig", "--hostname-override= Node-1 ")
	c, rep, err := Bootstrap(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep) != 0 {
		t.Errorf("report %v, want none", rep)
	}
	exp := want(func(c *config.Configuration) {
		c.Scheduler = "wrr"
		c.SyncPeriod = dur(time.Minute)
		c.MinSyncPeriod = ptr.To(dur(5 * time.Second))
		c.IPVS.ExcludeCIDRs = []string{"192.0.2.0/24", "198.51.100.0/24"}
		c.IPVS.StrictARP = ptr.To(true)
		c.MasqueradeAll = true
		c.ClusterCIDRs = []string{"10.244.0.0/16", "fd00::/48"}
		c.NodePortAddresses = nil
		c.HealthzBindAddress = "0.0.0.0:12345"
		c.MetricsBindAddress = "0.0.0.0:10249"
		c.Kubeconfig = "/var/lib/kube-proxy/kubeconfig"
	})
	if d := cmp.Diff(exp, c); d != "" {
		t.Errorf("configuration (-want +got):\n%s", d)
	}
}

func TestBootstrapOneFlagGivesKubeProxyDefaults(t *testing.T) {
	c, _, err := Bootstrap(parse(t, "--proxy-mode=ipvs", "--hostname-override=node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want(nil), c); d != "" {
		t.Errorf("configuration (-want +got):\n%s", d)
	}
}

func TestBootstrapNoFlagsKeepsKubevsDefaults(t *testing.T) {
	c, rep, err := Bootstrap(parse(t, "--hostname-override=node-1", "--kubeconfig=/k"))
	if err != nil || len(rep) != 0 {
		t.Fatalf("err %v, report %v", err, rep)
	}
	exp := config.New()
	exp.NodeName, exp.Kubeconfig = "node-1", "/k"
	if d := cmp.Diff(exp, c); d != "" {
		t.Errorf("configuration (-want +got):\n%s", d)
	}
}

func TestBootstrapConfigFileWins(t *testing.T) {
	kp := writeFile(t, header+"clientConnection: {kubeconfig: /from-file}\nipvs: {scheduler: lc}\n")
	c, rep, err := Bootstrap(parse(t, "--config="+kp, "--ipvs-scheduler=wrr", "--masquerade-all",
		"--kubeconfig=/from-flag", "--hostname-override=Node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scheduler != "lc" || c.MasqueradeAll || c.Kubeconfig != "/from-file" || c.NodeName != "node-2" {
		t.Errorf("scheduler %q masqueradeAll %v kubeconfig %q node %q: want the file's values and the flag's node name",
			c.Scheduler, c.MasqueradeAll, c.Kubeconfig, c.NodeName)
	}
	if d := cmp.Diff([]string{"--ipvs-scheduler", "--masquerade-all", "--kubeconfig"}, paths(rep)); d != "" {
		t.Errorf("reported (-want +got):\n%s", d)
	}

	// kubevs's own schema: same precedence, but --kubeconfig still applies over it.
	own := writeFile(t, "apiVersion: kubevs.io/v1alpha1\nkind: ProxierConfiguration\nnodeName: node-3\nscheduler: sh\n")
	c, rep, err = Bootstrap(parse(t, "--config="+own, "--ipvs-scheduler=wrr", "--kubeconfig=/from-flag"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Scheduler != "sh" || c.Kubeconfig != "/from-flag" || c.NodeName != "node-3" {
		t.Errorf("scheduler %q kubeconfig %q node %q", c.Scheduler, c.Kubeconfig, c.NodeName)
	}
	if d := cmp.Diff([]string{"--ipvs-scheduler"}, paths(rep)); d != "" {
		t.Errorf("reported (-want +got):\n%s", d)
	}
}

func TestBootstrapErrors(t *testing.T) {
	kp := writeFile(t, header)
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"proxy mode iptables", []string{"--proxy-mode=iptables"}, "--proxy-mode=iptables: not supported"},
		{"proxy mode refused even with --config", []string{"--config=" + kp, "--proxy-mode=nftables"}, "--proxy-mode=nftables: not supported"},
		{"scheduler named by its flag", []string{"--ipvs-scheduler=fastest"}, `--ipvs-scheduler: Unsupported value: "fastest"`},
		{"cluster CIDR named by its flag", []string{"--cluster-cidr=10.0.0.0/8,bad"}, `--cluster-cidr[1]: Invalid value: "bad"`},
		{"healthz address named by its flag", []string{"--healthz-bind-address=nowhere"}, `--healthz-bind-address: Invalid value`},
		{"min sync above sync", []string{"--ipvs-sync-period=1s", "--ipvs-min-sync-period=2s"}, "--ipvs-min-sync-period: Invalid value"},
		{"blank hostname", []string{"--hostname-override=  "}, "--hostname-override: empty"},
		{"missing file", []string{"--config=/nonexistent/kubevs"}, "read configuration /nonexistent/kubevs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, tc.args...)
			if o.HostnameOverride == "" {
				o.HostnameOverride = "node-1"
			}
			_, _, err := Bootstrap(o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
