#!/usr/bin/env python3
"""A release binary's smoke test, for builds this machine cannot run
natively: an ARM binary runs under qemu-user (`--qemu qemu-aarch64-static`).

It starts the server with its defaults (only the port is ephemeral and the
socket lives in the test's directory, so runs do not collide), creates a raw
and a compressed store, writes to each through single REST inserts, batches
and the Unix socket, reads every record back, SIGKILLs the server, starts it
again on the same directory and reads back the same records. Any difference,
error or timeout exits non-zero with what went wrong. Prints each phase's
time (emulated timings are for catching regressions, not for claims).

Usage: scripts/smoke.py BINARY [--qemu PROGRAM] [--records N]
Only Python's standard library; bounded in time (every wait has a deadline).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ADMIN_KEY = "smoke-admin-key-of-20-chars-or-more"
START_TIMEOUT = 60.0
IO_TIMEOUT = 60.0


class Failure(Exception):
    pass


def check(ok, what):
    if not ok:
        raise Failure(what)


class Server:
    """One `tsstore serve` in `workdir` (its default data path, ./data)."""

    def __init__(self, command, workdir):
        self.command = command
        self.workdir = workdir
        self.sock_path = os.path.join(workdir, "tsstore.sock")
        self.proc = None
        self.port = None
        self.log = open(os.path.join(workdir, "server.log"), "ab")

    def start(self):
        args = self.command + [
            "serve", "--host", "127.0.0.1", "--port", "0",
            "--socket", self.sock_path,
        ]
        env = dict(os.environ, TSSTORE_ADMIN_KEY=ADMIN_KEY)
        self.proc = subprocess.Popen(
            args, cwd=self.workdir, env=env,
            stdout=subprocess.PIPE, stderr=self.log,
        )
        found = {}

        def read_banner():
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").strip()
                if line.startswith("listening on "):
                    found["port"] = int(line.rsplit(":", 1)[1])
                if line.startswith("unix socket on "):
                    found["socket"] = True
                if "port" in found and "socket" in found:
                    return

        reader = threading.Thread(target=read_banner, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if "port" not in found or "socket" not in found:
            self.kill()
            raise Failure(f"the server did not start in {START_TIMEOUT:.0f} s; see {self.log.name}")
        self.port = found["port"]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=START_TIMEOUT)

    def request(self, method, path, body=None, headers=None, expect=200):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        check(resp.status == expect,
              f"{method} {path}: {resp.status}, wanted {expect}: {data[:300]!r}")
        return json.loads(data) if data else None


def reading(i):
    # Slowly moving floats, a counter and a repeated string: what a
    # gateway's sensor sends, and what the compressed encoding splits
    # into columns.
    return {"temp": round(20 + (i % 97) * 0.1, 1), "hum": 40 + i % 7,
            "n": i, "site": "north" if i % 3 else "south"}


def write_all(server, name, key, count, t0):
    """Writes `count` readings: a few single inserts, then batches, then
    the socket. Returns [(timestamp, data)] as acknowledged."""
    auth = {"X-API-Key": key, "Content-Type": "application/json"}
    written = []
    singles = min(20, count // 10)
    for i in range(singles):
        ts = t0 + i * 1_000_000_000
        server.request("POST", f"/api/stores/{name}/data",
                       json.dumps({"timestamp": ts, "data": reading(i)}), auth, expect=201)
        written.append((ts, reading(i)))
    socket_lines = min(500, count // 5)
    batched = count - singles - socket_lines
    i = singles
    while i < singles + batched:
        chunk = []
        for j in range(i, min(i + 500, singles + batched)):
            chunk.append({"timestamp": t0 + j * 1_000_000_000, "data": reading(j)})
        server.request("POST", f"/api/stores/{name}/data/batch", json.dumps(chunk), auth,
                       expect=201)
        written += [(r["timestamp"], r["data"]) for r in chunk]
        i += len(chunk)
    # The socket stores at "now", after every timestamp above.
    lines = [json.dumps(reading(j)) for j in range(i, i + socket_lines)]
    replies = socket_session(server.sock_path, name, key, lines)
    for line, reply in zip(lines, replies):
        check(reply.startswith("OK "), f"socket: {reply!r} for {line}")
        written.append((int(reply.split()[1]), json.loads(line)))
    return written


def socket_session(path, name, key, lines):
    """AUTH, every line at once (pipelined), QUIT; the replies to the lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.connect(path)
    payload = f"AUTH {name} {key}\n" + "".join(l + "\n" for l in lines) + "QUIT\n"
    s.sendall(payload.encode())
    got = b""
    while got.count(b"\n") < len(lines) + 2:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    replies = got.decode().splitlines()
    check(len(replies) == len(lines) + 2, f"socket: {len(replies)} replies to {len(lines) + 2} lines")
    check(replies[0] == "OK", f"socket AUTH: {replies[0]!r}")
    check(replies[-1] == "OK bye", f"socket QUIT: {replies[-1]!r}")
    return replies[1:-1]


