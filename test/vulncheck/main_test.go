package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReachable(t *testing.T) {
	in := `{"config":{"scanner_name":"govulncheck"}}
{"osv":{"id":"GO-1"}}
{"finding":{"osv":"GO-1","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.59.0","package":"golang.org/x/net/http2","function":"Read"},{"module":"github.com/kubevs/kubevs"}]}}
{"finding":{"osv":"GO-1","fixed_version":"v0.60.0","trace":[{"module":"golang.org/x/net","version":"v0.59.0","package":"golang.org/x/net/http2","function":"Write"}]}}
{"finding":{"osv":"GO-2","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Read"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v1.2.0","trace":[{"module":"example.com/m","version":"v1.1.0","package":"example.com/m/p"}]}}
{"finding":{"osv":"GO-4","trace":[{"module":"example.com/m","version":"v1.1.0"}]}}
`
	mods, std, err := reachable(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GO-1 in golang.org/x/net@v0.59.0 (golang.org/x/net/http2), fixed in v0.60.0"}, mods); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GO-2 in stdlib@v1.26.8 (net/http), fixed in v1.26.9"}, std); diff != "" {
		t.Errorf("stdlib (-want +got):\n%s", diff)
	}
	if _, _, err := reachable(strings.NewReader("{")); err == nil {
		t.Error("truncated input accepted")
	}
}
