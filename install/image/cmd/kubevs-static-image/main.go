// Command kubevs-static-image writes an image archive (the same OCI layout + docker-archive
// shape as kubevs-image) holding static binaries, for images no registry serves here: the real
// node's sandbox image and its test workload (test/node), and the test images of upstream's
// e2e specs (test/scripts/upstream-build.sh), which add pinned Debian packages (--lock, --debs)
// and symbolic links (--link).
//
//	kubevs-static-image --tag NAME --out FILE [--entrypoint /path] [--cmd ARG]... \
//		[--lock FILE --debs DIR] [--link /path/in/image=TARGET]... [/path/in/image=host-file]...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kubevs/kubevs/install/image"
)

func main() {
	var tag, out, entrypoint, lock, debDir string
	var cmd []string
	links := map[string]string{}
	flag.StringVar(&tag, "tag", "", "the image's name")
	flag.StringVar(&out, "out", "", "the archive to write")
	flag.StringVar(&entrypoint, "entrypoint", "", "the image's entrypoint (one path)")
	flag.StringVar(&lock, "lock", "", "a lock file of Debian packages (package version arch sha256) merged first")
	flag.StringVar(&debDir, "debs", "", "the directory holding the lock's .deb files")
	flag.Func("cmd", "one argument of the image's Cmd (repeat in order)", func(s string) error {
		cmd = append(cmd, s)
		return nil
	})
	flag.Func("link", "IMAGE-PATH=TARGET: a symbolic link (repeat)", func(s string) error {
		in, target, ok := strings.Cut(s, "=")
		if !ok || target == "" {
			return fmt.Errorf("%q: want IMAGE-PATH=TARGET", s)
		}
		links[in] = target
		return nil
	})
	flag.Parse()
	if tag == "" || out == "" || flag.NArg() == 0 && lock == "" || (lock == "") != (debDir == "") {
		fmt.Fprintln(os.Stderr, "usage: kubevs-static-image --tag NAME --out FILE [--entrypoint PATH] [--cmd ARG]... [--lock FILE --debs DIR] [--link IMAGE-PATH=TARGET]... [IMAGE-PATH=HOST-FILE]...")
		os.Exit(2)
	}
	o := image.StaticOptions{Files: map[string]string{}, Symlinks: links, Cmd: cmd, Extract: image.DpkgExtract}
	if entrypoint != "" {
		o.Entrypoint = []string{entrypoint}
	}
	for _, a := range flag.Args() {
		in, host, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "kubevs-static-image: %q: want IMAGE-PATH=HOST-FILE\n", a)
			os.Exit(2)
		}
		o.Files[in] = host
	}
	if lock != "" {
		debs, err := image.VerifyLock(lock, debDir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubevs-static-image: %v\n", err)
			os.Exit(1)
		}
		o.Debs = debs
	}
	digest, err := image.WriteStatic(out, tag, o, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevs-static-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", out, tag, digest)
}
