package e2e

// Issue 4's scenarios (the chained plugin): CNI STATUS and the proxier launch and supervision,
// run against the bed's node with its own proxier stopped for the time of the test.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// cniStatus execs the kubevs plugin with CNI_COMMAND=STATUS and the conflist entry conf and
// returns the CNI error code (0 on success).
func cniStatus(ctx context.Context, conf map[string]any) (int, error) {
	conf["cniVersion"] = "1.1.0"
	conf["name"] = "kubevs-e2e"
	conf["type"] = "kubevs"
	in, err := json.Marshal(conf)
	if err != nil {
		return 0, err
	}
	bin := filepath.Join(filepath.Dir(proxier.Binary), "kubevs")
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=STATUS", "CNI_PATH="+filepath.Dir(proxier.Binary))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(runErr, &exitErr) {
		return 0, fmt.Errorf("run %s STATUS: %w", bin, runErr)
	}
	var cniErr struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &cniErr); err != nil || cniErr.Code == 0 {
		return 0, fmt.Errorf("%s STATUS: %v, stdout %q, stderr %q", bin, runErr, stdout.String(), stderr.String())
	}
	return cniErr.Code, nil
}

// expectStatus polls STATUS until it returns want.
func (f *Framework) expectStatus(conf func() map[string]any, want int) {
	f.t.Helper()
	f.Eventually(fmt.Sprintf("CNI STATUS returns %d", want), func(ctx context.Context) error {
		got, err := cniStatus(ctx, conf())
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("returned %d", got)
		}
		return nil
	})
}

func TestPluginStatusLaunchAndSupervision(t *testing.T) {
	RequirePlugin(t)
	f := New(t)
	svc := f.CreateService("sup")
	pods := f.CreatePods("sup", 2)
	client := f.CreatePod("client", "client")
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)

	plain := func() map[string]any { return map[string]any{} }
	f.expectStatus(plain, 0)
	f.killProxier()
	// Whatever happens below, the node ends with the bed's kind of proxier again.
	t.Cleanup(func() {
		stopSupervisor(t)
		f.expectNoProxier("the launched proxier ends")
		f.startProxier()
	})

	// No proxier: not available. The virtual servers stay meanwhile.
	f.expectStatus(plain, 50)
	if has, err := ipvsHas(f.Context(), echoAddr(svc, "http")); err != nil || !has {
		t.Fatalf("virtual server %s gone with the proxier down (err %v)", echoAddr(svc, "http"), err)
	}

	// The first ADD (launch on in the bed's conflist) starts the supervisor and a proxier;
	// STATUS turns 0 once that proxier has synced, and the new pod is a backend with the others.
	launched := f.CreatePod("sup-2", "sup")
	pods = append(pods, launched)
	f.expectStatus(plain, 0)
	if _, err := os.Stat(filepath.Join(pluginSocketDir, "supervisor.pid")); err != nil {
		t.Fatalf("no supervisor after the ADD: %v", err)
	}
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)

	// kill -9 of the launched proxier: the supervisor starts another, which syncs.
	pids, err := proxierPIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 {
		t.Fatalf("want one launched kubevs-proxier, found %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	f.Eventually("the supervisor restarts the proxier", func(context.Context) error {
		now, err := proxierPIDs()
		if err != nil {
			return err
		}
		if len(now) != 1 || now[0] == pids[0] {
			return fmt.Errorf("proxier pids %v (killed %d)", now, pids[0])
		}
		return nil
	})
	f.expectStatus(plain, 0)
	f.ExpectHTTP(f.FromPod(client), ServiceURL(svc, "/hostname")).Hostname(pods...)
	f.expectEchoHostnames(f.FromPod(client), "udp", echoAddr(svc, "udp-echo"), pods...)
}

// stopSupervisor stops the supervisor the plugin launched, if any.
func stopSupervisor(t testing.TB) {
	t.Helper()
	if _, err := signalSupervisor(); err != nil {
		t.Error(err)
	}
}
