package reconcile

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/ipset"
)

// TestRefsMatchesTwoMaps: random holds, refs, unrefs and takeWants on refs give what the
// two maps it replaced give (a set of what the kernel holds, counts deleted at zero), and
// refs keeps no key that neither holds.
func TestRefsMatchesTwoMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const keys = 6
	s := newRefs[int]()
	held, wants := map[int]struct{}{}, map[int]int{}
	for step := range 20000 {
		k := rng.IntN(keys)
		switch op := rng.IntN(6); op {
		case 0, 1:
			on := op == 0
			s.hold(k, on)
			if on {
				held[k] = struct{}{}
			} else {
				delete(held, k)
			}
		case 2:
			s.ref(k)
			wants[k]++
		case 3:
			s.unref(k)
			if wants[k]--; wants[k] <= 0 {
				delete(wants, k)
			}
		case 4: // another model's wants
			o, ow := newRefs[int](), map[int]int{}
			for range rng.IntN(4) {
				k := rng.IntN(keys)
				o.ref(k)
				ow[k]++
				o.hold(rng.IntN(keys), true) // never taken
			}
			s.takeWants(o)
			wants = ow
		case 5: // s's wants into a new picture of the kernel
			n, nh := newRefs[int](), map[int]struct{}{}
			for range rng.IntN(4) {
				k := rng.IntN(keys)
				n.hold(k, true)
				nh[k] = struct{}{}
			}
			n.takeWants(s)
			s, held = n, nh
		}
		for k := range keys {
			_, h := held[k]
			w := wants[k] > 0
			if gw, gh := s.state(k); gw != w || gh != h || s.has(k) != h {
				t.Fatalf("step %d: state(%d) = %v, %v, has %v; want %v, %v", step, k, gw, gh, s.has(k), w, h)
			}
			if _, in := s.m[k]; in != (w || h) {
				t.Fatalf("step %d: key %d in the map: %v, wanted %v, held %v", step, k, in, w, h)
			}
			if w && s.m[k].wants != int32(wants[k]) {
				t.Fatalf("step %d: %d wants of %d, want %d", step, s.m[k].wants, k, wants[k])
			}
		}
		if s.len() != len(held) {
			t.Fatalf("step %d: len %d, want %d", step, s.len(), len(held))
		}
		if got, want := slices.Sorted(s.all()), slices.Sorted(maps.Keys(held)); !slices.Equal(got, want) {
			t.Fatalf("step %d: all %v, want %v", step, got, want)
		}
		var sum uint64 // the digest a probe computes from the kernel's keys
		for k := range held {
			sum ^= keyHash(k)
		}
		if n, got := s.digest(); n != len(held) || got != sum {
			t.Fatalf("step %d: digest %d, %x; the held keys give %d, %x", step, n, got, len(held), sum)
		}
		var diff []int
		for k := range keys {
			if _, h := held[k]; h != (wants[k] > 0) {
				diff = append(diff, k)
			}
		}
		if got := s.appendDiff(nil); !slices.Equal(slices.Sorted(slices.Values(got)), diff) {
			t.Fatalf("step %d: appendDiff %v, want %v", step, got, diff)
		}
	}
}

// TestRefsKeepsTheWantedKey: once a member the kernel holds is wanted, the map holds the
// wanted key's string, not the read's copy (which can then be collected); the read's
// copy, written again, does not take its place.
func TestRefsKeepsTheWantedKey(t *testing.T) {
	entry := func() desired.SetEntry {
		return desired.SetEntry{Set: "KUBE-CLUSTER-IP", Entry: ipset.Entry("10.96.0.1,tcp:" + strings.Repeat("8", 2))}
	}
	read, wanted := entry(), entry()
	if unsafe.StringData(string(read.Entry)) == unsafe.StringData(string(wanted.Entry)) {
		t.Fatal("the test needs two copies of the string")
	}
	key := func(s *refs[desired.SetEntry]) *byte {
		for k := range s.m {
			return unsafe.StringData(string(k.Entry))
		}
		return nil
	}
	s := newRefs[desired.SetEntry]()
	s.hold(read, true)
	s.ref(wanted)
	if key(s) != unsafe.StringData(string(wanted.Entry)) {
		t.Fatal("ref kept the read's copy of the key")
	}
	s.hold(read, true)
	if key(s) != unsafe.StringData(string(wanted.Entry)) {
		t.Fatal("hold of a held key replaced the wanted copy")
	}

	kernel, wants := newRefs[desired.SetEntry](), newRefs[desired.SetEntry]()
	kernel.hold(read, true)
	wants.ref(wanted)
	kernel.takeWants(wants)
	if key(kernel) != unsafe.StringData(string(wanted.Entry)) {
		t.Fatal("takeWants kept the read's copy of the key")
	}
}
