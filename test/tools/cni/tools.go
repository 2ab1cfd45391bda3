//go:build tools

// Package cni pins the CNI reference plugins the test bed's node network runs: bridge,
// loopback, host-local and portmap from github.com/containernetworking/plugins.
package cni

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/portmap"
)
