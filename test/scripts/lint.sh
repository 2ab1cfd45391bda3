#!/usr/bin/env bash
# Runs golangci-lint (pinned, built from the Go module proxy into ~/.cache/kubevs/tools) with
# the repository's .golangci.yml.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=v2.6.2
# Built with the Go release that runs it: a linter built with an older Go cannot load
# the newer standard library.
tools=${KUBEVS_CACHE:-$HOME/.cache/kubevs}/tools/golangci-lint-$version-$(go env GOVERSION)
if [ ! -x "$tools/golangci-lint" ]; then
	echo "lint: building golangci-lint $version (once)" >&2
	GOBIN="$tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
exec "$tools/golangci-lint" run --allow-parallel-runners ./...
