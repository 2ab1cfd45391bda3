package daemon

// Registration GC: the plugin's DEL removes a pod's registration, and a CNI GC (cniVersion
// 1.1 and later) drops every registration the runtime no longer knows. A DEL that missed
// the proxier and a chain that never gets GC (cniVersion below 1.1) leave registrations of
// gone pods for ever, and with them KUBE-LOOP-BACK entries and local endpoints for IPs
// the IPAM may hand to another pod. So the proxier collects them itself, now and then.
//
// A registration is stale when the network namespace it recorded at ADD is gone (its
// directory still there: see netnsGone) and none of its IPs is an endpoint in any
// EndpointSlice. Both must hold: a namespace path can be invisible from the proxier's own
// mount namespace, and an IP alone could still be a pod's that backs no Service. A
// registration that recorded no namespace is never collected here (a DEL or a CNI GC
// removes it). A DaemonSet proxier needs the host's /run/netns mounted for this GC to act.

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// regGCInterval is how often stale registrations are looked for.
const regGCInterval = time.Minute

// netnsGone reports whether the network namespace path recorded by a registration no
// longer exists, while its directory does. A proxier in a container that does not see the
// host's /run/netns (or its PID namespace, for /proc/<pid>/ns/net paths) sees neither, and
// must not take every pod for gone. An error other than "not exist" counts as present.
func netnsGone(path string) bool {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	_, err := os.Stat(filepath.Dir(path))
	return err == nil
}

// staleRegistrations returns the registrations of regs whose recorded namespace is gone
// (gone) and none of whose IPs is an endpoint (isEndpoint).
func staleRegistrations(regs []nodeapi.Registration, gone func(string) bool, isEndpoint func(netip.Addr) bool) []nodeapi.Registration {
	var out []nodeapi.Registration
	for _, r := range regs {
		if r.Netns == "" || !gone(r.Netns) {
			continue
		}
		endpoint := false
		for _, ip := range r.IPs {
			if isEndpoint(ip.Unmap()) {
				endpoint = true
				break
			}
		}
		if !endpoint {
			out = append(out, r)
		}
	}
	return out
}

// gcRegistrations removes the stale registrations; the store's change notification then
// recomputes the affected Services and flushes the pods' flows. It returns how many went.
func (d *Daemon) gcRegistrations(ctx context.Context) int {
	logger := klog.FromContext(ctx)
	stale := staleRegistrations(d.store.List(), d.netnsGone, func(ip netip.Addr) bool {
		return len(d.tracker.ServicesWithEndpoints(func(a netip.Addr) bool { return a == ip })) > 0
	})
	n := 0
	for _, r := range stale {
		if _, err := d.store.Unregister(r.Key()); err != nil {
			logger.Error(err, "Removing the registration of a gone pod", "attachment", r.Key(), "netns", r.Netns)
			continue
		}
		n++
		logger.Info("Removed the registration of a gone pod", "attachment", r.Key(), "pod", r.PodNamespace+"/"+r.PodName, "netns", r.Netns, "ips", r.IPs)
	}
	return n
}
