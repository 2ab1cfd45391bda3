package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Listen opens addr (host:port) for UDP and TCP.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on udp %s: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		_ = pc.Close() // the error that matters is returned
		return nil, nil, fmt.Errorf("listen on tcp %s: %w", addr, err)
	}
	return pc, l, nil
}

// Serve answers queries for domain on pc (UDP) and l (TCP) from client's Services and
// EndpointSlices, once the informers have synced, until ctx ends; it closes pc and l.
func Serve(ctx context.Context, client kubernetes.Interface, domain string, pc net.PacketConn, l net.Listener) error {
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	h := NewHandler(logger, domain, services.Lister(), slices.Lister())
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, slices.Informer().HasSynced) {
		_ = pc.Close() // the error that matters is returned
		_ = l.Close()
		return fmt.Errorf("sync the Service and EndpointSlice informers: %w", ctx.Err())
	}
	servers := []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h, ReadTimeout: 10 * time.Second}}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.ActivateAndServe() }()
	}
	logger.Info("Serving the cluster domain", "domain", domain, "udp", pc.LocalAddr(), "tcp", l.Addr())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		err = fmt.Errorf("serve DNS: %w", err)
	}
	for _, s := range servers {
		if e := s.Shutdown(); e != nil && err == nil && ctx.Err() == nil {
			err = errors.Join(err, fmt.Errorf("shut down the DNS server: %w", e))
		}
	}
	return err
}
