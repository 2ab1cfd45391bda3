package reconcile

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/ipvs/ipvstest"
	"github.com/kubevs/kubevs/proxier/link"
)

// partialTable is an IPVS table whose all-at-once read (ipvs.TableReader) leaves out some
// virtual servers, as /proc/net/ip_vs does for one printed twice while the table changed,
// or fails.
type partialTable struct {
	*ipvstest.Fake
	omit ipvs.Key
	err  error
}

func (p partialTable) RealServerTable() (map[ipvs.Key][]ipvs.RealServer, error) {
	if p.err != nil {
		return nil, p.err
	}
	t, err := p.Fake.RealServerTable()
	delete(t, p.omit)
	return t, err
}

// TestResyncReadsRealServersAtOnce: where the adapter can (ipvs.TableReader), a periodic
// resync reads every real server in one table read, not one dump per virtual server, and
// still finds a real server deleted behind kubevs's back.
func TestResyncReadsRealServersAtOnce(t *testing.T) {
	ss := many(100)
	f, r := startSynced(t, ss...)
	c := ctx(t)
	want := f.dump()
	key := mustKey("TCP:10.100.0.8:80")
	must(t, f.ipvs.DeleteRealServer(key, ipvs.RealServer{Address: mustAddr("10.248.0.8"), Port: 8080}))
	f.reset()
	must(t, readThenResync(c, r, all(t, ss...)))
	if got, dumps := f.ipvs.Calls(ipvstest.OpRealServerTable), f.ipvs.Calls(ipvstest.OpRealServers); got != 1 || dumps != 0 {
		t.Errorf("the resync read the table %d times and dumped %d virtual servers, want 1 and 0", got, dumps)
	}
	f.checkOps(t, "resync", []string{"add-rs TCP:10.100.0.8:80 10.248.0.8:8080 weight 1"})
	if diff := cmp.Diff(want, f.dump()); diff != "" {
		t.Errorf("kernel after the resync (-before the drift +after):\n%s", diff)
	}
}

// TestResyncDumpsWhatTheTableLacks: a virtual server the table read did not hold whole is
// dumped on its own, and every one is when the table read fails: drift is found and repaired
// either way.
func TestResyncDumpsWhatTheTableLacks(t *testing.T) {
	key := mustKey("TCP:10.100.0.8:80")
	for _, tc := range []struct {
		name  string
		table func(*ipvstest.Fake) partialTable
		dumps int
	}{
		{"one virtual server left out", func(f *ipvstest.Fake) partialTable { return partialTable{Fake: f, omit: key} }, 1},
		{"the table read fails", func(f *ipvstest.Fake) partialTable {
			return partialTable{Fake: f, err: errors.New("read /proc/thread-self/net/ip_vs: boom")}
		}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := many(100)
			f := newFakes()
			k := f.kernel()
			k.IPVS = tc.table(f.ipvs)
			r := New(k, Options{Desired: testOpts})
			c := ctx(t)
			must(t, r.Start(c))
			must(t, r.Resync(c, all(t, ss...)))
			want := f.dump()
			must(t, f.ipvs.DeleteRealServer(key, ipvs.RealServer{Address: mustAddr("10.248.0.8"), Port: 8080}))
			f.reset()
			must(t, readThenResync(c, r, all(t, ss...)))
			if got := f.ipvs.Calls(ipvstest.OpRealServers); got != tc.dumps {
				t.Errorf("dumped %d virtual servers, want %d", got, tc.dumps)
			}
			f.checkOps(t, "resync", []string{"add-rs TCP:10.100.0.8:80 10.248.0.8:8080 weight 1"})
			if diff := cmp.Diff(want, f.dump()); diff != "" {
				t.Errorf("kernel after the resync (-before the drift +after):\n%s", diff)
			}
		})
	}
}

// oneByOne hides the fake's batched adds (ipvs.RealServerAdder): only ipvs.Interface.
type oneByOne struct{ ipvs.Interface }

