#!/usr/bin/env bash
# User-space instructions per request of the server, counted by callgrind
# (repeatable, unlike timings): the server runs under valgrind, one client
# on one kept-alive connection sends N requests of a kind, and the count of
# a run with no requests of that kind (start-up, store creation, stop) is
# subtracted.
#
# Usage: [N=2000] scripts/callgrind-http.sh BIN   (e.g. target/release/tsstore)
set -euo pipefail
BIN="${1:?usage: scripts/callgrind-http.sh BIN}"
N="${N:-2000}"
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ADMIN=bench-admin-key-0123456789

# Instructions of one server run in which the client sends $2 requests of kind $1.
count() {
  local kind=$1 n=$2 out="$WORK/cg.$1.$2"
  rm -rf "$WORK/data"
  TSSTORE_ADMIN_KEY=$ADMIN TSSTORE_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN" serve --host 127.0.0.1 --port 0 --no-socket --path "$WORK/data" >"$WORK/stdout" 2>"$WORK/stderr" &
  local pid=$!
  for _ in $(seq 300); do grep -q listening "$WORK/stdout" 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(sed -n 's/^listening on http:\/\/127.0.0.1://p' "$WORK/stdout")
  python3 - "$port" "$kind" "$n" "$ADMIN" <<'PY'
import http.client, json, sys
port, kind, n, admin = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def req(method, path, body=None, headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read()
    assert r.status < 300, (r.status, data)
    return data
key = json.loads(req("POST", "/api/stores", json.dumps({"name": "b", "num_blocks": 4096}),
                     {"X-Admin-Key": admin, "Content-Type": "application/json"}))["api_key"]
h = {"X-API-Key": key, "Content-Type": "application/json"}
rec = json.dumps({"data": {"temperature": 21.5, "humidity": 40, "room": "lab"}})
for _ in range(20):
    req("POST", "/api/stores/b/data", rec, h)
for _ in range(n):
    if kind == "health": req("GET", "/health")
    elif kind == "post": req("POST", "/api/stores/b/data", rec, h)
    elif kind == "newest": req("GET", "/api/stores/b/data/newest?limit=10", None, h)
PY
  kill -TERM "$pid"; wait "$pid" || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$out"
}

printf '%-8s %14s\n' kind "instr/request"
for kind in health post newest; do
  base=$(count "$kind" 0)
  total=$(count "$kind" "$N")
  printf '%-8s %14.0f\n' "$kind" "$(echo "($total - $base) / $N" | bc -l)"
done
