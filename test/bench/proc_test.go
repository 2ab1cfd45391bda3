package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// utime 150, stime 50, cutime 30, cstime 20 ticks: 2.5 s; the name holds ") (".
	stat := "4242 (kube) (proxy) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 30 20 20 0 12 0 100 1000000 500 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2500 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"4242 kube S 1", "4242 (kube) S 1 2 3", "4242 (kube) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 50 30 20 20"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error, want one", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tkube-proxy\nVmHWM:\t   61440 kB\nVmRSS:\t   40960 kB\nRssAnon:\t   30720 kB\nThreads:\t9\n"
	for key, want := range map[string]uint64{"VmRSS": 40 << 20, "VmHWM": 60 << 20, "RssAnon": 30 << 20} {
		got, err := parseStatusKB(status, key)
		if err != nil || got != want {
			t.Errorf("parseStatusKB(%s) = %d, %v; want %d", key, got, err, want)
		}
	}
	if _, err := parseStatusKB(status, "VmSwap"); err == nil || !strings.Contains(err.Error(), "VmSwap") {
		t.Errorf("missing key: err = %v, want one naming VmSwap", err)
	}
	if _, err := parseStatusKB("VmRSS:\t12 MB\n", "VmRSS"); err == nil {
		t.Error("unit MB: want an error")
	}
}

func TestReadProcSelf(t *testing.T) {
	// Burn a little CPU so that the process has some.
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS == 0 || s.HWM < s.RSS || s.CPU <= 0 || s.Anon == 0 || s.Anon > s.RSS {
		t.Errorf("ReadProc(self) = %+v, want RSS > 0, HWM >= RSS, CPU > 0, 0 < Anon <= RSS", s)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Error("ReadProc(-1): want an error")
	}
}

func TestCPUPercent(t *testing.T) {
	t0 := time.Unix(100, 0)
	from := ProcSample{At: t0, CPU: time.Second}
	to := ProcSample{At: t0.Add(10 * time.Second), CPU: 1500 * time.Millisecond}
	if got := CPUPercent(from, to); got != 5 {
		t.Errorf("CPUPercent = %v, want 5", got)
	}
	if got := CPUPercent(from, from); got != 0 {
		t.Errorf("CPUPercent over no time = %v, want 0", got)
	}
}
