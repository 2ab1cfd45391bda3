package vm

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// BootModules are loaded by the guest's /init before the command runs, in this order
// (modprobe pulls in their dependencies); a word after the name is a module parameter. crc32c_generic comes first: libcrc32c, which
// ip_vs and nf_conntrack need, fails with "unknown symbol" unless the crypto API already
// has a crc32c implementation when it initialises.
var BootModules = []string{
	"crc32c_generic",
	// Transport of the host's root and the shared folders, and the writable root.
	"virtio_pci", "virtio_net", "virtio_rng", "9pnet_virtio", "9p", "overlay",
	// IPVS and every scheduler kube-proxy and kubevs may ask for.
	"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
	"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_mh",
	// Links. numdummies=0: no stray dummy0 beside the kube-ipvs0 the proxier makes.
	"dummy numdummies=0", "veth", "bridge", "br_netfilter",
	// Connection tracking and NAT.
	"nf_conntrack", "nf_conntrack_netlink", "nf_nat",
	// iptables (legacy and nf_tables backends) for both families.
	"ip_tables", "iptable_nat", "iptable_filter", "iptable_mangle", "iptable_raw",
	"ip6_tables", "ip6table_nat", "ip6table_filter", "ip6table_mangle", "ip6table_raw",
	"nf_tables", "nft_compat", "nft_chain_nat", "nft_ct", "nft_nat", "nft_masq",
	"xt_set", "xt_comment", "xt_mark", "xt_conntrack", "xt_MASQUERADE", "xt_addrtype",
	"xt_multiport", "xt_physdev", "xt_nat", "xt_tcpudp",
	// ipsets of every type.
	"ip_set", "ip_set_hash_ip", "ip_set_hash_ipport", "ip_set_hash_ipportip",
	"ip_set_hash_ipportnet", "ip_set_hash_net", "ip_set_hash_netport", "ip_set_bitmap_port",
	"sctp",
}

// PackedModules are name patterns (path.Match syntax, on normalised names) of the modules
// packed into the initramfs besides BootModules, so that the kernel and iptables can load
// them on demand. Their dependencies are packed too.
var PackedModules = []string{
	"ip_vs*", "ip_set*", "xt_*", "nft_*", "nf_*", "iptable_*", "ip6table_*", "ipt_*", "ip6t_*",
	"ebtable*", "ebt_*", "nfnetlink*", "vxlan", "tun", "macvlan", "ipvlan",
}

// unpackedModules are left out even when a pattern matches them.
var unpackedModules = map[string]bool{"ip_vs_ftp": true}

// ModName normalises a module name or file path to the name the kernel uses:
// "kernel/drivers/char/hw_random/virtio-rng.ko.xz" -> "virtio_rng".
func ModName(s string) string {
	s = path.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// ModuleDeps maps a normalised module name to its file (relative to /lib/modules/<kver>) and
// the files it depends on, as modules.dep lists them.
type ModuleDeps struct {
	File map[string]string
	Deps map[string][]string
}

// ParseModulesDep reads a modules.dep file.
func ParseModulesDep(r io.Reader) (*ModuleDeps, error) {
	md := &ModuleDeps{File: map[string]string{}, Deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("parse modules.dep line %d %q: no colon", n, line)
		}
		name := ModName(file)
		md.File[name] = file
		md.Deps[name] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return md, nil
}

// Closure returns the files (sorted) of the modules named by names and patterns and of
// everything they depend on. A name in names that is neither a module nor in builtin (the
// normalised names from modules.builtin) is an error; a pattern may match nothing.
func (md *ModuleDeps) Closure(names, patterns []string, builtin map[string]bool) ([]string, error) {
	files := map[string]bool{}
	add := func(name string) {
		files[md.File[name]] = true
		for _, d := range md.Deps[name] {
			files[d] = true
		}
	}
	var missing []string
	for _, n := range names {
		n, _, _ = strings.Cut(n, " ")
		n = ModName(n)
		switch {
		case md.File[n] != "":
			add(n)
		case builtin[n]:
		default:
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("modules %s: neither in modules.dep nor built in", strings.Join(missing, ", "))
	}
	for n := range md.File {
		if unpackedModules[n] {
			continue
		}
		for _, p := range patterns {
			if ok, err := path.Match(p, n); err != nil {
				return nil, fmt.Errorf("match module pattern %q: %w", p, err)
			} else if ok {
				add(n)
				break
			}
		}
	}
	out := make([]string, 0, len(files))
	for f := range files {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// ParseBuiltin reads modules.builtin (one path per line) into a set of normalised names.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			set[ModName(l)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	return set, nil
}
