package status

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubevs/kubevs/proxier/config"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipvs"
	"github.com/kubevs/kubevs/proxier/link"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

// stuck is a read that never answers until the test ends, as a netlink dump without its
// NLMSG_DONE or an iptables-save waiting on a lock does.
type stuck chan struct{}

func newStuck(t *testing.T) stuck {
	s := make(stuck)
	t.Cleanup(func() { close(s) })
	return s
}

func (s stuck) wait() { <-s }

// The blocking adapters: the fakes of the cluster, with one read method that never answers
// (for the set or family named in on, when it has one).
type (
	stuckVirtualServers struct {
		ipvs.Interface
		s stuck
	}
	stuckRealServers struct {
		ipvs.Interface
		s stuck
	}
	stuckAddresses struct {
		link.Interface
		s stuck
	}
	stuckSets struct {
		ipset.Interface
		s stuck
	}
	stuckEntries struct {
		ipset.Interface
		s  stuck
		on string
	}
	stuckDump struct {
		netfilter.Interface
		s stuck
	}
)

func (b stuckVirtualServers) VirtualServers() ([]ipvs.VirtualServer, error) {
	b.s.wait()
	return nil, nil
}
func (b stuckRealServers) RealServers(ipvs.Key) ([]ipvs.RealServer, error) {
	b.s.wait()
	return nil, nil
}

// stuckTable hangs in the all-at-once read of the IPVS table.
type stuckTable struct {
	ipvs.Interface
	s stuck
}

func (b stuckTable) RealServerTable() (map[ipvs.Key][]ipvs.RealServer, error) {
	b.s.wait()
	return nil, nil
}

func (b stuckAddresses) Addresses(string) ([]netip.Addr, error) { b.s.wait(); return nil, nil }
func (b stuckSets) Sets() ([]string, error)                     { b.s.wait(); return nil, nil }
func (b stuckDump) Dump(netfilter.Family) (netfilter.Ruleset, error) {
	b.s.wait()
	return netfilter.Ruleset{}, nil
}

func (b stuckEntries) Entries(name string) ([]ipset.Entry, error) {
	if name == b.on {
		b.s.wait()
	}
	return b.Interface.Entries(name)
}

// Whichever kernel read does not answer, `kubevs status` gives up after --step-timeout (1s:
// every other read must answer within it, also on a loaded CI machine),
// names the check on stderr, prints no report and exits 2.
func TestStatusNamesTheReadThatTimedOut(t *testing.T) {
	tests := []struct {
		name  string
		stuck func(Env, stuck) Env
		check string
	}{
		{"virtual servers", func(e Env, s stuck) Env { e.IPVS = stuckVirtualServers{e.IPVS, s}; return e }, "list IPVS virtual servers"},
		{"real servers", func(e Env, s stuck) Env { e.IPVS = stuckRealServers{e.IPVS, s}; return e }, "list real servers of TCP:10.96.0.10:80"},
		{"IPVS table", func(e Env, s stuck) Env { e.IPVS = stuckTable{e.IPVS, s}; return e }, "read the IPVS table"},
		{"dummy addresses", func(e Env, s stuck) Env { e.Link = stuckAddresses{e.Link, s}; return e }, "list addresses of link kube-ipvs0"},
		{"sets", func(e Env, s stuck) Env { e.IPSet = stuckSets{e.IPSet, s}; return e }, "list ipsets"},
		{"one set's members", func(e Env, s stuck) Env { e.IPSet = stuckEntries{e.IPSet, s, "KUBE-NODE-PORT-TCP"}; return e }, "list members of set KUBE-NODE-PORT-TCP"},
		{"iptables-save", func(e Env, s stuck) Env { e.Netfilter = stuckDump{e.Netfilter, s}; return e }, "read inet iptables rules"},
		{"node addresses", func(e Env, s stuck) Env {
			e.HostAddresses = func() ([]netip.Addr, error) { s.wait(); return nil, nil }
			return e
		}, "list the node's addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			s := newStuck(t)
			open := func(*rest.Config) (Env, error) {
				env := Env{API: clientsetSource{c.client}, IPVS: c.ipvs, Link: c.link, IPSet: c.ipset, Netfilter: c.nf}
				return tt.stuck(env, s), nil
			}
			var out, errb bytes.Buffer
			start := time.Now()
			// --timeout 0: the step timeout alone must end the run.
			args := []string{"--kubeconfig", c.kc, "--node", testNode, "--timeout", "0", "--step-timeout", "1s"}
			code := mainWith(context.Background(), args, &out, &errb, func(string) string { return "" }, open)
			want := `kubevs status: check "` + tt.check + `" timed out: no answer after `
			if code != ExitError || !strings.HasPrefix(errb.String(), want) || out.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, and %q", code, out.String(), errb.String(), want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v despite --step-timeout 1s", d)
			}
		})
	}
}

