package plugin

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		in      string
		want    PodArgs
		wantErr bool
	}{
		{in: "", want: PodArgs{}},
		{in: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234-5678",
			want: PodArgs{Namespace: "default", Name: "web-0", UID: "1234-5678"}},
		{in: "K8S_POD_NAME=a=b;", want: PodArgs{Name: "a=b"}},
		{in: "K8S_POD_NAME", wantErr: true},
		{in: "=x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.in)
		if tt.wantErr {
			var e *types.Error
			if !errors.As(err, &e) || e.Code != types.ErrInvalidEnvironmentVariables {
				t.Errorf("ParseArgs(%q) error = %v, want code 4", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseArgs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
