package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReachable(t *testing.T) {
	in := `{"config":{"scanner_name":"govulncheck","go_version":"go1.26.8"}}
{"osv":{"id":"GO-1"}}
{"finding":{"osv":"GO-1","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.59.0","package":"golang.org/x/net/http2","function":"Read"},{"module":"github.com/kubevs/kubevs"}]}}
{"finding":{"osv":"GO-1","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.59.0","package":"golang.org/x/net/http2","function":"Write"}]}}
{"finding":{"osv":"GO-2","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Read"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v1.2.0","trace":[{"module":"example.com/m","version":"v1.1.0","package":"example.com/m/p"}]}}
{"finding":{"osv":"GO-4","trace":[{"module":"example.com/m","version":"v1.1.0"}]}}
`
	res, err := reachable(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GO-1 in golang.org/x/net@v0.59.0 (golang.org/x/net/http2), fixed in v0.60.0"}, res.modules); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GO-2 in stdlib@v1.26.8 (net/http), fixed in v1.26.9"}, res.stdlib); diff != "" {
		t.Errorf("stdlib (-want +got):\n%s", diff)
	}
	if res.goVersion != "go1.26.8" {
		t.Errorf("scanned Go release %q, want go1.26.8", res.goVersion)
	}
	if _, err := reachable(strings.NewReader("{")); err == nil {
		t.Error("truncated input accepted")
	}
}

func TestFailures(t *testing.T) {
	res := result{
		modules:   []string{"GO-1 in m"},
		stdlib:    []string{"GO-2 in stdlib"},
		goVersion: "go1.27.3",
	}
	clean := result{goVersion: "go1.27.3"}
	onlyStd := result{stdlib: res.stdlib, goVersion: "go1.27.3"}
	for _, tc := range []struct {
		name   string
		res    result
		strict bool
		goVer  string
		want   []string
	}{
		{"clean", clean, true, "go1.27.3", nil},
		{"module finding fails", res, false, "", []string{"reachable GO-1 in m"}},
		{"stdlib finding warns", onlyStd, false, "go1.27.3", nil},
		{"stdlib finding fails when strict", onlyStd, true, "go1.27.3", []string{"reachable GO-2 in stdlib"}},
		{"another Go release scanned", clean, true, "go1.26.8", []string{`govulncheck scanned the standard library of "go1.27.3", the build uses go1.26.8`}},
		{"no release asked", result{}, true, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.res.failures(tc.strict, tc.goVer)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		})
	}
}
