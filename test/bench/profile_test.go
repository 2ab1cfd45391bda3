package bench

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A proxier that starts serving only after the profile was first asked for: SaveProfile
// asks again until it answers, with the duration in whole seconds, and writes the body.
func TestSaveProfileWaitsForTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused until the server below starts

	got := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.RawQuery
		_, _ = w.Write([]byte("pprof-bytes"))
	})}
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() { _ = srv.Close() })

	path := filepath.Join(t.TempDir(), ProfileFile(KubeProxyName, "cold"))
	if err := SaveProfile(context.Background(), "http://"+addr+"/debug/pprof/profile", path, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if q := <-got; q != "seconds=2" {
		t.Errorf("query %q, want seconds=2", q)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "pprof-bytes" {
		t.Errorf("profile file %q, %v", b, err)
	}
	if filepath.Base(path) != "kube-proxy-ipvs-cold.pprof" {
		t.Errorf("file name %s", filepath.Base(path))
	}
}

// A server that answers with an error is not asked again: the error names the status.
func TestSaveProfileRefused(t *testing.T) {
	srv := &http.Server{Handler: http.NotFoundHandler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	path := filepath.Join(t.TempDir(), "p.pprof")
	err = SaveProfile(context.Background(), "http://"+ln.Addr().String()+"/debug/pprof/profile", path, time.Second)
	if err == nil {
		t.Fatal("no error for a 404")
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("a file was written: %v", statErr)
	}
	t.Log(err)
}

// Without Profile, or for a proxier that serves no profile, nothing is taken.
func TestProfileOff(t *testing.T) {
	p := Proxier{Name: KubevsName, ProfileURL: profileURL}
	if note := profile(context.Background(), Config{}, p, "cold", time.Second)(); note != "" {
		t.Errorf("note %q with profiling off", note)
	}
	if note := profile(context.Background(), Config{Profile: time.Second}, Proxier{Name: KubevsName}, "cold", time.Second)(); note != "" {
		t.Errorf("note %q for a proxier without a profile URL", note)
	}
}

// The heap profile comes from /debug/pprof/heap beside the CPU profile's URL, without a
// duration (which would make it a delta).
func TestHeapProfile(t *testing.T) {
	got := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.String()
		_, _ = w.Write([]byte("heap-bytes"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	p := Proxier{Name: KubevsName, ProfileURL: "http://" + ln.Addr().String() + "/debug/pprof/profile"}
	if note := heapProfile(context.Background(), Config{Profile: time.Second, LogDir: dir}, p); note != "heap profile in kubevs-heap.pprof" {
		t.Errorf("note %q", note)
	}
	if u := <-got; u != "/debug/pprof/heap" {
		t.Errorf("asked %s, want /debug/pprof/heap", u)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kubevs-heap.pprof")); err != nil || string(b) != "heap-bytes" {
		t.Errorf("heap file %q, %v", b, err)
	}
	if note := heapProfile(context.Background(), Config{LogDir: dir}, p); note != "" {
		t.Errorf("note %q with profiling off", note)
	}
}
