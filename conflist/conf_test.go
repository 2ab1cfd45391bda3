package conflist

import (
	"github.com/containernetworking/cni/pkg/types"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodePlugin(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    *PluginConf
		wantErr string
	}{
		{
			name: "runtime-injected fields accepted, defaults applied",
			data: `{"cniVersion":"1.1.0","name":"net","type":"kubevs","prevResult":{"ips":[]},"runtimeConfig":{"x":1},"args":{"cni":{}}}`,
			want: &PluginConf{CNIVersion: "1.1.0", Name: "net", Type: "kubevs", Socket: DefaultProxierSocket,
				RawPrevResult: []byte(`{"ips":[]}`), RuntimeConfig: []byte(`{"x":1}`), Args: []byte(`{"cni":{}}`)},
		},
		{
			name: "launch",
			data: `{"type":"kubevs","socket":"/run/x.sock","launch":{"enabled":true,"proxierBinary":"kubevs-proxier"},"timeouts":{"api":"500ms"}}`,
			want: &PluginConf{Type: "kubevs", Socket: "/run/x.sock", Launch: &LaunchConf{Enabled: true, ProxierBinary: "kubevs-proxier"},
				Timeouts: &Timeouts{API: "500ms"}},
		},
		{name: "unknown field", data: `{"type":"kubevs","proxySocket":"/x"}`, wantErr: "unknown field"},
		{name: "case mismatch", data: `{"type":"kubevs","Socket":"/x"}`, wantErr: "unknown field"},
		{name: "relative proxier binary path", data: `{"type":"kubevs","launch":{"enabled":true,"proxierBinary":"bin/kubevs-proxier"}}`, wantErr: "launch.proxierBinary"},
		{name: "timeout too long", data: `{"type":"kubevs","timeouts":{"launch":"1m"}}`, wantErr: "timeouts.launch"},
		{name: "timeout not a duration", data: `{"type":"kubevs","timeouts":{"api":"5"}}`, wantErr: "timeouts.api"},
		{name: "duplicate", data: `{"type":"kubevs","type":"kubevs"}`, wantErr: "duplicate"},
		{name: "wrong type", data: `{"type":"bridge"}`, wantErr: "type"},
		{name: "relative socket", data: `{"type":"kubevs","socket":"run/x.sock"}`, wantErr: "not an absolute path"},
		{name: "dotdot", data: `{"type":"kubevs","logFile":"/var/log/../../etc/passwd"}`, wantErr: "\"..\" element"},
		{name: "verbosity", data: `{"type":"kubevs","logLevel":11}`, wantErr: "logLevel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePlugin([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeIPAM(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    *IPAMNetConf
		wantErr string
	}{
		{
			name: "bridge fields are not ours, ipam is",
			data: `{"cniVersion":"1.1.0","name":"kubevs","type":"bridge","bridge":"kubevs0","ipam":{"type":"kubevs-ipam","ranges":["10.244.1.0/24"]}}`,
			want: &IPAMNetConf{CNIVersion: "1.1.0", Name: "kubevs", IPAM: IPAMConf{Type: IPAMType, DataDir: DefaultIPAMDataDir,
				NodeAPISocket: DefaultProxierSocket, Ranges: []string{"10.244.1.0/24"}}},
		},
		{
			name: "gc attachments",
			data: `{"name":"n","ipam":{"type":"kubevs-ipam"},"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}`,
			want: &IPAMNetConf{Name: "n", IPAM: IPAMConf{Type: IPAMType, DataDir: DefaultIPAMDataDir, NodeAPISocket: DefaultProxierSocket},
				ValidAttachments: []types.GCAttachment{{ContainerID: "c1", IfName: "eth0"}}},
		},
		{name: "no ipam", data: `{"name":"n"}`, wantErr: "no \"ipam\""},
		{name: "unknown ipam field", data: `{"name":"n","ipam":{"type":"kubevs-ipam","subnet":"10.0.0.0/8"}}`, wantErr: "unknown field"},
		{name: "no name", data: `{"ipam":{"type":"kubevs-ipam"}}`, wantErr: "name"},
		{name: "name escapes", data: `{"name":"../x","ipam":{"type":"kubevs-ipam"}}`, wantErr: "network name"},
		{name: "two ipv4 ranges", data: `{"name":"n","ipam":{"type":"kubevs-ipam","ranges":["10.0.0.0/24","10.1.0.0/24"]}}`, wantErr: "same IP family"},
		{name: "range too small", data: `{"name":"n","ipam":{"type":"kubevs-ipam","ranges":["fd00::/127"]}}`, wantErr: "too small"},
		{name: "bad route", data: `{"name":"n","ipam":{"type":"kubevs-ipam","routes":[{"dst":"x"}]}}`, wantErr: "routes[0].dst"},
		{name: "relative data dir", data: `{"name":"n","ipam":{"type":"kubevs-ipam","dataDir":"var/lib"}}`, wantErr: "dataDir"},
		{name: "wrong type", data: `{"name":"n","ipam":{"type":"host-local"}}`, wantErr: "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeIPAM([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"/opt/cni/bin", true},
		{"/", true},
		{"", false},
		{"opt/cni/bin", false},
		{"/opt/../etc", false},
		{"/opt/cni/bin/", false},
		{"/opt//cni", false},
		{"/opt/./cni", false},
	}
	for _, tt := range tests {
		err := ValidatePath("f", tt.path)
		if (err == nil) != tt.ok {
			t.Errorf("ValidatePath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
}
