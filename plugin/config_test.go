package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// prevResults holds a bridge-plugin style result in the shape of each CNI version.
var prevResults = map[string]string{
	"0.3.0": `{"cniVersion":"0.3.0","interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:01"},{"name":"veth1","mac":"aa:bb:cc:dd:ee:02"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:03","sandbox":"/var/run/netns/p"}],"ips":[{"version":"4","interface":2,"address":"10.244.0.5/24","gateway":"10.244.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}`,
	"0.3.1": `{"cniVersion":"0.3.1","interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:01"},{"name":"eth0","mac":"aa:bb:cc:dd:ee:03","sandbox":"/var/run/netns/p"}],"ips":[{"version":"4","interface":1,"address":"10.244.0.5/24","gateway":"10.244.0.1"},{"version":"6","interface":1,"address":"fd00::5/64"}],"dns":{}}`,
	"0.4.0": `{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/p"}],"ips":[{"version":"4","interface":0,"address":"10.244.0.5/24"}],"dns":{}}`,
	"1.0.0": `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/p"}],"ips":[{"interface":0,"address":"10.244.0.5/24","gateway":"10.244.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"}],"dns":{"nameservers":["10.96.0.10"]}}`,
	"1.1.0": `{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/p","mtu":1450}],"ips":[{"interface":0,"address":"10.244.0.5/24","gateway":"10.244.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1","mtu":1400}],"dns":{}}`,
}

