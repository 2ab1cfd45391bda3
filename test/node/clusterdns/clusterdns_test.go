package clusterdns

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
)

func service(name string, spec corev1.ServiceSpec) *corev1.Service {
	if spec.ClusterIP == "" && spec.Type != corev1.ServiceTypeExternalName {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: spec}
}

func slice(name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports, Endpoints: eps,
	}
}

func endpoint(ip string, ready bool, hostname string) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}
	if hostname != "" {
		ep.Hostname = ptr.To(hostname)
	}
	return ep
}

// objects: a ClusterIP Service with two named ports, a dual-stack one, a headless one with
// three endpoints (one with a hostname, one not ready) over two slices, an ExternalName one.
func objects() []runtime.Object {
	return []runtime.Object{
		service("web", corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.20"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}),
		service("dual", corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.21", "fd00:96::21"}, Ports: []corev1.ServicePort{{Port: 80}}}),
		service("db", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone},
			Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}}),
		service("ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}),
		slice("db-a", "db", []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}},
			endpoint("10.244.0.5", true, "db-0"), endpoint("10.244.0.7", false, "db-2")),
		slice("db-b", "db", []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}},
			endpoint("10.244.0.6", true, "")),
	}
}

// serve runs Serve on loopback with a fake clientset and returns its address.
func serve(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, client, "cluster.local", pc, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// UDP and TCP share the port number only by chance: Listen took it for UDP first.
	return pc.LocalAddr().String() + "|" + l.Addr().String()
}

// query asks addr name/qtype over net and returns the rcode and the answer and additional
// sections, one record a line, sorted.
func query(t *testing.T, network, addr, name string, qtype uint16) string {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	var r *dns.Msg
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// Serve listens before its informers sync, and answers only after: retry until then.
		if r, _, err = c.Exchange(m, addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	lines := []string{}
	for _, rr := range append(append([]dns.RR{}, r.Answer...), r.Extra...) {
		lines = append(lines, strings.Join(strings.Fields(rr.String()), " "))
	}
	sort.Strings(lines)
	if len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
		t.Errorf("query %s %s: a negative answer without the SOA: %v", name, dns.TypeToString[qtype], r.Ns)
	}
	return strings.TrimSpace(dns.RcodeToString[r.Rcode] + "\n" + strings.Join(lines, "\n"))
}

