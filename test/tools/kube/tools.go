//go:build tools

// Package kube pins the Kubernetes commands the test bed runs: the control plane, kube-proxy
// for the takeover scenarios, the kubelet, kube-scheduler and kubectl of the real node (test/node),
// and upstream's e2e.test with the test images' programs (test/scripts/upstream-build.sh).
// e2e.test is `go test -c k8s.io/kubernetes/test/e2e`: the modules only its test files import
// (ginkgo, k8s.io/sample-apiserver) are required in go.mod by `go get`; `go mod tidy` here
// would drop them.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
	_ "k8s.io/kubernetes/test/images/regression-issue-74839"
)
