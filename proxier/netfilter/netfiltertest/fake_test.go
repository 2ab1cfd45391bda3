package netfiltertest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/kfake"
	"github.com/kubevs/kubevs/proxier/ipset"
	"github.com/kubevs/kubevs/proxier/ipset/ipsettest"
	"github.com/kubevs/kubevs/proxier/netfilter"
)

const v4 = ipset.IPv4

func rules(mark string) netfilter.Ruleset {
	return netfilter.Ruleset{
		Chains: []netfilter.Chain{
			{Table: "nat", Name: "KUBE-SERVICES", Rules: []string{"-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ"}},
			{Table: "nat", Name: "KUBE-MARK-MASQ", Rules: []string{"-j MARK --set-xmark " + mark + "/" + mark}},
			{Table: "filter", Name: "KUBE-IPVS-FILTER", Rules: []string{"-m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT"}},
		},
		Jumps: []netfilter.Jump{
			{Table: "nat", From: "PREROUTING", Match: `-m comment --comment "kubevs service portals"`, To: "KUBE-SERVICES"},
			{Table: "nat", From: "OUTPUT", Match: `-m comment --comment "kubevs service portals"`, To: "KUBE-SERVICES"},
			{Table: "filter", From: "INPUT", To: "KUBE-IPVS-FILTER"},
		},
	}
}

func TestFakeEnsureSequence(t *testing.T) {
	sets := ipsettest.NewFake()
	f := NewFake()
	f.UseSets(sets)
	if err := f.Append(v4, "nat", "PREROUTING", "-j FOREIGN"); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(v4, "nat", "FOREIGN", "-j RETURN"); err != nil {
		t.Fatal(err)
	}
	// The set does not exist yet: the rules do not load, as with iptables-restore.
	if err := f.Ensure(v4, rules("0x4000")); err == nil {
		t.Fatalf("Ensure loaded -m set against a missing set")
	}
	if err := sets.CreateSet(ipset.Set{Name: "KUBE-CLUSTER-IP", Type: ipset.HashIPPort}); err != nil {
		t.Fatal(err)
	}
	f.ResetOps()
	if err := f.Ensure(v4, rules("0x4000")); err != nil {
		t.Fatal(err)
	}
	if err := f.Ensure(v4, rules("0x4000")); err != nil {
		t.Fatal(err)
	}
	want := []string{"ensure inet", "restore inet filter", "restore inet nat", "ensure inet"}
	if diff := cmp.Diff(want, f.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
	golden := `# inet
*filter
:KUBE-IPVS-FILTER
-A INPUT -j KUBE-IPVS-FILTER
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
COMMIT
*nat
:FOREIGN
:KUBE-MARK-MASQ
:KUBE-SERVICES
-A PREROUTING -m comment --comment "kubevs service portals" -j KUBE-SERVICES
-A PREROUTING -j FOREIGN
-A OUTPUT -m comment --comment "kubevs service portals" -j KUBE-SERVICES
-A FOREIGN -j RETURN
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
COMMIT
`
	if diff := cmp.Diff(golden, f.Save()); diff != "" {
		t.Errorf("Save (-want +got):\n%s", diff)
	}
	// The set is in use while a rule holds it.
	if err := sets.DestroySet("KUBE-CLUSTER-IP"); !errors.Is(err, ipset.ErrInUse) {
		t.Errorf("destroy a referenced set = %v, want ErrInUse", err)
	}
	// Dump parses back.
	dump, err := f.Dump(v4)
	if err != nil {
		t.Fatal(err)
	}
	f.ResetOps()
	if err := f.Ensure(v4, dump); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ensure inet"}, f.Ops()); diff != "" {
		t.Errorf("Ensure(Dump()) ops (-want +got):\n%s", diff)
	}
	// One chain changes: only nat is written.
	f.ResetOps()
	if err := f.Ensure(v4, rules("0x8000")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ensure inet", "restore inet nat"}, f.Ops()); diff != "" {
		t.Errorf("ops of a one-chain change (-want +got):\n%s", diff)
	}
	// Cleanup leaves the foreign chain and its jump, and frees the set.
	if err := f.Cleanup(v4); err != nil {
		t.Fatal(err)
	}
	want2 := "# inet\n*nat\n:FOREIGN\n-A PREROUTING -j FOREIGN\n-A FOREIGN -j RETURN\nCOMMIT\n"
	if diff := cmp.Diff(want2, f.Save()); diff != "" {
		t.Errorf("Save after Cleanup (-want +got):\n%s", diff)
	}
	if err := sets.DestroySet("KUBE-CLUSTER-IP"); err != nil {
		t.Errorf("destroy the set once no rule holds it: %v", err)
	}
}

