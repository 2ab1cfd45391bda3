package podsim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestPodSpecDefaultsAndPorts(t *testing.T) {
	tests := []struct {
		name string
		in   PodSpec
		want []corev1.ContainerPort
	}{
		{
			name: "defaults",
			in:   PodSpec{Name: "a"},
			want: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				{Name: "tcp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolTCP},
				{Name: "udp-echo", ContainerPort: 9000, Protocol: corev1.ProtocolUDP},
			},
		},
		{
			name: "http only on another port",
			in:   PodSpec{Name: "b", HTTPPort: 80, TCPPort: -1, UDPPort: -1},
			want: []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.in
			s.setDefaults()
			if diff := cmp.Diff(tc.want, s.containerPorts()); diff != "" {
				t.Errorf("container ports (-want +got):\n%s", diff)
			}
			if s.Namespace != "default" || s.GracePeriod != 30 {
				t.Errorf("namespace %q grace %d, want default and 30", s.Namespace, s.GracePeriod)
			}
		})
	}
}
