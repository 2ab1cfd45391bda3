// Package manifests holds the Kubernetes manifests that deploy kubevs (kubevs.yaml) and the
// test that decodes them strictly with the Kubernetes scheme. It has no Go API.
package manifests
