package status

// Why not the client-go clientset: `kubevs status` lives in the CNI plugin binary, which the
// container runtime execs for every pod. Importing k8s.io/client-go/kubernetes registers
// every API group's types at process start; measured here (CNI VERSION exec, p50 of 200
// runs) it raised the plugin's start from 6.1 ms to 16-24 ms and the binary from 11 to 39 MB.
// These REST clients know only core/v1 and discovery/v1 and are built only when status runs:
// 7.5 ms and 21 MB.

import (
	"context"
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// pageSize bounds one list request; large clusters are listed in pages. A test lowers it.
var pageSize = 500

// What status asks the API server for, as the proxier's informers do: protobuf, which the
// server encodes and status decodes several times faster than JSON, and lists at
// resourceVersion "0", served from the server's watch cache instead of a quorum read of etcd
// (under load the read that took seconds). The cache is at most moments behind etcd, and it
// is what the proxier itself starts from; a Service changed in that moment reads as drift
// that the next run no longer finds. Tests change them to measure the difference.
var (
	contentType     = "application/vnd.kubernetes.protobuf"
	acceptTypes     = "application/vnd.kubernetes.protobuf,application/json"
	listFromVersion = "0"
)

// restSource is the Source of a real API server.
type restSource struct {
	core, discovery rest.Interface
}

// NewSource returns a Source that reads from the API server rc points at.
func NewSource(rc *rest.Config) (Source, error) {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register core/v1: %w", err)
	}
	if err := discoveryv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register discovery/v1: %w", err)
	}
	codecs := serializer.NewCodecFactory(s)
	client := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(rc)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType, c.AcceptContentTypes = contentType, acceptTypes
		r, err := rest.RESTClientFor(c)
		if err != nil {
			return nil, fmt.Errorf("create API client for %s: %w", gv, err)
		}
		return r, nil
	}
	core, err := client(v1.SchemeGroupVersion, "/api")
	if err != nil {
		return nil, err
	}
	disc, err := client(discoveryv1.SchemeGroupVersion, "/apis")
	if err != nil {
		return nil, err
	}
	return &restSource{core: core, discovery: disc}, nil
}

func (r *restSource) Node(ctx context.Context, name string) (*v1.Node, error) {
	var n v1.Node
	err := r.core.Get().Resource("nodes").Name(name).Do(ctx).Into(&n)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &n, nil
}

func (r *restSource) Services(ctx context.Context, selector string) ([]v1.Service, error) {
	var out []v1.Service
	err := pages(ctx, r.core, "services", selector, func(req *rest.Request) (string, error) {
		var l v1.ServiceList
		if err := req.Do(ctx).Into(&l); err != nil {
			return "", err
		}
		out = append(out, l.Items...)
		return l.Continue, nil
	})
	return out, err
}

func (r *restSource) EndpointSlices(ctx context.Context, selector string) ([]discoveryv1.EndpointSlice, error) {
	var out []discoveryv1.EndpointSlice
	err := pages(ctx, r.discovery, "endpointslices", selector, func(req *rest.Request) (string, error) {
		var l discoveryv1.EndpointSliceList
		if err := req.Do(ctx).Into(&l); err != nil {
			return "", err
		}
		out = append(out, l.Items...)
		return l.Continue, nil
	})
	return out, err
}

// pages lists resource in every namespace, pageSize items at a time; get runs one request
// and returns the continue token of the next page ("" after the last).
func pages(ctx context.Context, c rest.Interface, resource, selector string, get func(*rest.Request) (string, error)) error {
	cont := ""
	for {
		req := c.Get().Resource(resource).Param("labelSelector", selector).Param("limit", strconv.Itoa(pageSize))
		switch {
		case cont != "": // the continue token holds the version of the first page
			req = req.Param("continue", cont)
		case listFromVersion != "":
			req = req.Param("resourceVersion", listFromVersion)
		}
		next, err := get(req)
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		cont = next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
