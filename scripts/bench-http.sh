#!/usr/bin/env bash
# HTTP benchmark of the release server with wrk on loopback, load
# generator and server on the same machine. Prints requests/s for:
#   GET /health (baseline: the HTTP stack alone), single-record POST,
#   GET newest?limit=10, GET range of 1000 records with data, and batch
#   POST of 1000 records;
# the ratio of each to the baseline, errors, server RSS idle and after,
# and the stripped binary size.
#
# Usage: [WORKERS=n] [BIN=path] scripts/bench-http.sh [seconds per run, default 10]
# WORKERS sets the server's worker_threads (default: one per core); BIN
# runs that binary instead of building target/release/tsstore with
# scripts/build-release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS=8
THREADS=2
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  # The deployable binary (statically linked), as people would run it.
  scripts/build-release.sh >/dev/null 2>&1
  BIN=target/release/tsstore
fi
WORK="$(mktemp -d)"
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
ADMIN=bench-admin-key-0123456789
echo "{\"server\": {${WORKERS:+\"worker_threads\": $WORKERS}}}" >"$WORK/config.json"

TSSTORE_ADMIN_KEY=$ADMIN TSSTORE_LOG=warn "$BIN" --config "$WORK/config.json" serve --host 127.0.0.1 --port 0 --no-socket \
  --path "$WORK/data" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/out")
[ -n "$URL" ] || { cat "$WORK/err"; exit 1; }
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }
RSS_IDLE=$(rss)

KEY=$(curl -s -X POST "$URL/api/stores" -H "X-Admin-Key: $ADMIN" -H 'Content-Type: application/json' \
  -d '{"name":"bench","num_blocks":16384,"data_block_size":4096}' | sed 's/.*"api_key":"\([^"]*\)".*/\1/')

cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
wrk.body = '{"data":{"temperature":21.5,"humidity":40,"room":"lab"}}'
EOF
cat >"$WORK/get.lua" <<EOF
wrk.headers["X-API-Key"] = "$KEY"
EOF
python3 - "$WORK/batch.json" <<'EOF'
import json, sys
recs = [{"data": {"temperature": 20 + i % 10, "humidity": 40 + i % 7, "room": "lab"}} for i in range(1000)]
open(sys.argv[1], "w").write(json.dumps(recs))
EOF
cat >"$WORK/batch.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
local f = io.open("$WORK/batch.json", "r")
wrk.body = f:read("*a")
f:close()
EOF

run() { # name, script, path
  local out
  if [ -n "$2" ]; then
    out=$(wrk -t$THREADS -c$CONNS -d"${DURATION}s" -s "$2" "$URL$3")
  else
    out=$(wrk -t$THREADS -c$CONNS -d"${DURATION}s" "$URL$3")
  fi
  local rps errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  errors=${errors:-0}
  local sockerr
  sockerr=$(echo "$out" | sed -n 's/.*Socket errors: //p')
  echo "$1 $rps ${errors} ${sockerr:-none}"
}

HEALTH=$(run health "" /health)
POST=$(run post "$WORK/post.lua" /api/stores/bench/data)
NEWEST=$(run newest "$WORK/get.lua" "/api/stores/bench/data/newest?limit=10")
RANGE=$(run range_1000 "$WORK/get.lua" "/api/stores/bench/data/range?limit=1000&include_data=true")
BATCH=$(run batch "$WORK/batch.lua" /api/stores/bench/data/batch)
RSS_AFTER=$(rss)
BASE=$(echo "$HEALTH" | awk '{print $2}')

printf '%-34s %12s %8s %s\n' "run (wrk -t$THREADS -c$CONNS -d${DURATION}s)" "req/s" "vs base" "non-2xx / socket errors"
for line in "$HEALTH" "$POST" "$NEWEST" "$RANGE" "$BATCH"; do
  set -- $line
  printf '%-34s %12s %7.2fx %s / %s\n' "$1" "$2" "$(echo "$2 / $BASE" | bc -l)" "$3" "${*:4}"
done
BATCH_RPS=$(echo "$BATCH" | awk '{print $2}')
printf 'batch records/s: %.0f\n' "$(echo "$BATCH_RPS * 1000" | bc -l)"
echo "server RSS idle: $RSS_IDLE; after the runs: $RSS_AFTER"
echo "binary (stripped release): $(stat -c %s "$BIN") bytes"
