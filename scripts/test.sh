#!/usr/bin/env bash
# Runs every test of the workspace; installs what the tests need first.
# This is the test command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
