package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"time"

	"github.com/kubevs/kubevs/proxier/ipvs"
)

// Floor is the raw netlink floor: IPVS adds issued one message at a time through kubevs's
// own adapter, in the same guest, with no proxier running.
type Floor struct {
	VirtualServers int     `json:"virtual_servers"`
	RealServers    int     `json:"real_servers"`
	Ops            int     `json:"ops"`
	WallMS         float64 `json:"wall_ms"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	// IPSetExecMS is the mean wall time of one `ipset list -n` process in the guest (0: not
	// measured): the unit of kube-proxy's IPVS-mode set work, one process per entry added.
	IPSetExecMS float64 `json:"ipset_exec_ms,omitempty"`
}

// floorBase is the first virtual server address of the floor run, outside the service range.
var floorBase = netip.MustParseAddr("10.250.0.0")

// MeasureFloor adds n virtual servers with perVS real servers each, measures the time, then
// deletes them again (the deletes are not timed).
func MeasureFloor(k ipvs.Interface, n, perVS int) (Floor, error) {
	f := Floor{VirtualServers: n, RealServers: n * perVS, Ops: n * (1 + perVS)}
	keys := make([]ipvs.Key, n)
	start := time.Now()
	for i := range n {
		keys[i] = ipvs.Key{Address: offset(floorBase, uint32(i)), Protocol: ipvs.TCP, Port: servicePort}
		if err := k.AddVirtualServer(ipvs.VirtualServer{Key: keys[i], Scheduler: "rr"}); err != nil {
			return f, fmt.Errorf("floor: add virtual server %s: %w", keys[i], err)
		}
		for j := range perVS {
			rs := ipvs.RealServer{Address: offset(endpointBase, uint32(i*perVS+j)), Port: endpointPort, Weight: 1}
			if err := k.AddRealServer(keys[i], rs); err != nil {
				return f, fmt.Errorf("floor: add real server %s to %s: %w", rs, keys[i], err)
			}
		}
	}
	wall := time.Since(start)
	f.WallMS, f.OpsPerSec = ms(wall), float64(f.Ops)/wall.Seconds()
	for _, key := range keys {
		if err := k.DeleteVirtualServer(key); err != nil {
			return f, fmt.Errorf("floor: delete virtual server %s: %w", key, err)
		}
	}
	return f, nil
}

// offset is the IPv4 address n after base.
func offset(base netip.Addr, n uint32) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// execRuns is how many processes MeasureExec times.
const execRuns = 10

// MeasureExec runs name with args n times, one after the other, and returns the mean wall
// time of one run.
func MeasureExec(ctx context.Context, n int, name string, args ...string) (time.Duration, error) {
	start := time.Now()
	for range n {
		if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("run %s %v: %w (%s)", name, args, err, out)
		}
	}
	return time.Since(start) / time.Duration(n), nil
}
