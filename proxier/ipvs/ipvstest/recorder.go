package ipvstest

import (
	"slices"
	"strings"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Recorder passes every call on to another ipvs.Interface, the kernel's in a VM test, and
// keeps a Log of the writes in the text Fake's Ops uses ("add-rs TCP:10.96.0.1:80
// 10.244.0.2:8080 weight 1", a failed one ending in ": <error>"). FailNext and SetHook fail a
// write before it reaches the Interface. Reads pass through unrecorded and uncounted. It is
// safe for concurrent use when the Interface is.
type Recorder struct {
	ipvs.Interface
	*kfake.Log
	rec *kfake.Recorder
}

var _ ipvs.Interface = (*Recorder)(nil)

// NewRecorder returns a Recorder of the writes to v.
func NewRecorder(v ipvs.Interface) *Recorder {
	log, rec := kfake.New(kfake.MarkError)
	return &Recorder{Interface: v, Log: log, rec: rec}
}

func (r *Recorder) write(op, target string, fn func() error) error {
	c, err := r.rec.Begin(op, target, true)
	if err != nil {
		return err
	}
	return c.Done(fn())
}

// AddVirtualServer records and passes on the call.
func (r *Recorder) AddVirtualServer(vs ipvs.VirtualServer) error {
	return r.write(OpAddVirtualServer, vs.String(), func() error { return r.Interface.AddVirtualServer(vs) })
}

// UpdateVirtualServer records and passes on the call.
func (r *Recorder) UpdateVirtualServer(vs ipvs.VirtualServer) error {
	return r.write(OpUpdateVirtualServer, vs.String(), func() error { return r.Interface.UpdateVirtualServer(vs) })
}

// DeleteVirtualServer records and passes on the call.
func (r *Recorder) DeleteVirtualServer(k ipvs.Key) error {
	return r.write(OpDeleteVirtualServer, k.String(), func() error { return r.Interface.DeleteVirtualServer(k) })
}

// AddRealServer records and passes on the call.
func (r *Recorder) AddRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return r.write(OpAddRealServer, destTarget(OpAddRealServer, k, rs), func() error { return r.Interface.AddRealServer(k, rs) })
}

// UpdateRealServer records and passes on the call.
func (r *Recorder) UpdateRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return r.write(OpUpdateRealServer, destTarget(OpUpdateRealServer, k, rs), func() error { return r.Interface.UpdateRealServer(k, rs) })
}

// DeleteRealServer records and passes on the call.
func (r *Recorder) DeleteRealServer(k ipvs.Key, rs ipvs.RealServer) error {
	return r.write(OpDeleteRealServer, destTarget(OpDeleteRealServer, k, rs), func() error { return r.Interface.DeleteRealServer(k, rs) })
}

// SetTimeouts records and passes on the call.
func (r *Recorder) SetTimeouts(t ipvs.Timeouts) error {
	return r.write(OpSetTimeouts, t.String(), func() error { return r.Interface.SetTimeouts(t) })
}

// destTarget is the target text of a real-server write: the key and the real server, whose
// weight a delete leaves out.
func destTarget(op string, k ipvs.Key, rs ipvs.RealServer) string {
	if op == OpDeleteRealServer {
		return k.String() + " " + rs.AddrPort().String()
	}
	return k.String() + " " + rs.String()
}

// Text prints the table of any ipvs.Interface as Fake.Dump prints the fake's, without the
// connection counters (traffic moves those on a real kernel): virtual servers sorted by
// CompareKeys, each followed by its real servers sorted by address and port.
func Text(v ipvs.Interface) (string, error) {
	vss, err := v.VirtualServers()
	if err != nil {
		return "", err
	}
	slices.SortFunc(vss, func(a, b ipvs.VirtualServer) int { return CompareKeys(a.Key, b.Key) })
	var b strings.Builder
	for _, vs := range vss {
		rss, err := v.RealServers(vs.Key)
		if err != nil {
			return "", err
		}
		slices.SortFunc(rss, func(a, b ipvs.RealServer) int { return a.AddrPort().Compare(b.AddrPort()) })
		b.WriteString(vs.String() + "\n")
		for _, rs := range rss {
			b.WriteString("  -> " + rs.String() + "\n")
		}
	}
	return b.String(), nil
}