func TestAnswers(t *testing.T) {
	addrs := strings.Split(serve(t, fake.NewClientset(objects()...)), "|")
	const d = ".default.svc.cluster.local."
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web" + d, dns.TypeA, "NOERROR\nweb" + d + " 5 IN A 10.96.0.20"},
		{"WEB.Default.SVC.cluster.local.", dns.TypeA, "NOERROR\nWEB.Default.SVC.cluster.local. 5 IN A 10.96.0.20"},
		{"web" + d, dns.TypeAAAA, "NOERROR"},
		{"dual" + d, dns.TypeAAAA, "NOERROR\ndual" + d + " 5 IN AAAA fd00:96::21"},
		{"db" + d, dns.TypeA, "NOERROR\ndb" + d + " 5 IN A 10.244.0.5\ndb" + d + " 5 IN A 10.244.0.6"},
		{"db-0.db" + d, dns.TypeA, "NOERROR\ndb-0.db" + d + " 5 IN A 10.244.0.5"},
		{"10-244-0-6.db" + d, dns.TypeA, "NOERROR\n10-244-0-6.db" + d + " 5 IN A 10.244.0.6"},
		{"db-2.db" + d, dns.TypeA, "NXDOMAIN"}, // not ready
		{"x.web" + d, dns.TypeA, "NXDOMAIN"},   // endpoint names are a headless Service's
		{"ext" + d, dns.TypeA, "NOERROR\next" + d + " 5 IN CNAME example.com."},
		{"ext" + d, dns.TypeCNAME, "NOERROR\next" + d + " 5 IN CNAME example.com."},
		{"_http._tcp.web" + d, dns.TypeSRV, "NOERROR\n_http._tcp.web" + d + " 5 IN SRV 0 100 80 web" + d + "\nweb" + d + " 5 IN A 10.96.0.20"},
		{"web" + d, dns.TypeSRV, "NOERROR\nweb" + d + " 5 IN A 10.96.0.20\nweb" + d + " 5 IN SRV 0 100 53 web" + d + "\nweb" + d + " 5 IN SRV 0 100 80 web" + d},
		{"_pg._tcp.db" + d, dns.TypeSRV, "NOERROR\n10-244-0-6.db" + d + " 5 IN A 10.244.0.6\n_pg._tcp.db" + d + " 5 IN SRV 0 100 5432 10-244-0-6.db" + d +
			"\n_pg._tcp.db" + d + " 5 IN SRV 0 100 5432 db-0.db" + d + "\ndb-0.db" + d + " 5 IN A 10.244.0.5"},
		{"_http._udp.web" + d, dns.TypeSRV, "NXDOMAIN"},
		{"_dns._udp.web" + d, dns.TypeA, "NOERROR"},
		{"nope" + d, dns.TypeA, "NXDOMAIN"},
		{"web.nope.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"default.svc.cluster.local.", dns.TypeA, "NOERROR"},
		{"nope.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"svc.cluster.local.", dns.TypeA, "NOERROR"},
		{"cluster.local.", dns.TypeA, "NOERROR"},
		{"10-244-0-9.default.pod.cluster.local.", dns.TypeA, "NOERROR\n10-244-0-9.default.pod.cluster.local. 5 IN A 10.244.0.9"},
		{"x.default.pod.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"web.default.svc.cluster.local.example.", dns.TypeA, "NXDOMAIN"}, // outside the domain
		{"example.com.", dns.TypeA, "NXDOMAIN"},
	} {
		for i, network := range []string{"udp", "tcp"} {
			t.Run(fmt.Sprintf("%s/%s/%s", tc.name, dns.TypeToString[tc.qtype], network), func(t *testing.T) {
				if diff := cmp.Diff(tc.want, query(t, network, addrs[i], tc.name, tc.qtype)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestFollowsTheAPIServer: a Service created, its endpoints made ready, then deleted, as the
// informers see them.
func TestFollowsTheAPIServer(t *testing.T) {
	client := fake.NewClientset()
	addr := strings.Split(serve(t, client), "|")[0]
	ctx := context.Background()
	name := "late.default.svc.cluster.local."
	eventually := func(want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = query(t, "udp", addr, name, dns.TypeA); got == want {
				return
			}
		}
		t.Fatalf("%s: got %q, want %q", name, got, want)
	}
	eventually("NXDOMAIN")
	svc := service("late", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}})
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("NOERROR")
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("late-a", "late", nil, endpoint("10.244.0.8", true, "")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("NOERROR\n" + name + " 5 IN A 10.244.0.8")
	if err := client.CoreV1().Services("default").Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("NXDOMAIN")
}

// TestTruncatesLargeUDPAnswers: 100 endpoints do not fit in 512 bytes; the UDP answer says
// so (TC), and TCP carries all of them.
func TestTruncatesLargeUDPAnswers(t *testing.T) {
	var eps []discoveryv1.Endpoint
	for i := range 100 {
		eps = append(eps, endpoint(fmt.Sprintf("10.244.1.%d", i+1), true, ""))
	}
	objs := []runtime.Object{
		service("big", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}}),
		slice("big-a", "big", nil, eps...),
	}
	addrs := strings.Split(serve(t, fake.NewClientset(objs...)), "|")
	query(t, "tcp", addrs[1], "big.default.svc.cluster.local.", dns.TypeA) // wait for the sync
	for i, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion("big.default.svc.cluster.local.", dns.TypeA)
		r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addrs[i])
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if want := network == "udp"; r.Truncated != want || (!want && len(r.Answer) != 100) {
			t.Errorf("%s: truncated %v with %d answers, want truncated %v (and 100 answers over TCP)", network, r.Truncated, len(r.Answer), want)
		}
	}
}
