package daemon

import (
	"fmt"

	mobyipvs "github.com/moby/ipvs"

	"github.com/kubevs/kubevs/proxier/config"
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
	}, nil
}

// applyIPVSTimeouts sets the kernel's IPVS connection timeouts; zero leaves a timeout as
// the kernel has it. It is a no-op when all three are zero.
func applyIPVSTimeouts(c config.IPVSConfiguration) error {
	if c.TCPTimeout.Duration == 0 && c.TCPFinTimeout.Duration == 0 && c.UDPTimeout.Duration == 0 {
		return nil
	}
	h, err := mobyipvs.New("")
	if err != nil {
		return fmt.Errorf("open IPVS: %w", err)
	}
	defer h.Close()
	err = h.SetConfig(&mobyipvs.Config{
		TimeoutTCP:    c.TCPTimeout.Duration,
		TimeoutTCPFin: c.TCPFinTimeout.Duration,
		TimeoutUDP:    c.UDPTimeout.Duration,
	})
	if err != nil {
		return fmt.Errorf("set IPVS timeouts: %w", err)
	}
	return nil
}
