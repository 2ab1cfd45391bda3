#!/usr/bin/env bash
# Runs golangci-lint (pinned, built from the Go module proxy into ~/.cache/kubevs/tools) with
# the repository's .golangci.yml.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=v2.15.0 # v2.6.2 cannot read go1.27's export data (version 5), even rebuilt with it
# The go command of the Go release in force (GOTOOLCHAIN, which the Makefile pins) first on
# PATH: the linter runs `go list` itself, and asks it for the release with GO111MODULE=off,
# where GOTOOLCHAIN does not switch, so it would see the machine's older Go.
# Run alone (not from make), the Makefile's pin still applies.
export GOTOOLCHAIN=${GOTOOLCHAIN:-$(sed -n 's/^GOTOOLCHAIN ?= //p' Makefile)}
PATH="$(go env GOROOT)/bin:$PATH"
# Built with the Go release that runs it: a linter built with an older Go cannot load
# the newer standard library.
tools=${KUBEVS_CACHE:-$HOME/.cache/kubevs}/tools/golangci-lint-$version-$(go env GOVERSION)
if [ ! -x "$tools/golangci-lint" ]; then
	echo "lint: building golangci-lint $version (once)" >&2
	GOBIN="$tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
"$tools/golangci-lint" run --allow-parallel-runners ./...
# The suites behind build tags (the real-node and two-guest tests) compile only with them:
# vet them too, so a change that breaks them fails here, not an hour into their own target.
go vet -tags "nodee2e vmlink" ./test/...
