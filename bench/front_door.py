#!/usr/bin/env python3
"""Front-door load/attack bench for tsstore.

Starts a tsstore server with default settings, creates a store, and runs
attack scenarios from 127.0.0.2 while a legitimate client on 127.0.0.1
measures /health and POST /api/stores/bench/data success and latency.
Prints one summary line per scenario; see bench/README.md.

Stdlib only. Linux only (binds 127.0.0.2, reads /proc/<pid>/status).

The attacker of each scenario runs in a child process (this same script
with --attack) so its Python CPU use does not skew the legitimate client's
latency through the GIL.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ADMIN_KEY = "bench-admin-key-0123456789"
LEGIT_ADDR = "127.0.0.1"
ATTACK_ADDR = "127.0.0.2"
SERVER_ADDR = "127.0.0.1"
ALL_SCENARIOS = ["baseline", "silent600", "slowloris", "h2preface", "authguess", "connflood"]
HOLDERS = 600               # connections the holding attackers try to keep
AUTH_WORKERS = 8            # concurrent key guessers
FLOOD_WORKERS = 8           # concurrent connect/close loops
RAMP = 2.0                  # seconds the attack runs before measuring starts
LEGIT_TIMEOUT = 2.0
LEGIT_PAUSE = 0.020
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\nX-a: "
# Linux: pick the source port at connect() time (4-tuple aware), so many
# short connections from one bound address do not exhaust ephemeral ports.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this script dies (even by SIGKILL)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def bound_socket(src, blocking=True):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    except OSError:
        pass
    s.bind((src, 0))
    s.setblocking(blocking)
    return s


# ---------------------------------------------------------------- HTTP client

def parse_response(raw):
    """(status, headers dict, body) of a raw HTTP/1.1 response, or None if incomplete."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = raw[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError("bad status line: %r" % head[0])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = raw[end + 4:]
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(body) < n:
            return None
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        return None  # read to EOF, then decode
    return int(parts[1]), headers, body


def dechunk(body):
    out, i = b"", 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return out
        n = int(body[i:j].split(b";")[0] or b"0", 16)
        if n == 0:
            return out
        out += body[j + 2:j + 2 + n]
        i = j + 2 + n + 2


def http_request(port, method, path, headers=None, body=b"", src=LEGIT_ADDR, timeout=LEGIT_TIMEOUT,
                 timing=None):
    """One request on a new connection with Connection: close.

    Returns (status, headers, body, seconds). Raises OSError/ValueError on
    failure; the whole exchange is bounded by `timeout`. If `timing` is a
    dict, its "connect" gets the seconds connect() took.
    """
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port, "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    req = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = bound_socket(src)
    try:
        s.settimeout(timeout)
        s.connect((SERVER_ADDR, port))
        if timing is not None:
            timing["connect"] = time.monotonic() - t0
        s.sendall(req)
        raw = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("response not complete within %.1fs" % timeout)
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
            parsed = parse_response(raw)
            if parsed is not None:
                break
        parsed = parse_response(raw)
        if parsed is None:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                raise ValueError("connection closed before a complete response (%d bytes)" % len(raw))
            status = int(raw[:end].split(b" ")[1])
            hdrs = {}
            for line in raw[:end].decode("latin-1").split("\r\n")[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            b = raw[end + 4:]
            if hdrs.get("transfer-encoding", "").lower() == "chunked":
                b = dechunk(b)
            parsed = (status, hdrs, b)
        return parsed[0], parsed[1], parsed[2], time.monotonic() - t0
    finally:
        s.close()


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---------------------------------------------------------------- server

class Server:
    def __init__(self, binary, tmpdir, config=None):
        self.binary = binary
        self.tmpdir = tmpdir
        self.config = config
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(tmpdir, "server.stderr")
        self.stdout_lines = []
        self._port_ready = threading.Event()

    def start(self, wait=30.0):
        cmd = [self.binary]
        if self.config:
            cmd += ["--config", self.config]
        cmd += ["serve", "--host", "127.0.0.1", "--port", "0", "--no-socket",
                "--path", os.path.join(self.tmpdir, "data")]
        env = dict(os.environ)
        env["TSSTORE_ADMIN_KEY"] = ADMIN_KEY
        env["TSSTORE_SYNC"] = "never"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, start_new_session=True,
                                     preexec_fn=die_with_parent)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._port_ready.wait(0.1):
                return self.port
            if self.proc.poll() is not None:
                break
        tail = self.log_tail()
        raise RuntimeError("server did not print 'listening on http://127.0.0.1:PORT' within %.0fs "
                           "(exit code %s); stderr tail:\n%s" % (wait, self.proc.poll(), tail))

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.decode(errors="replace").strip()
            self.stdout_lines.append(line)
            if self.port is None and line.startswith("listening on http://"):
                try:
                    self.port = int(line.rsplit(":", 1)[1].strip("/"))
                    self._port_ready.set()
                except ValueError:
                    pass

    def log_tail(self, n=20):
        try:
            with open(self.stderr_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def log_stats(self):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
            return data.count(b"\n"), len(data)
        except OSError:
            return 0, 0

    def rss_mb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError):
            pass
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def metrics(self, timeout=5.0):
        try:
            status, _, body, _ = http_request(self.port, "GET", "/metrics", timeout=timeout)
        except (OSError, ValueError):
            return None
        if status != 200:
            return None
        return body.decode(errors="replace")

    def metric(self, name, timeout=5.0):
        text = self.metrics(timeout)
        if text is None:
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                try:
                    return float(line.rsplit(" ", 1)[1])
                except ValueError:
                    return None
        return None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            except OSError:
                pass
        try:
            self._stderr.close()
        except Exception:
            pass


