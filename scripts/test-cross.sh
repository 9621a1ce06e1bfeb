#!/usr/bin/env bash
# The gateway builds, checked the way CI can without ARM hardware: the
# static musl binaries for 64-bit and 32-bit ARM (scripts/cross.sh), each
# within the size budget, each run under qemu-user through the smoke test
# (scripts/smoke.py: REST, batch and Unix socket into a raw and a
# compressed store, read back, SIGKILL, restart, read back the same), and
# a subset of the engine's tests built for the target and run under qemu:
# its unit tests, reading the Go original's files, the byte layout, and
# corruption found on reads. 32-bit ARM is where a `usize` of 32 bits or
# an unaligned or 64-bit atomic access would break; aarch64 runs the
# checksum's ARM instructions.
#
# Usage: scripts/test-cross.sh [target...]   (default: both ARM targets)
# Called by scripts/test.sh; prints each step's time for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# The most bytes a gateway binary may take (flash is small; issue 36).
MAX_BYTES=8000000

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)

if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v qemu-arm-static >/dev/null 2>&1; then
  apt-get install -y qemu-user-static >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y qemu-user-static >/dev/null; }
fi

step() {
  local what=$1 started=$SECONDS
  shift
  "$@"
  echo "cross: $what: $((SECONDS - started)) s" >&2
}

for target in "${targets[@]}"; do
  case "$target" in
    aarch64-*) qemu=qemu-aarch64-static ;;
    armv7-*) qemu=qemu-arm-static ;;
    *) qemu= ;;
  esac
  step "$target gateway build" scripts/cross.sh "$target" >/dev/null
  bin="dist/tsstore-$target"
  file -b "$bin" | grep -q "statically linked" \
    || { echo "$bin is not statically linked: $(file -b "$bin")" >&2; exit 1; }
  size=$(stat -c %s "$bin")
  echo "cross: $bin: $size bytes (budget $MAX_BYTES)"
  [ "$size" -le "$MAX_BYTES" ] || { echo "$bin is over the size budget" >&2; exit 1; }
  step "$target smoke test" python3 scripts/smoke.py "$bin" ${qemu:+--qemu "$qemu"}
  step "$target engine tests" scripts/cross.sh "$target" test -p tsstore \
    --lib --test go_compat --test layout --test corruption
done
