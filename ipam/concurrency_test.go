package ipam

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/kubevs/kubevs/ipam/store"
)

// Environment of the re-executed test binary (see TestMain).
const (
	helperEnv      = "KUBEVS_IPAM_TEST_HELPER"
	helperDirEnv   = "KUBEVS_IPAM_TEST_DIR"
	helperRangeEnv = "KUBEVS_IPAM_TEST_RANGE"
	helperNameEnv  = "KUBEVS_IPAM_TEST_NAME"
	helperCountEnv = "KUBEVS_IPAM_TEST_COUNT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "allocate":
		os.Exit(helperAllocate())
	case "plugin":
		os.Exit(helperPlugin())
	}
	os.Exit(m.Run())
}

// helperAllocate allocates for COUNT owners named NAME-i from RANGE in the disk store at DIR,
// each through its own store handle as separate plugin runs would, and prints one address a
// line.
func helperAllocate() int {
	p := netip.MustParsePrefix(os.Getenv(helperRangeEnv))
	n, _ := strconv.Atoi(os.Getenv(helperCountEnv))
	for i := range n {
		s, err := store.OpenDisk(os.Getenv(helperDirEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		a, err := Allocate(s, own(fmt.Sprintf("%s-%d", os.Getenv(helperNameEnv), i)), []netip.Prefix{p})
		s.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(a[0].IP)
	}
	return 0
}

// checkUnique fails on a duplicate address and checks the store holds exactly got.
func checkUnique(t *testing.T, dir string, got []netip.Addr, want int) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	for _, ip := range got {
		if seen[ip] {
			t.Errorf("address %s handed out twice", ip)
		}
		seen[ip] = true
	}
	if len(got) != want {
		t.Errorf("%d allocations, want %d", len(got), want)
	}
	s, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	owners := map[store.Owner]bool{}
	for _, e := range entries {
		if e.Corrupt || !seen[e.IP] || owners[e.Owner] {
			t.Errorf("store entry %+v: torn, unknown or a second address for its owner", e)
		}
		owners[e.Owner] = true
	}
	if len(entries) != want {
		t.Errorf("store holds %d reservations, want %d", len(entries), want)
	}
}

// TestConcurrentGoroutines: 100 goroutines, half sharing one store handle, half with their
// own (so both the mutex and the flock are exercised), allocate at once.
func TestConcurrentGoroutines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	shared, err := store.OpenDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	p := netip.MustParsePrefix("10.244.0.0/24")
	var (
		mu  sync.Mutex
		got []netip.Addr
		wg  sync.WaitGroup
	)
	for i := range 100 {
		wg.Go(func() {
			var s store.Store = shared
			if i%2 == 1 {
				d, err := store.OpenDisk(dir)
				if err != nil {
					t.Error(err)
					return
				}
				defer d.Close()
				s = d
			}
			a, err := Allocate(s, own(fmt.Sprintf("g%d", i)), []netip.Prefix{p})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, a[0].IP)
			mu.Unlock()
		})
	}
	wg.Wait()
	checkUnique(t, dir, got, 100)
}

// TestConcurrentProcesses: 4 processes (this test binary re-executed) allocate 30 addresses
// each from the same store at once; only the flock keeps them apart.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := filepath.Join(t.TempDir(), "net")
	const procs, each = 4, 30
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=allocate", helperDirEnv+"="+dir, helperRangeEnv+"=10.244.2.0/24",
			helperNameEnv+"="+fmt.Sprintf("p%d", i), helperCountEnv+"="+strconv.Itoa(each))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	var got []netip.Addr
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			ip, err := netip.ParseAddr(sc.Text())
			if err != nil {
				t.Fatalf("process %d printed %q", i, sc.Text())
			}
			got = append(got, ip)
		}
	}
	checkUnique(t, dir, got, procs*each)
}
