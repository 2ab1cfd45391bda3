//go:build tools

// Package kube pins the Kubernetes commands the test bed runs: the control plane, kube-proxy
// for the takeover scenarios, and the kubelet, kube-scheduler and kubectl of the real node (test/node).
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
