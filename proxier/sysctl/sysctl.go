// Package sysctl reads and writes kernel parameters under /proc/sys. sysctltest holds a fake.
package sysctl

// Interface reads and writes one parameter by its dotted or slashed name,
// e.g. "net/ipv4/vs/conntrack".
type Interface interface {
	Get(name string) (string, error)
	Set(name, value string) error
}