# ---------------------------------------------------------------- legitimate client

def legit_client(port, api_key, seconds):
    """GET /health and POST data in a loop, each on a new connection."""
    res = {"health": {"ok": 0, "fail": 0, "lat": [], "conn": [], "errors": {}},
           "post": {"ok": 0, "fail": 0, "lat": [], "conn": [], "errors": {}}}
    post_headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    post_body = b'{"data":{"temp":21.5}}'
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for kind, method, path, headers, body, want in (
                ("health", "GET", "/health", None, b"", 200),
                ("post", "POST", "/api/stores/bench/data", post_headers, post_body, 201)):
            r = res[kind]
            timing = {}
            try:
                status, _, _, dt = http_request(port, method, path, headers, body, timing=timing)
                if status == want:
                    r["ok"] += 1
                    r["lat"].append(dt * 1000.0)
                    r["conn"].append(timing["connect"] * 1000.0)
                    continue
                why = "HTTP %d" % status
            except socket.timeout:
                why = "timeout"
            except OSError as e:
                why = type(e).__name__ if not e.errno else os.strerror(e.errno)
            except ValueError as e:
                why = "bad response"
            r["fail"] += 1
            r["errors"][why] = r["errors"].get(why, 0) + 1
        time.sleep(LEGIT_PAUSE)
    out = {}
    for kind, r in res.items():
        n = r["ok"] + r["fail"]
        out[kind] = {
            "requests": n,
            "ok": r["ok"],
            "success_pct": (100.0 * r["ok"] / n) if n else None,
            "p50_ms": percentile(r["lat"], 50),
            "p99_ms": percentile(r["lat"], 99),
            "max_ms": max(r["lat"]) if r["lat"] else None,
            # connect() alone: a slow one means the kernel's accept queue
            # was full (SYN dropped, retried after 1 s), not a slow answer.
            "connect_p50_ms": percentile(r["conn"], 50),
            "connect_p99_ms": percentile(r["conn"], 99),
            "mean_ms": statistics.fmean(r["lat"]) if r["lat"] else None,
            "errors": r["errors"],
        }
    return out


# ---------------------------------------------------------------- attacker (child process)

