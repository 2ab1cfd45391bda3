package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// nodeStateCommands show what the node's kernel holds: what a failing Service scenario needs
// to tell a proxier bug from a bed bug.
var nodeStateCommands = [][]string{
	{"ip", "-br", "addr"},
	{"ip", "route"},
	{"ipvsadm", "-Ln"},
	{"ipset", "list"},
	{"iptables-save"},
	{"conntrack", "-L"},
}

var dumps atomic.Int32

// dumpNodeState writes the node's network state to a file in the log dir and returns its
// path and the IPVS table, for a failing expectation's message.
func (f *Framework) dumpNodeState() (path, ipvs string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, c := range nodeStateCommands {
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "### %s", strings.Join(c, " "))
		if err != nil {
			fmt.Fprintf(&b, " (%v)", err)
		}
		fmt.Fprintf(&b, "\n%s\n", out)
		if c[0] == "ipvsadm" {
			ipvs = string(out)
		}
	}
	path = filepath.Join(f.Bed.LogDir, fmt.Sprintf("node-state-%s-%d.txt", f.Namespace, dumps.Add(1)))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Sprintf("(write node state: %v)", err), ipvs
	}
	return path, ipvs
}
