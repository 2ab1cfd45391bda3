package status

import (
	"fmt"

	"github.com/vishvananda/netns"
)

// callerNetns returns a function that moves the thread it runs on (locked by the caller)
// into the network namespace of the thread calling callerNetns. The adapters act in the
// namespace of the thread they run on: the reader's worker must run where Run's caller
// does (a test's fresh netns, say), not where the runtime's next thread happens to be.
func callerNetns() (enter func() error, err error) {
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("get the network namespace: %w", err)
	}
	return func() error {
		defer func() { _ = h.Close() }()
		cur, err := netns.Get()
		if err != nil {
			return fmt.Errorf("get the network namespace: %w", err)
		}
		defer func() { _ = cur.Close() }()
		if cur.Equal(h) {
			return nil
		}
		if err := netns.Set(h); err != nil {
			return fmt.Errorf("enter the caller's network namespace: %w", err)
		}
		return nil
	}, nil
}
