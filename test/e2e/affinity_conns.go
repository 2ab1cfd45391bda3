package e2e

// The node's IPVS connection table, for the session affinity timeout scenario: ClientIP
// affinity is an IPVS persistence template per client and virtual server (an entry without a
// client port), and the affinity ends when the kernel removes it. How long that takes is the
// kernel's rule, pinned by proxier/ipvs's TestPersistenceTemplateLifetime: the timeout after
// the client's last new connection if that connection has left the table by then, otherwise
// at the first 60 s re-arm after it has.

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ipvsEntry is one line of /proc/net/ip_vs_conn.
type ipvsEntry struct {
	Client, Virtual, Dest netip.AddrPort
	State                 string
	Expires               int // seconds
}

func (e ipvsEntry) String() string {
	return fmt.Sprintf("%s -> %s -> %s %s %ds", e.Client, e.Virtual, e.Dest, e.State, e.Expires)
}

// parseIPVSEntries parses the IPv4 TCP entries of /proc/net/ip_vs_conn.
func parseIPVSEntries(text string) ([]ipvsEntry, error) {
	var out []ipvsEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "TCP" || len(f[1]) != 8 {
			continue
		}
		var ap [3]netip.AddrPort
		for i := range ap {
			a, aerr := hex.DecodeString(f[1+2*i])
			p, perr := strconv.ParseUint(f[2+2*i], 16, 16)
			if aerr != nil || len(a) != 4 || perr != nil {
				return nil, fmt.Errorf("parse ip_vs_conn line %q", sc.Text())
			}
			ap[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a)), uint16(p))
		}
		exp, err := strconv.Atoi(f[8])
		if err != nil {
			return nil, fmt.Errorf("parse ip_vs_conn line %q: %w", sc.Text(), err)
		}
		out = append(out, ipvsEntry{Client: ap[0], Virtual: ap[1], Dest: ap[2], State: f[7], Expires: exp})
	}
	return out, sc.Err()
}

// clientEntries lists the node's IPVS entries of client on virtual. It reads the table
// through a child process: IPVS is per network namespace, and the child starts in the node's.
func (f *Framework) clientEntries(client netip.Addr, virtual netip.AddrPort) ([]ipvsEntry, error) {
	out, err := exec.CommandContext(f.Context(), "cat", "/proc/net/ip_vs_conn").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/ip_vs_conn: %w: %s", err, out)
	}
	all, err := parseIPVSEntries(string(out))
	if err != nil {
		return nil, err
	}
	var mine []ipvsEntry
	for _, e := range all {
		if e.Client.Addr() == client && e.Virtual == virtual {
			mine = append(mine, e)
		}
	}
	return mine, nil
}

// waitTemplateGone polls until client's persistence template on virtual has gone and returns
// how long after since that was. It fails the test if the template outlives since+bound. Each
// change of the client's entries (one coming, going or changing state; the template re-armed)
// is logged with its time after since.
func (f *Framework) waitTemplateGone(client netip.Addr, virtual netip.AddrPort, since time.Time, bound time.Duration) time.Duration {
	f.t.Helper()
	var last string
	lastExpiry := 0
	for {
		elapsed := time.Since(since)
		entries, err := f.clientEntries(client, virtual)
		if err != nil {
			f.t.Fatal(err)
		}
		var shape []string
		template := false
		for _, e := range entries {
			shape = append(shape, e.Client.String()+" "+e.State)
			if e.Client.Port() == 0 {
				template = true
				if e.Expires > lastExpiry {
					last = "" // re-armed: log it
				}
				lastExpiry = e.Expires
			}
		}
		if now := fmt.Sprint(shape); now != last {
			f.t.Logf("ip_vs_conn +%5.1fs: %v", elapsed.Seconds(), entries)
			last = now
		}
		if !template {
			return elapsed
		}
		if elapsed > bound {
			path, ipvs := f.dumpNodeState()
			f.t.Fatalf("the persistence template of %s on %s outlived %v: %v\nnode state in %s; IPVS:\n%s", client, virtual, bound, entries, path, ipvs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
