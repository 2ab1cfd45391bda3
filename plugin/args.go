package plugin

import (
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// PodArgs are the Kubernetes keys runtimes put in CNI_ARGS.
type PodArgs struct {
	Namespace string
	Name      string
	UID       string
}

// ParseArgs reads K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID from CNI_ARGS
// ("K=V;K=V"). Other keys are ignored (other plugins in the chain may use them); a pair
// without '=' is error 4 (ErrInvalidEnvironmentVariables).
func ParseArgs(s string) (PodArgs, error) {
	var a PodArgs
	if s == "" {
		return a, nil
	}
	for i, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return PodArgs{}, types.NewError(types.ErrInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_ARGS: pair %d %q is not KEY=VALUE", i, pair), "")
		}
		switch k {
		case "K8S_POD_NAMESPACE":
			a.Namespace = v
		case "K8S_POD_NAME":
			a.Name = v
		case "K8S_POD_UID":
			a.UID = v
		}
	}
	return a, nil
}
