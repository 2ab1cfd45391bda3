package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevs/kubevs/proxier/desired"
	"github.com/kubevs/kubevs/proxier/nodeapi"
)

// ReadLocalPods returns the addresses of the pods the CNI plugin registered in dir (the
// proxier's registrationDir), which the proxier counts as local endpoints. It only reads:
// nodeapi.NewStore would also delete the proxier's in-flight temporary files. Files that
// are not registrations are ignored, as the store ignores them; a missing dir holds none.
func ReadLocalPods(dir string) (desired.PodSet, error) {
	pods := desired.PodSet{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return pods, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registrations in %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // unregistered meanwhile, or unreadable: the proxier skips it too
		}
		var r nodeapi.Registration
		if json.Unmarshal(data, &r) != nil {
			continue
		}
		for _, ip := range r.IPs {
			pods[ip.Unmap()] = struct{}{}
		}
	}
	return pods, nil
}
