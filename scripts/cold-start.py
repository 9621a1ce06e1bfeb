#!/usr/bin/env python3
"""Cold start of the server: process start to `/health` answering 200.

Usage: scripts/cold-start.py target/release/tsstore 30
Each run starts the binary on a fresh data directory and polls /health
on loopback every 0.5 ms; prints the median, minimum, p90 and maximum.
"""
import subprocess, time, socket, tempfile, os, statistics, sys
BIN = sys.argv[1]; N = int(sys.argv[2])
def health(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.05)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(200); s.close()
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
times = []
for i in range(N):
    d = tempfile.mkdtemp()
    port = 18950 + (i % 20)
    env = dict(os.environ, TSSTORE_ADMIN_KEY="bench-admin-key-0123456789", TSSTORE_LOG="warn")
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-socket", "--path", d + "/data"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not health(port):
        time.sleep(0.0005)
    times.append((time.perf_counter() - t0) * 1000)
    p.terminate(); p.wait()
times.sort()
print(f"cold start to /health answering, {N} runs: median {statistics.median(times):.1f} ms, min {times[0]:.1f} ms, p90 {times[int(N*0.9)-1]:.1f} ms, max {times[-1]:.1f} ms")
