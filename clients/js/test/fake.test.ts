// Behaviour the real server does not show on demand, against a scripted fake server on
// 127.0.0.1: values above 2^53, what a later server may add (record kinds, frame types, error
// codes), batch_seq gaps, an idle connection, where a resume starts, and protocol violations.

import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";

import { ErrorCode, Mode, connect } from "@tickwire/client";
import type { Client, TickwireEvent } from "@tickwire/client";
import { FrameType, encodeFrame } from "#internal/frames.js";
import * as pb from "#internal/gen/tickwire/v1/tickwire_pb.js";
import { parse } from "#internal/codec.js";

const U64_MAX = (1n << 64n) - 1n;

/** Resolves when one of `waiters` is called, or after `ms`. */
function wakeOrTimeout(waiters: Array<() => void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    waiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** One accepted connection of the fake server. */
class FakeConn {
  private buf: Buffer = Buffer.alloc(0);
  private readonly frames: Array<{ type: number; payload: Uint8Array }> = [];
  private waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 4) {
        const size = 4 + this.buf.readUInt32BE(0);
        if (this.buf.length < size) break;
        this.frames.push({ type: this.buf[4]!, payload: new Uint8Array(this.buf.subarray(5, size)) });
        this.buf = this.buf.subarray(size);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    socket.on("error", () => {});
  }

  /** The next frame of `type` from the client (HEARTBEATs skipped unless asked for). */
  async next(type: number, timeoutMs = 5000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0]!.payload;
      const left = deadline - Date.now();
      assert.ok(left > 0, `no frame of type ${type} from the client`);
      await wakeOrTimeout(this.waiters, left);
    }
  }

  send<D extends DescMessage>(type: number, schema: D, init: MessageInitShape<D>): void {
    this.socket.write(encodeFrame(type, toBinary(schema, create(schema, init))));
  }

  raw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Reads AUTH, answers AUTH_OK. */
  async accept(authOk: MessageInitShape<typeof pb.AuthOkSchema> = {}): Promise<void> {
    await this.next(FrameType.AUTH);
    this.send(FrameType.AUTH_OK, pb.AuthOkSchema, {
      sessionId: "fake",
      heartbeatIntervalMs: 15000,
      heartbeatTimeoutMs: 20000,
      maxMsgSize: 65536,
      protocolVersion: 1,
      ...authOk,
    });
  }

  /** Reads a SUBSCRIBE, answers SUBSCRIBE_OK with `subscriptionId` (and `more`); the request. */
  async subscribeOk(
    subscriptionId: bigint,
    more: MessageInitShape<typeof pb.SubscribeOkSchema> = {},
  ): Promise<pb.Subscribe> {
    const m = parse(pb.SubscribeSchema, await this.next(FrameType.SUBSCRIBE), "SUBSCRIBE");
    this.send(FrameType.SUBSCRIBE_OK, pb.SubscribeOkSchema, {
      ...more,
      requestId: m.requestId,
      subscriptionId,
    });
    return m;
  }

  batch(batchSeq: bigint, records: pb.Record[]): void {
    this.send(FrameType.DATA_BATCH, pb.DataBatchSchema, { batchSeq, records });
  }
}

class FakeServer {
  port = 0;
  private readonly server: net.Server;
  private readonly conns: FakeConn[] = [];
  private waiters: Array<() => void> = [];
  private taken = 0;

