#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test of every crate.
# Run from anywhere: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

# One feature selection (--all-features) for lint and test, so the two
# steps share compiled dependencies instead of building them twice.
step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test"
cargo test --workspace --all-features --locked
