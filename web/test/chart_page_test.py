#!/usr/bin/env python3
"""The live chart page in headless Chromium, against the real server.

Starts tickwire-server on 127.0.0.1 free ports with its WebSocket endpoint and WEB_ROOT set to
the built page (web/dist), runs a demo feed on FX.EURUSD, FX.USDJPY and AAPL, loads
http://127.0.0.1:<metrics port>/chart/ in headless Chromium (driven over the DevTools protocol:
a small WebSocket client below, Python's standard library only), subscribes to `FX.*` SECOND
bars with backfill using the demo credentials, and checks:

  * the page reports (in #status and window.tickwireChart.snapshot()) candles for both FX
    topics, bars from before it subscribed (backfill) and after (live), and none for AAPL;
  * a screenshot of a chart has candle-coloured pixels (PNG decoded here with zlib);
  * no script error and no Content-Security-Policy violation happened;
  * a wrong password shows AUTH_FAILED.

Exit status 0 on success, 1 on failure, 77 (ctest's skip) when Chromium is not installed
(--probe: only that check).
Environment: TICKWIRE_SERVER_BIN, TICKWIRE_CLI_BIN (defaults: the release build),
TICKWIRE_WEB_ROOT (default web/dist), CHROMIUM (the browser binary), TICKWIRE_ARTIFACT_DIR
(where the screenshot is kept; default: the test's temporary directory, removed at the end).
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP = 77
UP = (0x26, 0xA6, 0x9A)  # the page's candle colours (web/src/chart.js)
DOWN = (0xEF, 0x53, 0x50)
FX_TOPICS = ("FX.EURUSD", "FX.USDJPY")


class Failure(Exception):
    pass


def wait_until(what, fn, timeout):
    """Polls fn() every 100 ms until it returns a truthy value (returned) or timeout seconds
    pass (Failure naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def find_chromium():
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# ---- a minimal WebSocket client for the DevTools protocol (RFC 6455, client side) ----------


class DevTools:
    def __init__(self, url, timeout=30):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Failure("DevTools closed the WebSocket handshake")
            head += chunk
            if len(head) > 65536:
                raise Failure("DevTools handshake response too long")
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise Failure(f"DevTools refused the WebSocket: {head[:200]!r}")
        self.next_id = 0
        self.events = []  # (method, params) of every event received

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise Failure("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _recv_message(self):
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._read(8))
            if n > 256 << 20:
                raise Failure("DevTools message too large")
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise Failure("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts)

    def call(self, method, params=None, timeout=30):
        self.next_id += 1
        mid = self.next_id
        self._send_frame(0x1, json.dumps({"id": mid, "method": method, "params": params or {}}).encode())
        self.sock.settimeout(timeout)
        while True:
            msg = json.loads(self._recv_message())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise Failure(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {})))

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise Failure(f"page script failed: {expression}: {r['exceptionDetails']}")
        return r.get("result", {}).get("value")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- PNG decoding (8-bit RGB or RGBA, non-interlaced: what Chromium writes) -----------------


