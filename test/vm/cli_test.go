package vm

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/klog/v2/ktesting"
)

// TestMainUsage covers the command lines Main rejects before it prepares or boots anything.
func TestMainUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no subcommand", nil, "usage:"},
		{"unknown subcommand", []string{"boot"}, "usage:"},
		{"run without a command", []string{"run", "--timeout", "1m"}, "usage:"},
		{"unknown flag", []string{"run", "--bogus", "--", "true"}, "flag provided but not defined"},
		{"env without =", []string{"run", "--env", "FOO", "--", "true"}, `--env "FOO" is not KEY=VALUE`},
		{"link and user-net", []string{"run", "--link", "7001:7002", "--user-net", "--", "true"}, "--link and --user-net both give eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			var stdout, stderr bytes.Buffer
			if code := Main(ctx, tt.args, &stdout, &stderr); code != ExitUsage {
				t.Errorf("Main(%q) = %d, want %d", tt.args, code, ExitUsage)
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("Main(%q) stderr lacks %q:\n%s", tt.args, tt.wantErr, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("Main(%q) wrote to stdout: %q", tt.args, stdout.String())
			}
		})
	}
}
