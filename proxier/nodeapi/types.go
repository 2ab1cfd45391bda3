// Package nodeapi is the node-local API between the kubevs CNI plugin and kubevs-proxier: the
// wire types, the HTTP+JSON Server the proxier runs on a root-only unix socket, the Client the
// plugin (and kubevs-ipam) use, and the Store that persists pod registrations across proxier
// restarts.
//
// Endpoints (all JSON; errors are an ErrorBody with a non-2xx status):
//
//	GET  /v1/status          -> Status
//	POST /v1/register        Registration -> 204
//	POST /v1/unregister      Attachment   -> 204 (also when absent)
//	POST /v1/gc              GCRequest    -> GCResponse
//	GET  /v1/registrations   -> []Registration
//	GET  /v1/registration?containerID=..&ifName=.. -> Registration, 404 if absent
//
// A registration is keyed by (ContainerID, IfName), never by IP: IPs are reused.
package nodeapi

import (
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/utils"
)

// DefaultSocket is where kubevs-proxier listens unless configured otherwise. The directory is
// created 0700 and the socket is 0600: only root may talk to the proxier.
const DefaultSocket = "/run/kubevs/proxier.sock"

// DefaultStoreDir is where kubevs-proxier keeps registrations. It is on tmpfs (/run) on
// purpose: registrations must survive a proxier restart, but not a reboot (every pod is then
// created anew under new container IDs), and the store's fsyncs cost nothing there; on ext4
// they cost about 3 ms per ADD on the project machine.
const DefaultStoreDir = "/run/kubevs/registrations"

// Registration is one pod attachment the plugin reports at ADD.
type Registration struct {
	// ContainerID is the CNI container ID (CNI_CONTAINERID).
	ContainerID string `json:"containerID"`
	// IfName is the interface name inside the pod (CNI_IFNAME).
	IfName string `json:"ifName"`
	// Netns is the path of the pod's network namespace at ADD time.
	Netns string `json:"netns,omitempty"`
	// PodNamespace, PodName and PodUID come from K8S_POD_* in CNI_ARGS, when present.
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	// IPs are the pod's addresses on IfName.
	IPs []netip.Addr `json:"ips,omitempty"`
	// HostIfName is the host-side peer of the pod interface (a veth), when known.
	HostIfName string `json:"hostIfName,omitempty"`
}

// Attachment names one registration: the CNI (container ID, ifname) pair.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
}

// Key returns the attachment that names r.
func (r Registration) Key() Attachment {
	return Attachment{ContainerID: r.ContainerID, IfName: r.IfName}
}

// String prints "containerID/ifName".
func (a Attachment) String() string { return a.ContainerID + "/" + a.IfName }

// Validate checks the container ID and interface name with the rules CNI itself applies.
func (a Attachment) Validate() error {
	if err := utils.ValidateContainerID(a.ContainerID); err != nil {
		return fmt.Errorf("containerID %q: %s", a.ContainerID, err.Msg)
	}
	if err := utils.ValidateInterfaceName(a.IfName); err != nil {
		return fmt.Errorf("ifName %q: %s", a.IfName, err.Msg)
	}
	return nil
}

// Validate checks the key and that every IP is one a pod can hold: a valid unicast address,
// not loopback, link-local, multicast or unspecified. Whether it is inside the node's pod
// CIDRs is the server's IPValidator's to say.
func (r Registration) Validate() error {
	if err := r.Key().Validate(); err != nil {
		return err
	}
	for i, ip := range r.IPs {
		if err := checkPodIP(ip); err != nil {
			return fmt.Errorf("ips[%d]: %w", i, err)
		}
	}
	if r.HostIfName != "" {
		if err := utils.ValidateInterfaceName(r.HostIfName); err != nil {
			return fmt.Errorf("hostIfName %q: %s", r.HostIfName, err.Msg)
		}
	}
	return nil
}

// Status is the proxier's readiness and what it knows about its node.
type Status struct {
	// Ready is true once the informers have synced and the first sync has been applied.
	Ready bool `json:"ready"`
	// Message says why the proxier is not ready (or anything worth a human's eye).
	Message string `json:"message,omitempty"`
	// NodeName is the Node the proxier serves.
	NodeName string `json:"nodeName,omitempty"`
	// PodCIDRs are the Node's spec.podCIDRs (kubevs-ipam allocates from them).
	PodCIDRs []netip.Prefix `json:"podCIDRs,omitempty"`
}

// GCRequest lists the attachments that are still valid; every other registration is dropped.
type GCRequest struct {
	Valid []Attachment `json:"valid"`
}

// GCResponse lists the registrations GC removed.
type GCResponse struct {
	Removed []Registration `json:"removed"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// checkPodIP refuses the addresses no pod interface can own.
func checkPodIP(ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return fmt.Errorf("invalid address")
	case ip.IsUnspecified():
		return fmt.Errorf("%s: unspecified address", ip)
	case ip.IsLoopback():
		return fmt.Errorf("%s: loopback address", ip)
	case ip.IsMulticast():
		return fmt.Errorf("%s: multicast address", ip)
	case ip.IsLinkLocalUnicast():
		return fmt.Errorf("%s: link-local address", ip)
	case ip.Unmap().Is4() && ip.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s: broadcast address", ip)
	}
	return nil
}
