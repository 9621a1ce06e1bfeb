#!/usr/bin/env python3
"""Two server builds side by side: Unix-socket ingest, pipelined.

Starts each binary in turn (alternating, `--rounds` times, so machine
noise falls on both alike) with a fresh data directory, creates a json
store, and sends `--records` small JSON lines over the Unix socket in one
pipelined stream (AUTH first) while a reader drains the one reply per
line. Prints records/s per run and the median ratio of the second build
to the first. Python 3, stdlib only, Linux.

    python3 bench/compare_builds.py OLD_BINARY NEW_BINARY [--records N] [--rounds R]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

ADMIN = "compare-admin-key-0123456789"


def start(binary, work):
    sock = os.path.join(work, "s.sock")
    env = dict(os.environ, TSSTORE_ADMIN_KEY=ADMIN, TSSTORE_LOG="warn", TSSTORE_SYNC="never")
    proc = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", "0", "--socket", sock,
         "--path", os.path.join(work, "data")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            url = line.split("listening on ", 1)[1].strip()
    if url is None:
        proc.kill()
        raise SystemExit(f"{binary}: did not start")
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc, url, sock


def create_store(url):
    body = json.dumps({"name": "b", "num_blocks": 16384, "data_block_size": 4096}).encode()
    req = urllib.request.Request(f"{url}/api/stores", data=body, method="POST", headers={
        "X-Admin-Key": ADMIN, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["api_key"]


def run_once(binary, records):
    with tempfile.TemporaryDirectory() as work:
        proc, url, sock = start(binary, work)
        try:
            key = create_store(url)
            payload = b"".join(b'{"temp":%d.5,"hum":%d,"site":"roof"}\n' % (i % 40, i % 100)
                               for i in range(records))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            replies = [0]
            errors = [0]

            def drain():
                want = records + 1  # the AUTH line's OK too
                while replies[0] < want:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    replies[0] += chunk.count(b"\n")
                    errors[0] += chunk.count(b"ERROR")

            reader = threading.Thread(target=drain)
            reader.start()
            t0 = time.perf_counter()
            s.sendall(f"AUTH b {key}\n".encode() + payload)
            reader.join(timeout=300)
            elapsed = time.perf_counter() - t0
            s.close()
            if errors[0] or replies[0] < records + 1:
                raise SystemExit(f"{binary}: {errors[0]} errors, {replies[0]} replies")
            return records / elapsed
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rates = {a.old: [], a.new: []}
    for _ in range(a.rounds):
        for b in (a.old, a.new):
            r = run_once(b, a.records)
            rates[b].append(r)
            print(f"{b}: {r:,.0f} records/s", flush=True)
    old, new = statistics.median(rates[a.old]), statistics.median(rates[a.new])
    print(f"median: old {old:,.0f}, new {new:,.0f} records/s; new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
