// Command vulncheck reads govulncheck's JSON stream (-format json) on stdin and decides: a
// reachable finding (one whose trace starts at a called function) in a module of go.mod
// fails the check, since bumping the module fixes it; a reachable finding in the standard
// library is printed as a warning naming the Go release that fixes it, and fails only with
// -strict-stdlib (make lint passes it: the Makefile pins the Go release, so bumping it fixes those too).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
)

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
}

type message struct {
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

func main() {
	strictStdlib := flag.Bool("strict-stdlib", false, "fail on reachable standard library findings too")
	flag.Parse()
	modules, stdlib, err := reachable(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	for _, f := range stdlib {
		fmt.Printf("WARNING: reachable %s\n", f)
	}
	for _, f := range modules {
		fmt.Printf("FAIL: reachable %s\n", f)
	}
	fmt.Printf("vulncheck: %d reachable in modules, %d in the standard library\n", len(modules), len(stdlib))
	if len(modules) > 0 || *strictStdlib && len(stdlib) > 0 {
		os.Exit(1)
	}
}

// reachable returns, sorted and deduplicated, one line per reachable vulnerability.
func reachable(r io.Reader) (modules, stdlib []string, err error) {
	dec := json.NewDecoder(r)
	seen := map[string]bool{}
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("decode govulncheck output: %w", err)
		}
		if m.Finding == nil || len(m.Finding.Trace) == 0 || m.Finding.Trace[0].Function == "" {
			continue // imported or required, not called
		}
		f := m.Finding.Trace[0]
		line := fmt.Sprintf("%s in %s@%s (%s), fixed in %s", m.Finding.OSV, f.Module, f.Version, f.Package, m.Finding.FixedVersion)
		if seen[line] {
			continue
		}
		seen[line] = true
		if f.Module == "stdlib" {
			stdlib = append(stdlib, line)
		} else {
			modules = append(modules, line)
		}
	}
	slices.Sort(modules)
	slices.Sort(stdlib)
	return modules, stdlib, nil
}
