// Package xtables picks the iptables backend (nf_tables or legacy) of the node the kubevs
// image runs on, and points the image's iptables, iptables-save and iptables-restore (and
// their ip6tables twins) at it.
//
// Why: the image carries both backends of iptables 1.8 (xtables-nft-multi and
// xtables-legacy-multi). Rules written with one backend are invisible to the other, so the
// proxier must write where the node's kubelet and CNI plugins write, not where the image's
// default points. The decision follows the reasoning of kube-proxy's iptables-wrapper: the
// kubelet creates KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY in the mangle table of the
// backend it uses, so a backend that holds one of those chains wins; without them, the
// backend holding more rules wins; with nothing anywhere, nf_tables (the default of current
// distributions).
//
// The package is the whole of kubevs-iptables-wrapper: the image links iptables,
// iptables-save, ... to the wrapper; its first run decides, relinks those names to the
// chosen xtables-*-multi (so later runs go straight to iptables) and execs it.
package xtables

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// Mode is an iptables backend.
type Mode string

// The two backends, named as `iptables --version` names them.
const (
	NFT    Mode = "nf_tables"
	Legacy Mode = "legacy"
)

// Multi is the file name of the multi-call binary of the backend (xtables-nft-multi,
// xtables-legacy-multi), as Debian's iptables package installs it.
func (m Mode) Multi() string {
	if m == Legacy {
		return "xtables-legacy-multi"
	}
	return "xtables-nft-multi"
}

// kubeletChains are the chains the kubelet (1.17 and later) creates in the mangle table of
// the backend the node uses.
var kubeletChains = []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}

// Save is what one backend's iptables-save and ip6tables-save printed, concatenated; Err is
// set when neither could run (the backend is not usable on this kernel).
type Save struct {
	Output string
	Err    error
}

// Choose decides the backend from the save output of each. It is pure; the reason says why,
// for the log and the tests.
func Choose(nft, legacy Save) (Mode, string) {
	switch {
	case nft.Err != nil && legacy.Err == nil:
		return Legacy, fmt.Sprintf("the nft backend cannot read the kernel: %v", nft.Err)
	case legacy.Err != nil && nft.Err == nil:
		return NFT, fmt.Sprintf("the legacy backend cannot read the kernel: %v", legacy.Err)
	}
	if c := kubeletChain(nft.Output); c != "" {
		return NFT, "the kubelet's chain " + c + " is in the nft backend"
	}
	if c := kubeletChain(legacy.Output); c != "" {
		return Legacy, "the kubelet's chain " + c + " is in the legacy backend"
	}
	n, l := countRules(nft.Output), countRules(legacy.Output)
	if l > n {
		return Legacy, fmt.Sprintf("no kubelet chain; the legacy backend holds more rules (%d) than the nft backend (%d)", l, n)
	}
	return NFT, fmt.Sprintf("no kubelet chain; the nft backend holds as many rules or more (%d) than the legacy backend (%d)", n, l)
}

// kubeletChain returns the first kubelet chain declared in save output (a ":NAME POLICY
// [p:b]" line), or "".
func kubeletChain(save string) string {
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ":") {
			continue
		}
		name, _, _ := strings.Cut(line[1:], " ")
		for _, c := range kubeletChains {
			if name == c {
				return c
			}
		}
	}
	return ""
}

// countRules counts the rules ("-A chain ...") in save output.
func countRules(save string) int {
	n := 0
	for line := range strings.Lines(save) {
		if strings.HasPrefix(line, "-A ") {
			n++
		}
	}
	return n
}

// Runner runs a program and returns its standard output.
type Runner func(ctx context.Context, path string, args ...string) ([]byte, error)

// Detect reads both backends through the multi-call binaries in dir and chooses. It reads
// whole rulesets without -t: asking iptables-legacy-save for one table would make the
// kernel create that table, and a detection must change nothing.
func Detect(ctx context.Context, dir string, run Runner) (Mode, string) {
	read := func(m Mode) Save {
		var s Save
		var errs []string
		for _, tool := range []string{"iptables-save", "ip6tables-save"} {
			out, err := run(ctx, filepath.Join(dir, m.Multi()), tool)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s %s: %v", m.Multi(), tool, err))
				continue
			}
			s.Output += string(out)
		}
		if len(errs) == 2 {
			s.Err = fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		return s
	}
	return Choose(read(NFT), read(Legacy))
}
