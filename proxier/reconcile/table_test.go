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

// sameBatchedOrNot runs step twice on fresh fakes: through the adapters as they are (with
// their batched adds) and with hide applied to the kernel (adds one by one). Both runs must
// leave the same dump with the same writes, sorted (a batch may order them differently);
// it returns each run's dump.
func sameBatchedOrNot(t *testing.T, hide func(*Kernel, *fakes), step func(*fakes, *Reconciler), dump func(*fakes) string, writes func(*fakes) []string) (dumps [2]string) {
	t.Helper()
	var ops [2]string
	for i, batched := range []bool{true, false} {
		f := newFakes()
		k := f.kernel()
		if !batched {
			hide(&k, f)
		}
		r := New(k, Options{Desired: testOpts})
		must(t, r.Start(ctx(t)))
		step(f, r)
		dumps[i] = dump(f)
		w := slices.Clone(writes(f))
		slices.Sort(w)
		ops[i] = strings.Join(w, "\n")
	}
	if d := cmp.Diff(dumps[1], dumps[0]); d != "" {
		t.Errorf("kernel (-one by one +batched):\n%s", d)
	}
	if d := cmp.Diff(ops[1], ops[0]); d != "" {
		t.Errorf("writes, sorted (-one by one +batched):\n%s", d)
	}
	return dumps
}

// TestRealServerAddsBatchedOrNot: a sync through an adapter that adds a virtual server's
// real servers together, and one through an adapter that adds them one by one, leave the
// same kernel and issue the same writes; a real server the kernel holds but the model lost
// (an add answered ErrExist, in the batch or alone) gets its weight set instead.
func TestRealServerAddsBatchedOrNot(t *testing.T) {
	ss := append(many(20), web, dns)
	dumps := sameBatchedOrNot(t, func(k *Kernel, f *fakes) { k.IPVS = oneByOne{f.ipvs} }, func(f *fakes, r *Reconciler) {
		c := ctx(t)
		must(t, r.Resync(c, all(t, ss...)))
		// The model loses one of web's real servers, and the kernel's weight differs.
		key, ap := mustKey("TCP:10.96.0.10:80"), mustAP("10.244.1.5:8080")
		r.m.vs[key].rs.del(ap)
		must(t, f.ipvs.UpdateRealServer(key, rsAt("10.244.1.5:8080", 7)))
		web2 := web
		web2.eps = append(slices.Clone(web.eps), "10.244.1.6")
		f.reset()
		must(t, r.Apply(c, changes(t, web2)))
	}, func(f *fakes) string { return f.ipvs.Dump() }, func(f *fakes) []string { return f.ipvs.Ops() })
	for _, d := range dumps {
		if !strings.Contains(d, "10.244.1.5:8080 weight 1") || !strings.Contains(d, "10.244.1.6:8080 weight 1") {
			t.Errorf("web's real servers are not all there with weight 1:\n%s", d)
		}
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
	var ops []string
	dumps := sameBatchedOrNot(t, func(k *Kernel, f *fakes) { k.Link = linksOneByOne{f.link} }, func(f *fakes, r *Reconciler) {
		must(t, f.link.AddAddress("kube-ipvs0", mustAddr("10.96.0.53"))) // after the start's read
		f.reset()
		must(t, r.Apply(ctx(t), changes(t, ss...)))
		ops = f.link.Ops()
	}, func(f *fakes) string { return f.link.Dump() }, func(f *fakes) []string { return f.link.Ops() })
	for _, d := range dumps {
		if n := strings.Count(d, "10.96.0.53"); n != 1 {
			t.Errorf("10.96.0.53 bound %d times:\n%s", n, d)
		}
	}
	if !slices.Contains(ops, "add-addr kube-ipvs0 10.100.0.1") {
		t.Errorf("no VIP added: %v", ops)
	}
}
