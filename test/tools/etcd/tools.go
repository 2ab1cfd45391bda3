//go:build tools

// Package etcd pins the etcd server command the test bed runs.
package etcd

import _ "go.etcd.io/etcd/server/v3"
