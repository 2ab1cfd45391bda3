package daemon

import (
	"fmt"

	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
	"github.com/kubevs/kubevs/proxier/reconcile"
	"github.com/kubevs/kubevs/proxier/sysctl"
)

// NewKernel returns the Linux kernel adapters.
func NewKernel() (reconcile.Kernel, error) {
	iv, err := ipvs.New()
	if err != nil {
		return reconcile.Kernel{}, fmt.Errorf("open IPVS: %w", err)
	}
	lk, err := link.New()
	if err != nil {
		return reconcile.Kernel{}, fmt.Errorf("open links: %w", err)
	}
	nf, err := netfilter.New()
	if err != nil {
		return reconcile.Kernel{}, fmt.Errorf("open iptables: %w", err)
	}
	return reconcile.Kernel{
		IPVS:      iv,
		Link:      lk,
		IPSet:     ipset.New(),
		Netfilter: nf,
		Conntrack: conntrack.New(),
		Sysctl:    sysctl.New(),
		NFTables:  netfilter.NewNFTables(),
	}, nil
}
