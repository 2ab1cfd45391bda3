// Command vulncheck reads govulncheck's JSON stream (-format json) on stdin and decides: a
// reachable finding (one whose trace starts at a called function) in a module of go.mod
// fails the check, since bumping the module fixes it; a reachable finding in the standard
// library is printed as a warning naming the Go release that fixes it, and fails only with
// -strict-stdlib (make lint passes it: the Makefile pins the Go release, so bumping it fixes
// those too). With -go, the scan must also have been of that Go release's standard library,
// so that a scan run with another go command on PATH cannot pass for the pinned one.
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
	Config *struct {
		GoVersion string `json:"go_version"`
	} `json:"config"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

// result is what one govulncheck run found: one line per reachable vulnerability, sorted
// and deduplicated, and the Go release whose standard library was scanned.
type result struct {
	modules, stdlib []string
	goVersion       string
}

func main() {
	strictStdlib := flag.Bool("strict-stdlib", false, "fail on reachable standard library findings too")
	goVersion := flag.String("go", "", "the Go release (go env GOVERSION) whose standard library the scan must be of")
	flag.Parse()
	res, err := reachable(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
	for _, f := range res.stdlib {
		fmt.Printf("WARNING: reachable %s\n", f)
	}
	fmt.Printf("vulncheck: %d reachable in modules, %d in the standard library (%s)\n", len(res.modules), len(res.stdlib), res.goVersion)
	if fails := res.failures(*strictStdlib, *goVersion); len(fails) > 0 {
		for _, f := range fails {
			fmt.Println("FAIL:", f)
		}
		os.Exit(1)
	}
}

// failures returns why the check fails, if it does: reachable findings in modules, in the
// standard library when strictStdlib, and a scanned Go release other than goVersion when
// goVersion is set.
func (res result) failures(strictStdlib bool, goVersion string) []string {
	var fails []string
	for _, f := range res.modules {
		fails = append(fails, "reachable "+f)
	}
	if strictStdlib {
		for _, f := range res.stdlib {
			fails = append(fails, "reachable "+f)
		}
	}
	if goVersion != "" && res.goVersion != goVersion {
		fails = append(fails, fmt.Sprintf("govulncheck scanned the standard library of %q, the build uses %s", res.goVersion, goVersion))
	}
	return fails
}

// reachable reads govulncheck's JSON stream.
func reachable(r io.Reader) (result, error) {
	dec := json.NewDecoder(r)
	seen := map[string]bool{}
	var res result
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return result{}, fmt.Errorf("decode govulncheck output: %w", err)
		}
		if m.Config != nil {
			res.goVersion = m.Config.GoVersion
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
			res.stdlib = append(res.stdlib, line)
		} else {
			res.modules = append(res.modules, line)
		}
	}
	slices.Sort(res.modules)
	slices.Sort(res.stdlib)
	return res, nil
}
