package daemon

// The guard rails' inputs and reports (see desired/guard.go). Compute refuses the
// externalIPs, LoadBalancer ingress IPs and NodePorts that would take a reserved address;
// the daemon supplies what only it knows (the API server's endpoints, the ClusterIP of
// every Service) and tells each Service's author, once per change, with a Warning Event.

import (
	"context"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/proxier/config/derive"
	"github.com/kubevs/kubevs/proxier/desired"
)

// EventComponent names kubevs-proxier as the source of the Events it writes.
const EventComponent = "kubevs-proxier"

// newRecorder returns an Event recorder writing core/v1 Events through client (the RBAC
// grants create and patch on events in the core group, nothing more: the recorder creates
// an Event, and patches its count when the same one repeats), and the broadcaster to start
// with StartRecordingToSink and Shutdown. Core/v1 Events are used rather than
// events.k8s.io/v1 ones because the latter fold every Event of one reason on one object
// into a series that keeps only the first note, and each refused address must be named.
func newRecorder(d *Daemon) (record.EventRecorder, record.EventBroadcaster) {
	b := record.NewBroadcaster()
	return b.NewRecorder(scheme.Scheme, v1.EventSource{Component: EventComponent, Host: d.cfg.NodeName}), b
}

// apiServers returns the API server's endpoints as the tracker sees them now: the
// kubeconfig host and the default/kubernetes EndpointSlices.
func (d *Daemon) apiServers() []netip.AddrPort {
	_, eps := d.tracker.Service(derive.APIServerService)
	return derive.APIServers(d.apiHost, eps)
}

// noteSkips records the skips of name's latest computation (skips.go) and, for each one
// that is new, counts it in kubevs_objects_skipped_total and, when it is a refusal, logs it
// and reports it as a Warning Event on the Service: once per Service, part and reason, not
// once per sync. kmu must be held.
func (d *Daemon) noteSkips(ctx context.Context, name types.NamespacedName, svc *desired.APIService, errs []error) {
	for _, err := range d.skipped.note(name, errs) {
		d.metrics.ObjectsSkipped.WithLabelValues(skipReason(err)).Inc()
		se, ok := refusal(err)
		if !ok || svc == nil {
			continue
		}
		klog.FromContext(ctx).Info("Refused an address of a Service", "service", name, "address", se.Addr, "reason", se.Reason, "err", err)
		d.recorder.Eventf(svc.Reference(), v1.EventTypeWarning, se.Event, "%s", err.Error())
	}
}

// sameAPIServers reports whether the API server's endpoints are those the options hold.
func sameAPIServers(a, b []netip.AddrPort) bool { return slices.Equal(a, b) }

// logRefusedNodePorts logs, once per change of options, the NodePort addresses the guard
// rails leave out.
func logRefusedNodePorts(ctx context.Context, o desired.Options) {
	if refused := desired.RefusedNodePortAddresses(o); len(refused) > 0 {
		klog.FromContext(ctx).Info("Warning: these node addresses serve no NodePort: link-local, multicast, or in a pod or Service CIDR", "addresses", refused)
	}
}
