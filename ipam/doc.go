// Package ipam is kubevs-ipam, the CNI IPAM plugin that hands out pod addresses from the
// Node's spec.podCIDRs (IPv4, IPv6 or both). It learns the ranges from kubevs-proxier's node
// API when the proxier runs, else from the API server (a kubeconfig in the configuration),
// else from the ranges one of those last gave (remembered in the network's store directory:
// a Node's podCIDRs never change), else from static ranges in the configuration. Reservations live in a crash-safe store
// (package store): one allocation per (container ID, interface name), released by DEL,
// garbage-collected by GC against the runtime's valid attachments.
//
// The plugin answers ADD with an abbreviated result (ips and routes, no interfaces), as the
// CNI specification asks of IPAM plugins.
package ipam

import "github.com/containernetworking/cni/pkg/version"

// VersionInfo lists the CNI specification versions kubevs-ipam speaks.
var VersionInfo = version.All

// About is printed when the plugin runs without CNI_COMMAND.
const About = "kubevs-ipam: CNI IPAM plugin handing out pod addresses from the Node's spec.podCIDRs"
