package reconcile

import (
	"fmt"
	"testing"

	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/link"
)

// TestRealKernelProbe: on the VM's kernel, a probe of a kernel kubevs just synced finds it
// as the model holds it (an address the kernel adds by itself, a set's header count, the
// settings the dump reports: none makes it differ, or every probe would read everything);
// and each fault it covers makes it read everything and the resync put the kernel back.
func TestRealKernelProbe(t *testing.T) {
	realKernel(t, func(k Kernel) {
		ss := []svc{web, dns}
		for i := range 40 { // with web's and dns's, 43 virtual servers: all in the sample
			ss = append(ss, svc{name: fmt.Sprintf("default/s%d", i), ip: fmt.Sprintf("10.96.1.%d", i+1), ports: []string{"TCP:80"}, eps: []string{"10.244.1.5", "10.244.1.6"}})
		}
		r := New(k, Options{Desired: testOpts})
		c := ctx(t)
		must(t, r.Start(c))
		must(t, r.Resync(c, all(t, ss...)))
		before := kernelText(t, k)
		probe := func(fault, want string) {
			t.Helper()
			holdFullRead(r)
			rd := r.BeginRead()
			rd.Run(c)
			if rd.Kind() != want {
				t.Errorf("%s: the read was %q, want %q", fault, rd.Kind(), want)
			}
			must(t, r.ResyncRead(c, all(t, ss...), rd))
			if got := kernelText(t, k); got != before {
				t.Errorf("%s: kernel after the resync differs from the synced one:\n%s\nwant:\n%s", fault, got, before)
			}
		}
		probe("none", ReadProbe)
		s3 := mustKey("TCP:10.96.1.3:80")
		for _, tc := range []struct {
			name  string
			fault func() error
		}{
			{"ipvsadm -D", func() error { return k.IPVS.DeleteVirtualServer(mustKey("TCP:10.96.1.2:80")) }},
			{"ipvsadm -d", func() error { return k.IPVS.DeleteRealServer(s3, rsAt("10.244.1.6:8080", 1)) }},
			{"ipvsadm -e -w 3", func() error { return k.IPVS.UpdateRealServer(s3, rsAt("10.244.1.6:8080", 3)) }},
			{"ip addr del", func() error { return k.Link.DeleteAddress(link.DefaultDummy, mustAddr("10.96.1.4")) }},
			{"ipset del KUBE-CLUSTER-IP", func() error { return k.IPSet.DeleteEntries("KUBE-CLUSTER-IP", ipset.Entry("10.96.1.5,tcp:80")) }},
			{"ipset flush KUBE-LOOP-BACK", func() error {
				es, err := k.IPSet.Entries("KUBE-LOOP-BACK")
				if err != nil {
					return err
				}
				return k.IPSet.DeleteEntries("KUBE-LOOP-BACK", es...)
			}},
		} {
			// Not subtests: their goroutines would run outside the test's network namespace.
			must(t, tc.fault())
			if kernelText(t, k) == before {
				t.Fatalf("%s: the fault changed nothing", tc.name)
			}
			probe(tc.name, ReadEscalated)
			probe(tc.name+", repaired", ReadProbe)
		}
	})
}
