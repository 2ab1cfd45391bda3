package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on every Linux port
// this runs on).
const userHZ = 100

// ProcSample is what /proc says about one process at one instant.
type ProcSample struct {
	// At is when it was read.
	At time.Time
	// CPU is user plus system time of the process and of its children it has waited for
	// (kube-proxy's iptables-restore and ipset runs count).
	CPU time.Duration
	// RSS and HWM are VmRSS and VmHWM (peak RSS) in bytes; Anon is RssAnon, the part of RSS
	// that is not file-backed (the heap, stacks and the runtime's own; the rest is mostly the
	// binary's pages read in).
	RSS, HWM, Anon uint64
}

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	if s.CPU, err = parseStatCPU(string(stat)); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	if s.RSS, err = parseStatusKB(string(status), "VmRSS"); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	if s.HWM, err = parseStatusKB(string(status), "VmHWM"); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	if s.Anon, err = parseStatusKB(string(status), "RssAnon"); err != nil {
		return s, fmt.Errorf("pid %d: %w", pid, err)
	}
	return s, nil
}

// parseStatCPU sums utime, stime, cutime and cstime (fields 14 to 17) of a /proc/PID/stat
// line. The command name (field 2) is in parentheses and may hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, fmt.Errorf("parse stat %q: %d fields after the name, want at least 15", stat, len(f))
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat CPU time %q: %w", v, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatusKB reads a "Key:   123 kB" line of /proc/PID/status, in bytes.
func parseStatusKB(status, key string) (uint64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		rest, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse status %s: %q is not \"N kB\"", key, rest)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse status %s: %w", key, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("parse status: no %s line", key)
}

// CPUPercent is the CPU used between two samples as a percentage of one core.
func CPUPercent(from, to ProcSample) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(to.CPU-from.CPU) / float64(wall)
}
