# Sourced by node-e2e.sh and two-node-e2e.sh: builds on the host what a real node runs, into
# the directory $work (which must hold cni/ and bin/), and sets cp_bin and node_bin:
#   - control plane (control-plane.sh) and kubelet, kube-scheduler, kubectl, containerd
#     (node-bins.sh), from their version-keyed caches, built only when missing; runc is Debian's;
#   - kubevs's image (make image) as $work/kubevs-image.tar;
#   - the sandbox image registry.k8s.io/pause:3.10.2 and the workload image
#     kubevs.io/node-test:0.1.0 (install/image's kubevs-static-image) as $work/pause.tar and
#     $work/node-test.tar;
#   - the CNI reference plugins kubevs's standalone mode chains (kubevs installs only its own)
#     in $work/cni; kubevs-vm and node.test in $work; the beds' cluster DNS (test/node/cmd/
#     clusterdns) as $work/bin/clusterdns.
# The caller defines stamp MESSAGE. node_env LOGDIR [IMAGE...] then fills the array node_env
# with the guest's --env flags every node scenario passes (test/node's env_test.go), after
# node_build, with LOGDIR as the node's log dir and IMAGEs imported beside the three images
# above; a scenario adds its own (KUBEVS_NODE_DNS, its test's settings).
node_build() {
	cp_bin=$(bash test/scripts/control-plane.sh --path)
	node_bin=$(bash test/scripts/node-bins.sh --path)
	[[ -x /usr/sbin/runc ]] || { echo "no /usr/sbin/runc (apt-get install runc)" >&2; return 1; }
	stamp "control plane and node binaries ready"

	KUBEVS_IMAGE_OUT=$work/kubevs-image.tar bash test/scripts/image.sh
	CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$work/bin/" ./test/node/cmd/pause ./test/node/cmd/fetch ./test/node/cmd/clusterdns ./test/testserver/cmd/testserver
	(cd install/image && CGO_ENABLED=0 go build -trimpath -o "$work/bin/" ./cmd/kubevs-static-image)
	"$work/bin/kubevs-static-image" --tag registry.k8s.io/pause:3.10.2 --out "$work/pause.tar" --entrypoint /pause /pause="$work/bin/pause"
	"$work/bin/kubevs-static-image" --tag kubevs.io/node-test:0.1.0 --out "$work/node-test.tar" \
		/testserver="$work/bin/testserver" /fetch="$work/bin/fetch"
	stamp "images built"

	(cd test/tools/cni && CGO_ENABLED=0 go build -trimpath -o "$work/cni/" \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/loopback \
		github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/meta/portmap)
	CGO_ENABLED=0 go build -o "$work/kubevs-vm" ./test/vm/cmd/kubevs-vm
	CGO_ENABLED=0 go test -c -tags nodee2e -o "$work/node.test" ./test/node
	stamp "built CNI plugins, kubevs-vm, node.test"
}

node_env() {
	local logdir=$1
	shift
	node_env=(
		--env "KUBEVS_CONTROL_PLANE_BIN=$cp_bin"
		--env "KUBEVS_NODE_BIN=$node_bin"
		--env "KUBEVS_NODE_CNI_BIN=$work/cni"
		--env "KUBEVS_NODE_IMAGES=$work/pause.tar $work/node-test.tar $work/kubevs-image.tar${*:+ $*}"
		--env "KUBEVS_NODE_MANIFEST=$root/install/manifests/kubevs.yaml"
		--env "KUBEVS_NODE_LOGDIR=$logdir"
		--env "KUBEVS_STRICT=1"
	)
}
