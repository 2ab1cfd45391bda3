// Package node is kubevs on a real node: inside the test VM, containerd 2.x with Debian's runc,
// the real kubelet v1.36.3 and kube-scheduler v1.36.3 join the test bed's control plane (package
// bed with Config.KubeletNode), and kubevs is installed as a kubeadm user installs it:
// `kubectl apply -f install/manifests/kubevs.yaml` with the image `make image` builds imported
// into containerd. The scenario (node_test.go, build tag nodee2e) checks that the node stays
// NotReady until kubevs's installer writes the conflist, turns Ready then, and that a pod (a
// real container) reaches a Deployment's pods through their Service's ClusterIP, and by the
// Service's name through the bed's cluster DNS (cmd/clusterdns on the node's address, behind
// the selectorless Service kube-system/kube-dns at 10.96.0.10: dns_test.go).
//
// Run it with `make node-e2e` (test/scripts/node-e2e.sh), which builds the binaries
// (test/scripts/node-bins.sh), kubevs's image, the sandbox image (cmd/pause, named
// registry.k8s.io/pause:3.10.2 as containerd 2.3 and kubeadm 1.36 expect) and the workload
// image (test/testserver and cmd/fetch), then runs the test in its own guest.
package node
