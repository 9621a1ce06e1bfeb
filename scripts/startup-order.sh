#!/usr/bin/env bash
# Remakes crates/tsstore-server/link/startup-order.txt: the functions of
# the server binary that run from its start until it is idle, which the
# release link lays out together (crates/tsstore-server/build.rs says why).
# Run it after changes to start-up (new subsystems, new crates) and compare
# the idle RSS in docs/BENCHMARKS.md.
#
# It builds the release binary with symbols, starts it under callgrind as
# README's start command does (embedded defaults, in a scratch directory),
# waits until it listens and has been idle for a few seconds (its periodic
# tasks ran), dumps the profile and keeps the names of the functions that
# ran. Then it rebuilds the stripped binary.
#
# Usage: scripts/startup-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
LIST=crates/tsstore-server/link/startup-order.txt
WORK="$(mktemp -d)"
PID=
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
TSSTORE_KEEP_SYMBOLS=1 cargo build --release -p tsstore-server --bin tsstore
(cd "$WORK" && TSSTORE_ADMIN_KEY=startup-order-key-0123456789 exec valgrind --tool=callgrind \
  --demangle=no --callgrind-out-file="$WORK/cg.out" "$OLDPWD/target/release/tsstore" \
  serve --host 127.0.0.1 --port 0 --path "$WORK/data" >"$WORK/out" 2>"$WORK/err") &
PID=$!
for _ in $(seq 600); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.2; done
grep -q listening "$WORK/out" || { cat "$WORK/err"; exit 1; }
# Idle: the sweeper, the trim and the incident ticks have run once.
sleep 12
callgrind_control -d "$PID" >/dev/null
for _ in $(seq 300); do [ -s "$WORK/cg.out.1" ] && break; sleep 0.2; done
python3 - "$WORK/cg.out.1" "$LIST" <<'PY'
import re, sys
objects, names, ran, current = {}, {}, [], None
# callgrind's name compression: "(id) name" defines an id, "(id)" reuses it.
pattern = re.compile(r'^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$')
for line in open(sys.argv[1], errors='replace'):
    m = pattern.match(line.rstrip('\n'))
    if not m:
        continue
    kind, ident, name = m.groups()
    table = objects if kind.endswith('ob') else names
    if name:
        table[ident] = name
    if kind == 'ob':
        current = objects.get(ident, '')
    elif kind == 'fn' and current.endswith('/tsstore'):
        ran.append(ident)
order = list(dict.fromkeys(names[i] for i in ran if i in names))
if len(order) < 100:
    sys.exit(f'only {len(order)} functions found: is the binary stripped?')
with open(sys.argv[2], 'w') as f:
    f.write('\n'.join(order) + '\n')
print(f'{sys.argv[2]}: {len(order)} functions')
PY
cargo build --release -p tsstore-server --bin tsstore