class AttackStats:
    def __init__(self):
        self.held = 0
        self.max_held = 0
        self.connects = 0
        self.connect_fail = 0
        self.cut = 0            # established connections the server closed
        self.cut_how = {}       # how they were closed: eof, reset, HTTP status, data
        self.status = {}        # authguess: answers by status
        self.t401 = []          # authguess: monotonic times of 401s
        self.errors = {}

    def count(self, d, key):
        d[key] = d.get(key, 0) + 1


def classify(data):
    if data.startswith(b"HTTP/1."):
        parts = data.split(b" ", 2)
        return "HTTP %s" % parts[1].decode(errors="replace") if len(parts) > 1 else "HTTP ?"
    if len(data) >= 9 and data[3] in (0x04, 0x07):  # an HTTP/2 SETTINGS or GOAWAY frame
        return "h2 frames"
    return "data"


async def connect(loop, port, timeout=3.0):
    s = bound_socket(ATTACK_ADDR, blocking=False)
    try:
        await asyncio.wait_for(loop.sock_connect(s, (SERVER_ADDR, port)), timeout)
    except BaseException:
        s.close()
        raise
    return s


async def drain_until_closed(loop, s):
    """Reads until the server closes; how it ended ('eof', 'HTTP 503', ...)."""
    first = None
    while True:
        data = await loop.sock_recv(s, 4096)
        if not data:
            return first or "eof"
        if first is None:
            first = classify(data)


async def slow_send(loop, s):
    """Sends a never-ending request head one byte a second until cut."""
    i = 0
    while True:
        b = SLOW_HEAD[i:i + 1] if i < len(SLOW_HEAD) else b"b"
        i += 1
        await loop.sock_sendall(s, b)
        try:
            data = await asyncio.wait_for(loop.sock_recv(s, 4096), 1.0)
        except asyncio.TimeoutError:
            continue
        if not data:
            return "eof"
        how = classify(data)
        try:
            await asyncio.wait_for(drain_until_closed(loop, s), 5.0)
        except (asyncio.TimeoutError, OSError):
            pass
        return how


async def holder(loop, port, kind, st):
    backoff = 0.05
    while True:
        s = await connect_counted(loop, port, st, pause=backoff)
        if s is None:
            backoff = min(backoff * 2, 1.0)
            continue
        st.held += 1
        st.max_held = max(st.max_held, st.held)
        t0 = time.monotonic()
        try:
            if kind == "silent600":
                how = await drain_until_closed(loop, s)
            elif kind == "h2preface":
                await loop.sock_sendall(s, H2_PREFACE)
                how = await drain_until_closed(loop, s)
            else:
                how = await slow_send(loop, s)
        except ConnectionResetError:
            how = "reset"
        except OSError as e:
            how = "error " + (os.strerror(e.errno) if e.errno else type(e).__name__)
        finally:
            st.held -= 1
            s.close()
        st.cut += 1
        st.count(st.cut_how, how)
        # Refused at once: back off (up to 1 s) so 600 refused holders do
        # not turn into a connect flood; held a while: reconnect at once.
        if time.monotonic() - t0 < 1.0:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        else:
            backoff = 0.05


async def connect_counted(loop, port, st, pause=0.01):
    """A connection, or None once why not is counted (after `pause` s)."""
    try:
        s = await connect(loop, port)
    except (OSError, asyncio.TimeoutError) as e:
        st.connect_fail += 1
        st.count(st.errors, "connect: " + (type(e).__name__ if not getattr(e, "errno", None)
                                           else os.strerror(e.errno)))
        await asyncio.sleep(pause)
        return None
    st.connects += 1
    return s


