package vm

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testModulesDep = `kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_ftp.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_nat.ko
kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/char/hw_random/virtio-rng.ko.xz:
kernel/drivers/net/dummy.ko:
kernel/sound/core/snd.ko:
`

func TestModName(t *testing.T) {
	for in, want := range map[string]string{
		"ip_vs": "ip_vs",
		"kernel/drivers/char/hw_random/virtio-rng.ko.xz": "virtio_rng",
		"kernel/fs/9p/9p.ko":                             "9p",
		"kernel/lib/crc32.ko.zst":                        "crc32",
	} {
		if got := ModName(in); got != want {
			t.Errorf("ModName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClosure(t *testing.T) {
	md, err := ParseModulesDep(strings.NewReader(testModulesDep))
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := ParseBuiltin(strings.NewReader("kernel/drivers/virtio/virtio.ko\nkernel/fs/ext4/ext4.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		names    []string
		patterns []string
		want     []string
		wantErr  string
	}{{
		name:  "dependencies come along",
		names: []string{"crc32c_generic", "ip_vs_rr"},
		want: []string{
			"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko",
			"kernel/net/netfilter/ipvs/ip_vs.ko", "kernel/net/netfilter/ipvs/ip_vs_rr.ko",
			"kernel/net/netfilter/nf_conntrack.ko",
		},
	}, {
		name:  "names are normalised, parameters ignored, built-ins need no file",
		names: []string{"virtio-rng", "dummy numdummies=0", "virtio"},
		want:  []string{"kernel/drivers/char/hw_random/virtio-rng.ko.xz", "kernel/drivers/net/dummy.ko"},
	}, {
		name:     "patterns pack what they match, except ip_vs_ftp",
		patterns: []string{"ip_vs*"},
		want: []string{
			"kernel/lib/libcrc32c.ko", "kernel/net/netfilter/ipvs/ip_vs.ko",
			"kernel/net/netfilter/ipvs/ip_vs_rr.ko", "kernel/net/netfilter/nf_conntrack.ko",
		},
	}, {
		name:     "a pattern may match nothing",
		patterns: []string{"nft_*"},
		want:     []string{},
	}, {
		name:    "a missing name is an error",
		names:   []string{"ip_vs", "sctp", "veth"},
		wantErr: "modules sctp, veth: neither in modules.dep nor built in",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := md.Closure(tt.names, tt.patterns, builtin)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Closure error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Closure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseModulesDepRejectsGarbage(t *testing.T) {
	if _, err := ParseModulesDep(strings.NewReader("kernel/a.ko:\nno colon here\n")); err == nil {
		t.Fatal("ParseModulesDep accepted a line without a colon")
	}
}

// TestBootModulesHaveNoDuplicates checks the boot list: each module once, crc32c_generic first.
func TestBootModulesHaveNoDuplicates(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range BootModules {
		n := ModName(strings.Fields(m)[0])
		if seen[n] {
			t.Errorf("BootModules lists %s twice", n)
		}
		seen[n] = true
	}
	if BootModules[0] != "crc32c_generic" {
		t.Errorf("BootModules must start with crc32c_generic (libcrc32c needs it), got %s", BootModules[0])
	}
}
