//go:build linux

package conntracktest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"

	"github.com/kubevs/kubevs/internal/testenv"
	"github.com/kubevs/kubevs/proxier/conntrack"
	"github.com/kubevs/kubevs/proxier/ipvs"
)

// insert puts a flow into the kernel's table with the conntrack CLI.
func insert(f Flow) error {
	port := func(p uint16) string { return strconv.Itoa(int(p)) }
	args := []string{"-I", "-p", strings.ToLower(string(f.Proto)),
		"-s", f.OrigSrc.Addr().String(), "-d", f.OrigDst.Addr().String(),
		"--sport", port(f.OrigSrc.Port()), "--dport", port(f.OrigDst.Port()),
		"-r", f.ReplySrc.Addr().String(), "-q", f.ReplyDst.Addr().String(),
		"--reply-port-src", port(f.ReplySrc.Port()), "--reply-port-dst", port(f.ReplyDst.Port()), "-t", "300"}
	switch f.Proto {
	case ipvs.TCP:
		args = append(args, "--state", "ESTABLISHED")
	case ipvs.SCTP:
		args = append(args, "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2")
	}
	if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("conntrack %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// TestFakeMatchesKernel runs the same deletes on the fake and on the kernel's table (fresh
// netns, flows inserted with the conntrack CLI) and compares the counts.
func TestFakeMatchesKernel(t *testing.T) {
	script := func(c conntrack.Interface) []string {
		var out []string
		rec := func(n int, err error) { out = append(out, fmt.Sprint(n, err)) }
		rec(c.Delete([]conntrack.Filter{ // both families, three matches, one call
			{Match: conntrack.ReplySrc, Proto: ipvs.UDP, Addr: ip("10.244.0.6"), Port: 53},
			{Match: conntrack.Addr, Addr: ip("fd00:244::5")},
			{Match: conntrack.OrigDst, Proto: ipvs.UDP, Addr: ip("10.96.0.11"), Port: 53},
		}))
		rec(c.Delete([]conntrack.Filter{{Match: "nat", Addr: ip("10.0.0.1")}}))
		rec(c.DeleteByReplySrc(ipvs.UDP, ip("10.244.0.5"), 53))
		rec(c.DeleteByOrigDst(ipvs.UDP, ip("10.96.0.10"), 53))
		rec(c.DeleteByOrigDst(ipvs.SCTP, ip("10.96.0.12"), 9))
		rec(c.DeleteByAddr(ip("10.244.0.5")))
		rec(c.DeleteByAddr(ip("fd00::1")))
		rec(c.DeleteByAddr(ip("10.244.0.5")))
		return out
	}
	n := testenv.NewNetns(t)
	var kernel []string
	err := n.Do(func(ns.NetNS) error {
		for _, f := range flows() {
			if err := insert(f); err != nil {
				return err
			}
		}
		kernel = script(conntrack.New())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(kernel, script(NewFake(flows()...))); diff != "" {
		t.Errorf("fake differs from the kernel (-kernel +fake):\n%s", diff)
	}
}