async def guesser(loop, port, st):
    while True:
        key = "tsstore_" + str(uuid.uuid4())
        req = ("GET /api/stores/bench/stats HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "X-API-Key: %s\r\nConnection: close\r\n\r\n" % (port, key)).encode()
        s = await connect_counted(loop, port, st)
        if s is None:
            continue
        try:
            await loop.sock_sendall(s, req)
            raw = b""

            async def read_all():
                nonlocal raw
                while True:
                    d = await loop.sock_recv(s, 4096)
                    if not d:
                        return
                    raw += d
                    if parse_response(raw) is not None:
                        return
            await asyncio.wait_for(read_all(), 5.0)
            if raw.startswith(b"HTTP/1."):
                code = raw.split(b" ", 2)[1].decode(errors="replace")
            else:
                code = "no answer"
        except asyncio.TimeoutError:
            code = "timeout"
        except OSError as e:
            code = "error " + (os.strerror(e.errno) if e.errno else type(e).__name__)
        finally:
            s.close()
        st.count(st.status, code)
        if code == "401":
            st.t401.append(time.monotonic())


async def flooder(loop, port, st):
    while True:
        s = await connect_counted(loop, port, st)
        if s is None:
            continue
        s.close()
        # Yield so the event loop stays responsive even if connects never block.
        await asyncio.sleep(0)


async def attack_main(scenario, port, max_seconds):
    loop = asyncio.get_running_loop()
    st = AttackStats()
    stop = asyncio.Event()

    def wait_stdin():
        try:
            sys.stdin.readline()  # a line or EOF (parent gone) means stop
        except Exception:
            pass
        loop.call_soon_threadsafe(stop.set)
    threading.Thread(target=wait_stdin, daemon=True).start()

    tasks = []
    if scenario in ("silent600", "slowloris", "h2preface"):
        for i in range(HOLDERS):
            tasks.append(asyncio.create_task(holder(loop, port, scenario, st)))
            if i % 50 == 49:
                await asyncio.sleep(0.01)  # spread the initial connects a little
    elif scenario == "authguess":
        tasks = [asyncio.create_task(guesser(loop, port, st)) for _ in range(AUTH_WORKERS)]
    elif scenario == "connflood":
        tasks = [asyncio.create_task(flooder(loop, port, st)) for _ in range(FLOOD_WORKERS)]
    else:
        raise SystemExit("unknown attack %r" % scenario)
    t_start = time.monotonic()
    try:
        await asyncio.wait_for(stop.wait(), max_seconds)
    except asyncio.TimeoutError:
        pass
    t_end = time.monotonic()
    held_end = st.held
    # Snapshot now: tasks keep counting while they are being cancelled.
    status, t401 = dict(st.status), list(st.t401)
    result = {
        "scenario": scenario,
        "seconds": t_end - t_start,
        "held_end": held_end,
        "max_held": st.max_held,
        "connects": st.connects,
        "connect_fail": st.connect_fail,
        "cut": st.cut,
        "cut_how": dict(st.cut_how),
        "errors": dict(st.errors),
    }
    if scenario == "authguess":
        dur = max(t_end - t_start, 1e-9)
        tail_start = t_start + min(RAMP, dur / 2)
        tail = [t for t in t401 if t >= tail_start]
        result.update({
            "status": status,
            "n401": status.get("401", 0),
            "n429": status.get("429", 0),
            "other": sum(v for k, v in status.items() if k not in ("401", "429")),
            "keys_per_s": status.get("401", 0) / dur,
            "keys_per_s_sustained": len(tail) / max(t_end - tail_start, 1e-9),
            "requests_per_s": sum(status.values()) / dur,
        })
    if scenario == "connflood":
        result["connects_per_s"] = st.connects / max(t_end - t_start, 1e-9)
    # Python < 3.12's wait_for can swallow a cancellation that races with
    # its inner future completing, so cancel again until all are done.
    pending = set(tasks)
    for _ in range(10):
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
        if not pending:
            break
    result["stuck_tasks"] = len(pending)
    return result


def run_attacker(scenario, port, max_seconds, nice):
    raise_nofile()
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us via stdin
    loop = asyncio.new_event_loop()
    result = loop.run_until_complete(attack_main(scenario, port, max_seconds))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Leave without waiting on any task still stuck; the kernel closes the sockets.
    os._exit(0)


# ---------------------------------------------------------------- scenarios

def wait_quiet(server, limit=5, wait=30.0):
    """Waits until tsstore_connections_open < limit; the last value seen."""
    deadline = time.monotonic() + wait
    value = None
    while time.monotonic() < deadline:
        value = server.metric("tsstore_connections_open", timeout=2.0)
        if value is not None and value < limit:
            return value
        time.sleep(0.25)
    return value


def run_scenario(server, api_key, scenario, seconds, nice, settle):
    rss_start = server.rss_mb()
    log_lines0, log_bytes0 = server.log_stats()
    attacker = None
    attack = None
    try:
        if scenario != "baseline":
            attacker = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--attack", scenario,
                 "--port", str(server.port), "--seconds", str(seconds + RAMP + 30),
                 "--attacker-nice", str(nice)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent)
            time.sleep(RAMP)
        legit = legit_client(server.port, api_key, seconds)
        open_end = server.metric("tsstore_connections_open", timeout=2.0)
        rss_end = server.rss_mb()
        if attacker is not None:
            try:
                out, _ = attacker.communicate(b"stop\n", timeout=30)
                line = out.decode(errors="replace").strip().splitlines()
                attack = json.loads(line[-1]) if line else {"error": "no output (exit %s)" % attacker.returncode}
            except subprocess.TimeoutExpired:
                attacker.kill()
                attacker.wait()
                attack = {"error": "attacker did not stop; killed"}
            except (ValueError, IndexError) as e:
                attack = {"error": "bad attacker output: %s" % e}
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()
    open_after = wait_quiet(server)
    # The server gives the heap a burst grew back to the OS once it has
    # been quiet for a while (serve::trim_when_idle, every 10 s).
    time.sleep(settle)
    rss_idle = server.rss_mb()
    log_lines1, log_bytes1 = server.log_stats()
    return {
        "scenario": scenario,
        "seconds": seconds,
        "legit": legit,
        "attack": attack,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_idle_after_mb": rss_idle,
        "server_connections_open_end": open_end,
        "server_connections_open_after": open_after,
        "log_lines": log_lines1 - log_lines0,
        "log_bytes": log_bytes1 - log_bytes0,
        "server_alive": server.alive(),
    }


