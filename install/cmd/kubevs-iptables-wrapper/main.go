// Command kubevs-iptables-wrapper stands in the kubevs image for iptables, iptables-save,
// iptables-restore and their ip6tables twins: on its first run it picks the node's backend
// (nf_tables or legacy), relinks those names to it and execs it. See package xtables.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/kubevs/kubevs/install/xtables"
)

func main() {
	w := xtables.Wrapper{Dir: "/usr/sbin", Run: xtables.ExecRunner, Exec: syscall.Exec, Stdout: os.Stdout, Stderr: os.Stderr}
	os.Exit(w.Main(context.Background(), os.Args))
}
