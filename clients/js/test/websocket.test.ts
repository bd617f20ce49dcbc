// The WebSocket transport (one frame per binary message), end to end against the real server
// through a WebSocket relay in front of its TCP port (test/support/net.ts), from the Node entry
// point and from the browser entry point; protocol violations; and, once the server speaks
// WebSocket itself (WS_LISTEN_ADDR), the same against its own endpoint.

import assert from "node:assert/strict";
import * as net from "node:net";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { WebSocket as WsWebSocket } from "ws";

import * as browser from "@tickwire/client/browser";
import { connect } from "@tickwire/client";
import type { Client, DataRecord, Tick, WebSocketConstructor } from "@tickwire/client";

import { Collector, WsRelay, takeRecords } from "./support/net.js";
import { PASSWORD, ServerProcess, USER, serverHelp, uniqueTopic, withServer } from "./support/server.js";

const FAST_RETRY = { initialBackoffMs: 20, maxBackoffMs: 200 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The `ws` package's WebSocket without pause()/resume(): only the standard API, as in a
 * browser, where reading cannot be stopped. */
class StandardOnlyWebSocket extends WsWebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    Object.defineProperty(this, "pause", { value: undefined });
    Object.defineProperty(this, "resume", { value: undefined });
  }
}
const StandardOnly = StandardOnlyWebSocket as unknown as WebSocketConstructor;

async function withRelay(
  fn: (relay: WsRelay, s: ServerProcess) => Promise<void>,
  env: { [name: string]: string } = {},
): Promise<void> {
  await withServer(env, async (s) => {
    const relay = await new WsRelay(s.port).start();
    try {
      await fn(relay, s);
    } finally {
      await relay.close();
    }
  });
}

const take = (client: Client, n: number): Promise<DataRecord[]> => takeRecords(client, n, 5000, false);

/** Subscribe, publish (acked), receive: the basic exchange over any connected pair. */
async function exchange(consumer: Client, producer: Client, name: string): Promise<void> {
  const topic = uniqueTopic(name);
  await consumer.subscribe("tick", [topic]);
  const tsNs = 1_714_564_800_123_456_789n;
  assert.equal(
    await producer.publish([{ topic, price: 1.5, size: 2, tsNs }, [topic, 2.5, 1]], { ack: true }),
    2,
  );
  const got = (await take(consumer, 2)) as Tick[];
  assert.deepEqual(
    got.map((t) => [t.topic, t.price, t.seq, t.prevSeq]),
    [
      [topic, 1.5, 1n, 0n],
      [topic, 2.5, 2n, 1n],
    ],
  );
  assert.equal(got[0]!.tsNs, tsNs);
}

test("Node entry point over ws:// (the ws package, or the global WebSocket of Node 22+)", async () => {
  await withRelay(async (relay, s) => {
    const consumer = await connect({ url: relay.url, username: USER, password: PASSWORD, reconnect: false });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD, reconnect: false });
    try {
      assert.equal(consumer.target, relay.url);
      assert.equal(consumer.authInfo.protocolVersion, 1);
      await exchange(consumer, producer, "ws-node");
    } finally {
      await consumer.close();
      await producer.close();
    }
    await assert.rejects(connect({ url: relay.url, username: USER, password: "wrong" }), {
      kind: "server",
      codeName: "AUTH_FAILED",
    });
  });
});

test("browser entry point with a standard-only WebSocket: subscribe, publish, receive", async () => {
  await withRelay(async (relay) => {
    const client = await browser.connect({
      url: relay.url,
      username: USER,
      password: PASSWORD,
      webSocket: StandardOnly,
    });
    try {
      await exchange(client, client, "ws-browser");
      await assert.rejects(
        browser.connect({ url: "tcp://127.0.0.1:1", username: USER, password: PASSWORD }),
        /url must start with ws:\/\/ or wss:\/\//,
      );
    } finally {
      await client.close();
    }
  });
});

