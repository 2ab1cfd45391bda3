package daemon

import (
	"context"
	"fmt"
)

// watchNetlink runs one netlink subscription until ctx is done: subscribe starts it with ch,
// done and an error callback (the shape of vishvananda/netlink's *SubscribeWithOptions), and
// each update is handed to handle. It returns when the subscription fails or closes, with an
// error naming what was watched, so the caller can log and subscribe again.
func watchNetlink[U any](ctx context.Context, what string, subscribe func(ch chan U, done chan struct{}, onError func(error)) error, handle func(U)) error {
	ch := make(chan U, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	onError := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	if err := subscribe(ch, done, onError); err != nil {
		return fmt.Errorf("subscribe to %s: %w", what, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("%s: %w", what, err)
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("%s: subscription closed", what)
			}
			handle(u)
		}
	}
}