func TestFakeFailures(t *testing.T) {
	f := NewFake()
	rs := rules("0x4000")
	rs.Chains = rs.Chains[1:2] // KUBE-MARK-MASQ only
	rs.Jumps = nil
	boom := errors.New("boom")
	f.FailNext(OpEnsure, boom)
	if err := f.Ensure(v4, rs); !errors.Is(err, boom) {
		t.Fatalf("injected failure = %v", err)
	}
	if f.Save() != "" {
		t.Fatalf("a failed Ensure changed state:\n%s", f.Save())
	}
	if err := f.Ensure(v4, rs); err != nil {
		t.Fatal(err)
	}
	// A foreign chain jumping to an owned chain blocks its deletion; the table stays as it was.
	if err := f.Append(v4, "nat", "FOREIGN", "-j KUBE-MARK-MASQ"); err != nil {
		t.Fatal(err)
	}
	before := f.Save()
	if err := f.Ensure(v4, netfilter.Ruleset{}); err == nil {
		t.Errorf("Ensure deleted a chain a foreign chain jumps to")
	}
	if after := f.Save(); after != before {
		t.Errorf("failed Ensure changed the table:\n%s", cmp.Diff(before, after))
	}
	if err := f.Ensure(v4, netfilter.Ruleset{Chains: []netfilter.Chain{{Table: "filter", Name: "KUBE-FIREWALL"}}}); err == nil {
		t.Errorf("the fake accepted a chain kubevs does not own")
	}
	if err := f.Ensure("ipx", rs); err == nil {
		t.Errorf("the fake accepted an unknown family")
	}
	want := []string{"ensure inet (failed)", "ensure inet", "restore inet nat", "ensure inet (failed)", "ensure inet (failed)", "ensure ipx (failed)"}
	if diff := cmp.Diff(want, f.Ops()); diff != "" {
		t.Errorf("Ops (-want +got):\n%s", diff)
	}
}

func TestFakeFamiliesApart(t *testing.T) {
	f := NewFake()
	rs := rules("0x4000")
	rs.Chains = rs.Chains[1:2]
	rs.Jumps = nil
	if err := f.Ensure(ipset.IPv6, rs); err != nil {
		t.Fatal(err)
	}
	got, err := f.Dump(v4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Chains) != 0 {
		t.Errorf("IPv6 rules leaked into IPv4: %+v", got)
	}
	if !strings.HasPrefix(f.Save(), "# inet6\n") {
		t.Errorf("Save = %q", f.Save())
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake()
	rs := rules("0x4000")
	rs.Chains = rs.Chains[1:2]
	rs.Jumps = nil
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := f.Ensure(v4, rs); err != nil {
					t.Error(err)
				}
				_ = f.Save()
				_, _ = f.Dump(v4)
			}
		}()
	}
	wg.Wait()
	restores := 0
	for _, op := range f.Ops() {
		if strings.HasPrefix(op, "restore") {
			restores++
		}
	}
	if restores != 1 {
		t.Errorf("%d restores for 160 identical Ensures, want 1", restores)
	}
}

