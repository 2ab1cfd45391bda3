#!/usr/bin/env bash
# Runs govulncheck (pinned, built once from the Go module proxy into ~/.cache/kubevs/tools)
# over the shipped packages, against the Go vulnerability database taken from the module
# proxy too (golang.org/x/vulndb at a pinned version, indexed once with its own indexdb
# command), since vuln.go.dev is not reachable from here. Any reachable finding fails, in a
# module (bump it) or in the standard library (bump GOTOOLCHAIN in the Makefile, which
# pins the Go release). Bump vulndb to see newer advisories.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The go command of the Go release in force (GOTOOLCHAIN, which the Makefile pins) first on
# PATH: govulncheck's loader asks `go list` for the release with GO111MODULE=off, where
# GOTOOLCHAIN does not switch; it then type-checks go1.27's standard library as go1.26 and
# fails ("generic method requires go1.27 or later").
# Run alone (not from make), the Makefile's pin still applies.
export GOTOOLCHAIN=${GOTOOLCHAIN:-$(sed -n 's/^GOTOOLCHAIN ?= //p' Makefile)}
PATH="$(go env GOROOT)/bin:$PATH"
govulncheck_version=v1.10.0
vulndb_version=v0.0.0-20261105234957-e22db6528018
cache=${KUBEVS_CACHE:-$HOME/.cache/kubevs}
tools=$cache/tools/govulncheck-$govulncheck_version-$(go env GOVERSION) # built with the Go that runs it
indexdb=$cache/tools/vulndb-indexdb-$vulndb_version
db=$cache/vulndb-$vulndb_version
if [ ! -x "$tools/govulncheck" ]; then
	echo "vulncheck: building govulncheck $govulncheck_version (once)" >&2
	GOBIN="$tools" GOFLAGS=-mod=mod go install "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version"
fi
if [ ! -f "$db/index/db.json" ]; then
	echo "vulncheck: indexing golang.org/x/vulndb $vulndb_version (once)" >&2
	if [ ! -x "$indexdb/indexdb" ]; then
		GOBIN="$indexdb" GOFLAGS=-mod=mod go install "golang.org/x/vulndb/cmd/indexdb@$vulndb_version"
	fi
	src=$(GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	rm -rf "$db.tmp"
	"$indexdb/indexdb" -vulns "$src/data/osv" -out "$db.tmp"
	mv "$db.tmp" "$db"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$tools/govulncheck" -db "file://$db" -format json ./plugin/... ./proxier/... ./ipam/... ./install/... ./conflist/... ./internal/... >"$out"
go run ./test/vulncheck -strict-stdlib -go "$(go env GOVERSION)" <"$out"
