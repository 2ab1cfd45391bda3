// Command kubevs-static-image writes an image archive (the same OCI layout + docker-archive
// shape as kubevs-image) holding static binaries, for images no registry serves here: the real
// node's sandbox image and its test workload (test/node).
//
//	kubevs-static-image --tag NAME --out FILE [--entrypoint /path] /path/in/image=host-file ...
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kubevs/kubevs/install/image"
)

func main() {
	var tag, out, entrypoint string
	flag.StringVar(&tag, "tag", "", "the image's name")
	flag.StringVar(&out, "out", "", "the archive to write")
	flag.StringVar(&entrypoint, "entrypoint", "", "the image's entrypoint (one path)")
	flag.Parse()
	if tag == "" || out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kubevs-static-image --tag NAME --out FILE [--entrypoint PATH] IMAGE-PATH=HOST-FILE...")
		os.Exit(2)
	}
	o := image.StaticOptions{Files: map[string]string{}}
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
	digest, err := image.WriteStatic(out, tag, o, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevs-static-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", out, tag, digest)
}
