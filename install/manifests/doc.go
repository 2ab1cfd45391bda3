// Package manifests holds the Kubernetes manifests that deploy kubevs (kubevs.yaml) and the
// test that decodes them strictly with the Kubernetes scheme. Its one Go API is the name of the
// image the manifests deploy (Image), which the image builder (install/image) gives its output.
package manifests
