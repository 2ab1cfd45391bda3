package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoKubernetesAPIMachinery keeps the per-pod binary lean: a runtime execs kubevs for every
// ADD and DEL, and initialising apimachinery, client-go or prometheus costs milliseconds per
// exec (measured: VERSION 5.5 ms with them linked vs 1 ms without).
func TestNoKubernetesAPIMachinery(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v: %s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"k8s.io/apimachinery/", "k8s.io/client-go/", "k8s.io/api/", "github.com/prometheus/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("the kubevs binary links %s (from %s...): keep Kubernetes API code in kubevs-proxier", pkg, banned)
			}
		}
	}
}

// TestStatusExecsProxier checks that `kubevs status ARGS` runs `kubevs-proxier status ARGS`
// found beside the real kubevs binary (also when kubevs is reached through a symlink), with
// its output and exit code, and that a missing kubevs-proxier is exit 2 with a message.
func TestStatusExecsProxier(t *testing.T) {
	dir := t.TempDir()
	kubevs := filepath.Join(dir, "kubevs")
	if out, err := exec.Command(goTool(t), "build", "-o", kubevs, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	link := filepath.Join(t.TempDir(), "kubevs")
	if err := os.Symlink(kubevs, link); err != nil {
		t.Fatal(err)
	}
	proxier := filepath.Join(dir, "kubevs-proxier")
	script := "#!/bin/sh\necho \"proxier args: $*\"\nexit 1\n"
	if err := os.WriteFile(proxier, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{kubevs, link} {
		code, stdout, stderr := run(t, bin, "status", "--node", "n1", "-o", "json")
		if code != 1 || strings.TrimSpace(stdout) != "proxier args: status --node n1 -o json" {
			t.Errorf("%s status: exit %d, stdout %q, stderr %q; want exit 1 from kubevs-proxier status --node n1 -o json", bin, code, stdout, stderr)
		}
	}
	if err := os.Remove(proxier); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, kubevs, "status")
	if code != 2 || !strings.Contains(stderr, proxier) {
		t.Errorf("status without kubevs-proxier: exit %d, stderr %q; want exit 2 naming %s", code, stderr, proxier)
	}
}

func run(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run %s: %v", bin, err)
	return 0, "", ""
}

// goTool is the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	t.Fatal("no go command in PATH: the test needs it to inspect and build the kubevs binary")
	return ""
}
