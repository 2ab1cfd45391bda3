// Module image builds kubevs's OCI image (make image). It is separate from the product's
// module so that go-containerregistry and its dependencies do not enter kubevs's go.sum.
module github.com/kubevs/kubevs/install/image

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/google/go-containerregistry v0.22.1
	github.com/kubevs/kubevs v0.0.0
)

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
)

// The image is named by the product's own constant (manifests.Image).
replace github.com/kubevs/kubevs => ../..
