//go:build linux

package netfilter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/proxier/ipset"
)

// fakeTools puts iptables-nft-save and -restore scripts with the given bodies (and the
// ip6tables ones) first on PATH.
func fakeTools(t *testing.T, save, restore string) {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"iptables", "ip6tables"} {
		for name, body := range map[string]string{p + "-nft-save": save, p + "-nft-restore": restore} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// A hung iptables tool must fail the call within the timeout, not block every later sync
// (the kernel lock stays held meanwhile). The scripts leave a child holding the output pipe,
// as a tool stuck on a lock or the kernel would.
func TestLinuxKillsHungTools(t *testing.T) {
	for _, tt := range []struct {
		name, save, restore, want string
	}{
		{"iptables-save hangs", "sleep 30", "cat >/dev/null", "iptables-nft-save -t nat: killed after 200ms"},
		{"iptables-restore hangs", "echo '*nat'; echo COMMIT", "sleep 30", "iptables-nft-restore -w --noflush: killed after 200ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fakeTools(t, tt.save, tt.restore)
			l, err := NewBackend(BackendNFT)
			if err != nil {
				t.Fatal(err)
			}
			l.timeout = 200 * time.Millisecond
			done := make(chan error, 1)
			start := time.Now()
			go func() { _, err := l.Repair(ipset.IPv4, ruleset("--set-xmark 0x4000/0x4000")); done <- err }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Repair still blocked 10s after the tool hung")
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Repair = %v, want an error naming %q", err, tt.want)
			}
			if took := time.Since(start); took > 8*time.Second {
				t.Errorf("Repair took %s", took)
			}
		})
	}
}

// The read after a repair can see a chain flushed again meanwhile by someone else. That
// empty chain must not be remembered as the kernel's rendering of the wanted rules, or every
// later Repair takes the flushed chain for repaired and the drift stays for ever (seen in
// the soak: ip6tables nat KUBE-* chains flushed while the proxier was repairing them stayed
// empty).
func TestLinuxMemoNeverTakesAFlushedChainForRepaired(t *testing.T) {
	l := &Linux{backend: BackendNFT, bins: map[Family]tools{}, memo: map[string]written{}, timeout: ToolTimeout}
	rs := ruleset("0x4000")
	flushed, err := parseSave("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"+
		":KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\nCOMMIT\n", "nat")
	if err != nil {
		t.Fatal(err)
	}
	l.remember(ipset.IPv4, flushed, rs)
	same := l.same(ipset.IPv4, "nat")
	for _, c := range rs.Chains {
		if c.Table == "nat" && same(c.Name, c.Rules, nil) {
			t.Errorf("chain %s: flushed (no rule) taken for its %d wanted rules", c.Name, len(c.Rules))
		}
	}
	if lines := plan(flushed, rs, same); len(lines) == 0 {
		t.Errorf("plan for the flushed nat table writes nothing")
	}
	// A rule the kernel prints in another form is still remembered as that rendering.
	printed, err := parseSave("*nat\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n", "nat")
	if err != nil {
		t.Fatal(err)
	}
	l.remember(ipset.IPv4, printed, rs)
	if want := []string{"-j MARK --or-mark 0x4000"}; !same("KUBE-MARK-MASQ", want, printed.rules["KUBE-MARK-MASQ"]) {
		t.Errorf("the kernel's rendering of %q is not remembered", want)
	}
}
