package vm

// The user-mode network: qemu's own TCP/IP stack (slirp) behind one virtio card, eth0 in the
// guest. A guest connection to UserNetHost becomes a connection qemu makes to 127.0.0.1 in
// its own network namespace, so a server on the loopback of the namespace kubevs-vm runs in
// (a fresh one, in the benchmark: test/scripts/bench-e2e.sh) is reachable from the guest,
// and nothing needs to listen on an address other machines see. It is for services the host
// runs natively for the guest (the benchmark's API server, which emulated runs several
// times slower); guests that need a segment between them use Link.
//
// The card comes up as eth0, down and without an address (as a Link's does): the command in
// the guest configures it, with UserNetGuestCIDR, since qemu's DHCP server is not asked.
const (
	// UserNetHost is the address the guest reaches the host's loopback at.
	UserNetHost = "10.0.2.2"
	// UserNetGuestCIDR is the address and prefix the guest's eth0 takes.
	UserNetGuestCIDR = "10.0.2.15/24"
)

// userNetArgs are qemu's options for the card: IPv4 only, on qemu's default 10.0.2.0/24.
var userNetArgs = []string{
	"-netdev", "user,id=un,ipv6=off,net=10.0.2.0/24,host=" + UserNetHost,
	"-device", "virtio-net-pci,netdev=un",
}
