// The browser build in a real browser: headless Chromium loads dist/browser.js through an import
// map (no bundler), connects with the page's own WebSocket to a relay in front of the real
// server, subscribes, publishes and receives exact bigints. Skipped where no Chromium is
// installed (CHROMIUM_BIN, else chromium on PATH).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { test } from "node:test";

import { WsRelay } from "./support/net.js";
import { PACKAGE_DIR, PASSWORD, USER, tempDir, uniqueTopic, withServer } from "./support/server.js";

function findChromium(): string | undefined {
  if (process.env.CHROMIUM_BIN) return process.env.CHROMIUM_BIN;
  for (const dir of (process.env.PATH ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      const p = join(dir, name);
      if (dir && existsSync(p)) return p;
    }
  }
  return undefined;
}

// What the page may load: the build and the protobuf runtime's ES modules.
const SERVED = ["dist/", "node_modules/@bufbuild/protobuf/dist/esm/"];

function page(relayUrl: string, topic: string): string {
  const runtime = "/pkg/node_modules/@bufbuild/protobuf/dist/esm";
  const imports = {
    "@tickwire/client": "/pkg/dist/browser.js",
    "@bufbuild/protobuf": `${runtime}/index.js`,
    "@bufbuild/protobuf/codegenv2": `${runtime}/codegenv2/index.js`,
  };
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tickwire browser test</title>
<script type="importmap">${JSON.stringify({ imports })}</script>
<script type="module">
import { connect, nsToIso, bigintReplacer } from "@tickwire/client";
const report = (result) => fetch("/result", { method: "POST", body: JSON.stringify(result, bigintReplacer) });
try {
  const client = await connect({ url: ${JSON.stringify(relayUrl)}, username: ${JSON.stringify(USER)}, password: ${JSON.stringify(PASSWORD)} });
  const topic = ${JSON.stringify(topic)};
  await client.subscribe("tick", [topic]);
  const tsNs = 1714564800123456789n;
  const accepted = await client.publish([{ topic, price: 1.5, size: 2, tsNs }, [topic, 2.5, 1, tsNs + 1n]], { ack: true });
  const records = [];
  while (records.length < 2) {
    const ev = await client.nextEvent(5000);
    if (ev === undefined) throw new Error("no records within 5 s");
    if (ev.type === "batch") records.push(...ev.records);
  }
  await client.close();
  await report({
    accepted,
    protocolVersion: client.authInfo.protocolVersion,
    seqs: records.map((r) => r.seq),
    tsNs: records.map((r) => r.tsNs),
    iso: nsToIso(records[0].tsNs),
    typeofSeq: typeof records[0].seq,
    state: client.state,
  });
} catch (e) {
  await report({ error: String(e && e.stack || e) });
}
</script></head><body></body></html>`;
}

const chromium = findChromium();
test(
  "the browser build in headless Chromium: import map, the page's WebSocket, exact bigints",
  { skip: chromium ? false : "no Chromium installed (CHROMIUM_BIN or chromium on PATH)" },
  async () => {
    await withServer({}, async (s) => {
      const relay = await new WsRelay(s.port).start();
      const topic = uniqueTopic("chromium");
      let resolveResult!: (v: unknown) => void;
      const result = new Promise<unknown>((r) => (resolveResult = r));
      const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://x");
        if (req.method === "POST" && url.pathname === "/result") {
          let body = "";
          req.on("data", (c: Buffer) => (body += c.toString()));
          req.on("end", () => {
            res.end("ok");
            resolveResult(JSON.parse(body));
          });
          return;
        }
        if (url.pathname === "/") {
          res.setHeader("Content-Type", "text/html");
          res.end(page(relay.url, topic));
          return;
        }
        const rel = normalize(decodeURIComponent(url.pathname.replace(/^\/pkg\//, "")));
        if (
          !url.pathname.startsWith("/pkg/") ||
          !SERVED.some((p) => rel.startsWith(p)) ||
          !existsSync(join(PACKAGE_DIR, rel))
        ) {
          res.statusCode = 404;
          res.end();
          return;
        }
        res.setHeader(
          "Content-Type",
          extname(rel) === ".js" ? "text/javascript" : "application/octet-stream",
        );
        res.end(readFileSync(join(PACKAGE_DIR, rel)));
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const port = (server.address() as AddressInfo).port;
      const browser = spawn(
        chromium!,
        [
          "--headless=new",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-extensions",
          `--user-data-dir=${tempDir("chromium")}`,
          `http://127.0.0.1:${port}/`,
        ],
        { stdio: "ignore", detached: true },
      );
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const got = (await Promise.race([
          result,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("no result from the page within 60 s")), 60000);
          }),
        ])) as { [k: string]: unknown };
        assert.equal(got.error, undefined, String(got.error));
        assert.deepEqual(got, {
          accepted: 2,
          protocolVersion: 1,
          seqs: ["1", "2"],
          tsNs: ["1714564800123456789", "1714564800123456790"],
          iso: "2024-05-01T12:00:00.123456789Z",
          typeofSeq: "bigint",
          state: "closed",
        });
      } finally {
        clearTimeout(timer);
        // Chromium and its helper processes: the process group it leads.
        if (browser.pid !== undefined) {
          try {
            process.kill(-browser.pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        server.closeAllConnections?.();
        await new Promise<void>((r) => server.close(() => r()));
        await relay.close();
      }
    });
  },
);
