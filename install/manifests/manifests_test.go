package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubevs/kubevs/conflist"
	"github.com/kubevs/kubevs/install"
	"github.com/kubevs/kubevs/proxier/config"
)

// decodeAll decodes every document of kubevs.yaml strictly: unknown or duplicate fields and
// unknown kinds are errors.
func decodeAll(t *testing.T) []runtime.Object {
	t.Helper()
	data, err := os.ReadFile("kubevs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document %d: strict decode: %v", i, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

func TestManifestKinds(t *testing.T) {
	var got []string
	for _, o := range decodeAll(t) {
		got = append(got, o.GetObjectKind().GroupVersionKind().Kind)
	}
	want := []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "ConfigMap", "DaemonSet"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
}

func find[T runtime.Object](t *testing.T, name string) T {
	t.Helper()
	for _, o := range decodeAll(t) {
		if v, ok := o.(T); ok {
			if m, ok := any(v).(interface{ GetName() string }); ok && (name == "" || m.GetName() == name) {
				return v
			}
		}
	}
	var zero T
	t.Fatalf("no %T named %q", zero, name)
	return zero
}

// TestClusterRoleIsReadOnly: reads on services, endpointslices and nodes; events are the only
// writes; no wildcard anywhere.
func TestClusterRoleIsReadOnly(t *testing.T) {
	role := find[*rbacv1.ClusterRole](t, "kubevs")
	read := []string{"get", "list", "watch"}
	allowed := map[string][]string{"services": read, "endpointslices": read, "nodes": read, "events": {"create", "patch"}}
	granted := map[string]bool{}
	for i, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("rule %d: unexpected nonResourceURLs/resourceNames", i)
		}
		for _, g := range r.APIGroups {
			if !slices.Contains([]string{"", "discovery.k8s.io", "events.k8s.io"}, g) {
				t.Errorf("rule %d: API group %q", i, g)
			}
		}
		for _, res := range r.Resources {
			verbs, ok := allowed[res]
			if !ok {
				t.Errorf("rule %d: resource %q is not one kubevs needs", i, res)
				continue
			}
			for _, v := range r.Verbs {
				if !slices.Contains(verbs, v) {
					t.Errorf("rule %d: verb %q on %s; allowed: %v", i, v, res, verbs)
				}
			}
			granted[res] = true
		}
	}
	for res := range allowed {
		if !granted[res] {
			t.Errorf("resource %s is not granted", res)
		}
	}
	b := find[*rbacv1.ClusterRoleBinding](t, "kubevs")
	if b.RoleRef.Name != "kubevs" || len(b.Subjects) != 1 || b.Subjects[0].Name != "kubevs" || b.Subjects[0].Namespace != "kubevs-system" {
		t.Errorf("binding %+v does not bind the kubevs ServiceAccount to the kubevs role", b)
	}
}

func TestDaemonSet(t *testing.T) {
	ds := find[*appsv1.DaemonSet](t, "kubevs")
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("not hostNetwork")
	}
	if spec.ServiceAccountName != "kubevs" {
		t.Errorf("serviceAccountName %q", spec.ServiceAccountName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool { return tl.Operator == corev1.TolerationOpExists && tl.Key == "" }) {
		t.Error("no toleration of every taint: kubevs must run on every node")
	}
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
		t.Fatalf("want one init container (the installer) and one container (the proxier)")
	}
	inst, prox := spec.InitContainers[0], spec.Containers[0]
	if !strings.HasSuffix(inst.Command[0], "/kubevs-install") || !strings.HasSuffix(prox.Command[0], "/kubevs-proxier") {
		t.Errorf("commands: %q, %q", inst.Command[0], prox.Command[0])
	}
	if inst.RestartPolicy == nil || *inst.RestartPolicy != corev1.ContainerRestartPolicyAlways || inst.StartupProbe == nil {
		t.Error("the installer must be a sidecar with a startup probe, so the proxier starts after the install and the install is kept in place")
	}
	// The proxier's liveness must not kill a proxier that is slow to start or to answer on a
	// loaded node: a startup probe on /livez holds liveness back, and no probe gives up after
	// the kubelet's default second.
	if sp := prox.StartupProbe; sp == nil || sp.HTTPGet == nil || sp.HTTPGet.Path != "/livez" ||
		sp.PeriodSeconds*sp.FailureThreshold < 120 {
		t.Errorf("proxier startup probe %+v: want /livez for at least 2 minutes", sp)
	}
	for name, p := range map[string]*corev1.Probe{"startup": prox.StartupProbe, "readiness": prox.ReadinessProbe, "liveness": prox.LivenessProbe} {
		if p == nil || p.TimeoutSeconds < 5 {
			t.Errorf("proxier %s probe %+v: want a timeout of at least 5 s", name, p)
		}
	}
	if c := prox; c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Errorf("%s is not privileged", c.Name) // it programs IPVS, iptables and links
	}
	// The installer only writes files: no privilege, every capability dropped but the three
	// file ones, and only the host paths it writes into.
	if sc := inst.SecurityContext; sc == nil || sc.Privileged == nil || *sc.Privileged ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER"}) {
		t.Errorf("installer security context %+v: want unprivileged, no escalation, capabilities ALL dropped but CHOWN, DAC_OVERRIDE, FOWNER", inst.SecurityContext)
	}
	var instMounts []string
	for _, m := range inst.VolumeMounts {
		instMounts = append(instMounts, m.MountPath)
	}
	if want := []string{"/host/opt/cni/bin", "/host/etc/cni/net.d", "/host/var/lib/kubevs"}; !slices.Equal(instMounts, want) {
		t.Errorf("installer mounts %v, want only %v", instMounts, want)
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, c := range []corev1.Container{inst, prox} {
		for _, m := range c.VolumeMounts {
			if hp, ok := hostPaths[m.Name]; ok {
				mounts[hp] = m
			}
		}
	}
	for _, p := range []string{"/opt/cni/bin", "/etc/cni/net.d", "/run/kubevs", "/var/lib/kubevs", "/lib/modules", "/run/netns"} {
		if _, ok := mounts[p]; !ok {
			t.Errorf("host path %s is not mounted", p)
		}
	}
	if !mounts["/lib/modules"].ReadOnly {
		t.Error("/lib/modules is not read-only")
	}
	// The registration GC must see pod namespaces the runtime removes after the proxier started.
	if m := mounts["/run/netns"]; !m.ReadOnly || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("/run/netns mount %+v: want read-only with HostToContainer propagation", m)
	}
	for _, m := range inst.VolumeMounts {
		if !strings.HasPrefix(m.MountPath, "/host/") {
			t.Errorf("installer mount %s is not under --root=/host", m.MountPath)
		}
	}
}

