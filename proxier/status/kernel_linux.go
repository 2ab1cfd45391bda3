package status

import (
	"fmt"
	"io"

	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// openEnv builds the API source and opens the Linux adapters of the calling thread's
// network namespace.
func openEnv(rc *rest.Config) (Env, error) {
	src, err := NewSource(rc)
	if err != nil {
		return Env{}, err
	}
	iv, err := ipvs.New()
	if err != nil {
		return Env{}, fmt.Errorf("open IPVS: %w", err)
	}
	lk, err := link.New()
	if err != nil {
		closeAll(iv)
		return Env{}, fmt.Errorf("open links: %w", err)
	}
	env := Env{API: src, IPVS: iv, Link: lk, IPSet: ipset.New(), HostAddresses: derive.HostAddresses, Close: func() { closeAll(iv, lk) }}
	if nf, err := netfilter.New(); err == nil { // no iptables on the node: rules are not checked
		env.Netfilter = nf
	}
	return env, nil
}

func closeAll(xs ...any) {
	for _, x := range xs {
		if c, ok := x.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