def fmt(v, spec="%.1f", none="-"):
    return none if v is None else spec % v


def summary_line(r):
    parts = ["%-10s" % r["scenario"]]
    for kind in ("health", "post"):
        l = r["legit"][kind]
        parts.append("%s %s%% p50 %s p99 %s ms (n=%d)" % (
            kind, fmt(l["success_pct"]), fmt(l["p50_ms"]), fmt(l["p99_ms"]), l["requests"]))
    a = r["attack"]
    if a is None:
        parts.append("attacker: none")
    elif "error" in a:
        parts.append("attacker: " + a["error"])
    elif r["scenario"] == "authguess":
        parts.append("attacker: %.1f keys/s (sustained %.1f) 401=%d 429=%d other=%d, %.0f req/s" % (
            a["keys_per_s"], a["keys_per_s_sustained"], a["n401"], a["n429"], a["other"],
            a["requests_per_s"]))
    elif r["scenario"] == "connflood":
        parts.append("attacker: %d connects (%.0f/s) fail %d" % (
            a["connects"], a["connects_per_s"], a["connect_fail"]))
    else:
        parts.append("attacker: held %d at end (max %d), %d reconnects, %d connect fails" % (
            a["held_end"], a["max_held"], a["cut"], a["connect_fail"]))
    parts.append("server open %s" % fmt(r["server_connections_open_end"], "%d"))
    parts.append("rss %s -> %s MB (idle after %s)" % (
        fmt(r["rss_start_mb"]), fmt(r["rss_end_mb"]), fmt(r["rss_idle_after_mb"])))
    parts.append("log +%d lines" % r["log_lines"])
    if not r["server_alive"]:
        parts.append("SERVER DIED")
    return " | ".join(parts)


