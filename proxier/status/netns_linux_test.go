package status

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kubevs/kubevs/internal/testenv"
)

// The reader's worker reads in the caller's network namespace, not in whichever namespace
// the runtime's next thread is in: in a fresh netns it sees only that netns's lo.
func TestReaderReadsInTheCallersNetns(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.InNetns(t, func() {
		r, err := newReader(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.close()
		for i := 0; i < 3; i++ { // the same worker, read after read
			ifs, err := get(r, "list links", net.Interfaces)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, i := range ifs {
				names = append(names, i.Name)
			}
			if len(names) != 1 || names[0] != "lo" {
				t.Fatalf("read %d: links %q, want only the fresh netns's lo", i, names)
			}
		}
	})
}

// A tool left running by an abandoned read is killed.
func TestKillChildren(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if n := killChildren(); n < 1 {
		t.Errorf("killChildren signalled %d processes, want the sleep at least", n)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("sleep ended with %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("sleep still runs 10s after killChildren")
	}
}
