#!/usr/bin/env python3
"""The unloaded latency of an HTTP/1.1 server, measured without a load generator.

One keep-alive connection; every GAP seconds one GET, sent as soon as the probe wakes, and
the response awaited by busy-polling a non-blocking socket, so that the probe's own CPU never
sleeps while the request is out (a sleeping client would add its wake-up to the figure). Each
latency is perf_counter_ns() from just before the send to the response's last byte. The
server is idle between requests, as at any light load: this is the "single connection at low
load" latency that a load generator's light-load figures should match (scripts/bench.sh uses
it as the reference). Python's own overhead adds a few microseconds.

Usage: probe.py URL [COUNT=1000] [GAP_MS=5]     (http://127.0.0.1:PORT/path only)
Prints one line: "p50 X us, p90 Y us, p99 Z us (COUNT requests, one every GAP_MS ms)".
"""

import socket
import sys
import time
from urllib.parse import urlsplit


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    url = urlsplit(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    gap = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.005
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1"):
        print("probe.py: only http:// on loopback", file=sys.stderr)
        return 2
    host, port = url.hostname, url.port or 80
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sock = socket.create_connection((host, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)

    def one() -> int:
        start = time.perf_counter_ns()
        sock.sendall(req)
        buf = b""
        deadline = start + 5_000_000_000
        while True:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                if time.perf_counter_ns() > deadline:
                    raise TimeoutError("no response in 5 s")
                continue
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = buf[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value)
            if len(buf) >= end + 4 + length:
                return time.perf_counter_ns() - start

    for _ in range(50):  # warm the connection up
        one()
    lat = []
    for _ in range(count):
        time.sleep(gap)
        lat.append(one())
    lat.sort()

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] / 1000

    print(
        f"p50 {q(0.5):.1f} us, p90 {q(0.9):.1f} us, p99 {q(0.99):.1f} us "
        f"({count} requests, one every {gap * 1000:g} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
