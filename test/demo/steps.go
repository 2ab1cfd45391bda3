package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/test/bed"
	"github.com/kubevs/kubevs/test/podsim"
)

func (d *run) startBed(ctx context.Context) error {
	b, err := bed.Start(ctx, bed.Config{
		ControlPlaneBin: d.cfg.ControlPlaneBin,
		Dir:             filepath.Join(d.work, "bed"),
		LogDir:          d.logDir,
		StartTimeout:    d.cfg.StartTimeout,
		// The bed's own conflist is not used: pods go through the one kubevs-install writes.
		Network: bed.NetworkConfig{CNIBinDirs: []string{d.cfg.ToolsDir}},
	})
	if err != nil {
		return err
	}
	d.bed = b
	fmt.Fprintf(d.w, "         %s; node %s (InternalIP %s, podCIDR %s); outside host %s\n",
		b.Timings(), b.NodeName(), b.NodeIP(), b.PodCIDR(), b.OutsideIP())
	return nil
}

func (d *run) applyIdentity(ctx context.Context) error {
	m := d.manifest
	creds, err := applyIdentity(ctx, d.bed.Client, m, d.bed.RESTConfig.TLSClientConfig.CAData, filepath.Join(d.work, "serviceaccount"))
	if err != nil {
		return err
	}
	d.creds = creds
	d.proxier = filepath.Join(d.work, "proxier.yaml")
	if err := os.WriteFile(d.proxier, []byte(m.ProxierConfig), 0o600); err != nil {
		return fmt.Errorf("write proxier configuration: %w", err)
	}
	fmt.Fprintf(d.w, "         ServiceAccount %s/%s bound to ClusterRole %s; token in %s\n",
		m.ServiceAccount.Namespace, m.ServiceAccount.Name, m.ClusterRole.Name, creds.TokenFile)
	return nil
}

func (d *run) install(ctx context.Context) error {
	placed, err := placeReferencePlugins(d.cfg.ToolsDir)
	d.placed = placed
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "         reference plugins placed as a distribution package would: %v\n", placed)
	args := append([]string{"--once"}, installArgs(d.cfg.KubevsDir, d.bed.NodeName(), d.proxier, d.creds)...)
	fmt.Fprintf(d.w, "         $ kubevs-install %s\n", strings.Join(args, " \\\n             "))
	d.installed = true // uninstall even after a partial install
	if err := runCommand(ctx, d.w, filepath.Join(d.cfg.KubevsDir, "kubevs-install"), args...); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(confDir, conflist.DefaultFileName))
	if err != nil {
		return fmt.Errorf("read the installed conflist: %w", err)
	}
	fmt.Fprintf(d.w, "         %s:\n", filepath.Join(confDir, conflist.DefaultFileName))
	iw := &indentWriter{w: d.w, prefix: "         | "}
	_, _ = iw.Write(data)
	iw.flush()
	entries, err := os.ReadDir(binDir)
	if err != nil {
		return fmt.Errorf("list %s: %w", binDir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	fmt.Fprintf(d.w, "         %s: %v\n", binDir, names)
	return nil
}

func (d *run) createWorkload(ctx context.Context) error {
	n, err := installedNetwork(filepath.Join(d.work, "cni-cache"))
	if err != nil {
		return err
	}
	// Pods go through the installed network, not the bed's own conflist.
	d.bed.Network = n
	d.sim = podsim.New(d.bed, filepath.Join(d.cfg.ToolsDir, "testserver"))
	c := d.bed.Client
	_, err = c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	svc, err := c.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create service %s/%s: %w", namespace, app, err)
	}
	fmt.Fprintf(d.w, "         Service %s/%s: ClusterIP %s port 80, NodePort %d\n", namespace, app, svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort)

	if pid := supervisorPID(); pid != 0 {
		fmt.Fprintf(d.w, "         (a proxier supervisor already runs: pid %d)\n", pid)
	}
	for i := range replicas {
		name := fmt.Sprintf("%s-%d", app, i)
		if err := d.createPod(ctx, name, map[string]string{"app": app}); err != nil {
			return err
		}
		if i == 0 {
			if err := d.waitProxier(ctx); err != nil {
				return err
			}
		}
	}
	if err := d.createPod(ctx, clientName, map[string]string{"app": clientName}); err != nil {
		return err
	}
	return d.waitEndpoints(ctx)
}

func (d *run) createPod(ctx context.Context, name string, labels map[string]string) error {
	t0 := time.Now()
	p, err := d.sim.Create(ctx, podsim.PodSpec{Namespace: namespace, Name: name, Labels: labels})
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "         pod %s/%s running, IP %s (CNI ADD and server start %s)\n", namespace, name, p.IP, since(t0))
	return nil
}

// waitProxier waits for the proxier the first ADD launched.
func (d *run) waitProxier(ctx context.Context) error {
	pid := supervisorPID()
	if pid == 0 {
		return errors.New("the first pod's ADD launched no proxier supervisor (no " + filepath.Join(runDir, "supervisor.pid") + ")")
	}
	fmt.Fprintf(d.w, "         the first ADD launched the proxier supervisor (pid %d); waiting for kubevs-proxier %s\n", pid, proxierReadyz)
	t0 := time.Now()
	if err := poll(ctx, d.cfg.StepTimeout, proxierReady); err != nil {
		return fmt.Errorf("kubevs-proxier launched by the plugin not ready: %w", err)
	}
	fmt.Fprintf(d.w, "         kubevs-proxier ready after %s\n", since(t0))
	return nil
}

