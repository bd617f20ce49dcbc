#!/usr/bin/env python3
"""Measures this machine's loopback TCP bandwidth: the most bytes per second one connection
moves from a sender pinned to CPU 0 to a receiver pinned to CPU 1, in 1 MiB writes and reads.

It is the ceiling for any burst a server writes to its consumers on this host (the kernel
copies every byte once on send and once on receive), and is quoted in docs/PERFORMANCE.md.

Usage: scripts/loopback-bandwidth.py [GIB]   (default 4 GiB moved; a few seconds)
"""

import os
import socket
import sys
import time

CHUNK = 1 << 20


def main() -> int:
    total = int(float(sys.argv[1] if len(sys.argv) > 1 else 4) * (1 << 30))
    cpus = sorted(os.sched_getaffinity(0))
    send_cpu, recv_cpu = cpus[0], cpus[-1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {send_cpu})
        s = socket.create_connection(("127.0.0.1", port))
        data = b"x" * CHUNK
        sent = 0
        while sent < total:
            sent += s.send(data)
        s.close()
        os._exit(0)
    os.sched_setaffinity(0, {recv_cpu})
    conn, _ = listener.accept()
    buf = memoryview(bytearray(CHUNK))
    received = 0
    start = time.monotonic()
    while True:
        n = conn.recv_into(buf)
        if n == 0:
            break
        received += n
    elapsed = time.monotonic() - start
    os.waitpid(pid, 0)
    print(f"{received / 1e9:.2f} GB in {elapsed:.2f} s: {received / elapsed / 1e9:.2f} GB/s "
          f"(sender on CPU {send_cpu}, receiver on CPU {recv_cpu})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
