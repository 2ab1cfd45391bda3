package netfilter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// NewNFTables returns the Linux NFTables: one nfnetlink batch a table (no nft binary).
func NewNFTables() NFTables { return nftablesLinux{} }

type nftablesLinux struct{}

func (nftablesLinux) RemoveKubeProxyTables() ([]string, error) {
	var removed []string
	var errs []error
	for _, fam := range []struct {
		name  string
		proto uint8
	}{{"ip", unix.NFPROTO_IPV4}, {"ip6", unix.NFPROTO_IPV6}} {
		err := deleteNFTable(fam.proto, KubeProxyNFTable)
		switch {
		case err == nil:
			removed = append(removed, fam.name+" "+KubeProxyNFTable)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EOPNOTSUPP):
			// no such table, or no nftables in this kernel: nothing left behind
		default:
			errs = append(errs, fmt.Errorf("delete nftables table %s %s: %w", fam.name, KubeProxyNFTable, err))
		}
	}
	return removed, errors.Join(errs...)
}

// deleteNFTable sends NFT_MSG_DELTABLE for table name of family proto in a batch of its own
// and waits for the kernel's answer (nil, or the errno it refused with).
func deleteNFTable(proto uint8, name string) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("open nfnetlink socket: %w", err)
	}
	defer func() { _ = unix.Close(fd) }() // the answer is read; a close error loses nothing
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10}); err != nil {
		return fmt.Errorf("set nfnetlink receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("bind nfnetlink socket: %w", err)
	}
	const seq = 1
	var msg []byte
	msg = nfMessage(msg, unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, seq, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, nil)
	attr := nlAttr(unix.NFTA_TABLE_NAME, append([]byte(name), 0))
	msg = nfMessage(msg, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELTABLE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, seq+1, proto, 0, attr)
	msg = nfMessage(msg, unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, seq+2, unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES, nil)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send nfnetlink batch: %w", err)
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("read nfnetlink answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parse nfnetlink answer: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq < seq || m.Header.Seq > seq+2 || len(m.Data) < 4 {
				continue
			}
			// An error may answer the batch's begin (no nftables subsystem) as well as the
			// delete; only the delete is acknowledged.
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return syscall.Errno(-code)
			}
			if m.Header.Seq == seq+1 {
				return nil
			}
		}
	}
}

// nfMessage appends one netlink message with an nfgenmsg header (family, NFNETLINK_V0,
// resID big-endian) and the given attributes to b.
func nfMessage(b []byte, typ, flags uint16, seq uint32, family uint8, resID uint16, attrs []byte) []byte {
	length := unix.NLMSG_HDRLEN + 4 + len(attrs)
	b = binary.NativeEndian.AppendUint32(b, uint32(length))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, family, unix.NFNETLINK_V0)
	b = binary.BigEndian.AppendUint16(b, resID)
	return append(b, attrs...)
}

// nlAttr is one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.NLA_HDRLEN+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
