#!/usr/bin/env bash
# Runs the tests that need the test VM's kernel (IPVS, dummy links) inside ONE test VM.
#
# A package has VM tests when one of its _test.go files calls testenv.RequireVM. Each such
# package is compiled on the host (go test -c, no -race: too slow under TCG) and its whole
# test binary runs in the guest, in the package's directory, with KUBEVS_IN_VM=1 and
# KUBEVS_STRICT=1. The output is go-test-like: "ok  <pkg> <time>" per package, or the
# package's output followed by "FAIL <pkg> <time>". test/vm has a guest smoke test, so the
# guest boots and proves itself even before any other package has VM tests.
#
# Environment:
#   KUBEVS_RESULTS_DIR   host folder, writable in the guest at the same path, handed to the
#                        tests as KUBEVS_RESULTS_DIR; each package's output is kept there
#                        as e.g. proxier_ipvs.log (default: a temporary folder, removed at
#                        the end). Anything else a test writes in the guest is thrown away.
#   KUBEVS_VM_TEST_ARGS  extra arguments for every test binary, e.g. "-test.run TestX -test.v"
#   KUBEVS_VM_PACKAGES   only these package directories (space-separated, e.g.
#                        "./proxier/ipvs"), instead of every package with VM tests
#   KUBEVS_VM_TIMEOUT    bound on the whole guest run (default 30m)
#
# Exit status: 0 when every package passed, 1 when one failed or did not compile, and
# kubevs-vm's own 124 (timeout) or 125 (VM failure) otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
module=$(go list -m)

# Under /tmp: the guest sees the host's root, /tmp included, read-only.
work=$(mktemp -d /tmp/kubevs-vm-integration.XXXXXX)
trap 'rm -rf "$work"' EXIT
results=${KUBEVS_RESULTS_DIR:-$work/results}
mkdir -p "$work/bin" "$results"
results=$(cd "$results" && pwd)

go build -o "$work/kubevs-vm" ./test/vm/cmd/kubevs-vm

if [[ -n ${KUBEVS_VM_PACKAGES-} ]]; then
	read -ra dirs <<<"$KUBEVS_VM_PACKAGES"
else
	mapfile -t dirs < <(grep -rl --include='*_test.go' -e 'testenv\.RequireVM(' . |
		grep -v -e '^\./\.git/' -e '^\./test/tools/' | xargs -r -n1 dirname | sort -u)
fi
if ((${#dirs[@]} == 0)); then
	dirs=(./test/vm)
fi

failed=0
: >"$work/list"
for dir in "${dirs[@]}"; do
	if ! pkg=$(go list "$dir" 2>/dev/null); then
		echo "vm-integration: skipping $dir: not a package of $module" >&2
		continue
	fi
	name=${pkg#"$module"/}
	bin=$work/bin/${name//\//_}.test
	if ! go test -c -o "$bin" "$dir"; then
		echo "FAIL	$pkg [build failed]"
		failed=1
		continue
	fi
	if [[ -x $bin ]]; then # a package without test files builds no binary
		printf '%s %s %s\n' "$pkg" "$PWD/${dir#./}" "$bin" >>"$work/list"
	fi
done

# The guest side: run each binary in its package directory, summarise like go test.
cat >"$work/run.sh" <<'EOF'
#!/bin/sh
list=$1 results=$2
failed=0
while read -r pkg dir bin; do
	log=$results/$(basename "$bin" .test).log
	start=$(date +%s%N)
	# shellcheck disable=SC2086 # KUBEVS_VM_TEST_ARGS is split on purpose
	(cd "$dir" && exec "$bin" -test.timeout=20m ${KUBEVS_VM_TEST_ARGS-}) >"$log" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	t=$(printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)))
	if [ "$rc" = 0 ]; then
		case " ${KUBEVS_VM_TEST_ARGS-} " in *" -test.v "*) cat "$log" ;; esac
		printf 'ok  \t%s\t%s\n' "$pkg" "$t"
	else
		cat "$log"
		printf 'FAIL\t%s\t%s\n' "$pkg" "$t"
		failed=1
	fi
done <"$list"
exit $failed
EOF

if [[ ! -s $work/list ]]; then
	echo "vm-integration: no test binary to run" >&2
	exit "$((failed ? 1 : 0))"
fi

rc=0
"$work/kubevs-vm" run --timeout "${KUBEVS_VM_TIMEOUT:-30m}" --share "$results" \
	--env KUBEVS_IN_VM=1 --env KUBEVS_STRICT=1 --env "KUBEVS_RESULTS_DIR=$results" \
	--env "KUBEVS_VM_TEST_ARGS=${KUBEVS_VM_TEST_ARGS-}" \
	-- sh "$work/run.sh" "$work/list" "$results" || rc=$?
if ((rc == 0 && failed)); then
	rc=1
fi
exit "$rc"
