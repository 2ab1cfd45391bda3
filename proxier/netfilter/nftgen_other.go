//go:build !linux

package netfilter

// generationOf: no generation outside Linux.
func generationOf(Backend) func() (uint32, error) { return nil }
