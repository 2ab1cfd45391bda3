// Package svchealth serves the healthCheckNodePort of Services with
// externalTrafficPolicy=Local, as kube-proxy does: an external load balancer asks each node
// on that port whether it has a local endpoint of the Service, and sends traffic only to
// the nodes that answer 200 (503 when the node has none, or when the proxier itself is not
// healthy: its rules may be stale). The body is JSON naming the Service, its count of local
// endpoints and serviceProxyHealthy, the fields kube-proxy answers with.
//
// Servers is level-driven and O(change): Update and Sync take the wanted health check
// ports (desired.Service.HealthCheckNodePort and LocalEndpoints); a listener opens when a
// port appears and closes when it goes; a change of the count only changes the answer.
package svchealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubevs/kubevs/proxier/internal/httpguard"
)

// Entry is what one Service asks: its health check port (0: none) and its ready local
// endpoints.
type Entry struct {
	Port           uint16
	LocalEndpoints int
}

// Response is the JSON body of an answer.
type Response struct {
	Service             ServiceName `json:"service"`
	LocalEndpoints      int         `json:"localEndpoints"`
	ServiceProxyHealthy bool        `json:"serviceProxyHealthy"`
}

// ServiceName names the Service in a Response.
type ServiceName struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Servers runs the health check listeners. It is safe for concurrent use.
type Servers struct {
	listen func(network, address string) (net.Listener, error)
	limits httpguard.Limits // timeouts and connection cap of every listener

	mu           sync.Mutex
	proxyHealthy func() bool  // nil: healthy
	addrs        []netip.Addr // listen addresses; nil: every address, empty: none
	services     map[types.NamespacedName]Entry
	ports        map[uint16]*port
	wg           sync.WaitGroup
}

// port is one health check port: its Service and, when listening, its server.
type port struct {
	service types.NamespacedName
	srv     *http.Server // nil when no listener could be opened (retried by Update and Sync)
}

// New returns Servers that listen on addrs, the node addresses NodePorts are served on: nil
// means every address of the node, an empty non-nil slice none at all (no NodePort
// address: the ports are remembered and nothing listens). listen is net.Listen in
// production (nil: net.Listen).
func New(addrs []netip.Addr, listen func(network, address string) (net.Listener, error)) *Servers {
	if listen == nil {
		listen = net.Listen
	}
	return &Servers{listen: listen, limits: httpguard.Default, addrs: slices.Clone(addrs), services: map[types.NamespacedName]Entry{}, ports: map[uint16]*port{}}
}

// Update sets the entries of the Services in changed (a zero Port removes the Service) and
// leaves the others alone. It returns the errors of listeners it could not open; those
// ports are tried again by the next Update or Sync.
func (s *Servers) Update(changed map[types.NamespacedName]Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range changed {
		s.set(name, e)
	}
	return s.openMissing()
}

// Sync makes all the entries; Services not in all are removed.
func (s *Servers) Sync(all map[types.NamespacedName]Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.services {
		if _, ok := all[name]; !ok {
			s.set(name, Entry{})
		}
	}
	for name, e := range all {
		s.set(name, e)
	}
	return s.openMissing()
}

// SetAddresses changes the listen addresses (as in New: nil every address, empty none);
// every listener is opened again on them when they differ.
func (s *Servers) SetAddresses(addrs []netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.addrs, addrs) && (s.addrs == nil) == (addrs == nil) {
		return nil
	}
	s.addrs = slices.Clone(addrs)
	for _, p := range s.ports {
		s.stop(p)
	}
	return s.openMissing()
}

// Ports returns the ports with an open listener, sorted (for tests and logs).
func (s *Servers) Ports() []uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint16
	for n, p := range s.ports {
		if p.srv != nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Close closes every listener and waits for the servers to return. Servers may not be used
// afterwards.
func (s *Servers) Close() {
	s.mu.Lock()
	for n, p := range s.ports {
		s.stop(p)
		delete(s.ports, n)
	}
	s.services = map[types.NamespacedName]Entry{}
	s.mu.Unlock()
	s.wg.Wait()
}

// set records e for name, releasing its old port when the port changed; mu must be held.
func (s *Servers) set(name types.NamespacedName, e Entry) {
	old, had := s.services[name]
	if had && old.Port != e.Port {
		if p := s.ports[old.Port]; p != nil && p.service == name {
			s.stop(p)
			delete(s.ports, old.Port)
		}
	}
	if e.Port == 0 {
		delete(s.services, name)
		return
	}
	s.services[name] = e
	if _, ok := s.ports[e.Port]; !ok {
		s.ports[e.Port] = &port{service: name}
	}
}

// openMissing opens the listeners of ports without one; mu must be held.
func (s *Servers) openMissing() error {
	if s.addrs != nil && len(s.addrs) == 0 {
		return nil // no address to listen on
	}
	for name, e := range s.services { // a port freed by one Service that another claims
		if s.ports[e.Port] == nil {
			s.ports[e.Port] = &port{service: name}
		}
	}
	var errs []error
	for n, p := range s.ports {
		if p.srv == nil {
			if err := s.open(n, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// open listens on every address for port n, all or nothing; mu must be held.
func (s *Servers) open(n uint16, p *port) error {
	hosts := []string{""}
	if s.addrs != nil {
		hosts = hosts[:0]
		for _, a := range s.addrs {
			hosts = append(hosts, a.String())
		}
	}
	var ls []net.Listener
	for _, h := range hosts {
		l, err := s.listen("tcp", net.JoinHostPort(h, strconv.Itoa(int(n))))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("listen on health check node port %d of %s: %w", n, p.service, err)
		}
		ls = append(ls, l)
	}
	srv := s.limits.Server(s.handler(n))
	p.srv = srv
	for _, l := range ls {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.Serve(s.limits.Listener(l)) // returns http.ErrServerClosed once stopped
		}()
	}
	return nil
}

// stop closes the listeners of p; mu must be held.
func (s *Servers) stop(p *port) {
	if p.srv != nil {
		_ = p.srv.Close()
		p.srv = nil
	}
}

// SetProxyHealth makes every answer report healthy() as serviceProxyHealthy, and 503 while it
// is false, so a load balancer stops sending to a node whose proxier has stopped syncing.
func (s *Servers) SetProxyHealth(healthy func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxyHealthy = healthy
}

// handler answers for the Service that holds port n when the request arrives.
func (s *Servers) handler(n uint16) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		var r Response
		found := false
		if p := s.ports[n]; p != nil {
			found = true
			r = Response{Service: ServiceName{Namespace: p.service.Namespace, Name: p.service.Name}, LocalEndpoints: s.services[p.service].LocalEndpoints}
		}
		healthy := s.proxyHealthy
		s.mu.Unlock()
		r.ServiceProxyHealthy = healthy == nil || healthy()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !found || r.LocalEndpoints == 0 || !r.ServiceProxyHealthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(r)
	})
}
