package kubeproxy

import (
	"strings"
	"testing"
)

// TestEnableProfiling: kube-proxy's enableProfiling (file) and --profiling (flags) turn on
// the profiles on the metrics address; --config wins over the flag; profiles without a
// metrics server are refused, naming the field.
func TestEnableProfiling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string // a KubeProxyConfiguration body, "" for none
		args    []string
		want    bool
		wantErr string
	}{
		{"file true", "enableProfiling: true\n", nil, true, ""},
		{"file absent", "mode: ipvs\n", nil, false, ""},
		{"flag", "", []string{"--profiling"}, true, ""},
		{"flag false", "", []string{"--profiling=false"}, false, ""},
		{"file wins over flag", "mode: ipvs\n", []string{"--profiling"}, false, ""},
		{"no metrics server", "", []string{"--profiling", "--metrics-bind-address="}, false, "enableProfiling: Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--hostname-override=node-1"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config="+writeFile(t, header+tc.file))
			}
			c, rep, err := Bootstrap(parse(t, args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.EnableProfiling != tc.want {
				t.Errorf("enableProfiling %v, want %v", c.EnableProfiling, tc.want)
			}
			for _, f := range rep {
				if f.Path == "enableProfiling" {
					t.Errorf("enableProfiling reported %s (%s), want it honoured silently", f.Verdict, f.Reason)
				}
			}
		})
	}
}