// Opening the adapters (iptables --version, netlink sockets) is bounded too.
func TestStatusOpenTimesOut(t *testing.T) {
	c := newCluster(t)
	s := newStuck(t)
	open := func(*rest.Config) (Env, error) { s.wait(); return Env{}, nil }
	var out, errb bytes.Buffer
	code := mainWith(context.Background(), []string{"--kubeconfig", c.kc, "--node", testNode, "--step-timeout", "1s"}, &out, &errb, func(string) string { return "" }, open)
	if want := `check "open the kernel adapters" timed out`; code != ExitError || !strings.Contains(errb.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), want)
	}
}

// --timeout bounds a kernel read too when it is the shorter, and the error still names it.
// The run's deadline passes once the stuck read is entered, so the earlier reads finish
// first however loaded the machine is (a fixed 150 ms once expired during an earlier read).
func TestStatusRunTimeoutNamesTheRead(t *testing.T) {
	c := newCluster(t)
	s := newStuck(t)
	ctx := newExpiring()
	env := Env{API: clientsetSource{c.client}, IPVS: c.ipvs, Link: c.link, IPSet: expireOnSets{stuckSets{c.ipset, s}, ctx}, StepTimeout: time.Hour}
	_, err := Run(ctx, testNode, config.New(), env)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Check != "list ipsets" || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v; want a *TimeoutError for %q matching context.DeadlineExceeded", err, "list ipsets")
	}
}

// expiring is a context whose deadline passes when expire is called.
type expiring struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiring() *expiring {
	return &expiring{Context: context.Background(), done: make(chan struct{})}
}

func (e *expiring) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }
func (e *expiring) Done() <-chan struct{}       { return e.done }
func (e *expiring) expire()                     { e.once.Do(func() { close(e.done) }) }

func (e *expiring) Err() error {
	select {
	case <-e.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// expireOnSets lets the run's deadline pass when the set listing starts.
type expireOnSets struct {
	stuckSets
	ctx *expiring
}

func (b expireOnSets) Sets() ([]string, error) { b.ctx.expire(); return b.stuckSets.Sets() }

func TestStepTimeoutFlag(t *testing.T) {
	for _, arg := range []string{"0", "-1s"} {
		var errb bytes.Buffer
		if _, err := ParseFlags([]string{"--step-timeout", arg}, &errb); err == nil || !strings.Contains(err.Error(), "--step-timeout") {
			t.Errorf("--step-timeout %s: error %v, want one naming the flag", arg, err)
		}
	}
	o, err := ParseFlags(nil, &bytes.Buffer{})
	if err != nil || o.StepTimeout != DefaultStepTimeout {
		t.Errorf("default: %v, %v; want %v", o.StepTimeout, err, DefaultStepTimeout)
	}
}

// BenchmarkReaderDo is the cost the deadline adds to one read (a table of thousands of
// virtual servers is thousands of reads).
func BenchmarkReaderDo(b *testing.B) {
	r, err := newReader(context.Background(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	for b.Loop() {
		if err := r.do("nothing", func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