// waitEndpoints waits until the EndpointSlice controller publishes the three pods ready.
func (d *run) waitEndpoints(ctx context.Context) error {
	t0 := time.Now()
	err := poll(ctx, d.cfg.StepTimeout, func(ctx context.Context) error {
		slices, err := d.bed.Client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + app})
		if err != nil {
			return err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		if ready != replicas {
			return fmt.Errorf("%d of %d endpoints ready", ready, replicas)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("endpoints of %s/%s: %w", namespace, app, err)
	}
	fmt.Fprintf(d.w, "         EndpointSlice of %s/%s lists %d ready endpoints (%s)\n", namespace, app, replicas, since(t0))
	return nil
}

func (d *run) service(ctx context.Context) (*corev1.Service, error) {
	svc, err := d.bed.Client.CoreV1().Services(namespace).Get(ctx, app, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", namespace, app, err)
	}
	return svc, nil
}

func (d *run) pod(name string) (*podsim.Pod, error) {
	for _, p := range d.sim.Pods() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("pod %s is not running", name)
}

func backends() []string {
	out := make([]string, replicas)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", app, i)
	}
	return out
}

// errorEvery is how often a failing probe reports its latest error.
const errorEvery = 10 * time.Second

func (d *run) checkClusterIP(ctx context.Context) error {
	svc, err := d.service(ctx)
	if err != nil {
		return err
	}
	client, err := d.pod(clientName)
	if err != nil {
		return err
	}
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/hostname"
	fmt.Fprintf(d.w, "         (in pod %s) $ curl %s\n", clientName, url)
	return probe(ctx, d.w, curlIn(client.NS.Path(), url), expectation{want: backends()}, d.cfg.StepTimeout, errorEvery)
}

func (d *run) checkNodePort(ctx context.Context) error {
	svc, err := d.service(ctx)
	if err != nil {
		return err
	}
	url := "http://" + net.JoinHostPort(d.bed.NodeIP().String(), strconv.Itoa(int(svc.Spec.Ports[0].NodePort))) + "/hostname"
	fmt.Fprintf(d.w, "         (on the outside host %s) $ curl %s\n", d.bed.OutsideIP(), url)
	return probe(ctx, d.w, curlIn(d.bed.Outside.Path(), url), expectation{want: backends()}, d.cfg.StepTimeout, errorEvery)
}

func (d *run) checkHairpin(ctx context.Context) error {
	svc, err := d.service(ctx)
	if err != nil {
		return err
	}
	self, err := d.pod(app + "-0")
	if err != nil {
		return err
	}
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/hostname"
	fmt.Fprintf(d.w, "         (in pod %s) $ curl %s\n", self.Name, url)
	return probe(ctx, d.w, curlIn(self.NS.Path(), url), expectation{want: []string{self.Name}, othersOK: true}, d.cfg.StepTimeout, errorEvery)
}

// status runs `kubevs status` as an administrator would on the node, until it reports no
// drift (exit 0), and prints its table.
func (d *run) status(ctx context.Context) error {
	bin := filepath.Join(binDir, "kubevs")
	args := []string{"status", "--config=" + proxierConfig}
	fmt.Fprintf(d.w, "         $ %s %v\n", bin, args)
	var out []byte
	err := poll(ctx, d.cfg.StepTimeout, func(ctx context.Context) error {
		var err error
		out, err = exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w:\n%s", err, out)
		}
		return nil
	})
	iw := &indentWriter{w: d.w, prefix: "         | "}
	_, _ = iw.Write(out)
	iw.flush()
	return err
}

// cleanup undoes everything in reverse order, going on past failures. Logs of the plugin and
// the launched proxier are copied into the log dir first.
func (d *run) cleanup(ctx context.Context) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	t0 := time.Now()
	fmt.Fprintf(d.w, "demo: cleaning up: pods (CNI DEL), the launched proxier, kubevs-proxier --cleanup, kubevs-install --uninstall, the control plane\n")
	if d.sim != nil {
		add(d.sim.Close(ctx))
	}
	for _, f := range []string{pluginLog, "/var/log/kubevs-proxier.log"} {
		if data, err := os.ReadFile(f); err == nil {
			_ = os.MkdirAll(d.logDir, 0o755)
			_ = os.WriteFile(filepath.Join(d.logDir, filepath.Base(f)), data, 0o644)
		}
	}
	if d.installed {
		add(stopSupervisor(ctx))
		if _, err := os.Stat(proxierConfig); err == nil {
			add(runQuiet(ctx, filepath.Join(d.cfg.KubevsDir, "kubevs-proxier"), "--cleanup", "--config="+proxierConfig))
		}
		add(runQuiet(ctx, filepath.Join(d.cfg.KubevsDir, "kubevs-install"),
			append([]string{"--uninstall"}, installArgs(d.cfg.KubevsDir, d.bed.NodeName(), d.proxier, d.creds)...)...))
	}
	for _, p := range d.placed {
		add(os.Remove(p))
	}
	add(deleteLink(conflist.DefaultBridge))
	if d.bed != nil {
		add(d.bed.Close())
	}
	if d.installed {
		add(verifyClean(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up: %w", err)
	}
	fmt.Fprintf(d.w, "         ok (%s): no conflist, no kubevs binary, no kube-ipvs0, no IPVS virtual server, no proxier left\n", since(t0))
	return nil
}

// runQuiet runs a cleanup command, returning its output only if it fails.
func runQuiet(ctx context.Context, bin string, args ...string) error {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w\n%s", filepath.Base(bin), args, err, out)
	}
	return nil
}
