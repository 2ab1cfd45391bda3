package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// fetchFunc does one request and returns the trimmed answer (a pod's hostname).
type fetchFunc func(ctx context.Context) (string, error)

// curlIn returns a fetchFunc that runs curl for url inside the network namespace at nsPath.
func curlIn(nsPath, url string) fetchFunc {
	return func(ctx context.Context) (string, error) {
		cmd := exec.CommandContext(ctx, "nsenter", "--net="+nsPath, "--", "curl", "-sS", "--fail", "--max-time", "5", url)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				stderr = strings.TrimSpace(string(ee.Stderr))
			}
			return "", fmt.Errorf("curl %s: %w: %s", url, err, stderr)
		}
		return strings.TrimSpace(string(out)), nil
	}
}

// expectation says which answers a probe waits for.
type expectation struct {
	// want must all answer at least once.
	want []string
	// othersOK lets other answers pass (a pod reaching its Service may also reach the other
	// backends); otherwise an answer outside want fails the probe.
	othersOK bool
}

// probe repeats fetch until every wanted answer has come, writing a line for each new one
// and, while failing, the latest error every errorEvery, so the console is never silent. It
// returns an error if timeout passes first or an unexpected answer comes.
func probe(ctx context.Context, w io.Writer, fetch fetchFunc, exp expectation, timeout, errorEvery time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	seen := map[string]int{}
	var lastErr error
	var lastReport time.Time
	interval := 20 * time.Millisecond
	requests := 0
	for {
		got, err := fetch(ctx)
		requests++
		switch {
		case err != nil:
			lastErr = err
			if time.Since(lastReport) >= errorEvery {
				fmt.Fprintf(w, "         not yet (%s): %v\n", since(start), err)
				lastReport = time.Now()
			}
		case !slices.Contains(exp.want, got) && !exp.othersOK:
			return fmt.Errorf("answered by %q, which is not one of %v", got, exp.want)
		default:
			interval = 20 * time.Millisecond
			seen[got]++
			if seen[got] == 1 {
				fmt.Fprintf(w, "         answered by %-12s (%s, request %d)\n", got, since(start), requests)
			}
			if done(seen, exp.want) {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s and %d requests, %v answered of %v; last error: %w", since(start), requests, sortedKeys(seen), exp.want, lastErr)
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

func done(seen map[string]int, want []string) bool {
	for _, w := range want {
		if seen[w] == 0 {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// since formats the time since start for progress lines.
func since(start time.Time) string {
	return time.Since(start).Round(100 * time.Millisecond).String()
}

// poll calls cond until it returns nil or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 50 * time.Millisecond
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still failing after %s: %w", timeout, err)
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}
