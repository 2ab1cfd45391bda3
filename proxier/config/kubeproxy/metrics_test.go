package kubeproxy

import (
	"testing"
)

// TestEmptyMetricsBindAddress: --metrics-bind-address="" turns the metrics server off, as
// kube-proxy's help says; an empty or absent metricsBindAddress in a file is defaulted, as
// kube-proxy's v1alpha1 defaulting does, so a kubeadm file keeps its metrics; with --config
// the flag is ignored, the file wins.
func TestEmptyMetricsBindAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string // a KubeProxyConfiguration body, "" for none
		args     []string
		wantAddr string
		wantOff  bool
	}{
		{"flag empty", "", []string{"--metrics-bind-address="}, "", true},
		{"flag set", "", []string{"--metrics-bind-address=127.0.0.1:9100"}, "127.0.0.1:9100", false},
		{"other flag, metrics untouched", "", []string{"--proxy-mode=ipvs"}, "127.0.0.1:10249", false},
		{"file empty", `metricsBindAddress: ""` + "\n", nil, "127.0.0.1:10249", false},
		{"file absent", "mode: ipvs\n", nil, "127.0.0.1:10249", false},
		{"file wins over empty flag", "mode: ipvs\n", []string{"--metrics-bind-address="}, "127.0.0.1:10249", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--hostname-override=node-1"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config="+writeFile(t, header+tc.file))
			}
			c, _, err := Bootstrap(parse(t, args...))
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsBindAddress != tc.wantAddr || c.MetricsDisabled != tc.wantOff {
				t.Errorf("metricsBindAddress %q, metricsDisabled %v; want %q, %v", c.MetricsBindAddress, c.MetricsDisabled, tc.wantAddr, tc.wantOff)
			}
		})
	}
}
