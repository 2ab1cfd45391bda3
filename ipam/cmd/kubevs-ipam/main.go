// Command kubevs-ipam is the kubevs CNI IPAM plugin: pod addresses from the Node's podCIDRs.
// The runtime runs it through the main plugin (bridge); see package ipam.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"k8s.io/klog/v2"

	"github.com/kubevs/kubevs/ipam"
)

func main() {
	// stdout carries only the CNI result; klog writes to stderr.
	p := &ipam.Plugin{Stdout: os.Stdout, Logger: klog.Background()}
	skel.PluginMainFuncs(p.Funcs(), ipam.VersionInfo, ipam.About)
}
