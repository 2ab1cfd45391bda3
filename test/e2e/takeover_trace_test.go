package e2e

// The takeover scenario's flight recorder: when a connection is reset, the figures that say
// who reset it. It writes to the log dir, beside kube-proxy's log:
//   - takeover-conntrack-events.log: `conntrack -E` for the outside host's flows and those to
//     the Service's virtual IP, with timestamps (a DESTROY before its time, a NEW for a flow
//     already open);
//   - takeover-trace.log: every 500 ms, the TCP reset counters (OutRsts, EstabResets) of the
//     node, the outside host and each backend pod, and the IPVS connections from the outside
//     host that are not in TIME_WAIT (ipvsadm -Lnc), printed when they change.
// A reset sent by the node's own stack (OutRsts of the node goes up) means IPVS let a packet
// of a known flow through to the local stack; one sent by a backend means the flow reached
// it with a tuple it did not know.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// startTrace records until ctx ends; it returns at once. Failures to record are written to
// the trace, never fail the test: the recorder only explains. namespaces maps a name to a
// network namespace, nil for the node's own.
func startTrace(ctx context.Context, dir string, outside, vip net.IP, namespaces map[string]ns.NetNS) {
	events, err := os.Create(filepath.Join(dir, "takeover-conntrack-events.log"))
	if err == nil {
		// One `conntrack -E` a filter: the outside host's flows, and those to the Service's
		// virtual IP. stdbuf: conntrack buffers its output, and it ends killed with the
		// scenario.
		var mu sync.Mutex
		w := lockedWriter{mu: &mu, w: events}
		var running sync.WaitGroup
		for _, filter := range [][]string{{"-s", outside.String()}, {"-d", vip.String()}} {
			args := append([]string{"-oL", "conntrack", "-E", "-o", "timestamp"}, filter...)
			cmd := exec.CommandContext(ctx, "stdbuf", args...)
			cmd.Stdout, cmd.Stderr = w, w
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(w, "start conntrack -E %v: %v\n", filter, err)
				continue
			}
			running.Add(1)
			go func() { defer running.Done(); _ = cmd.Wait() }()
		}
		go func() { running.Wait(); events.Close() }()
	}
	trace, err := os.Create(filepath.Join(dir, "takeover-trace.log"))
	if err != nil {
		return
	}
	names := slices.Sorted(maps.Keys(namespaces))
	go func() {
		defer trace.Close()
		var lastResets, lastConns string
		for ctx.Err() == nil {
			now := time.Now().Format("15:04:05.000")
			var counters []string
			for _, name := range names {
				counters = append(counters, name+" "+tcpResets(namespaces[name]))
			}
			if resets := strings.Join(counters, "; "); resets != lastResets {
				fmt.Fprintf(trace, "%s resets: %s\n", now, resets)
				lastResets = resets
			}
			if conns := ipvsConnsFrom(outside); conns != lastConns {
				fmt.Fprintf(trace, "%s ipvs connections from %s (not TIME_WAIT):\n%s", now, outside, conns)
				lastConns = conns
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

// lockedWriter serialises the writes of several processes to one file.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tcpResets reads OutRsts and EstabResets of /proc/net/snmp in the namespace n (nil: the
// node's).
func tcpResets(n ns.NetNS) string {
	var out []byte
	read := func(ns.NetNS) (err error) {
		out, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}
	var err error
	if n == nil {
		err = read(nil)
	} else {
		err = n.Do(read)
	}
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var names, values []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "Tcp: "); ok {
			if names == nil {
				names = strings.Fields(rest)
			} else {
				values = strings.Fields(rest)
			}
		}
	}
	var got []string
	for i, n := range names {
		if i < len(values) && (n == "OutRsts" || n == "EstabResets") {
			got = append(got, n+"="+values[i])
		}
	}
	return strings.Join(got, " ")
}

// ipvsConnsFrom lists the IPVS connections from ip that are not in TIME_WAIT, as the kernel
// prints them in /proc/net/ip_vs_conn (addresses and ports in hex), one a line.
func ipvsConnsFrom(ip net.IP) string {
	out, err := os.ReadFile("/proc/net/ip_vs_conn")
	if err != nil {
		return "(" + err.Error() + ")\n"
	}
	hex := fmt.Sprintf("%08X", []byte(ip.To4()))
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[1] == hex && f[7] != "TIME_WAIT" {
			fmt.Fprintln(&b, line)
		}
	}
	return b.String()
}
