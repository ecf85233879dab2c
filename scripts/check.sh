#!/usr/bin/env bash
# Everything CI checks, in CI's order: formatting, lints, layering, then every test.
# `.ci/run` installs system packages on a fresh machine and then runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "== cargo fmt";    cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== layering";     scripts/check-layering.sh
echo "== cargo test";   cargo test --workspace --locked