def decode_png(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failure("screenshot is not a PNG")
    pos, idat, width = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or color not in (2, 6) or interlace != 0:
                raise Failure(f"unexpected PNG format: depth {depth}, colour type {color}")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if width is None:
        raise Failure("PNG without IHDR")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if f == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif f == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif f != 0:
            raise Failure(f"bad PNG filter {f}")
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def count_pixels(png, colour, tolerance=24):
    width, height, channels, rows = decode_png(png)
    hits = 0
    for row in rows:
        for x in range(width):
            r, g, b = row[x * channels : x * channels + 3]
            if abs(r - colour[0]) <= tolerance and abs(g - colour[1]) <= tolerance and abs(b - colour[2]) <= tolerance:
                hits += 1
    return hits, width * height


# ---- processes --------------------------------------------------------------------------------


class Processes:
    """Every process the test starts, stopped by PID at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path, env=None, stdout=None):
        log = open(log_path, "wb")
        p = subprocess.Popen(args, env=env, stdout=stdout or log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append((p, log))
        return p

    def stop_all(self):
        for p, log in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
            log.close()


def read_port(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else 0
    except (OSError, ValueError):
        return 0


def tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


def run(tmp, chromium):
    server_bin = os.environ.get("TICKWIRE_SERVER_BIN", os.path.join(ROOT, "build/release/apps/server/tickwire-server"))
    cli_bin = os.environ.get("TICKWIRE_CLI_BIN", os.path.join(ROOT, "build/release/apps/cli/tickwire"))
    web_root = os.environ.get("TICKWIRE_WEB_ROOT", os.path.join(ROOT, "web", "dist"))
    for path, what in ((server_bin, "tickwire-server"), (cli_bin, "the tickwire CLI")):
        if not os.access(path, os.X_OK):
            raise Failure(f"{what} not found at {path} (build the release preset)")
    if not os.path.isfile(os.path.join(web_root, "index.html")):
        raise Failure(f"{web_root}/index.html missing: build the page (cd web && npm ci --ignore-scripts && npm run build, after clients/js)")

    procs = Processes()
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "STREAM_USER": "demo",
            "STREAM_PASS": "demo-pass",
            "LISTEN_ADDR": "127.0.0.1:0",
            "PORT_FILE": os.path.join(tmp, "port"),
            "METRICS_ADDR": "127.0.0.1:0",
            "METRICS_PORT_FILE": os.path.join(tmp, "metrics_port"),
            "WS_LISTEN_ADDR": "127.0.0.1:0",
            "WS_PORT_FILE": os.path.join(tmp, "ws_port"),
            "WEB_ROOT": web_root,
            "BAR_CLOSE_DELAY_MS": "50",
        }
        server = procs.start([server_bin], os.path.join(tmp, "server.log"), env=env)
        port = wait_until(
            "the server's port file",
            lambda: read_port(env["PORT_FILE"]) or (server.poll() is not None and -1),
            15,
        )
        if port < 0:
            raise Failure(f"tickwire-server exited: {tail(os.path.join(tmp, 'server.log'))}")
        metrics_port = read_port(env["METRICS_PORT_FILE"])
        ws_port = wait_until("the WebSocket port file", lambda: read_port(env["WS_PORT_FILE"]), 15)
        ws_url = f"ws://127.0.0.1:{ws_port}/"
        print(f"server: stream {port}, http {metrics_port}, WebSocket {ws_port}")

        feed_started = time.monotonic()
        procs.start(
            [cli_bin, "pub", "--demo", "--addr", f"127.0.0.1:{port}", "--user", "demo", "--pass", "demo-pass",
             "--symbols", "FX.EURUSD,FX.USDJPY,AAPL", "--rate", "90"],
            os.path.join(tmp, "feed.log"),
        )

        profile = os.path.join(tmp, "profile")
        chrome_args = [
            chromium, "--headless=new", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--window-size=1280,900", "--force-device-scale-factor=1",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        ]
        if os.geteuid() == 0:
            chrome_args.insert(1, "--no-sandbox")  # Chromium refuses to run as root otherwise
        chrome = procs.start(chrome_args, os.path.join(tmp, "chromium.log"))
        active = os.path.join(profile, "DevToolsActivePort")
        devtools_port = wait_until(
            "Chromium's DevTools port",
            lambda: (os.path.exists(active) and read_port_first_line(active)) or (chrome.poll() is not None and -1),
            30,
        )
        if devtools_port < 0:
            raise Failure(f"chromium exited: {tail(os.path.join(tmp, 'chromium.log'))}")

        def page_target():
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as r:
                return next((t for t in json.load(r) if t.get("type") == "page"), None)

        target = wait_until("a Chromium page target", page_target, 15)
        dt = DevTools(target["webSocketDebuggerUrl"])
        try:
            check_page(dt, tmp, metrics_port, ws_url, feed_started)
        finally:
            dt.close()
    except Failure:
        for name in ("server.log", "feed.log", "chromium.log"):
            text = tail(os.path.join(tmp, name))
            if text:
                print(f"---- {name} (tail) ----\n{text}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()


def read_port_first_line(path):
    try:
        with open(path) as f:
            return int(f.readline().strip() or 0)
    except (OSError, ValueError):
        return 0


def check_page(dt, tmp, metrics_port, ws_url, feed_started):
    dt.call("Runtime.enable")
    dt.call("Log.enable")
    dt.call("Page.enable")
    # Some history before the page subscribes, so that its backfill has bars to send: the feed
    # must have run for a few whole seconds (this produces data; nothing is asserted by time).
    while time.monotonic() < feed_started + 3.5:
        time.sleep(0.1)

    query = urllib.parse.urlencode({"ws": ws_url, "user": "demo", "topics": "FX.*", "mode": "second", "backfill": "60"})
    page = f"http://127.0.0.1:{metrics_port}/chart/?{query}"
    dt.call("Page.navigate", {"url": page})
    wait_until("the page's script", lambda: dt.evaluate("document.readyState === 'complete' && typeof window.tickwireChart === 'object'"), 20)
    dt.evaluate("document.getElementById('password').value = 'demo-pass'; document.getElementById('connect').click(); true")

    def enough():
        s = dt.evaluate("window.tickwireChart.snapshot()")
        if s["state"] == "error":
            raise Failure(f"the page reports an error: {s['message']}")
        topics = s["topics"]
        ready = s["state"] == "open" and all(
            t in topics and topics[t]["candles"] >= 3 and topics[t]["lastStartMs"] > s["subscribedAtMs"] for t in FX_TOPICS
        )
        return s if ready else None

    snap = wait_until("candles for both FX topics, backfilled and live", enough, 30)
    print(f"page: {snap['candles']} candles from {snap['bars']} bars: {json.dumps(snap['topics'])}")
    if "AAPL" in snap["topics"] or snap["hidden"]:
        raise Failure(f"FX.* also charted other topics: {sorted(snap['topics'])} hidden {snap['hidden']}")
    for t in FX_TOPICS:
        first = snap["topics"][t]["firstStartMs"]
        if first > snap["subscribedAtMs"] - 2000:
            raise Failure(f"{t}: no backfill (first bar {first}, subscribed at {snap['subscribedAtMs']})")
    status = dt.evaluate("Object.assign({}, document.getElementById('status').dataset)")
    if status.get("state") != "open" or int(status.get("candles", "0")) < 6 or status.get("topics") != "2":
        raise Failure(f"#status does not show the candles: {status}")
    text = dt.evaluate("document.getElementById('status').textContent")
    print(f"status: {text}")

    # The pixels: a whole-page screenshot kept for people, one chart decoded and checked.
    shot = dt.call("Page.captureScreenshot", {"format": "png"})
    keep = os.environ.get("TICKWIRE_ARTIFACT_DIR") or tmp
    os.makedirs(keep, exist_ok=True)
    with open(os.path.join(keep, "chart-page.png"), "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    rect = dt.evaluate(
        "(() => { const r = document.querySelector('.panel[data-topic=\"FX.EURUSD\"] .chart').getBoundingClientRect();"
        " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
    )
    if rect["width"] < 100 or rect["height"] < 100:
        raise Failure(f"the chart box is too small: {rect}")
    clip = dict(rect, scale=1)
    png = base64.b64decode(dt.call("Page.captureScreenshot", {"format": "png", "clip": clip})["data"])
    up, total = count_pixels(png, UP)
    down, _ = count_pixels(png, DOWN)
    print(f"screenshot: {up} rising-candle and {down} falling-candle pixels of {total} in the FX.EURUSD chart; "
          f"page saved as {os.path.join(keep, 'chart-page.png')}")
    if up + down < 40:
        raise Failure(f"no candles in the screenshot ({up} + {down} candle pixels)")

    problems = []
    for method, params in dt.events:
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            problems.append(f"console: {params['entry'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            problems.append(f"console.error: {params.get('args')}")
    if problems:
        raise Failure("the page logged errors:\n  " + "\n  ".join(problems))

    # A wrong password: the page says so.
    dt.evaluate("document.getElementById('password').value = 'wrong'; document.getElementById('connect').click(); true")
    msg = wait_until(
        "the page to report AUTH_FAILED",
        lambda: (lambda s: s["message"] if s["state"] == "error" else None)(dt.evaluate("window.tickwireChart.snapshot()")),
        15,
    )
    if "AUTH_FAILED" not in msg:
        raise Failure(f"a wrong password gave: {msg}")
    print(f"wrong password: {msg}")


def main():
    chromium = find_chromium()
    if chromium is None:
        print("SKIP: Chromium not found (Debian package chromium; scripts/setup.sh installs it, "
              "or set CHROMIUM to the browser binary)")
        return SKIP
    if sys.argv[1:] == ["--probe"]:  # only whether the test can run (web/scripts/check.sh)
        return 0
    tmp = tempfile.mkdtemp(prefix="tickwire-chart-")
    try:
        run(tmp, chromium)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        if not os.environ.get("TICKWIRE_KEEP_TEST_DIRS"):
            shutil.rmtree(tmp, ignore_errors=True)
    print("PASS: the chart page draws live and backfilled FX.* candles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
