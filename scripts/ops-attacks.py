#!/usr/bin/env python3
"""Hostile-client runs against the operations endpoint, the log and the connection listing.

Each scenario starts its own tickwire-server (loopback, free ports, its own temporary
directory), attacks it as docs/RELIABILITY.md describes, prints what it measured, and stops it.
The figures in docs/RELIABILITY.md ("The operations side under attack") come from this script.

Usage: scripts/ops-attacks.py [--server BINARY] [SCENARIO ...]
Scenarios: metrics-slowloris, close-flood, stalled-stdout, connz-memory, client-name
(default: all). BINARY defaults to build/release/apps/server/tickwire-server.
"""
import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASS = "ops", "ops-pass"


class Server:
    """One tickwire-server; stdout to a file, or to a pipe nobody reads (stall_stdout)."""

    def __init__(self, binary, env=None, stall_stdout=False):
        self.dir = tempfile.TemporaryDirectory(prefix="tickwire-attack-")
        self.log_path = os.path.join(self.dir.name, "stdout.log")
        full = {"PATH": os.environ.get("PATH", ""), "STREAM_USER": USER, "STREAM_PASS": PASS,
                "LISTEN_ADDR": "127.0.0.1:0", "METRICS_ADDR": "127.0.0.1:0", "WORKERS": "2",
                "DRAIN_PERIOD": "0s", "PORT_FILE": os.path.join(self.dir.name, "port"),
                "METRICS_PORT_FILE": os.path.join(self.dir.name, "metrics_port")}
        full.update(env or {})
        out = subprocess.PIPE if stall_stdout else open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary], env=full, stdout=out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(full["PORT_FILE"]) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    with open(full["METRICS_PORT_FILE"]) as f:
                        self.metrics_port = int(f.read())
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("tickwire-server did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def status_mb(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return 0.0

    def log_lines(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f]


def http(port, path, timeout=1.0):
    start = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            body = r.read()
            return r.status, body, (time.monotonic() - start) * 1000
    except Exception as e:  # the probe failing is a result here
        return type(e).__name__, b"", (time.monotonic() - start) * 1000


def metrics(port, prefix):
    status, body, _ = http(port, "/metrics", timeout=5)
    if status != 200:
        return {}
    return {line.split(" ")[0]: line.split(" ")[1] for line in body.decode().splitlines()
            if line.startswith(prefix)}


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def string_field(number, value):
    return varint(number << 3 | 2) + varint(len(value)) + value


def frame(frame_type, payload):
    return (len(payload) + 1).to_bytes(4, "big") + bytes([frame_type]) + payload


def auth_frame(client_name=b""):
    return frame(1, string_field(1, USER.encode()) + string_field(2, PASS.encode()) +
                 (string_field(3, client_name) if client_name else b""))


def auth_round_trip(port):
    """Connects, sends AUTH; the reply's frame type (2 AUTH_OK, 10 ERROR) and milliseconds."""
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(auth_frame())
        header = s.recv(5)
        s.close()
        return (header[4] if len(header) == 5 else "closed"), (time.monotonic() - start) * 1000
    except OSError as e:
        return type(e).__name__, (time.monotonic() - start) * 1000


def close_flood(port, seconds):
    """Unauthenticated connect-and-close as fast as one thread can; connections made."""
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            n += 1
        except OSError:
            break  # the server stopped accepting
    return n


def metrics_slowloris(binary):
    server = Server(binary)
    try:
        held = []
        for i in range(1100):  # 1,000 idle and 100 half-sent requests from the probes' address
            s = socket.create_connection(("127.0.0.1", server.metrics_port))
            if i >= 1000:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        for path in ("/healthz", "/readyz") * 2:
            status, _, ms = http(server.metrics_port, path)
            print(f"  one address, 1100 connections held: {path} -> {status} in {ms:.1f} ms")
        for a in range(100):  # 30 each from 100 other addresses
            for i in range(30):
                s = socket.socket()
                s.bind((f"127.0.1.{a + 1}", 0))
                s.connect(("127.0.0.1", server.metrics_port))
                if i % 2:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
        for path in ("/healthz", "/readyz") * 2:
            status, _, ms = http(server.metrics_port, path)
            print(f"  +100 addresses x 30 connections: {path} -> {status} in {ms:.1f} ms")
        for k, v in metrics(server.metrics_port, "http_connections").items():
            print(f"  {k} {v}")
        for s in held:
            s.close()
    finally:
        server.stop()


def close_flood_scenario(binary):
    server = Server(binary)
    try:
        n = close_flood(server.port, 5)
    finally:
        server.stop()
    per_second = collections.Counter(line["ts"][:19] for line in server.log_lines())
    busiest = max(per_second.values())
    print(f"  {n} unauthenticated connect+close in 5 s; busiest second of the log: "
          f"{busiest} lines")


def stalled_stdout(binary):
    server = Server(binary, {"LOG_RATE_LIMIT": "0"}, stall_stdout=True)
    try:
        n = close_flood(server.port, 3)
        reply, ms = auth_round_trip(server.port)
        status, _, _ = http(server.metrics_port, "/healthz")
        dropped = metrics(server.metrics_port, "log_lines_dropped_total")
        print(f"  stdout never read; {n} connect+close in 3 s; then AUTH -> {reply} in "
              f"{ms:.1f} ms; /healthz -> {status}; {dropped or 'no log_lines_dropped_total'}")
    finally:
        server.proc.kill()  # its stdout is never read: do not wait for a flush
        server.proc.wait()


def connz_memory(binary):
    server = Server(binary)
    try:
        held = []
        for c in range(8):  # each at the protocol's limit: 64 subscriptions x 1024 topics
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(auth_frame())
            s.recv(4096)
            for sub in range(64):
                p = varint(1 << 3) + varint(sub + 1) + varint(2 << 3) + varint(3)
                for i in range(1024):
                    p += string_field(3, f"TOPIC.{c}.{sub}.{i}".encode())
                s.sendall(frame(3, p))
            held.append(s)
        time.sleep(2)
        print(f"  8 connections x 65536 topics: peak RSS {server.status_mb('VmHWM'):.1f} MB")
        for _ in range(3):
            status, body, ms = http(server.metrics_port, "/connz?subs=1&limit=1", timeout=10)
            print(f"  /connz?subs=1&limit=1 -> {status}, {len(body)} bytes in {ms:.0f} ms; "
                  f"peak RSS {server.status_mb('VmHWM'):.1f} MB")
        for s in held:
            s.close()
    finally:
        server.stop()


def client_name(binary):
    server = Server(binary)
    try:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        s.sendall(auth_frame(b"x" * 60 * 1024))
        header = s.recv(5)
        s.close()
    finally:
        server.stop()
    longest = max(len(json.dumps(line)) for line in server.log_lines())
    print(f"  AUTH with a 60 KB client_name -> frame type {header[4] if header else 'none'}; "
          f"longest log line {longest} bytes")


SCENARIOS = {"metrics-slowloris": metrics_slowloris, "close-flood": close_flood_scenario,
             "stalled-stdout": stalled_stdout, "connz-memory": connz_memory,
             "client-name": client_name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.path.join(
        ROOT, "build/release/apps/server/tickwire-server"))
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    args = parser.parse_args()
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]} (one of {', '.join(SCENARIOS)})")
    for name in args.scenarios or SCENARIOS:
        print(name)
        SCENARIOS[name](args.server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