  constructor() {
    this.server = net.createServer((s) => {
      this.conns.push(new FakeConn(s));
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** The next connection accepted. */
  async conn(timeoutMs = 5000): Promise<FakeConn> {
    const deadline = Date.now() + timeoutMs;
    while (this.conns.length <= this.taken) {
      const left = deadline - Date.now();
      assert.ok(left > 0, "no connection to the fake server");
      await wakeOrTimeout(this.waiters, left);
    }
    return this.conns[this.taken++]!;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

async function withFake(fn: (fake: FakeServer) => Promise<void>): Promise<void> {
  const fake = await new FakeServer().start();
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

/** Connects to the fake server, which answers AUTH. */
async function open(
  fake: FakeServer,
  options: Partial<Parameters<typeof connect>[0]> = {},
): Promise<[Client, FakeConn]> {
  const connecting = connect({ port: fake.port, username: "u", password: "p", reconnect: false, ...options });
  const conn = await fake.conn();
  await conn.accept();
  return [await connecting, conn];
}

const tick = (topic: string, seq: bigint, prevSeq: bigint, tsNs: bigint): pb.Record =>
  create(pb.RecordSchema, {
    kind: { case: "tick", value: create(pb.TickSchema, { topic, price: 1, size: 1, tsNs, seq, prevSeq }) },
  });

async function events(client: Client, n: number): Promise<TickwireEvent[]> {
  const out: TickwireEvent[] = [];
  while (out.length < n) {
    const ev = await client.nextEvent(3000);
    assert.ok(ev !== undefined, `only ${out.length} of ${n} events: ${out.map((e) => e.type).join(",")}`);
    out.push(ev);
  }
  return out;
}

test("seq and batch_seq above 2^53 arrive exactly; gaps and batch_seq skips are reported", async () => {
  await withFake(async (fake) => {
    const [client, conn] = await open(fake);
    try {
      const subscribing = client.subscribe("tick", ["A"]);
      await conn.subscribeOk(U64_MAX);
      assert.equal(await subscribing, 1);
      const big = (1n << 60n) + 1n;
      conn.batch(1n, [tick("A", big, big - 1n, 1n), tick("A", big + 1n, big, 2n)]);
      conn.batch(3n, [tick("A", big + 5n, big + 4n, 3n)]); // batch 2 missing; seq big+2..big+4 missed
      const [b1, gapNotice, gap, b3] = await events(client, 4);
      assert.ok(b1?.type === "batch");
      assert.deepEqual(
        b1.records.map((r) => (r.kind === "tick" ? r.seq : 0n)),
        [big, big + 1n],
      );
      assert.ok(gapNotice?.type === "error" && gapNotice.error.kind === "batch_gap");
      assert.match(gapNotice.error.message, /batch_seq 3 after 1/);
      assert.deepEqual(gap, { type: "gap", topic: "A", seq: big + 5n, prevSeq: big + 4n, lastSeq: big + 1n });
      assert.ok(b3?.type === "batch" && b3.batchSeq === 3n);
      const stats = client.stats;
      assert.equal(stats.batchGaps, 1);
      assert.equal(stats.tickGaps, 1);
      // Unsubscribing sends the server's 64-bit id back exactly.
      await client.unsubscribe(1);
      const u = parse(pb.UnsubscribeSchema, await conn.next(FrameType.UNSUBSCRIBE), "UNSUBSCRIBE");
      assert.equal(u.subscriptionId, U64_MAX);
    } finally {
      await client.close();
    }
  });
});

test("a later server's additions are tolerated: record kinds, frame types, error codes, fields", async () => {
  await withFake(async (fake) => {
    const [client, conn] = await open(fake);
    try {
      // A Record of kind 7 (say, a watermark) between two ticks, and a Tick with a field 9.
      const first = toBinary(
        pb.DataBatchSchema,
        create(pb.DataBatchSchema, { batchSeq: 1n, records: [tick("A", 1n, 0n, 1n)] }),
      );
      const extra = Uint8Array.from([0x12, 0x04, 0x3a, 0x02, 0x08, 0x05]);
      const withField = toBinary(pb.RecordSchema, tick("A", 2n, 1n, 2n));
      // Record.tick (field 1) gets an unknown field 9 (varint 1) appended to its Tick.
      const tickBytes = withField.subarray(2);
      const tickPlus = Uint8Array.from([...tickBytes, 0x48, 0x01]);
      const record = Uint8Array.from([0x0a, tickPlus.length, ...tickPlus]);
      const payload = Uint8Array.from([...first, ...extra, 0x12, record.length, ...record]);
      conn.raw(encodeFrame(FrameType.DATA_BATCH, payload));
      conn.raw(encodeFrame(0x42, Uint8Array.from([1, 2, 3]))); // a frame type of the future
      conn.send(FrameType.ERROR, pb.ErrorSchema, {
        code: 99 as pb.ErrorCode,
        message: "something new",
        fatal: false,
      });
      const [batch, notice] = await events(client, 2);
      assert.ok(batch?.type === "batch");
      assert.deepEqual(
        batch.records.map((r) => (r.kind === "tick" ? r.seq : 0n)),
        [1n, 2n],
      );
      assert.ok(notice?.type === "error");
      assert.equal(notice.error.code, 99);
      assert.equal(notice.error.codeName, "CODE_99");
      const stats = client.stats;
      assert.equal(stats.unknownRecords, 1);
      assert.equal(stats.unknownFrames, 1);
      assert.equal(client.state, "open");
      // And an UNAVAILABLE rejection of an acked PUBLISH (multi-instance servers).
      const publishing = client.publish([["A", 1, 1]], { ack: true });
      const p = parse(pb.PublishSchema, await conn.next(FrameType.PUBLISH), "PUBLISH");
      conn.send(FrameType.ERROR, pb.ErrorSchema, {
        code: pb.ErrorCode.UNAVAILABLE,
        message: "log unreachable",
        requestId: p.requestId,
        retryAfterMs: 500,
      });
      await assert.rejects(publishing, {
        code: ErrorCode.UNAVAILABLE,
        retryAfterMs: 500,
        codeName: "UNAVAILABLE",
      });
    } finally {
      await client.close();
    }
  });
});

test("an idle connection is dropped after idleTimeoutMs, and subscriptions resume from what was delivered", async () => {
  await withFake(async (fake) => {
    const [client, conn] = await open(fake, {
      idleTimeoutMs: 300,
      reconnect: { initialBackoffMs: 10, resumeLookbackMs: 1000 },
    });
    try {
      const subscribing = client.subscribe(Mode.SECOND, ["A", "B"]);
      const sub = await conn.subscribeOk(5n);
      assert.equal(sub.sinceMs, 0n);
      await subscribing;
      const bar = (topic: string, startMs: bigint): pb.Record =>
        create(pb.RecordSchema, {
          kind: {
            case: "bar",
            value: create(pb.BarSchema, { topic, interval: pb.Mode.SECOND, startMs, count: 1n }),
          },
        });
      const t0 = 1_900_000_000_000n; // later than the subscription's start
      conn.batch(1n, [bar("A", t0), bar("B", t0 + 1000n)]);
      // Then silence: no heartbeat echo, nothing.
      const started = Date.now();
      const evs = await events(client, 4);
      assert.deepEqual(
        evs.map((e) => e.type),
        ["batch", "error", "disconnected", "reconnecting"],
      );
      const lost = (evs[2] as Extract<TickwireEvent, { type: "disconnected" }>).reason;
      assert.equal(lost.kind, "timeout");
      assert.match(lost.message, /nothing from the server for 300 ms/);
      assert.ok(Date.now() - started < 2000);

      const again = await fake.conn();
      await again.accept();
      const resumed = await again.subscribeOk(6n);
      // From the newest bar received (B's) less the lookback, without backfill.
      assert.equal(resumed.sinceMs, t0 + 1000n - 1000n);
      assert.equal(resumed.backfill, 0);
      assert.deepEqual(resumed.topics, ["A", "B"]);
      assert.equal(resumed.mode, pb.Mode.SECOND);
      // The resume re-sends B's bar: dropped as a duplicate; the next one is delivered.
      again.batch(1n, [bar("B", t0 + 1000n), bar("A", t0 + 2000n)]);
      // (Records of a resumed subscription may come before the "reconnected" notice.)
      const rest = await events(client, 2);
      assert.deepEqual(
        rest.find((e) => e.type === "reconnected"),
        {
          type: "reconnected",
          attempt: 1,
          resubscribed: 1,
          previousStreamEpoch: 0n,
          streamEpoch: 0n,
          streamEpochChanged: false,
        },
      );
      const batch = rest.find((e) => e.type === "batch");
      assert.ok(batch?.type === "batch");
      assert.deepEqual(
        batch.records.map((r) => [r.kind === "watermark" ? "" : r.topic, r.kind === "bar" ? r.startMs : 0n]),
        [["A", t0 + 2000n]],
      );
      assert.equal(client.stats.duplicatesDropped, 1);
    } finally {
      await client.close();
    }
  });
});

const historyEnd = (subscriptionId: bigint): pb.Record =>
  create(pb.RecordSchema, { kind: { case: "historyEnd", value: { subscriptionId } } });

/** Reads events until one of `type` (within 5 s); all read, that one last. */
async function until(client: Client, type: TickwireEvent["type"]): Promise<TickwireEvent[]> {
  const out: TickwireEvent[] = [];
  const deadline = Date.now() + 5000;
  for (;;) {
    const ev = await client.nextEvent(Math.max(1, deadline - Date.now()));
    assert.ok(ev !== undefined, `no "${type}" event; got ${out.map((e) => e.type).join(",")}`);
    out.push(ev);
    if (ev.type === type) return out;
  }
}

/** Cuts `conn`, waits for the client to come back; the new connection (AUTH answered). */
async function cutAndAccept(fake: FakeServer, client: Client, conn: FakeConn): Promise<FakeConn> {
  conn.socket.destroy();
  await until(client, "disconnected");
  const again = await fake.conn();
  await again.accept();
  return again;
}

// PROTOCOL.md S8c, topics without a position: the first SUBSCRIBE_OK's resume_from_ns goes out
// on every resume of the TICK subscription until the history_end marker of a resume arrives;
// from then on that resume's value goes out. A replay cut before its history_end marker is
// asked for again with the caller's own since_ms / backfill.
test("resume_from_ns: the first is kept until a resume's marker arrives, then that resume's; cut history is asked again", async () => {
  await withFake(async (fake) => {
    const [client, conn] = await open(fake, { reconnect: { initialBackoffMs: 10, resumeLookbackMs: 1000 } });
    try {
      const r1 = 1_765_000_000_123_456_789n; // above 2^53: exact as a bigint
      const tsA = 1_900_000_000_000_000_000n; // ns; point 1_900_000_000_000 ms
      // TICK with since_ms, and a SECOND subscription with since_ms (bars: rule 3 only).
      const ticking = client.subscribe("tick", ["*"], { sinceMs: 1000n });
      const first = await conn.subscribeOk(5n, { resumeFromNs: r1, historyEnd: true });
      assert.equal(first.resumeFromNs, 0n, "a first SUBSCRIBE sends none");
      assert.equal(first.sinceMs, 1000n);
      const handle = await ticking;
      const barring = client.subscribe("second", ["*"], { sinceMs: 2000n });
      await conn.subscribeOk(7n, { historyEnd: true });
      const bars = await barring;
      // Part of the replay, then the cut: no marker yet.
      conn.batch(1n, [tick("A", 1n, 0n, tsA)]);
      await until(client, "batch");

      // 1st resume: the caller's since_ms again (not the newest point less the lookback), A's
      // position, and r1. Its SUBSCRIBE_OK offers r2, but the connection is cut before its
      // marker: r2 is not taken.
      let c = await cutAndAccept(fake, client, conn);
      const r2 = r1 + 5_000_000_000n;
      let req = await c.subscribeOk(15n, { resumeFromNs: r2, historyEnd: true });
      assert.equal(req.resumeFromNs, r1);
      assert.equal(req.sinceMs, 1000n);
      assert.equal(req.backfill, 0);
      assert.deepEqual(
        req.resumeAfter.map((p) => [p.topic, p.afterSeq]),
        [["A", 1n]],
      );
      let barReq = await c.subscribeOk(17n, { historyEnd: true });
      assert.equal(barReq.sinceMs, 2000n, "bars: the caller's since_ms again");
      assert.equal(barReq.resumeFromNs, 0n, "never on a bar subscription");
      await until(client, "reconnected");

      // 2nd resume: still r1 (the 1st resume's marker never came), the caller's history again.
      c = await cutAndAccept(fake, client, c);
      const r3 = r2 + 7_000_000_000n;
      req = await c.subscribeOk(25n, { resumeFromNs: r3, historyEnd: true });
      assert.equal(req.resumeFromNs, r1, "kept across a resume whose marker did not arrive");
      assert.equal(req.sinceMs, 1000n);
      barReq = await c.subscribeOk(27n, { historyEnd: true });
      assert.equal(barReq.sinceMs, 2000n);
      await until(client, "reconnected");
      // This replay ends: the caller's history is complete from here on, and r3 is taken.
      const bar = create(pb.RecordSchema, {
        kind: {
          case: "bar",
          value: { topic: "A", interval: pb.Mode.SECOND, startMs: 1_800_000_000_000n, count: 1n },
        },
      });
      c.batch(1n, [tick("B", 1n, 0n, tsA + 1_000_000n), bar, historyEnd(25n), historyEnd(27n)]);
      const ends = (await until(client, "history_end")).concat(await until(client, "history_end"));
      assert.deepEqual(
        ends.filter((e) => e.type === "history_end").map((e) => e.type === "history_end" && e.subscription),
        [handle, bars],
      );

      // 3rd resume: the 2nd resume's r3 (its marker arrived), and since_ms by what was received.
      // Its own r3 + 1 is offered and its marker announced, but the cut comes first.
      c = await cutAndAccept(fake, client, c);
      req = await c.subscribeOk(35n, { resumeFromNs: r3 + 1n, historyEnd: true });
      assert.equal(req.resumeFromNs, r3, "the value of the resume whose marker arrived");
      assert.equal(req.sinceMs, 1_900_000_000_001n - 1000n);
      assert.equal(req.backfill, 0);
      assert.deepEqual(
        req.resumeAfter.map((p) => [p.topic, p.afterSeq]),
        [
          ["A", 1n],
          ["B", 1n],
        ],
      );
      barReq = await c.subscribeOk(37n);
      assert.equal(barReq.sinceMs, 1_800_000_000_000n - 1000n, "bars: by time once their history came");
      await until(client, "reconnected");

      // 4th resume: still r3 (the 3rd resume's marker never came).
      c = await cutAndAccept(fake, client, c);
      req = await c.subscribeOk(45n, { resumeFromNs: r3 + 2n, historyEnd: true });
      assert.equal(req.resumeFromNs, r3);
      await c.subscribeOk(47n);
      await until(client, "reconnected");
      assert.equal(client.stats.historyResends, 4, "the 1st and 2nd resumes' two each");
    } finally {
      await client.close();
    }
  });
});

test("a cut backfill is asked again until a marker or none is announced; no resume_from_ns until one is given", async () => {
  await withFake(async (fake) => {
    const [client, conn] = await open(fake, { reconnect: { initialBackoffMs: 10, resumeLookbackMs: 1000 } });
    try {
      // The first SUBSCRIBE_OK carries no resume_from_ns (a server without the extension).
      const subscribing = client.subscribe("tick", ["A", "B"], { backfill: 3 });
      const first = await conn.subscribeOk(5n, { historyEnd: true });
      assert.equal(first.backfill, 3);
      await subscribing;
      conn.batch(1n, [tick("A", 7n, 6n, 1_000_000_000n)]);
      await until(client, "batch");

      let c = await cutAndAccept(fake, client, conn);
      const r = 1_765_000_000_000_000_001n;
      let req = await c.subscribeOk(6n, { resumeFromNs: r, historyEnd: true });
      assert.equal(req.resumeFromNs, 0n, "none held yet");
      assert.equal(req.backfill, 3, "cut before the marker: the caller's backfill again");
      assert.equal(req.sinceMs, 0n, "backfill and since_ms are exclusive");
      assert.deepEqual(
        req.resumeAfter.map((p) => [p.topic, p.afterSeq]),
        [["A", 7n]],
      );
      await until(client, "reconnected");

      // Cut again before this replay's marker: backfill again, and the first non-zero value.
      // This server announces no marker (history_end false): none is waited for any more, and
      // its r + 9 is never taken (no marker of that resume arrives).
      c = await cutAndAccept(fake, client, c);
      req = await c.subscribeOk(8n, { resumeFromNs: r + 9n });
      assert.equal(req.resumeFromNs, r);
      assert.equal(req.backfill, 3);
      await until(client, "reconnected");
      assert.equal(client.stats.historyResends, 2);

      c = await cutAndAccept(fake, client, c);
      req = await c.subscribeOk(9n, { resumeFromNs: r + 10n, historyEnd: true });
      assert.equal(req.resumeFromNs, r);
      assert.equal(req.backfill, 0, "no marker announced: no backfill any more");
      assert.ok(req.sinceMs > 0n);
      await until(client, "reconnected");
      assert.equal(client.stats.historyResends, 2);
    } finally {
      await client.close();
    }
  });
});

test("protocol violations close the client without retrying", async () => {
  const cases: Array<[string, (conn: FakeConn) => void, RegExp]> = [
    [
      "a frame over MAX_MSG_SIZE",
      (c) => c.raw(Uint8Array.from([0, 0x01, 0x00, 0x02, FrameType.DATA_BATCH])),
      /exceeds MAX_MSG_SIZE 65536/,
    ],
    ["a length of 0", (c) => c.raw(Uint8Array.from([0, 0, 0, 0])), /length 0/],
    [
      "a client-only frame type",
      (c) => c.raw(encodeFrame(FrameType.SUBSCRIBE, new Uint8Array(0))),
      /unexpected frame type 3/,
    ],
    [
      "an unparsable DATA_BATCH",
      (c) => c.raw(encodeFrame(FrameType.DATA_BATCH, Uint8Array.from([0x12, 0x09]))),
      /unparsable DATA_BATCH/,
    ],
  ];
  for (const [what, act, message] of cases) {
    await withFake(async (fake) => {
      const [client, conn] = await open(fake, { reconnect: { initialBackoffMs: 10 } });
      act(conn);
      await client.waitClosed();
      assert.equal(client.closeReason?.kind, "protocol", what);
      assert.match(client.closeReason!.message, message, what);
      assert.equal(client.stats.reconnectAttempts, 0, what);
    });
  }
});

test("a frame before AUTH_OK other than ERROR fails connect as a protocol error", async () => {
  await withFake(async (fake) => {
    const connecting = connect({ port: fake.port, username: "u", password: "p" });
    const conn = await fake.conn();
    await conn.next(FrameType.AUTH);
    conn.raw(encodeFrame(FrameType.HEARTBEAT, new Uint8Array(0)));
    await assert.rejects(connecting, { kind: "protocol", message: /frame type 9 before AUTH_OK/ });
  });
});
