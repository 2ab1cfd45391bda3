package netfilter

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// nftGeneration reads the generation of nf_tables' ruleset in the calling thread's network
// namespace (NFT_MSG_GETGEN): a number the kernel changes with every committed change to any
// nf_tables table, iptables-nft's rules included. One netlink round trip, no process: the
// nf_tables backend compares it to skip an iptables-save whose output cannot have changed.
func nftGeneration() (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("open nfnetlink socket: %w", err)
	}
	defer func() { _ = unix.Close(fd) }() // the answer is read; a close error loses nothing
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		return 0, fmt.Errorf("set nfnetlink receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("bind nfnetlink socket: %w", err)
	}
	const seq = 1
	msg := nfMessage(nil, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST, seq, unix.AF_UNSPEC, 0, nil)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("send NFT_MSG_GETGEN: %w", err)
	}
	buf := make([]byte, 1<<12)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("read NFT_MSG_GETGEN answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("parse NFT_MSG_GETGEN answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
						return 0, fmt.Errorf("NFT_MSG_GETGEN: %w", syscall.Errno(-code))
					}
				}
			case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN:
				if id, ok := genID(m.Data); ok {
					return id, nil
				}
				return 0, fmt.Errorf("NFT_MSG_NEWGEN without NFTA_GEN_ID")
			}
		}
	}
}

// genID finds NFTA_GEN_ID (big-endian) in the attributes after the nfgenmsg header.
func genID(data []byte) (uint32, bool) {
	if len(data) < 4 {
		return 0, false
	}
	b := data[4:]
	for len(b) >= unix.NLA_HDRLEN {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.NLA_HDRLEN || l > len(b) {
			return 0, false
		}
		if typ == unix.NFTA_GEN_ID && l >= unix.NLA_HDRLEN+4 {
			return binary.BigEndian.Uint32(b[unix.NLA_HDRLEN:]), true
		}
		l = (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return 0, false
}

// generationOf returns how to read the generation that moves with every change of the
// backend's rules: nf_tables has one; legacy iptables has none (nil).
func generationOf(b Backend) func() (uint32, error) {
	if b == BackendNFT {
		return nftGeneration
	}
	return nil
}
