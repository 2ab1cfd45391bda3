package plugin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/plugin"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

func TestIntegrationConcurrentPods(t *testing.T) {
	h := newHarness(t)
	h.serve()
	l := h.list("1.1.0", "")
	const n = 50
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = h.newPod(fmt.Sprintf("conc%02d", i))
	}
	run := func(op string, fn func(p *pod) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, p := range pods {
			wg.Go(func() {
				if err := fn(p); err != nil {
					errs <- fmt.Errorf("%s %s: %w", op, p.id, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	run("ADD", func(p *pod) error { _, err := h.add(l, p); return err })
	if t.Failed() {
		t.Fatalf("log:\n%s", h.kubevsLog())
	}
	links := h.hostLinks()
	hairpins := 0
	for _, on := range links {
		if on {
			hairpins++
		}
	}
	if len(links) != n || hairpins != n || len(h.store.List()) != n || len(h.leasedIPs()) != n {
		t.Errorf("after %d ADDs: %d veths, %d with hairpin, %d registrations, %d IPs", n, len(links), hairpins, len(h.store.List()), len(h.leasedIPs()))
	}
	run("CHECK", func(p *pod) error { return h.check(l, p) })
	run("DEL", func(p *pod) error { return h.del(l, p.rt()) })
	if links, regs, ips := h.hostLinks(), h.store.List(), h.leasedIPs(); len(links)+len(regs)+len(ips) != 0 {
		t.Errorf("left behind: veths %v, registrations %v, IPs %v", links, regs, ips)
	}
}

func TestIntegrationGC(t *testing.T) {
	h := newHarness(t)
	h.serve()
	l := h.list("1.1.0", "")
	pods := []*pod{h.newPod("gc-a"), h.newPod("gc-b"), h.newPod("gc-c")}
	for _, p := range pods {
		if _, err := h.add(l, p); err != nil {
			t.Fatal(err)
		}
	}
	// A registration the proxier kept from a pod whose DEL never reached it.
	if err := h.store.Register(nodeapi.Registration{ContainerID: "lost", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	valid := []types.GCAttachment{{ContainerID: "gc-a", IfName: "eth0"}, {ContainerID: "gc-b", IfName: "eth0"}}
	if err := h.inHost(func() error {
		return h.cni.GCNetworkList(context.Background(), l, &libcni.GCArgs{ValidAttachments: valid})
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.store.List() {
		got = append(got, r.ContainerID)
	}
	if diff := cmp.Diff([]string{"gc-a", "gc-b"}, got); diff != "" {
		t.Errorf("registrations after GC (-want +got):\n%s", diff)
	}
	for _, p := range pods[:2] {
		if err := h.del(l, p.rt()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIntegrationStatus(t *testing.T) {
	h := newHarness(t)
	l := h.list("1.1.0", "")
	status := func() error {
		return h.inHost(func() error { return h.cni.GetStatusNetworkList(context.Background(), l) })
	}
	wantCode := func(err error, code uint) {
		t.Helper()
		var e *types.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Errorf("STATUS = %v, want CNI error %d", err, code)
		}
	}
	wantCode(status(), plugin.ErrPluginNotAvailable) // no proxier
	h.serve()
	wantCode(status(), plugin.ErrPluginNotAvailable) // proxier up, not synced
	h.ready.Store(true)
	if err := status(); err != nil {
		t.Errorf("STATUS with a ready proxier: %v", err)
	}
}

// TestIntegrationBadInput runs the real binary: each bad input gets its CNI code, a message
// naming the field, and changes nothing.
func TestIntegrationBadInput(t *testing.T) {
	h := newHarness(t)
	h.serve()
	p := h.newPod("bad")
	notNetns := filepath.Join(h.dir, "not-a-netns")
	if err := os.WriteFile(notNetns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	prev := `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"x"}],"ips":[{"interface":0,"address":"10.244.0.9/16"}]}`
	conf := func(extra string) []byte {
		return fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"kubevs-test","type":"kubevs","socket":%q%s}`, h.sock, extra)
	}
	tests := []struct {
		name     string
		conf     []byte
		args     invoke.Args
		wantCode uint
		wantMsg  string
	}{
		{"malformed JSON", []byte(`{"cniVersion":"1.0.0",`), invoke.Args{}, types.ErrDecodingFailure, "unmarshal"},
		{"unknown field", conf(`,"hairpinMode":true,"prevResult":` + prev), invoke.Args{}, types.ErrInvalidNetworkConfig, "hairpinMode"},
		{"bad cniVersion", []byte(`{"cniVersion":"0.2.0","name":"kubevs-test","type":"kubevs"}`), invoke.Args{}, types.ErrIncompatibleCNIVersion, "incompatible"},
		{"invalid container ID", conf(`,"prevResult":` + prev), invoke.Args{ContainerID: "-bad id"}, types.ErrInvalidEnvironmentVariables, "containerID"},
		{"invalid ifname", conf(`,"prevResult":` + prev), invoke.Args{IfName: "eth0/x"}, types.ErrInvalidEnvironmentVariables, "interface name"},
		{"netns is not a netns", conf(`,"prevResult":` + prev), invoke.Args{NetNS: notNetns}, types.ErrInvalidNetNS, "netns"},
		{"netns missing", conf(`,"prevResult":` + prev), invoke.Args{NetNS: filepath.Join(h.dir, "absent")}, types.ErrInvalidNetNS, "netns"},
		{"no prevResult", conf(``), invoke.Args{}, types.ErrInvalidNetworkConfig, "prevResult"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := invoke.Args{Command: "ADD", ContainerID: "bad", NetNS: p.path, IfName: "eth0", Path: h.bin}
			if tt.args.ContainerID != "" {
				args.ContainerID = tt.args.ContainerID
			}
			if tt.args.IfName != "" {
				args.IfName = tt.args.IfName
			}
			if tt.args.NetNS != "" {
				args.NetNS = tt.args.NetNS
			}
			err := h.inHost(func() error {
				_, err := invoke.ExecPluginWithResult(context.Background(), filepath.Join(h.bin, "kubevs"), tt.conf, &args, nil)
				return err
			})
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("ADD = %v, want a CNI error", err)
			}
			if e.Code != tt.wantCode || !containsFold(e.Msg+" "+e.Details, tt.wantMsg) {
				t.Errorf("ADD error = code %d %q %q; want code %d mentioning %q", e.Code, e.Msg, e.Details, tt.wantCode, tt.wantMsg)
			}
			if regs := h.store.List(); len(regs) != 0 {
				t.Errorf("registrations after a failed ADD: %v", regs)
			}
		})
	}
}
