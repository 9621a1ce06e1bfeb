#!/usr/bin/env bash
# Where the CPU of REST batch ingest goes, per thread: one wrk run (8
# connections, batches of 1 000 readings stamped by the server) into a
# store with three rollups (1m, 1h, 1d), or with ROLLUPS='[]' none. Prints
# requests/s, each busy thread's CPU ticks (1/100 s), and the server's CPU
# per record. The rollups' job runs on the `tsstore-bg-*` threads.
#
# Usage: [BIN=path] [SECS=n] [ROLLUPS=json] scripts/bench-rollups-cpu.sh
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
THREE='[{"window":"1m"},{"window":"1h"},{"window":"1d"}]'
KEY=$(curl -s -X POST "$URL/api/stores" -H "X-Admin-Key: $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"s\",\"num_blocks\":16384,\"rollups\":${ROLLUPS:-$THREE}}" | sed 's/.*"api_key":"\([^"]*\)".*/\1/')
python3 -c '
import json; print(json.dumps([{"data": {"temperature": 20 + i % 10, "humidity": 40 + i % 7, "room": "lab"}} for i in range(1000)]))' > "$WORK/batch.json"
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
local f = io.open("$WORK/batch.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
ticks() { for t in /proc/$PID/task/*; do echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done | sort; }
ticks > "$WORK/before"
SECS=${SECS:-5}
RPS=$(wrk -t2 -c8 -d"${SECS}s" -s "$WORK/post.lua" "$URL/api/stores/s/data/batch" | awk '/Requests\/sec/ {print $2}')
ticks > "$WORK/after"
echo "requests/s: $RPS"
join "$WORK/before" "$WORK/after" | awk -v rps="$RPS" -v secs="$SECS" '
  { d = $5 - $3; if (d > 0) { print "  " $2 ": " d " ticks"; total += d } }
  END { printf "server CPU per record: %.0f ns\n", total * 1e7 / (rps * 1000 * secs) }'