// Owned chains that jump to each other go in one step, whatever their order, as the
// iptables-restore batch (which flushes every stale chain before deleting any) does.
func TestFakeDropsChainsThatJumpToEachOther(t *testing.T) {
	rs := netfilter.Ruleset{
		Chains: []netfilter.Chain{
			// Declared before the chains that jump to it.
			{Table: "nat", Name: "KUBE-MARK-MASQ", Rules: []string{"-j MARK --or-mark 0x4000"}},
			{Table: "nat", Name: "KUBE-CLUSTER-IP", Rules: []string{"-s 10.244.0.0/16 -j RETURN", "-j KUBE-MARK-MASQ"}},
			{Table: "nat", Name: "KUBE-SERVICES", Rules: []string{"-j KUBE-CLUSTER-IP"}},
		},
		Jumps: []netfilter.Jump{{Table: "nat", From: "PREROUTING", To: "KUBE-SERVICES"}},
	}
	tests := []struct {
		name string
		drop func(*Fake) error
		want string
	}{
		{"cleanup", func(f *Fake) error { return f.Cleanup(v4) }, ""},
		{"ensure without them", func(f *Fake) error { return f.Ensure(v4, netfilter.Ruleset{}) }, ""},
		{"ensure keeping the first", func(f *Fake) error {
			return f.Ensure(v4, netfilter.Ruleset{Chains: rs.Chains[:1]})
		}, "# inet\n*nat\n:KUBE-MARK-MASQ\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			if err := f.Ensure(v4, rs); err != nil {
				t.Fatal(err)
			}
			if err := tc.drop(f); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, f.Save()); diff != "" {
				t.Errorf("Save (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInjection fails every verb by FailNext and by a hook, on calls that would otherwise
// change the tables.
func TestInjection(t *testing.T) {
	f := NewFake()
	if err := f.Ensure(v4, rules("0x4000")); err != nil {
		t.Fatal(err)
	}
	kfake.CheckInjection(t, f.Log, f.Save, []kfake.Injection{
		{Op: OpEnsure, Target: "inet", Record: true, Call: func() error { return f.Ensure(v4, rules("0x8000")) }},
		{Op: OpCleanup, Target: "inet6", Record: true, Call: func() error { return f.Cleanup(ipset.IPv6) }},
		{Op: OpCleanup, Target: "inet", Record: true, Call: func() error { return f.Cleanup(v4) }},
		{Op: OpDump, Target: "inet", Record: true, Call: func() error { _, err := f.Dump(v4); return err }},
	})
}

// TestVerify: Verify names the tables a Repair would change and changes nothing.
func TestVerify(t *testing.T) {
	f := NewFake()
	rs := netfilter.Ruleset{
		Chains: []netfilter.Chain{{Table: "nat", Name: "KUBE-SERVICES", Rules: []string{"-j RETURN"}}, {Table: "filter", Name: "KUBE-IPVS-FILTER", Rules: []string{"-j ACCEPT"}}},
		Jumps:  []netfilter.Jump{{Table: "nat", From: "PREROUTING", To: "KUBE-SERVICES"}},
	}
	differ, err := f.Verify("inet", rs)
	if err != nil || !cmp.Equal(differ, []string{"filter", "nat"}) {
		t.Fatalf("Verify of empty tables = %v, %v; want [filter nat]", differ, err)
	}
	if f.Save() != NewFake().Save() {
		t.Fatalf("Verify changed the tables:\n%s", f.Save())
	}
	if err := f.Ensure("inet", rs); err != nil {
		t.Fatal(err)
	}
	if differ, err := f.Verify("inet", rs); err != nil || len(differ) != 0 {
		t.Fatalf("Verify after Ensure = %v, %v; want none", differ, err)
	}
	if err := f.Append("inet", "filter", "KUBE-IPVS-FILTER", "-j DROP"); err != nil {
		t.Fatal(err)
	}
	if differ, err := f.Verify("inet", rs); err != nil || !cmp.Equal(differ, []string{"filter"}) {
		t.Errorf("Verify after a foreign rule = %v, %v; want [filter]", differ, err)
	}
	if got := f.Calls(OpVerify); got != 3 {
		t.Errorf("Calls(verify) = %d, want 3", got)
	}
}