func confWith(version, extra string) []byte {
	s := fmt.Sprintf(`{"cniVersion":%q,"name":"k8s-pod-network","type":"kubevs"%s}`, version, extra)
	return []byte(s)
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig(confWith("1.0.0", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		CNIVersion: "1.0.0", Name: "k8s-pod-network", Type: "kubevs",
		Socket:   "/run/kubevs/proxier.sock",
		Launch:   Launch{ProxierBinary: "kubevs-proxier"},
		Timeouts: Timeouts{API: Duration(time.Second), Launch: Duration(3 * time.Second)},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestParseConfigFull(t *testing.T) {
	in := confWith("1.1.0", `,"socket":"/run/kv/p.sock","logFile":"/var/log/kubevs.log","logLevel":4,
		"launch":{"enabled":true,"proxierBinary":"/opt/cni/bin/kubevs-proxier","configPath":"/etc/kubevs/proxier.yaml","logFile":"/var/log/kubevs-proxier.log"},
		"timeouts":{"api":"250ms","launch":"5s"},"capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[]},
		"cni.dev/attachments":[{"containerID":"abc","ifname":"eth0"}]`)
	c, err := ParseConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Launch{Enabled: true, ProxierBinary: "/opt/cni/bin/kubevs-proxier", ConfigPath: "/etc/kubevs/proxier.yaml", LogFile: "/var/log/kubevs-proxier.log"}
	if diff := cmp.Diff(want, c.Launch); diff != "" {
		t.Errorf("launch (-want +got):\n%s", diff)
	}
	if time.Duration(c.Timeouts.API) != 250*time.Millisecond || time.Duration(c.Timeouts.Launch) != 5*time.Second {
		t.Errorf("timeouts = %+v", c.Timeouts)
	}
	if diff := cmp.Diff([]types.GCAttachment{{ContainerID: "abc", IfName: "eth0"}}, c.ValidAttachments); diff != "" {
		t.Errorf("legacy cni.dev/attachments not used as valid attachments (-want +got):\n%s", diff)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantCode uint
		wantMsg  string
	}{
		{"empty", ``, types.ErrDecodingFailure, "decode config"},
		{"malformed", `{"cniVersion":`, types.ErrDecodingFailure, "decode config"},
		{"not an object", `[1,2]`, types.ErrInvalidNetworkConfig, "config"},
		{"trailing", string(confWith("1.0.0", "")) + `{}`, types.ErrDecodingFailure, "trailing"},
		{"unknown top field", string(confWith("1.0.0", `,"hairpin":true`)), types.ErrInvalidNetworkConfig, `unknown field "hairpin"`},
		{"unknown launch field", string(confWith("1.0.0", `,"launch":{"enable":true}`)), types.ErrInvalidNetworkConfig, `unknown field "enable"`},
		{"wrong type", string(confWith("1.0.0", `,"launch":{"enabled":"yes"}`)), types.ErrInvalidNetworkConfig, `"launch.enabled"`},
		{"missing version", `{"name":"n","type":"kubevs"}`, types.ErrIncompatibleCNIVersion, "cniVersion: missing"},
		{"old version", string(confWith("0.2.0", "")), types.ErrIncompatibleCNIVersion, "cniVersion"},
		{"future version", string(confWith("9.0.0", "")), types.ErrIncompatibleCNIVersion, "cniVersion"},
		{"missing name", `{"cniVersion":"1.0.0","type":"kubevs"}`, types.ErrInvalidNetworkConfig, "name: missing"},
		{"bad name", `{"cniVersion":"1.0.0","name":"a/b","type":"kubevs"}`, types.ErrInvalidNetworkConfig, "name:"},
		{"missing type", `{"cniVersion":"1.0.0","name":"n"}`, types.ErrInvalidNetworkConfig, "type: missing"},
		{"relative socket", string(confWith("1.0.0", `,"socket":"p.sock"`)), types.ErrInvalidNetworkConfig, "socket:"},
		{"relative log", string(confWith("1.0.0", `,"logFile":"x.log"`)), types.ErrInvalidNetworkConfig, "logFile:"},
		{"bad level", string(confWith("1.0.0", `,"logLevel":-1`)), types.ErrInvalidNetworkConfig, "logLevel:"},
		{"proxier path", string(confWith("1.0.0", `,"launch":{"proxierBinary":"bin/kubevs-proxier"}`)), types.ErrInvalidNetworkConfig, "launch.proxierBinary:"},
		{"proxier config", string(confWith("1.0.0", `,"launch":{"configPath":"proxier.yaml"}`)), types.ErrInvalidNetworkConfig, "launch.configPath:"},
		{"proxier log", string(confWith("1.0.0", `,"launch":{"logFile":"p.log"}`)), types.ErrInvalidNetworkConfig, "launch.logFile:"},
		{"timeout syntax", string(confWith("1.0.0", `,"timeouts":{"api":"soon"}`)), types.ErrInvalidNetworkConfig, "timeouts.api:"},
		{"timeout number", string(confWith("1.0.0", `,"timeouts":{"api":5}`)), types.ErrInvalidNetworkConfig, "timeouts"},
		{"timeout unknown", string(confWith("1.0.0", `,"timeouts":{"del":"1s"}`)), types.ErrInvalidNetworkConfig, `unknown field "del"`},
		{"timeout too long", string(confWith("1.0.0", `,"timeouts":{"launch":"1h"}`)), types.ErrInvalidNetworkConfig, "timeouts.launch:"},
		{"bad attachment", string(confWith("1.1.0", `,"cni.dev/valid-attachments":[{"containerID":"../x","ifname":"eth0"}]`)), types.ErrInvalidNetworkConfig, "cni.dev/valid-attachments[0]"},
		{"bad prevResult", string(confWith("1.0.0", `,"prevResult":{"ips":[{"address":"not-an-ip"}]}`)), types.ErrInvalidNetworkConfig, "prevResult:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseConfig succeeded: %+v", c)
			}
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *types.Error", err)
			}
			if e.Code != tt.wantCode || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("error = code %d %q; want code %d containing %q", e.Code, e.Msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

// TestPrevResultPrintedUnchanged: ADD prints prevResult back in the config's version, so the
// runtime sees exactly what the chain before kubevs produced.
func TestPrevResultPrintedUnchanged(t *testing.T) {
	for _, v := range SupportedVersions {
		t.Run(v, func(t *testing.T) {
			c, err := ParseConfig(confWith(v, `,"prevResult":`+prevResults[v]))
			if err != nil {
				t.Fatal(err)
			}
			if c.PrevResult == nil {
				t.Fatal("prevResult not parsed")
			}
			var buf bytes.Buffer
			old := os.Stdout
			r, w, _ := os.Pipe()
			os.Stdout = w
			perr := types.PrintResult(c.PrevResult, c.CNIVersion)
			w.Close()
			os.Stdout = old
			if _, err := buf.ReadFrom(r); err != nil {
				t.Fatal(err)
			}
			if perr != nil {
				t.Fatal(perr)
			}
			var got, want any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("printed result is not JSON: %v\n%s", err, buf.String())
			}
			_ = json.Unmarshal([]byte(prevResults[v]), &want)
			dropEmptyDNS(got)
			dropEmptyDNS(want)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("printed result differs from prevResult (-prev +printed):\n%s", diff)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, v := range SupportedVersions {
		f.Add(confWith(v, `,"prevResult":`+prevResults[v]))
	}
	f.Add(confWith("1.1.0", `,"launch":{"enabled":true},"timeouts":{"api":"1s"},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"x","type":"kubevs","prevResult":{"interfaces":[{"name":"eth0"}],"ips":[{"interface":7,"address":"10.0.0.1/8"}]}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConfig(in)
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *types.Error", err)
			}
			switch e.Code {
			case types.ErrDecodingFailure, types.ErrInvalidNetworkConfig, types.ErrIncompatibleCNIVersion:
			default:
				t.Fatalf("unexpected code %d: %s", e.Code, e.Msg)
			}
			return
		}
		if c.Name == "" || c.Type == "" || c.Socket == "" || c.Timeouts.API <= 0 {
			t.Fatalf("accepted config lacks a required field or default: %+v", c)
		}
		if c.PrevResult != nil {
			if _, err := c.PrevResult.GetAsVersion(c.CNIVersion); err != nil {
				t.Fatalf("accepted prevResult cannot be printed in %s: %v", c.CNIVersion, err)
			}
		}
	})
}

// dropEmptyDNS removes "dns":{}: an empty DNS block and no DNS block mean the same, and the
// 1.x encoders omit the empty one.
func dropEmptyDNS(v any) {
	if m, ok := v.(map[string]any); ok {
		if d, ok := m["dns"].(map[string]any); ok && len(d) == 0 {
			delete(m, "dns")
		}
	}
}
