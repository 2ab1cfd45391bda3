// Command kubevs-image builds kubevs's image archive from the static binaries in --bin and the
// Debian packages of --lock found in --debs (each checked against its locked sha256), and
// prints the image's digest. See package image.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kubevs/kubevs/install/image"
	"github.com/kubevs/kubevs/install/manifests"
)

func main() {
	var c image.Command
	flag.StringVar(&c.Lock, "lock", "install/image/debs.lock", "the lock file of the Debian packages")
	flag.StringVar(&c.DebDir, "debs", "", "the directory holding the .deb files (apt-get download)")
	flag.StringVar(&c.BinDir, "bin", "", "the directory holding "+fmt.Sprint(image.Binaries))
	flag.StringVar(&c.Out, "out", "bin/kubevs-image.tar", "the archive to write")
	flag.StringVar(&c.Tag, "tag", manifests.Image, "the image's name")
	flag.Parse()
	if flag.NArg() > 0 || c.DebDir == "" || c.BinDir == "" {
		fmt.Fprintln(os.Stderr, "usage: kubevs-image --debs DIR --bin DIR [--lock FILE] [--out FILE]")
		os.Exit(2)
	}
	digest, err := c.Run(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubevs-image: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", c.Out, c.Tag, digest)
}
