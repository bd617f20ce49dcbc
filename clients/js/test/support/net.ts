// Network helpers for the tests: a TCP proxy that can cut every connection, a WebSocket relay
// in front of the real server's TCP port (one frame per binary message, as the WebSocket
// transport specifies), and a collector that reads a client's events in the background.

import assert from "node:assert/strict";
import * as net from "node:net";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";

import type { Bar, Client, DataRecord, Tick, TickwireEvent } from "@tickwire/client";

/** A TCP proxy on 127.0.0.1 in front of `targetPort`; cut() breaks every connection. */
export class Proxy {
  port = 0;
  /** False: new connections are closed at once. */
  accepting = true;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(public targetPort: number) {
    this.server = net.createServer((client) => {
      if (!this.accepting) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: "127.0.0.1", port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Splits a TCP byte stream into frames (kept independent of the client's own reader). */
function frameSplitter(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const size = 4 + buf.readUInt32BE(0);
      if (buf.length < size) break;
      onFrame(buf.subarray(0, size));
      buf = buf.subarray(size);
    }
  };
}

/**
 * A WebSocket endpoint on 127.0.0.1 that relays to the server's TCP port: each binary message
 * from the client goes to the server as is, each frame from the server goes back as one binary
 * message. `mangle` may replace what is sent to the client (for protocol-violation tests).
 */
export class WsRelay {
  port = 0;
  accepting = true;
  /** Messages relayed to clients. */
  messagesToClient = 0;
  private readonly wss: WebSocketServer;
  private readonly pairs = new Set<{ ws: WebSocket; tcp: net.Socket }>();

  constructor(
    public targetPort: number,
    private readonly mangle?: (frame: Buffer) => Buffer | string | undefined,
  ) {
    this.wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    this.wss.on("connection", (ws: WebSocket) => {
      if (!this.accepting) {
        ws.terminate();
        return;
      }
      const tcp = net.connect({ host: "127.0.0.1", port: this.targetPort });
      const pair = { ws, tcp };
      this.pairs.add(pair);
      tcp.on("error", () => {});
      ws.on("error", () => {});
      tcp.on(
        "data",
        frameSplitter((frame) => {
          const out = this.mangle ? this.mangle(frame) : frame;
          if (out === undefined) return;
          this.messagesToClient++;
          ws.send(out);
        }),
      );
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          ws.terminate();
          return;
        }
        tcp.write(data);
      });
      const end = (): void => {
        this.pairs.delete(pair);
        tcp.destroy();
        ws.terminate();
      };
      tcp.on("close", end);
      ws.on("close", end);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.wss.once("listening", () => resolve()));
    this.port = (this.wss.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  cut(): void {
    for (const { ws, tcp } of this.pairs) {
      tcp.destroy();
      ws.terminate();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Reads a client's events in the background (so that it keeps reading across reconnects). */
export class Collector {
  readonly records: DataRecord[] = [];
  readonly events: TickwireEvent[] = [];
  finished = false;
  readonly done: Promise<void>;

  constructor(readonly client: Client) {
    this.done = (async () => {
      for await (const ev of client) {
        this.events.push(ev);
        if (ev.type === "batch") this.records.push(...ev.records);
      }
    })().finally(() => {
      this.finished = true;
    });
  }

  ticks(topic: string): Tick[] {
    return this.records.filter((r): r is Tick => r.kind === "tick" && r.topic === topic);
  }

  bars(topic: string): Bar[] {
    return this.records.filter((r): r is Bar => r.kind === "bar" && r.topic === topic);
  }

  of<T extends TickwireEvent["type"]>(type: T): Array<Extract<TickwireEvent, { type: T }>> {
    return this.events.filter((e): e is Extract<TickwireEvent, { type: T }> => e.type === type);
  }

  async wait(predicate: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const tail = (): string =>
        JSON.stringify(this.events.slice(-3), (_k, v) => (typeof v === "bigint" ? v.toString() : v)).slice(
          0,
          600,
        );
      if (Date.now() >= deadline) {
        throw new Error(
          `timed out waiting for ${what}; ${this.records.length} records, last events: ${tail()}`,
        );
      }
      if (this.finished) throw new Error(`client closed while waiting for ${what}: ${tail()}`);
      await sleep(10);
    }
  }
}

/**
 * The next `n` records, within `timeoutMs`. With `only`, any other event but "history_end" (the
 * end of a subscription's replay) fails the test; without it, other events are skipped.
 */
export async function takeRecords(
  client: Client,
  n: number,
  timeoutMs = 5000,
  only = true,
): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const ev = await client.nextEvent(Math.max(1, deadline - Date.now()));
    assert.ok(ev !== undefined, `timed out after ${out.length} of ${n} records`);
    if (ev.type === "batch") out.push(...ev.records);
    else assert.ok(!only || ev.type === "history_end", `unexpected event ${ev.type}`);
  }
  assert.equal(out.length, n, "more records than expected");
  return out;
}