// TestImage: both containers run the image `make image` builds (Image), and pull it only when
// the node does not have it: there is no registry, the archive is imported on each node.
func TestImage(t *testing.T) {
	ds := find[*appsv1.DaemonSet](t, "kubevs")
	spec := ds.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Image != Image {
			t.Errorf("%s: image %q, want %q (what make image builds)", c.Name, c.Image, Image)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s: imagePullPolicy %q, want IfNotPresent", c.Name, c.ImagePullPolicy)
		}
	}
}

// TestProxierConfiguration decodes the ConfigMap's configuration with the proxier's own strict
// decoder, and checks the CNI mode is one kubevs-install accepts.
func TestProxierConfiguration(t *testing.T) {
	cm := find[*corev1.ConfigMap](t, "kubevs-config")
	c, err := config.Decode([]byte(cm.Data["proxier.yaml"]))
	if err != nil {
		t.Fatalf("proxier.yaml: %v", err)
	}
	if c.Kind != "ProxierConfiguration" || c.APIVersion != "kubevs.io/v1alpha1" {
		t.Errorf("type %s/%s", c.APIVersion, c.Kind)
	}
	for _, p := range []string{c.NodeAPISocket, c.StateDir} {
		if err := conflist.ValidatePath("path", p); err != nil {
			t.Error(err)
		}
	}
	if m := cm.Data["cni-mode"]; m != "standalone" && m != "chained" {
		t.Errorf("cni-mode %q", m)
	}
	api := find[*corev1.ConfigMap](t, "kubevs-api-server")
	if _, ok := api.Data["KUBERNETES_SERVICE_HOST"]; !ok {
		t.Error("kubevs-api-server lacks KUBERNETES_SERVICE_HOST")
	}
}

// TestKindConfig checks the kind cluster config asks for no kube-proxy and no default CNI
// (kind's own types are not a dependency: decode the few fields that matter).
func TestKindConfig(t *testing.T) {
	data, err := os.ReadFile("../kind/kind-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Networking struct {
			KubeProxyMode     string `json:"kubeProxyMode"`
			DisableDefaultCNI bool   `json:"disableDefaultCNI"`
			PodSubnet         string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := sigsyaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Kind != "Cluster" || c.APIVersion != "kind.x-k8s.io/v1alpha4" {
		t.Errorf("not a kind cluster config: %s/%s", c.APIVersion, c.Kind)
	}
	if c.Networking.KubeProxyMode != "none" || !c.Networking.DisableDefaultCNI {
		t.Errorf("networking %+v: want kubeProxyMode none and disableDefaultCNI", c.Networking)
	}
	cm := find[*corev1.ConfigMap](t, "kubevs-config")
	if !strings.Contains(cm.Data["proxier.yaml"], c.Networking.PodSubnet) {
		t.Errorf("proxier clusterCIDRs do not hold the kind podSubnet %s", c.Networking.PodSubnet)
	}
}

// TestInstallerArguments parses the installer's command lines in the DaemonSet with
// kubevs-install's own flags, and builds the installer they describe.
func TestInstallerArguments(t *testing.T) {
	ds := find[*appsv1.DaemonSet](t, "kubevs")
	inst := ds.Spec.Template.Spec.InitContainers[0]
	expand := strings.NewReplacer("$(KUBEVS_CNI_MODE)", "standalone", "$(NODE_NAME)", "node-1")
	for name, argv := range map[string][]string{"command": inst.Command, "startupProbe": inst.StartupProbe.Exec.Command} {
		var c install.Command
		fs := flag.NewFlagSet("kubevs-install", flag.ContinueOnError)
		c.AddFlags(fs)
		args := make([]string, 0, len(argv)-1)
		for _, a := range argv[1:] {
			args = append(args, expand.Replace(a))
		}
		if err := fs.Parse(args); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.Root != "/host" {
			t.Errorf("%s: --root=%s, want /host (where the DaemonSet mounts the node's paths)", name, c.Root)
		}
		if _, err := install.New(c.Options); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
