package status

import (
	"fmt"
	"io"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
)

// openEnv builds the API client and opens the Linux adapters of the calling thread's
// network namespace.
func openEnv(rc *rest.Config) (Env, error) {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return Env{}, fmt.Errorf("create API client: %w", err)
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
	return Env{Client: client, IPVS: iv, Link: lk, Close: func() { closeAll(iv, lk) }}, nil
}

func closeAll(xs ...any) {
	for _, x := range xs {
		if c, ok := x.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
