package ipam

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/kubevs/kubevs/ipam/store"
	"github.com/kubevs/kubevs/ipam/store/storetest"
)

// BenchmarkAllocateRelease measures one ADD's and one DEL's store work (dual-stack): on disk
// it is dominated by the fsyncs that make an allocation durable before it is reported.
func BenchmarkAllocateRelease(b *testing.B) {
	ranges := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/64")}
	for _, tc := range []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"fake", func(*testing.B) store.Store { return storetest.NewFake() }},
		{"disk", func(b *testing.B) store.Store {
			d, err := store.OpenDisk(filepath.Join(b.TempDir(), "net"))
			if err != nil {
				b.Fatal(err)
			}
			return d
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			defer s.Close()
			// 200 pods already on the node, as on a busy one.
			for i := range 200 {
				if _, err := Allocate(s, own(fmt.Sprintf("bg%d", i)), ranges); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				o := own(fmt.Sprintf("p%d", i))
				if _, err := Allocate(s, o, ranges); err != nil {
					b.Fatal(err)
				}
				if _, err := Release(s, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
