#!/usr/bin/env bash
# Initial sync of N documents (default 1000) with automerge-repo 2.5.6 on loopback.
# Usage: ./run.sh [N] [sync.mjs options, e.g. --concurrency 256]
# Prints one JSON line on stdout; npm's and the bench's progress go to stderr.
set -euo pipefail
cd "$(dirname "$0")"
docs="${1:-1000}"
shift || true
npm ci --no-audit --no-fund >&2
node sync.mjs --docs "$docs" "$@"
