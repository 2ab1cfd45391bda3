//go:build tools

// Package kube pins the Kubernetes commands the test bed runs: the control plane, and
// kube-proxy for the takeover scenarios.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
