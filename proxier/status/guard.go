package status

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// The guarded adapters run each read method of an adapter through a reader, so that it has
// a deadline and a name. Status calls only these read methods; the others are the embedded
// adapter's, unguarded.

type guardedIPVS struct {
	ipvs.Interface
	r *reader
}

func (g guardedIPVS) VirtualServers() ([]ipvs.VirtualServer, error) {
	return get(g.r, "list IPVS virtual servers", g.Interface.VirtualServers)
}

func (g guardedIPVS) RealServers(k ipvs.Key) ([]ipvs.RealServer, error) {
	return get(g.r, fmt.Sprintf("list real servers of %s", k), func() ([]ipvs.RealServer, error) { return g.Interface.RealServers(k) })
}

// realServersOf lists the real servers of every key: all at once where the adapter can
// and the table is small enough (ipvs.TableReader, ipvs.TableMaxVirtualServers; one bounded
// read), then, in one job of the reader (each), a dump for
// each key the table did not hold, each still bounded and named as RealServers's. A table
// read that fails is not a finding (the dumps answer instead); one that hangs is.
func (g guardedIPVS) realServersOf(keys []ipvs.Key) ([][]ipvs.RealServer, error) {
	var table map[ipvs.Key][]ipvs.RealServer
	if tr, ok := g.Interface.(ipvs.TableReader); ok && len(keys) <= ipvs.TableMaxVirtualServers {
		var err error
		table, err = get(g.r, "read the IPVS table", tr.RealServerTable)
		if errors.As(err, new(*TimeoutError)) {
			return nil, err
		}
	}
	out := make([][]ipvs.RealServer, len(keys))
	var dump []int
	for i, k := range keys {
		if rss, ok := table[k]; ok && rss != nil {
			out[i] = rss
		} else {
			dump = append(dump, i)
		}
	}
	err := g.r.each(len(dump), func(j int) string { return fmt.Sprintf("list real servers of %s", keys[dump[j]]) }, func(j int) error {
		var err error
		out[dump[j]], err = listRealServers(g.Interface, keys[dump[j]])
		return err
	})
	return out, err
}

type guardedLink struct {
	link.Interface
	r *reader
}

func (g guardedLink) Addresses(name string) ([]netip.Addr, error) {
	return get(g.r, fmt.Sprintf("list addresses of link %s", name), func() ([]netip.Addr, error) { return g.Interface.Addresses(name) })
}

type guardedIPSet struct {
	ipset.Interface
	r *reader
}

func (g guardedIPSet) Sets() ([]string, error) {
	return get(g.r, "list ipsets", g.Interface.Sets)
}

func (g guardedIPSet) Entries(name string) ([]ipset.Entry, error) {
	return get(g.r, fmt.Sprintf("list members of set %s", name), func() ([]ipset.Entry, error) { return g.Interface.Entries(name) })
}

func (g guardedIPSet) Counts() (map[string]int, error) {
	return get(g.r, "count members of the sets", g.Interface.Counts)
}

// membersOf lists the members of every set named in one job of the reader (each), each dump
// still bounded and named as Entries's.
func (g guardedIPSet) membersOf(names []string) ([][]ipset.Entry, error) {
	out := make([][]ipset.Entry, len(names))
	err := g.r.each(len(names), func(i int) string { return fmt.Sprintf("list members of set %s", names[i]) }, func(i int) error {
		var err error
		out[i], err = listMembers(g.Interface, names[i])
		return err
	})
	return out, err
}

type guardedNetfilter struct {
	netfilter.Interface
	r *reader
}

func (g guardedNetfilter) Dump(f netfilter.Family) (netfilter.Ruleset, error) {
	return get(g.r, fmt.Sprintf("read %s iptables rules", f), func() (netfilter.Ruleset, error) { return g.Interface.Dump(f) })
}

// guard returns env with every adapter's reads and HostAddresses bounded by r.
func guard(env Env, r *reader) Env {
	if env.IPVS != nil {
		env.IPVS = guardedIPVS{env.IPVS, r}
	}
	if env.Link != nil {
		env.Link = guardedLink{env.Link, r}
	}
	if env.IPSet != nil {
		env.IPSet = guardedIPSet{env.IPSet, r}
	}
	if env.Netfilter != nil {
		env.Netfilter = guardedNetfilter{env.Netfilter, r}
	}
	if hosts := env.HostAddresses; hosts != nil {
		env.HostAddresses = func() ([]netip.Addr, error) { return get(r, "list the node's addresses", hosts) }
	}
	return env
}
