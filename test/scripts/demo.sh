#!/usr/bin/env bash
set -euo pipefail
echo "test/scripts/demo.sh: not written yet" >&2
exit 1
