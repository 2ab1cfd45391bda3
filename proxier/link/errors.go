package link

import "errors"

// ErrNotDummy is returned by EnsureDummy when a link of the requested name exists but is not
// a dummy: kubevs never takes over or replaces a link it did not create.
var ErrNotDummy = errors.New("exists and is not a dummy link")
