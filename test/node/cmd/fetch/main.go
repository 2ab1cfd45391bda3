// Command fetch is the client of the real node's scenario (test/node), run as a pod: it GETs a
// URL until it answers 200 or the deadline passes, and writes the answer (or the last error)
// to the container's termination message, which the kubelet puts into the pod's status, so the
// test reads it without exec or logs. Exit 0 on an answer, 1 otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	url := flag.String("url", "", "the URL to GET")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long to keep trying")
	message := flag.String("message-file", "/dev/termination-log", "where the result goes")
	flag.Parse()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for attempt := 1; ; attempt++ {
		body, err := get(ctx, client, *url)
		if err == nil {
			report(*message, fmt.Sprintf("ok %s attempt=%d after=%s", body, attempt, time.Since(start).Round(time.Millisecond)))
			return
		}
		last = err
		select {
		case <-ctx.Done():
			report(*message, fmt.Sprintf("failed after %d attempts: %v", attempt, last))
			os.Exit(1)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func report(path, msg string) {
	fmt.Println(msg)
	if err := os.WriteFile(path, []byte(msg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
