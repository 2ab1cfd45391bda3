package install

import (
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"relative bin dir", func(o *Options) { o.BinDir = "opt/cni/bin" }, "bin-dir"},
		{"dotdot in conf dir", func(o *Options) { o.ConfDir = "/etc/cni/../../tmp" }, "conf-dir"},
		{"relative root", func(o *Options) { o.Root = "host" }, "root"},
		{"relative kubeconfig", func(o *Options) { o.Kubeconfig = "kubeconfig" }, "kubeconfig"},
		{"binary with slash", func(o *Options) { o.Binaries = []string{"../kubevs"} }, "binaries"},
		{"conf name not a conflist", func(o *Options) { o.ConfName = "00-kubevs.conf" }, "conf-name"},
		{"conf name with dir", func(o *Options) { o.ConfName = "../00-kubevs.conflist" }, "conf-name"},
		{"bad mode", func(o *Options) { o.Mode = "auto" }, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{}
			tt.mutate(&o)
			_, err := New(o)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAPIServerURL(t *testing.T) {
	env := func(host, port string) func(string) string {
		return func(k string) string {
			return map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}[k]
		}
	}
	tests := []struct {
		name, explicit string
		getenv         func(string) string
		want, wantErr  string
	}{
		{name: "explicit host:port", explicit: "192.0.2.10:6443", getenv: env("", ""), want: "https://192.0.2.10:6443"},
		{name: "explicit URL wins over env", explicit: "https://api.example:6443", getenv: env("10.96.0.1", "443"), want: "https://api.example:6443"},
		{name: "env IPv4", getenv: env("192.0.2.10", "6443"), want: "https://192.0.2.10:6443"},
		{name: "env IPv6", getenv: env("2001:db8::10", "6443"), want: "https://[2001:db8::10]:6443"},
		{name: "placeholder left in the manifest", getenv: env("API_SERVER_HOST", "6443"), wantErr: "neither an IP address nor a DNS name"},
		{name: "DNS name", explicit: "cp.example.internal:6443", getenv: env("", ""), want: "https://cp.example.internal:6443"},
		{name: "nothing", getenv: env("", ""), wantErr: "no API server address"},
		{name: "path", explicit: "https://api:6443/x", getenv: env("", ""), wantErr: "want https://host:port"},
		{name: "scheme", explicit: "ftp://api:6443", getenv: env("", ""), wantErr: "want https://host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := apiServerURL(tt.explicit, tt.getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCommandFlags(t *testing.T) {
	var c Command
	fs := flag.NewFlagSet("kubevs-install", flag.ContinueOnError)
	c.AddFlags(fs)
	err := fs.Parse([]string{"--root=/host", "--mode=chained", "--pod-cidrs=10.244.1.0/24,fd00::/64",
		"--binaries=kubevs,kubevs-ipam", "--launch-proxier", "--once"})
	if err != nil {
		t.Fatal(err)
	}
	want := Command{Once: true, Options: Options{
		Root: "/host", Mode: ModeChained, SourceDir: DefaultSourceDir, Binaries: []string{"kubevs", "kubevs-ipam"},
		BinDir: DefaultBinDir, ConfDir: DefaultConfDir, ConfName: "00-kubevs.conflist", LaunchProxier: true, ProxierConfig: DefaultProxierConfig,
		Kubeconfig: DefaultKubeconfig, TokenFile: DefaultTokenFile, CAFile: DefaultCAFile, StateFile: DefaultStateFile,
		PollInterval: DefaultPollInterval,
	}}
	want.Standalone.CNIVersion, want.Standalone.Bridge = "1.1.0", "kubevs0"
	want.Standalone.IPAM.Ranges = []string{"10.244.1.0/24", "fd00::/64"}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Options{}, "Getenv")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	c.Probe = true
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("--once --probe: err = %v", err)
	}
}
