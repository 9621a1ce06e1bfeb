#!/usr/bin/env bash
# REST batch ingest into a store with three rollups (1m, 1h, 1d) against
# one without, on the same release server, alternating rounds: wrk posts
# batches of 1 000 records stamped by the server. Prints records/s of
# each run with the server's CPU per record (read from every thread's
# ticks around the run; `job` is the rollups' background threads,
# `tsstore-bg-*`), then each rollup's progress (written_to, error).
#
# Usage: [BIN=path] [SECS=n] scripts/bench-rollups-http.sh
# BIN defaults to target/release/tsstore (cargo build --release first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/tsstore}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
WORK=$(mktemp -d); trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
ADMIN=bench-admin-key-0123456789
TSSTORE_ADMIN_KEY=$ADMIN TSSTORE_LOG=warn "$BIN" serve --host 127.0.0.1 --port 0 --no-socket --path "$WORK/data" >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^listening on //p' "$WORK/out")
mk() { curl -s -X POST "$URL/api/stores" -H "X-Admin-Key: $ADMIN" -H 'Content-Type: application/json' -d "$1" | sed 's/.*"api_key":"\([^"]*\)".*/\1/'; }
P=$(mk '{"name":"plain","num_blocks":16384,"rollups":[]}')
R=$(mk '{"name":"rolled","num_blocks":16384,"rollups":[{"window":"1m"},{"window":"1h"},{"window":"1d"}]}')
python3 -c '
import json; print(json.dumps([{"data": {"temperature": 20 + i % 10, "humidity": 40 + i % 7, "room": "lab"}} for i in range(1000)]))' > "$WORK/batch.json"
for s in plain rolled; do
  key=$P; [ $s = rolled ] && key=$R
  cat > "$WORK/$s.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$key"
local f = io.open("$WORK/batch.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
done
# Each thread's CPU ticks (1/100 s): id, name, ticks.
ticks() { for t in /proc/$PID/task/*; do echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
SECS=${SECS:-8}
for round in 1 2 3; do
  for s in plain rolled; do
    ticks > "$WORK/before"
    rps=$(wrk -t2 -c8 -d${SECS}s -s "$WORK/$s.lua" "$URL/api/stores/$s/data/batch" | awk '/Requests\/sec/ {print $2}')
    ticks > "$WORK/after"
    cpu=$(join "$WORK/before" "$WORK/after" | awk -v rps="$rps" -v secs="$SECS" '
      { d = $5 - $3; all += d; if ($2 ~ /^tsstore-bg/) job += d }
      END { n = rps * 1000 * secs; printf "server %.0f ns/record, job %.0f", all * 1e7 / n, job * 1e7 / n }')
    echo "round $round $s: $(echo "$rps * 1000" | bc -l | cut -d. -f1) records/s ($cpu)"
  done
done
curl -s "$URL/api/stores/rolled/rollups" -H "X-API-Key: $R" | python3 -c 'import json,sys; print([(r["window"], r["written_to"], r.get("error")) for r in json.load(sys.stdin)["rollups"]])'
