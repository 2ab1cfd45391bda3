package plugin

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzParseArgs checks ParseArgs against the rule it documents, on arbitrary CNI_ARGS: it
// fails (code 4, naming the pair) exactly when a non-empty pair has no '=' or an empty key,
// the last K8S_POD_* value wins, and three values without ';' written as CNI_ARGS, among
// other keys, read back unchanged.
func FuzzParseArgs(f *testing.F) {
	f.Add("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=1234", "ns", "name", "uid")
	f.Add("K8S_POD_NAME=a=b;;K8S_POD_NAME=c", "", "a=b", "")
	f.Add("=x", "x;y", "", "")
	f.Add("K8S_POD_NAME", "", "", "")
	f.Fuzz(func(t *testing.T, in, ns, name, uid string) {
		var want PodArgs
		var bad string
		for _, pair := range strings.Split(in, ";") {
			k, v, ok := strings.Cut(pair, "=")
			switch {
			case pair == "":
			case !ok || k == "":
				if bad == "" {
					bad = pair
				}
			case k == "K8S_POD_NAMESPACE":
				want.Namespace = v
			case k == "K8S_POD_NAME":
				want.Name = v
			case k == "K8S_POD_UID":
				want.UID = v
			}
		}
		got, err := ParseArgs(in)
		switch {
		case bad != "":
			var e *types.Error
			if !errors.As(err, &e) || e.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(e.Msg, "CNI_ARGS") {
				t.Fatalf("ParseArgs(%q) = %+v, %v; want error 4 for pair %q", in, got, err, bad)
			}
		case err != nil:
			t.Fatalf("ParseArgs(%q): %v", in, err)
		case got != want:
			t.Fatalf("ParseArgs(%q) = %+v, want %+v", in, got, want)
		}
		if strings.Contains(ns+name+uid, ";") {
			return
		}
		args := "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + ns + ";K8S_POD_NAME=" + name + ";K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=" + uid
		if got, err := ParseArgs(args); err != nil || got != (PodArgs{Namespace: ns, Name: name, UID: uid}) {
			t.Fatalf("ParseArgs(%q) = %+v, %v", args, got, err)
		}
	})
}
