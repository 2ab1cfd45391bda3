#!/usr/bin/env bash
# Create a kind cluster without kube-proxy, install kubevs into it, and run the upstream
# sig-network Services conformance e2e tests against it. See --help.
set -euo pipefail

usage() {
	cat <<'USAGE'
usage: install/kind/run.sh [--k8s-version vX.Y.Z] [--keep] [--focus REGEX] [--skip REGEX]

Creates a kind cluster (install/kind/kind-config.yaml: kubeProxyMode none, no default CNI,
three nodes), builds kubevs's image from this checkout (make image) and loads the archive, installs
install/manifests/kubevs.yaml in standalone mode with the control-plane node's address as the
API server, adds routes between the nodes' podCIDRs, then downloads the upstream e2e.test for
the cluster's Kubernetes version and runs the sig-network Services tests.

Needs: docker, kind, kubectl, go, make, curl,
and a host kernel with IPVS (kind nodes share the host's kernel).

NOT RUN: this machine has no container engine, so kind itself, docker and the download of
e2e.test have never run here; expect to debug them on a first run. Every other step is what
the project's VM beds run and pass on real kubelets and containerd:
  - the image is `make image`'s OCI archive, loaded as kind does it (`ctr -n k8s.io images
    import`, test/scripts/image-import.sh);
  - the manifest is install/manifests/kubevs.yaml with only the API server's address filled in,
    applied with kubectl (make node-e2e, make two-node-e2e);
  - the routes between the nodes' podCIDRs are the ones two-node-e2e adds;
  - e2e.test v1.36.3's Services specs run in test/scripts/upstream-e2e.sh (see its header for
    what passed).

  --k8s-version V   kind node image version (default: kind's default)
  --keep            keep the cluster afterwards (default: delete it)
  --focus REGEX     ginkgo focus (default: '\[sig-network\] Services')
  --skip REGEX      ginkgo skip (default: Serial|Disruptive|Slow|LoadBalancer|ESIPP|Feature:)
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cluster=kubevs
version=""
keep=0
focus='\[sig-network\] Services'
skip='\[Serial\]|\[Disruptive\]|\[Slow\]|LoadBalancer|ESIPP|\[Feature:'
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--k8s-version) version=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--focus) focus=$2; shift 2 ;;
	--skip) skip=$2; shift 2 ;;
	*) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done

for tool in kind kubectl go make curl docker; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (see --help)" >&2; exit 1; }
done

work=$(mktemp -d)
cleanup() {
	if [ "$keep" = 0 ]; then
		kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step() { echo "==> $*"; }

step "building the image (make image: bin/kubevs-image.tar, kubevs.io/kubevs:0.1.0)"
make -C "$repo" image
archive=$repo/bin/kubevs-image.tar

step "creating kind cluster $cluster"
args=(--name "$cluster" --config "$here/kind-config.yaml" --wait 0s)
[ -n "$version" ] && args+=(--image "kindest/node:$version")
kind create cluster "${args[@]}"
kind load image-archive "$archive" --name "$cluster"

cp_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cluster-control-plane")
step "API server for the proxier: $cp_ip:6443"
sed -e "s|\"API_SERVER_HOST\"|\"$cp_ip\"|" "$repo/install/manifests/kubevs.yaml" >"$work/kubevs.yaml"

step "installing kubevs"
kubectl apply -f "$work/kubevs.yaml"
kubectl -n kubevs-system rollout status ds/kubevs --timeout=5m

step "routing podCIDRs between nodes (standalone mode builds no overlay)"
mapfile -t nodes < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.addresses[?(@.type=="InternalIP")].address} {.spec.podCIDR}{"\n"}{end}')
for a in "${nodes[@]}"; do
	read -r name _ _ <<<"$a"
	for b in "${nodes[@]}"; do
		read -r other ip cidr <<<"$b"
		[ "$other" = "$name" ] && continue
		docker exec "$name" ip route replace "$cidr" via "$ip"
	done
done
kubectl wait --for=condition=Ready nodes --all --timeout=5m

server_version=$(kubectl version -o json | sed -n 's/.*"gitVersion": *"\(v[^"]*\)".*/\1/p' | tail -1)
step "downloading e2e.test $server_version"
curl -fsSL "https://dl.k8s.io/$server_version/kubernetes-test-linux-amd64.tar.gz" |
	tar -xz -C "$work" kubernetes/test/bin/e2e.test kubernetes/test/bin/ginkgo

step "running e2e: focus=$focus skip=$skip"
kind get kubeconfig --name "$cluster" >"$work/kubeconfig"
"$work/kubernetes/test/bin/e2e.test" \
	--kubeconfig="$work/kubeconfig" --provider=local \
	--ginkgo.focus="$focus" --ginkgo.skip="$skip" \
	--ginkgo.v --report-dir="$work/report" 2>&1 | tee "$work/e2e.log"
step "done"
