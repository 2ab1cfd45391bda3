//go:build linux

package netfilter

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNewNamesTheBackendWithoutAProcess: where `iptables` links (through alternatives) to a
// backend's multi-call binary, New takes the backend from its name and starts nothing; a
// wrapper script is asked (iptables --version). The fake binaries print the wrong backend
// and leave a mark when run, so a run shows.
func TestNewNamesTheBackendWithoutAProcess(t *testing.T) {
	for _, tt := range []struct {
		name    string
		binary  string // what bin/iptables is: a link to this script, or the script itself
		link    bool
		want    Backend
		wantRun bool
	}{
		{"link to xtables-legacy-multi", "xtables-legacy-multi", true, BackendLegacy, false},
		{"link to xtables-nft-multi", "xtables-nft-multi", true, BackendNFT, false},
		{"a wrapper script", "iptables", false, BackendNFT, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ran := filepath.Join(dir, "ran")
			answer := map[Backend]string{BackendNFT: "(legacy)", BackendLegacy: "(nf_tables)"}[tt.want]
			if !tt.link {
				answer = map[Backend]string{BackendNFT: "(nf_tables)", BackendLegacy: "(legacy)"}[tt.want]
			}
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(dir, tt.binary)
			if !tt.link {
				script = filepath.Join(bin, "iptables")
			}
			body := "#!/bin/sh\ntouch " + ran + "\necho 'iptables v1.8.9 " + answer + "'\n"
			if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.link {
				if err := os.Symlink(script, filepath.Join(bin, "iptables")); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			l, err := New()
			if err != nil {
				t.Fatal(err)
			}
			if l.Backend() != tt.want {
				t.Errorf("backend %s, want %s", l.Backend(), tt.want)
			}
			if _, err := os.Stat(ran); (err == nil) != tt.wantRun {
				t.Errorf("iptables ran: %v, want %v", err == nil, tt.wantRun)
			}
		})
	}
}
