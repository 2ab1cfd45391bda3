// Package guestcpu samples the CPU time of the whole machine (/proc/stat) and of processes
// named by their command (/proc/PID/comm), so that a load test can say which process bounded
// its throughput: two samples give, over the time between them, the CPUs' busy time and each
// named process's share of it.
package guestcpu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ticksPerSecond is the kernel's USER_HZ, the unit of /proc/stat and /proc/PID/stat times: 100
// on every Linux architecture Go supports.
const ticksPerSecond = 100

// Self names the calling process in Take's names and Usage's Procs.
const Self = "self"

// Sample is one reading: the machine's busy and total ticks and each named process's
// (user+system, summed over the processes of that command).
type Sample struct {
	At          time.Time
	Busy, Total uint64
	Procs       map[string]uint64
}

// Take reads /proc/stat and the processes whose comm is one of names (Self: the caller).
func Take(names ...string) (Sample, error) {
	s := Sample{At: time.Now(), Procs: map[string]uint64{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, fmt.Errorf("guestcpu: %w", err)
	}
	if s.Busy, s.Total, err = parseStat(string(b)); err != nil {
		return s, err
	}
	want := map[string]bool{}
	for _, n := range names {
		if n == Self {
			t, err := pidTicks("/proc/self/stat")
			if err != nil {
				return s, err
			}
			s.Procs[Self] = t
			continue
		}
		want[n] = true
		s.Procs[n] = 0
	}
	if len(want) == 0 {
		return s, nil
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return s, fmt.Errorf("guestcpu: %w", err)
	}
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue // gone meanwhile
		}
		name := strings.TrimSpace(string(comm))
		if !want[name] {
			continue
		}
		if t, err := pidTicks(d + "/stat"); err == nil {
			s.Procs[name] += t
		}
	}
	return s, nil
}

// parseStat returns the busy (all but idle and iowait) and total ticks of /proc/stat's "cpu"
// line.
func parseStat(text string) (busy, total uint64, err error) {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal (guest, guest_nice are in user, nice)
		for i, v := range f[1:min(len(f), 9)] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("guestcpu: /proc/stat field %d %q: %w", i+1, v, err)
			}
			total += n
			if i != 3 && i != 4 {
				busy += n
			}
		}
		return busy, total, nil
	}
	return 0, 0, errors.New(`guestcpu: /proc/stat has no "cpu" line`)
}

// pidTicks returns utime+stime of a /proc/PID/stat file.
func pidTicks(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("guestcpu: %w", err)
	}
	return parsePidStat(string(b))
}

// parsePidStat returns utime+stime (fields 14 and 15) of a /proc/PID/stat line; the command
// (field 2, in parentheses) may hold spaces and parentheses, so fields count from its last ')'.
func parsePidStat(text string) (uint64, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, fmt.Errorf("guestcpu: no command in %q", text)
	}
	f := strings.Fields(text[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("guestcpu: %d fields after the command in %q", len(f), text)
	}
	var sum uint64
	for _, v := range f[11:13] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("guestcpu: utime/stime %q: %w", v, err)
		}
		sum += n
	}
	return sum, nil
}

// Usage is what was used between two samples, in CPU-seconds.
type Usage struct {
	Wall  time.Duration
	CPUs  int
	Busy  float64
	Procs map[string]float64
}

// Since returns the use between earlier and s.
func (s Sample) Since(earlier Sample) Usage {
	u := Usage{Wall: s.At.Sub(earlier.At), CPUs: runtime.NumCPU(), Procs: map[string]float64{}}
	u.Busy = float64(s.Busy-earlier.Busy) / ticksPerSecond
	for n, t := range s.Procs {
		if t0, ok := earlier.Procs[n]; ok && t >= t0 {
			u.Procs[n] = float64(t-t0) / ticksPerSecond
		}
	}
	return u
}

// String: "2 CPUs 93% busy over 61.2s: kube-apiserver 1.21 CPUs, etcd 0.30, self 0.25".
func (u Usage) String() string {
	sec := u.Wall.Seconds()
	if sec <= 0 {
		return "no time between the samples"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d CPUs %.0f%% busy over %s", u.CPUs, 100*u.Busy/sec/float64(max(u.CPUs, 1)), u.Wall.Round(100*time.Millisecond))
	names := make([]string, 0, len(u.Procs))
	for n := range u.Procs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, c string) int { // the busiest first
		if u.Procs[a] != u.Procs[c] {
			if u.Procs[a] > u.Procs[c] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, c)
	})
	for i, n := range names {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %.2f CPUs", sep, n, u.Procs[n]/sec)
	}
	return b.String()
}
