#!/usr/bin/env bash
# Builds the server for a gateway: an optimised binary (the `gateway`
# profile of Cargo.toml), statically linked against musl and stripped,
# into dist/tsstore-<target>. One file that runs
# on any Linux of that architecture, whatever C library the image has
# (Raspberry Pi OS, Alpine, OpenWrt, a scratch container).
#
# Usage: scripts/cross.sh <target>
#        scripts/cross.sh <target> test [cargo test arguments]
#   aarch64-unknown-linux-musl       64-bit ARM (Raspberry Pi 3/4/5, most gateways)
#   armv7-unknown-linux-musleabihf   32-bit ARM images (Pi 2 on, 32-bit OS)
#   x86_64-unknown-linux-musl        x86_64 (industrial PCs, the container's amd64)
# With `test`, it builds the given tests for the target instead and runs
# them under qemu-user (Debian's qemu-user-static, installed if missing).
#
# What it installs when missing: the target's Rust standard library
# (rustup), and zig as the C compiler and linker through cargo-zigbuild
# (PyPI; it brings the `ziglang` package). zig ships musl's headers and C
# runtime for every target, so one package cross-compiles the C in the
# tree (zstd, ring) for all three; Debian's cross compilers target glibc
# only and would need a musl tool chain built beside each.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-}
mode=${2:-build}
case "$target" in
  aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf | x86_64-unknown-linux-musl) ;;
  *)
    echo "usage: scripts/cross.sh <target>, where <target> is one of" >&2
    echo "  aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf x86_64-unknown-linux-musl" >&2
    exit 2
    ;;
esac
case "$mode" in
  build | test) ;;
  *) echo "scripts/cross.sh: '$mode' is not a mode; give none (build) or 'test'" >&2; exit 2 ;;
esac

if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check \
    "cargo-zigbuild==0.24.1" "ziglang==0.17.1"
  # pyenv installs put commands on PATH through shims made by a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# The target's standard library, prebuilt by the Rust project. Where the
# distribution server has none for it (a mirror that carries only some
# targets), std is built from the toolchain's own source instead: the same
# version, through cargo's -Zbuild-std, which a stable toolchain allows
# under RUSTC_BOOTSTRAP=1. Such a std has no C runtime objects of its own
# (crt1.o, libc.a, libunwind.a come with the prebuilt one): zig's are
# linked instead.
build_std=()
env_target=$(echo "$target" | tr 'a-z-' 'A-Z_')
if ! rustup target list --installed | grep -qx "$target"; then
  if ! rustup target add "$target" >/dev/null 2>&1; then
    echo "no prebuilt standard library for $target here: building it from source" >&2
    rustup component add rust-src >/dev/null
    build_std=(-Zbuild-std=std,panic_unwind)
    export RUSTC_BOOTSTRAP=1
    export "CARGO_TARGET_${env_target}_RUSTFLAGS=-C link-self-contained=no"
  fi
fi

if [ "$mode" = test ]; then
  case "$target" in
    aarch64-*) qemu=qemu-aarch64-static ;;
    armv7-*) qemu=qemu-arm-static ;;
    x86_64-*) qemu= ;;
  esac
  if [ -n "$qemu" ] && ! command -v "$qemu" >/dev/null 2>&1; then
    apt-get install -y qemu-user-static >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y qemu-user-static >/dev/null; }
  fi
  [ -z "$qemu" ] || export "CARGO_TARGET_${env_target}_RUNNER=$qemu"
  build_std=("${build_std[@]/%panic_unwind/panic_unwind,test}")
  cargo-zigbuild test --locked --target "$target" "${build_std[@]}" "${@:3}"
  exit
fi

# The gateway profile: release, with the server crate sized for flash
# (Cargo.toml says what it costs).
cargo zigbuild --profile gateway --locked -p tsstore-server --bin tsstore \
  --target "$target" "${build_std[@]}"

mkdir -p dist
out="dist/tsstore-$target"
cp "${CARGO_TARGET_DIR:-target}/$target/gateway/tsstore" "$out"
(cd dist && sha256sum "tsstore-$target" >"tsstore-$target.sha256")
echo "$out: $(stat -c %s "$out") bytes"
