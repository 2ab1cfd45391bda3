package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// profileURL is where both proxiers serve Go's CPU profile with profiling on (kube-proxy's
// enableProfiling, kubevs-proxier's --profiling).
const profileURL = "http://127.0.0.1:10249/debug/pprof/profile"

// profileRetry bounds how long SaveProfile waits for a proxier that has just started to
// serve its profiles.
const profileRetry = time.Minute

// ProfileFile is the name of a proxier's CPU profile of one phase ("cold", "idle") in the
// log dir.
func ProfileFile(proxier, phase string) string {
	return strings.ReplaceAll(proxier, " ", "-") + "-" + phase + ".pprof"
}

// SaveProfile takes a CPU profile of d from url (Go's /debug/pprof/profile) and writes it to
// path. A server not listening yet (the proxier is starting) is asked again every 100 ms
// for up to profileRetry; the profile covers d from the request that was answered.
func SaveProfile(ctx context.Context, url, path string, d time.Duration) error {
	sec := max(1, int(d.Round(time.Second)/time.Second))
	ctx, cancel := context.WithTimeout(ctx, profileRetry+time.Duration(sec)*time.Second+time.Minute)
	defer cancel()
	giveUp := time.Now().Add(profileRetry)
	for {
		body, err := get(ctx, fmt.Sprintf("%s?seconds=%d", url, sec))
		if err == nil {
			if err := os.WriteFile(path, body, 0o644); err != nil {
				return fmt.Errorf("write profile: %w", err)
			}
			return nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(giveUp) {
			return fmt.Errorf("profile %s: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("profile %s: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// heapProfile saves p's heap profile (in use and allocated since its start) as
// NAME-heap.pprof in cfg.LogDir when cfg asks for profiles and p serves them, and returns
// its note for the report.
func heapProfile(ctx context.Context, cfg Config, p Proxier) string {
	if cfg.Profile <= 0 || p.ProfileURL == "" {
		return ""
	}
	name := ProfileFile(p.Name, "heap")
	url := strings.TrimSuffix(p.ProfileURL, "profile") + "heap"
	body, err := get(ctx, url)
	if err == nil {
		err = os.WriteFile(filepath.Join(cfg.LogDir, name), body, 0o644)
	}
	if err != nil {
		return fmt.Sprintf("heap profile not saved: %v", err)
	}
	return "heap profile in " + name
}

// profile starts SaveProfile of p's phase in the background when cfg asks for profiles and
// p serves them; the returned wait blocks until it is done and returns its note for the
// report ("" when nothing was taken).
func profile(ctx context.Context, cfg Config, p Proxier, phase string, d time.Duration) (wait func() string) {
	if cfg.Profile <= 0 || p.ProfileURL == "" {
		return func() string { return "" }
	}
	name := ProfileFile(p.Name, phase)
	done := make(chan error, 1)
	go func() { done <- SaveProfile(ctx, p.ProfileURL, filepath.Join(cfg.LogDir, name), d) }()
	return func() string {
		if err := <-done; err != nil {
			return fmt.Sprintf("%s profile not saved: %v", phase, err)
		}
		return fmt.Sprintf("CPU profile of %s (%s) in %s", phase, d, name)
	}
}
