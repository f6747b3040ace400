#!/usr/bin/env bash
# Clone the committed state of this repository next to ../shared and run CI there, as CI does.
# Usage: tools/fresh_clone_check.sh [WORKDIR]   (default: a new folder under /tmp)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d /tmp/selectsearch-ci-XXXX)}"
mkdir -p "$work"
git clone -q "$repo" "$work/main"
ln -sfn "$(cd "$repo/../shared" && pwd)" "$work/shared"
cd "$work/main"
time .ci/run
