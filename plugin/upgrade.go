package plugin

// The supervisor restarts the proxier when its binary is replaced on disk: an upgrade of a
// node in launch mode is `kubevs-install` writing new binaries (a rename over the old file),
// and without this the old proxier would run until it crashed or the node rebooted. The
// supervisor polls the binary's identity (device, inode, size, modification time): a rename
// over it changes the inode, a rewrite in place the size or time. It restarts only once the
// new identity has been seen on two polls in a row, so a copy still being written is not
// started half-way; a binary that is missing (between a remove and a copy) is waited for, and
// the running proxier is kept.

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// DefaultBinaryPoll is how often the supervisor looks at the proxier binary on disk.
const DefaultBinaryPoll = 2 * time.Second

// binaryID identifies the file at a path at one moment.
type binaryID struct {
	dev, ino uint64
	size     int64
	mtime    int64 // nanoseconds
}

func statBinary(path string) (binaryID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return binaryID{}, fmt.Errorf("stat proxier binary %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return binaryID{}, fmt.Errorf("proxier binary %s: not a regular file", path)
	}
	return binaryID{dev: st.Dev, ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}, nil
}

// watchBinary returns a channel that is closed once the file at path differs from was and has
// kept its new identity for two polls. It stops polling when ctx is done.
func watchBinary(ctx context.Context, path string, was binaryID, poll time.Duration) <-chan struct{} {
	changed := make(chan struct{})
	go func() {
		tick := time.NewTicker(poll)
		defer tick.Stop()
		var seen binaryID
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			id, err := statBinary(path)
			switch {
			case err != nil || id == was:
				seen = binaryID{}
			case id == seen:
				close(changed)
				return
			default:
				seen = id
			}
		}
	}()
	return changed
}
