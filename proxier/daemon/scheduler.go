package daemon

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// schedulerInKernel tells whether the running kernel can provide the IPVS scheduler name:
// its module is loaded (/sys/module/ip_vs_<name>), built in (modules.builtin) or installed
// (modules.dep) for the running release. known is false when the module tree is not
// readable (a container without /lib/modules): the answer is then unknown.
func schedulerInKernel(root, release, name string) (ok, known bool) {
	mod := "ip_vs_" + name
	if _, err := os.Stat(filepath.Join(root, "sys/module", mod)); err == nil {
		return true, true
	}
	dir := filepath.Join(root, "lib/modules", release)
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		file, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		known = true
		found := false
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			path, _, _ := strings.Cut(sc.Text(), ":")
			base := filepath.Base(path)
			if base == mod+".ko" || strings.HasPrefix(base, mod+".ko.") {
				found = true
				break
			}
		}
		file.Close()
		if found {
			return true, true
		}
	}
	return false, known
}