test("over WebSocket, heartbeats keep a quiet connection alive", async () => {
  await withServer({ HEARTBEAT_INTERVAL: "200ms", HEARTBEAT_TIMEOUT: "600ms" }, async (s) => {
    const relay = await new WsRelay(s.port).start();
    const client = await browser.connect({
      url: relay.url,
      username: USER,
      password: PASSWORD,
      webSocket: StandardOnly,
      reconnect: false,
    });
    try {
      assert.equal(await client.nextEvent(1500), undefined);
      assert.equal(client.state, "open");
      assert.ok(client.stats.heartbeatEchoes >= 4, JSON.stringify(client.stats));
    } finally {
      await client.close();
      await relay.close();
    }
  });
});

test("over WebSocket, cut connections are resumed without loss or duplicates", async () => {
  await withRelay(async (relay, s) => {
    const topic = uniqueTopic("ws-cut");
    const consumer = await connect({
      url: relay.url,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
    try {
      await consumer.subscribe("tick", [topic]);
      const got = new Collector(consumer);
      const rounds = 20;
      for (let r = 0; r < rounds; r++) {
        await producer.publish(
          Array.from({ length: 5 }, () => [topic, r, 1] as [string, number, number]),
          { ack: true },
        );
        if (r === 6 || r === 13) {
          await got.wait(() => consumer.state === "open", "the reconnect");
          relay.cut();
        }
        await sleep(20);
      }
      const n = rounds * 5;
      await got.wait(() => got.ticks(topic).length === n, `${n} ticks`);
      assert.deepEqual(
        got.ticks(topic).map((t) => t.seq),
        Array.from({ length: n }, (_, i) => BigInt(i + 1)),
      );
      assert.equal(consumer.stats.reconnects, 2);
      assert.equal(consumer.stats.tickGaps, 0);
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
    }
  });
});

test("a WebSocket that cannot pause: a full queue drops the connection, resumed losslessly once read", async () => {
  await withRelay(
    async (relay, s) => {
      const topic = uniqueTopic("ws-overflow");
      const consumer = await browser.connect({
        url: relay.url,
        username: USER,
        password: PASSWORD,
        webSocket: StandardOnly,
        queueCapacity: 2,
        reconnect: FAST_RETRY,
      });
      const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
      try {
        await consumer.subscribe("tick", [topic]);
        const n = 60;
        for (let i = 1; i <= n; i++) {
          await producer.publish([[topic, i, 1]], { ack: true });
          await sleep(3); // one DATA_BATCH each (BATCH_WINDOW_MS=0)
        }
        await sleep(200);
        const stats = consumer.stats;
        assert.ok(stats.queueOverflows >= 1, JSON.stringify(stats));
        assert.equal(stats.readPauses, 0);
        // Reading catches up: the client reconnects and resumes from the server's history.
        const records: Tick[] = [];
        let reconnected = false;
        const deadline = Date.now() + 10000;
        while ((records.length < n || !reconnected) && Date.now() < deadline) {
          const ev = await consumer.nextEvent(1000);
          if (ev?.type === "batch") records.push(...(ev.records as Tick[]));
          if (ev?.type === "reconnected") reconnected = true;
        }
        assert.ok(reconnected, JSON.stringify(consumer.stats));
        assert.deepEqual(
          records.map((t) => t.price),
          Array.from({ length: n }, (_, i) => i + 1),
        );
      } finally {
        await Promise.all([consumer.close(), producer.close()]);
      }
    },
    { BATCH_WINDOW_MS: "0" },
  );
});

test("WebSocket protocol violations: a text message, two frames in one message", async () => {
  await withServer({}, async (s) => {
    let n = 0;
    // Leaves AUTH_OK alone and mangles the first frame after it (the SUBSCRIBE_OK).
    const cases: Array<[string, (f: Buffer) => Buffer | string, RegExp]> = [
      ["text", (f) => f.toString("latin1"), /text WebSocket message/],
      ["two frames", (f) => Buffer.concat([f, f]), /one frame per message/],
      ["short", (f) => f.subarray(0, 3), /shorter than a frame/],
    ];
    for (const [what, mangle, message] of cases) {
      n = 0;
      const relay = await new WsRelay(s.port, (f) => (++n === 2 ? mangle(f) : f)).start();
      const client = await browser.connect({
        url: relay.url,
        username: USER,
        password: PASSWORD,
        webSocket: StandardOnly,
      });
      try {
        await assert.rejects(client.subscribe("tick", ["A"]));
        await client.waitClosed();
        assert.equal(client.closeReason?.kind, "protocol", what);
        assert.match(client.closeReason!.message, message, what);
      } finally {
        await client.close();
        await relay.close();
      }
    }
  });
});

test("a WebSocket endpoint that refuses the upgrade: a connect error", async () => {
  const http = net.createServer((sock) => {
    sock.on("error", () => {});
    sock.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as net.AddressInfo).port;
  try {
    await assert.rejects(
      connect({ url: `ws://127.0.0.1:${port}/`, username: USER, password: PASSWORD }),
      (e: unknown) => (e as { kind?: string }).kind === "connect",
    );
  } finally {
    http.close();
  }
});

const hasGlobalWebSocket = typeof (globalThis as { WebSocket?: unknown }).WebSocket === "function";
test(
  "the global WebSocket (Node 22+, or --experimental-websocket) through the Node entry point",
  {
    skip: hasGlobalWebSocket ? false : "this Node has no global WebSocket (the ws package is covered above)",
  },
  async () => {
    await withRelay(async (relay, s) => {
      const consumer = await connect({
        url: relay.url,
        username: USER,
        password: PASSWORD,
        reconnect: false,
      });
      const producer = await connect({ port: s.port, username: USER, password: PASSWORD, reconnect: false });
      try {
        await exchange(consumer, producer, "ws-global");
      } finally {
        await consumer.close();
        await producer.close();
      }
    });
  },
);

// ----------------------------------------------------------------------------------------------
// AGAINST THE SERVER'S OWN WEBSOCKET ENDPOINT. Runs once tickwire-server speaks WebSocket
// (`WS_LISTEN_ADDR` in its --help); skipped, with that reason, by a server without it. It
// expects the endpoint's port in WS_PORT_FILE when the server offers that setting (else it picks
// a free port), and the path in TICKWIRE_WS_PATH (default "/").
// ----------------------------------------------------------------------------------------------
const help = serverHelp();
const serverSpeaksWebSocket = help.includes("WS_LISTEN_ADDR");
test(
  "REAL SERVER WebSocket endpoint: AUTH, subscribe, publish, receive, resume after a restart",
  {
    skip: serverSpeaksWebSocket
      ? false
      : "tickwire-server has no WebSocket endpoint yet (no WS_LISTEN_ADDR in --help)",
  },
  async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const freePort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const env: { [k: string]: string } = { WS_LISTEN_ADDR: `127.0.0.1:${freePort}` };
    const s = new ServerProcess(env);
    const portFile = join(s.workdir, "ws_port");
    if (help.includes("WS_PORT_FILE")) {
      env.WS_LISTEN_ADDR = "127.0.0.1:0";
      env.WS_PORT_FILE = portFile;
    }
    Object.assign(s.overrides, env);
    await s.start();
    const wsPort = help.includes("WS_PORT_FILE") ? Number(readFileSync(portFile, "utf8").trim()) : freePort;
    const url = `ws://127.0.0.1:${wsPort}${process.env.TICKWIRE_WS_PATH ?? "/"}`;
    const consumer = await connect({ url, username: USER, password: PASSWORD, reconnect: FAST_RETRY });
    const producer = await browser.connect({
      url,
      username: USER,
      password: PASSWORD,
      webSocket: StandardOnly,
      reconnect: FAST_RETRY,
    });
    try {
      await exchange(consumer, producer, "ws-real");
      const topic = uniqueTopic("ws-real-restart");
      await consumer.subscribe("tick", [topic]);
      const got = new Collector(consumer);
      await producer.publish([[topic, 1, 1]], { ack: true });
      await got.wait(() => got.ticks(topic).length === 1, "1 tick");
      await s.stop("SIGTERM");
      s.overrides.WS_LISTEN_ADDR = `127.0.0.1:${wsPort}`; // the same endpoint after the restart
      await s.start();
      await got.wait(() => got.of("reconnected").length > 0, "the reconnect");
      await producer.publish([[topic, 2, 1]], { ack: true });
      await got.wait(() => got.ticks(topic).length === 2, "2 ticks");
      assert.equal(consumer.stats.duplicatesDropped, 0);
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
      await s.stop();
    }
  },
);