// TestRealServerAddsBatchedOrNot: a sync through an adapter that adds a virtual server's
// real servers together, and one through an adapter that adds them one by one, leave the
// same kernel and issue the same writes; a real server the kernel holds but the model lost
// (an add answered ErrExist, in the batch or alone) gets its weight set instead.
func TestRealServerAddsBatchedOrNot(t *testing.T) {
	ss := append(many(20), web, dns)
	var dumps, ops [2]string
	for i, batched := range []bool{true, false} {
		f := newFakes()
		k := f.kernel()
		if !batched {
			k.IPVS = oneByOne{f.ipvs}
		}
		r := New(k, Options{Desired: testOpts})
		c := ctx(t)
		must(t, r.Start(c))
		must(t, r.Resync(c, all(t, ss...)))
		// The model loses one of web's real servers, and the kernel's weight differs.
		key, ap := mustKey("TCP:10.96.0.10:80"), mustAP("10.244.1.5:8080")
		delete(r.m.vs[key].rs, ap)
		must(t, f.ipvs.UpdateRealServer(key, rsAt("10.244.1.5:8080", 7)))
		web2 := web
		web2.eps = append(slices.Clone(web.eps), "10.244.1.6")
		f.reset()
		must(t, r.Apply(c, changes(t, web2)))
		dumps[i] = f.ipvs.Dump()
		w := slices.Clone(f.ipvs.Ops())
		slices.Sort(w) // the batch sets the lost one's weight after the adds
		ops[i] = strings.Join(w, "\n")
		if !strings.Contains(dumps[i], "10.244.1.5:8080 weight 1") || !strings.Contains(dumps[i], "10.244.1.6:8080 weight 1") {
			t.Errorf("batched %v: web's real servers are not all there with weight 1:\n%s", batched, dumps[i])
		}
	}
	if d := cmp.Diff(dumps[1], dumps[0]); d != "" {
		t.Errorf("kernel (-one by one +batched):\n%s", d)
	}
	if d := cmp.Diff(ops[1], ops[0]); d != "" {
		t.Errorf("IPVS writes, sorted (-one by one +batched):\n%s", d)
	}
}

// TestLargeTablesAreDumped: above ipvs.TableMaxVirtualServers the table's quadratic read
// costs more than one dump per virtual server: the resync dumps each and reads no table.
func TestLargeTablesAreDumped(t *testing.T) {
	ss := many(ipvs.TableMaxVirtualServers + 1)
	f, r := startSynced(t, ss...)
	must(t, readThenResync(ctx(t), r, all(t, ss...)))
	if table, dumps := f.ipvs.Calls(ipvstest.OpRealServerTable), f.ipvs.Calls(ipvstest.OpRealServers); table != 0 || dumps != len(ss) {
		t.Errorf("%d table reads and %d dumps, want 0 and %d", table, dumps, len(ss))
	}
	f.checkOps(t, "resync", nil)
}

// linksOneByOne hides the fake's batched address adds (link.AddressAdder).
type linksOneByOne struct{ link.Interface }

// TestVIPAddsBatchedOrNot: a sync binding VIPs through an adapter that adds them together
// and one through an adapter that adds them one by one leave the same links, with the same
// writes; a VIP someone bound before kubevs (ErrExist) is taken as bound either way.
func TestVIPAddsBatchedOrNot(t *testing.T) {
	ss := append(many(20), web, dns)
	var dumps, ops [2]string
	for i, batched := range []bool{true, false} {
		f := newFakes()
		k := f.kernel()
		if !batched {
			k.Link = linksOneByOne{f.link}
		}
		r := New(k, Options{Desired: testOpts})
		c := ctx(t)
		must(t, r.Start(c))
		must(t, f.link.AddAddress("kube-ipvs0", mustAddr("10.96.0.53"))) // after the start's read
		f.reset()
		must(t, r.Apply(c, changes(t, ss...)))
		dumps[i] = f.link.Dump()
		w := slices.Clone(f.link.Ops())
		slices.Sort(w)
		ops[i] = strings.Join(w, "\n")
		if n := strings.Count(dumps[i], "10.96.0.53"); n != 1 {
			t.Errorf("batched %v: 10.96.0.53 bound %d times:\n%s", batched, n, dumps[i])
		}
	}
	if d := cmp.Diff(dumps[1], dumps[0]); d != "" {
		t.Errorf("links (-one by one +batched):\n%s", d)
	}
	if d := cmp.Diff(ops[1], ops[0]); d != "" {
		t.Errorf("link writes, sorted (-one by one +batched):\n%s", d)
	}
	if !strings.Contains(ops[0], "add-addr kube-ipvs0 10.100.0.1") {
		t.Errorf("no VIP added:\n%s", ops[0])
	}
}
