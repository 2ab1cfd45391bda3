package manifests

// Version is kubevs's version: the tag of the image `make image` builds.
const Version = "0.1.0"

// Image is the image kubevs.yaml deploys and `make image` builds and names (there is no
// registry: the archive is imported into each node's container runtime, so the DaemonSet
// pulls only if not present).
const Image = "kubevs.io/kubevs:" + Version