def read_all(server, name, key):
    body = server.request(
        "GET", f"/api/stores/{name}/data/range?start_time=0&include_data=true&limit=100000",
        headers={"X-API-Key": key})
    records = body.get("objects", body.get("records"))
    check(isinstance(records, list), f"range of {name}: no list of records in {str(body)[:200]}")
    return [(r["timestamp"], r["data"]) for r in records]


def wait_for_frames(server, name, key):
    """Until the compressed store has framed records (its background
    work, which the reads and the crash below must then go through)."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        stats = server.request("GET", f"/api/stores/{name}/stats", headers={"X-API-Key": key})
        if (stats.get("compression") or {}).get("frames", 0) > 0:
            return
        check(time.monotonic() < deadline, f"{name}: no frame in {IO_TIMEOUT:.0f} s: {stats}")
        time.sleep(0.1)


def phase(timings, what, started):
    took = time.monotonic() - started
    timings.append((what, took))
    print(f"  {what}: {took:.2f} s", flush=True)


def run(command, count):
    workdir = tempfile.mkdtemp(prefix="tsstore-smoke-")
    server = Server(command, workdir)
    timings = []
    try:
        t = time.monotonic()
        server.start()
        phase(timings, "start", t)
        admin = {"X-Admin-Key": ADMIN_KEY, "Content-Type": "application/json"}
        keys = {}
        t = time.monotonic()
        for name, extra in (("raw", {}), ("packed", {"encoding": "compressed"})):
            made = server.request("POST", "/api/stores",
                                  json.dumps(dict(name=name, num_blocks=1024, **extra)),
                                  admin, expect=201)
            keys[name] = made["api_key"]
        phase(timings, "create two stores", t)
        t0 = time.time_ns() - 86_400 * 1_000_000_000
        written = {}
        t = time.monotonic()
        for name, key in keys.items():
            written[name] = write_all(server, name, key, count, t0)
        phase(timings, f"write {count} readings to each", t)
        t = time.monotonic()
        wait_for_frames(server, "packed", keys["packed"])
        phase(timings, "first compressed frames", t)
        t = time.monotonic()
        read_back_all(server, keys, written, "")
        phase(timings, "read back", t)
        server.kill()
        t = time.monotonic()
        server.start()
        phase(timings, "restart after SIGKILL", t)
        t = time.monotonic()
        read_back_all(server, keys, written, " after SIGKILL")
        health = server.request("GET", "/health")
        check(health.get("status") == "ok", f"health: {health}")
        phase(timings, "read back after restart", t)
        server.kill()
    except Failure:
        server.kill()
        sys.stderr.write(tail(os.path.join(workdir, "server.log")))
        raise
    finally:
        server.log.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return timings


def read_back_all(server, keys, written, when):
    """Every store reads back exactly what was written to it."""
    for name, key in keys.items():
        got = read_all(server, name, key)
        wanted = written[name]
        check(got == wanted,
              f"{name}{when}: read back {len(got)} records, wrote {len(wanted)}; "
              f"first difference at {first_difference(got, wanted)}")


def first_difference(got, wanted):
    for i, (a, b) in enumerate(zip(got, wanted)):
        if a != b:
            return f"#{i}: {a} != {b}"
    return f"#{min(len(got), len(wanted))} (one list ends)"


def tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("--qemu", help="run the binary under this emulator (qemu-aarch64-static)")
    p.add_argument("--records", type=int, default=20000, help="readings written to each store")
    a = p.parse_args()
    command = ([a.qemu] if a.qemu else []) + [os.path.abspath(a.binary)]
    label = os.path.basename(a.binary) + (f" under {a.qemu}" if a.qemu else "")
    print(f"smoke test of {label}", flush=True)
    started = time.monotonic()
    try:
        run(command, a.records)
    except (Failure, OSError, subprocess.SubprocessError) as e:
        print(f"FAILED: {label}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {label} in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
