package ipam

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubevs/kubevs/install/atomicfile"
)

// learnedName is the file, in a network's store directory, that remembers the ranges a live
// source (node API, API server) last gave for the node: the node's name on the first line,
// one CIDR per line after it.
//
// A Node's spec.podCIDRs cannot change once set (the API server refuses the update), so for
// as long as the Node lives the remembered ranges stay right. They let ADD go on when the
// proxier and the API server are both too slow to answer at once (a starved node, an API
// server restart): a pod then still gets its address instead of waiting for the retry. A
// Node deleted and registered again under the same name may get other podCIDRs; the first
// ADD that reaches a live source then replaces the file.
const learnedName = "learned_ranges"

// maxLearned bounds what is read of the file: a node name and two CIDRs fit many times.
const maxLearned = 4096

// rangeMemory keeps the learned ranges of one network in dir (the store's directory).
type rangeMemory struct{ dir string }

// recall returns the ranges remembered for node: nil, nil when none are (no file, or one
// written for another node name). A file it cannot parse is an error.
func (m rangeMemory) recall(node string) ([]netip.Prefix, error) {
	f, err := os.Open(m.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLearned+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLearned {
		return nil, fmt.Errorf("%s: larger than %d bytes", m.path(), maxLearned)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != node {
		return nil, nil
	}
	var ps []netip.Prefix
	for sc.Scan() {
		p, err := netip.ParsePrefix(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.path(), err)
		}
		ps = append(ps, p)
	}
	if err := checkRanges(ps); err != nil {
		return nil, fmt.Errorf("%s: %w", m.path(), err)
	}
	return ps, nil
}

// remember records ps for node, unless the file already says so (most ADDs write nothing).
func (m rangeMemory) remember(node string, ps []netip.Prefix) error {
	if old, err := m.recall(node); err == nil && slices.Equal(old, ps) {
		return nil
	}
	var b strings.Builder
	b.WriteString(node + "\n")
	for _, p := range ps {
		b.WriteString(p.String() + "\n")
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(m.path(), []byte(b.String()), atomicfile.Options{Mode: 0o600})
}

func (m rangeMemory) path() string { return filepath.Join(m.dir, learnedName) }