def detail_lines(r):
    out = []
    for kind in ("health", "post"):
        l = r["legit"][kind]
        if l["errors"]:
            out.append("    %s failures: %s" % (kind, l["errors"]))
        if l["p99_ms"] is not None and l["p99_ms"] > 100:
            out.append("    %s connect() p50 %s p99 %s ms (the rest of the latency is queueing "
                       "in the accept backlog or serving)" % (
                           kind, fmt(l["connect_p50_ms"], "%.2f"), fmt(l["connect_p99_ms"], "%.2f")))
    a = r["attack"] or {}
    if a.get("cut_how"):
        out.append("    attacker connections ended by: %s" % a["cut_how"])
    if a.get("errors"):
        out.append("    attacker errors: %s" % a["errors"])
    if a.get("status") and r["scenario"] == "authguess":
        out.append("    authguess answers: %s" % a["status"])
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/tsstore")
    ap.add_argument("--config", help="passed to the server as --config FILE")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each scenario")
    ap.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                    help="comma-separated, from: " + ",".join(ALL_SCENARIOS))
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds of quiet before the idle RSS is read (the server trims its heap every 10 s)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data, server.stderr)")
    ap.add_argument("--attacker-nice", type=int, default=10,
                    help="nice increment of the attacker process (default 10), so on a small "
                         "machine the server and the legitimate client get the CPU first; 0 = off")
    ap.add_argument("--attack", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.attack:
        run_attacker(args.attack, args.port, args.seconds, args.attacker_nice)
        return 0

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in ALL_SCENARIOS]
    if bad:
        ap.error("unknown scenario(s): %s (choose from %s)" % (",".join(bad), ",".join(ALL_SCENARIOS)))
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        ap.error("no executable server binary at %s (build it, or pass --binary)" % args.binary)
    try:  # the attack address must be usable
        t = bound_socket(ATTACK_ADDR)
        t.close()
    except OSError as e:
        ap.error("cannot bind %s (%s); Linux routes 127.0.0.0/8 to loopback, other systems may not" % (ATTACK_ADDR, e))

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)

    tmpdir = tempfile.mkdtemp(prefix="tsstore-frontdoor-")
    server = Server(os.path.abspath(args.binary), tmpdir, args.config)
    results = []
    try:
        port = server.start()
        print("server pid %d on 127.0.0.1:%d, data in %s; %d s per scenario" % (
            server.proc.pid, port, tmpdir, args.seconds), flush=True)
        status, _, body, _ = http_request(port, "POST", "/api/stores",
                                          {"X-Admin-Key": ADMIN_KEY, "Content-Type": "application/json"},
                                          b'{"name":"bench"}', timeout=10.0)
        if status not in (200, 201):
            raise RuntimeError("creating the store failed: HTTP %d %s" % (status, body[:300]))
        api_key = json.loads(body)["api_key"]
        for sc in scenarios:
            wait_quiet(server)
            r = run_scenario(server, api_key, sc, args.seconds, args.attacker_nice, args.settle)
            results.append(r)
            print(summary_line(r), flush=True)
            for line in detail_lines(r):
                print(line, flush=True)
            if not r["server_alive"]:
                print("server exited (code %s); stopping. stderr tail:\n%s" % (
                    server.proc.poll(), server.log_tail()), flush=True)
                break
        final_metrics = []
        text = server.metrics(timeout=5.0) if server.alive() else None
        if text:
            final_metrics = [l for l in text.splitlines()
                             if l.startswith("tsstore_connections_") or l.startswith("tsstore_auth_")]
        print("-- server metrics at end:")
        for l in final_metrics:
            print("  " + l)
        lines, nbytes = server.log_stats()
        print("log lines: %d (%d bytes)" % (lines, nbytes), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"binary": args.binary, "config": args.config, "seconds": args.seconds,
                           "scenarios": results, "metrics": final_metrics,
                           "log_lines": lines, "log_bytes": nbytes}, f, indent=2)
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()
        if args.keep:
            print("kept %s" % tmpdir, file=sys.stderr)
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
