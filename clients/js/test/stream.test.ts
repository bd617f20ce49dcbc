// Subscribing and publishing against the real server: ticks and bars, backfill and since_ms,
// the ERROR paths, bigint exactness, backpressure.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  ClientClosed,
  ErrorCode,
  Mode,
  ServerError,
  TickwireError,
  connect,
  msToDate,
  nowNs,
} from "@tickwire/client";
import type { Bar, Client, DataRecord, Tick, TickwireEvent } from "@tickwire/client";

import { takeRecords } from "./support/net.js";
import {
  PASSWORD,
  ServerProcess,
  USER,
  freshSecondNs,
  tempDir,
  uniqueTopic,
  writeUsersFile,
} from "./support/server.js";

let server: ServerProcess;
before(async () => {
  server = await new ServerProcess().start();
});
after(async () => {
  await server.stop();
});

function open(extra: Partial<Parameters<typeof connect>[0]> = {}, s = server): Promise<Client> {
  return connect({ port: s.port, username: USER, password: PASSWORD, reconnect: false, ...extra });
}

const take = (client: Client, n: number, timeoutMs = 5000): Promise<DataRecord[]> =>
  takeRecords(client, n, timeoutMs);

const ticks = (rs: DataRecord[]): Tick[] => rs.filter((r): r is Tick => r.kind === "tick");

test("subscribe, publish with ack, receive ticks with seq, prev_seq and exact ts_ns", async () => {
  const topic = uniqueTopic("ticks");
  const consumer = await open();
  const producer = await open();
  try {
    const handle = await consumer.subscribe("tick", [topic]);
    assert.equal(handle, 1);
    assert.deepEqual(consumer.subscriptions, [1]);
    // A ts_ns with all nine digits significant (far above 2^53), and one the server stamps.
    const ts = nowNs() - 1_000_000_000n + 123_456_789n - (nowNs() % 1_000_000_000n);
    const accepted = await producer.publish(
      [{ topic, price: 187.25, size: 100, tsNs: ts }, [topic, 187.5, 50], [topic, 188, 0.001, ts + 1n]],
      { ack: true },
    );
    assert.equal(accepted, 3);
    const got = ticks(await take(consumer, 3));
    assert.deepEqual(
      got.map((t) => [t.topic, t.price, t.size, t.seq, t.prevSeq]),
      [
        [topic, 187.25, 100, 1n, 0n],
        [topic, 187.5, 50, 2n, 1n],
        [topic, 188, 0.001, 3n, 2n],
      ],
    );
    assert.equal(got[0]!.tsNs, ts);
    assert.equal(got[2]!.tsNs, ts + 1n);
    assert.ok(ts > 1n << 53n);
    assert.equal(typeof got[1]!.tsNs, "bigint");
    const stamped = got[1]!.tsNs;
    assert.ok(stamped > ts && stamped < nowNs() + 1_000_000n, "stamped by the server on receipt");
    const stats = consumer.stats;
    assert.equal(stats.records, 3);
    assert.equal(stats.duplicatesDropped, 0);
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("SECOND bars: OHLC, volume, count and vwap of the ticks in a second", async () => {
  const topic = uniqueTopic("bars");
  const consumer = await open();
  const producer = await open();
  try {
    await consumer.subscribe(Mode.SECOND, [topic]);
    const second = await freshSecondNs();
    const prices: Array<[number, number]> = [
      [10, 1],
      [12, 2],
      [9, 1],
      [11, 4],
    ];
    await producer.publish(
      prices.map(([p, s], i) => ({ topic, price: p, size: s, tsNs: second + BigInt(i) * 1_000_000n })),
      { ack: true },
    );
    const [bar] = (await take(consumer, 1, 4000)) as Bar[];
    assert.equal(bar!.kind, "bar");
    assert.equal(bar!.interval, Mode.SECOND);
    assert.equal(bar!.startMs, second / 1_000_000n);
    assert.deepEqual(
      [bar!.open, bar!.high, bar!.low, bar!.close, bar!.volume, bar!.count],
      [10, 12, 9, 11, 8, 4n],
    );
    assert.ok(Math.abs(bar!.vwap - (10 + 24 + 9 + 44) / 8) < 1e-9);
    assert.equal(msToDate(bar!.startMs).getTime() % 1000, 0);
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("backfill: the N most recent retained ticks first, then live ones, no gap or duplicate", async () => {
  const topic = uniqueTopic("backfill");
  const producer = await open();
  const consumer = await open();
  try {
    await producer.publish(
      [1, 2, 3, 4, 5].map((i) => [topic, i, 1] as [string, number, number]),
      { ack: true },
    );
    await consumer.subscribe("tick", topic, { backfill: 3 });
    // The replay takes what is retained when it reaches the topic (PROTOCOL S8b): publish the
    // live tick once the replayed ones are in, or it may be one of the 3 newest.
    const replayed = await take(consumer, 3);
    await producer.publish([[topic, 6, 1]], { ack: true });
    const got = ticks([...replayed, ...(await take(consumer, 1))]);
    assert.deepEqual(
      got.map((t) => t.seq),
      [3n, 4n, 5n, 6n],
    );
    assert.deepEqual(
      got.map((t) => t.price),
      [3, 4, 5, 6],
    );
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("sinceMs: every retained record from that time on (ms, bigint or Date)", async () => {
  const topic = uniqueTopic("since");
  const producer = await open();
  try {
    const now = nowNs();
    const s = 1_000_000_000n;
    await producer.publish(
      [
        [topic, 1, 1, now - 30n * s],
        [topic, 2, 1, now - 20n * s],
        [topic, 3, 1, now - 10n * s],
        [topic, 4, 1, now - s],
      ],
      { ack: true },
    );
    const sinceMs = (now - 15n * s) / 1_000_000n;
    for (const since of [sinceMs, Number(sinceMs), new Date(Number(sinceMs))]) {
      const consumer = await open();
      try {
        const handle = await consumer.subscribe("tick", [topic], { sinceMs: since });
        assert.deepEqual(
          ticks(await take(consumer, 2)).map((t) => t.price),
          [3, 4],
        );
        // The replay is over (nothing older came): the end of history follows its records.
        const end = await consumer.nextEvent(3000);
        assert.ok(end?.type === "history_end", `got ${end?.type}`);
        assert.equal(end.subscription, handle);
        assert.equal(end.truncated, false);
        assert.equal(await consumer.nextEvent(100), undefined, "nothing older");
      } finally {
        await consumer.close();
      }
    }
  } finally {
    await producer.close();
  }
});

test("watermarks: one per second, after the bars of their second (opt-in)", async () => {
  const topic = uniqueTopic("watermarks");
  const consumer = await open({ watermarks: true });
  const producer = await open();
  try {
    assert.ok(consumer.authInfo.barCloseDelayMs > 0);
    await consumer.subscribe(Mode.SECOND, [topic]);
    const second = await freshSecondNs();
    await producer.publish([{ topic, price: 5, size: 1, tsNs: second }], { ack: true });
    const secondMs = second / 1_000_000n;
    const got: DataRecord[] = [];
    const isFinal = (r: DataRecord) => r.kind === "watermark" && r.startMs >= secondMs;
    const deadline = Date.now() + 5000;
    while (!got.some(isFinal) && Date.now() < deadline) {
      const ev = await consumer.nextEvent(500);
      if (ev?.type === "batch") got.push(...ev.records);
    }
    const final = got.findIndex(isFinal);
    const bars = got.flatMap((r, i) => (r.kind === "bar" ? [i] : []));
    assert.equal(bars.length, 1);
    assert.ok(bars[0]! < final, "the bar comes before the watermark of its second");
    const marks = got.flatMap((r) => (r.kind === "watermark" ? [r] : []));
    for (const m of marks) assert.equal(m.interval, Mode.SECOND);
    for (let i = 1; i < marks.length; i++) assert.ok(marks[i]!.startMs > marks[i - 1]!.startMs);
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("closed bars are retained: backfill replays them, and '*' covers every topic", async () => {
  const topic = uniqueTopic("barhistory");
  const producer = await open();
  const watcher = await open();
  try {
    await watcher.subscribe("second", [topic]);
    const second = await freshSecondNs();
    await producer.publish([{ topic, price: 5, size: 1, tsNs: second }], { ack: true });
    const [live] = await take(watcher, 1, 4000);
    const late = await open();
    try {
      await late.subscribe("second", "*", { backfill: 1 });
      const got: Bar[] = [];
      const deadline = Date.now() + 4000;
      while (!got.some((b) => b.topic === topic) && Date.now() < deadline) {
        const ev = await late.nextEvent(500);
        if (ev?.type === "batch") got.push(...(ev.records as Bar[]));
      }
      const mine = got.filter((b) => b.topic === topic);
      assert.equal(mine.length, 1);
      assert.deepEqual(mine[0], live);
    } finally {
      await late.close();
    }
  } finally {
    await producer.close();
    await watcher.close();
  }
});

test("unsubscribe stops delivery; records() yields records only", async () => {
  const [a, b] = [uniqueTopic("unsubA"), uniqueTopic("unsubB")];
  const consumer = await open();
  const producer = await open();
  try {
    const ha = await consumer.subscribe("tick", [a]);
    const hb = await consumer.subscribe("tick", [b]);
    assert.equal(hb, ha + 1);
    await consumer.unsubscribe(ha);
    assert.deepEqual(consumer.subscriptions, [hb]);
    await assert.rejects(consumer.unsubscribe(ha), { kind: "invalid_argument" });
    await producer.publish(
      [
        [a, 1, 1],
        [b, 2, 1],
      ],
      { ack: true },
    );
    const it = consumer.records();
    const first = await it.next();
    assert.equal((first.value as Tick).topic, b);
    assert.equal(await consumer.nextEvent(200), undefined, "nothing for the unsubscribed topic");
    await it.return();
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("ERROR paths: invalid SUBSCRIBE and PUBLISH are refused with INVALID_REQUEST", async () => {
  const topic = uniqueTopic("errors");
  const client = await open();
  try {
    await assert.rejects(client.subscribe("tick", ["bad topic!"]), (e: unknown) => {
      assert.ok(e instanceof ServerError);
      assert.equal(e.code, ErrorCode.INVALID_REQUEST);
      assert.equal(e.fatal, false);
      assert.ok(e.requestId > 0);
      return true;
    });
    await assert.rejects(client.subscribe("tick", [topic], { backfill: 1, sinceMs: 1n }), {
      code: ErrorCode.INVALID_REQUEST,
    });
    await assert.rejects(client.subscribe("tick", []), { code: ErrorCode.INVALID_REQUEST });
    await assert.rejects(client.subscribe("hour" as never, [topic]), TypeError);
    await assert.rejects(client.subscribe("tick", [topic], { backfill: -1 }), TypeError);
    await assert.rejects(client.subscribe("tick", [topic], { sinceMs: 1.5 }), TypeError);
    // With ack: the call rejects, naming the bad tick; nothing of the frame is applied.
    await assert.rejects(
      client.publish(
        [
          [topic, 1, 1],
          [topic, 1, -1],
        ],
        { ack: true },
      ),
      (e: unknown) => {
        assert.ok(e instanceof ServerError);
        assert.equal(e.code, ErrorCode.INVALID_REQUEST);
        assert.match(e.detail, /^ticks\[1\]/);
        return true;
      },
    );
    await assert.rejects(client.publish([["*", 1, 1]], { ack: true }), { code: ErrorCode.INVALID_REQUEST });
    await assert.rejects(client.publish([[topic, Number.NaN, 1]], { ack: true }), {
      code: ErrorCode.INVALID_REQUEST,
    });
    await assert.rejects(client.publish([[topic, 1, 1, nowNs() + 60_000_000_000n]], { ack: true }), {
      code: ErrorCode.INVALID_REQUEST,
    });
    // Without ack: the rejection arrives as an event.
    assert.equal(await client.publish([[topic, 1, -1]]), 1);
    const ev = await client.nextEvent(3000);
    assert.ok(ev?.type === "error", `got ${ev?.type}`);
    assert.equal(ev.error.code, ErrorCode.INVALID_REQUEST);
    assert.ok(ev.error.requestId > 0);
    // The connection carries on, and the rejected frames advanced no seq.
    await client.subscribe("tick", [topic], { backfill: 10 });
    assert.equal(await client.publish([[topic, 2, 1]], { ack: true }), 1);
    assert.deepEqual(
      ticks(await take(client, 1)).map((t) => t.seq),
      [1n],
    );
    assert.equal(client.state, "open");
  } finally {
    await client.close();
  }
});

test("TOPIC_LIMIT reports refused ticks; the acked publish resolves to the ticks applied", async () => {
  const s = await new ServerProcess({ MAX_TOPICS: "2", WORKERS: "1" }).start();
  const client = await open({}, s);
  try {
    // Server-stamped ticks keep their bars open: two topics fill the cap, three are refused.
    const ticks = [0, 1, 2, 3, 4].map((i) => [`cap.${i}`, 1, 1] as [string, number, number]);
    assert.equal(await client.publish(ticks, { ack: true }), 2);
    const ev = await client.nextEvent(5000);
    assert.ok(ev?.type === "error", `got ${ev?.type}`);
    assert.equal(ev.error.code, ErrorCode.TOPIC_LIMIT);
    assert.equal(ev.error.codeName, "TOPIC_LIMIT");
    assert.equal(ev.error.fatal, false);
    assert.ok(ev.error.requestId !== 0);
    assert.match(ev.error.message, /3 of 5 ticks/);
    assert.equal(await client.publish([["cap.0", 2, 1]], { ack: true }), 1); // held topics flow
    assert.equal(client.state, "open");
  } finally {
    await client.close();
    await s.stop();
  }
});

test("FORBIDDEN outside the user's permissions, for SUBSCRIBE and PUBLISH", async () => {
  const users = writeUsersFile(join(tempDir("users"), "users"), [
    ["viewer", "pw", "publish=FX.* subscribe=FX.*"],
  ]);
  const s = await new ServerProcess({
    USERS_FILE: users,
    STREAM_USER: undefined,
    STREAM_PASS: undefined,
  }).start();
  const client = await connect({ port: s.port, username: "viewer", password: "pw", reconnect: false });
  try {
    await assert.rejects(client.subscribe("tick", ["EQ.AAPL"]), { code: ErrorCode.FORBIDDEN });
    await assert.rejects(
      client.publish(
        [
          ["FX.EURUSD", 1.1, 1],
          ["EQ.AAPL", 1, 1],
        ],
        { ack: true },
      ),
      (e: unknown) =>
        e instanceof ServerError && e.code === ErrorCode.FORBIDDEN && e.detail.startsWith("ticks[1]"),
    );
    await client.subscribe("tick", ["FX.EURUSD"]);
    assert.equal(await client.publish([["FX.EURUSD", 1.1, 1]], { ack: true }), 1);
    assert.equal((await take(client, 1)).length, 1);
  } finally {
    await client.close();
    await s.stop();
  }
});

test("a PUBLISH over MAX_MSG_SIZE is refused before sending; frames from the server stay within it", async () => {
  const s = await new ServerProcess({ MAX_MSG_SIZE: "1024" }).start();
  const topic = uniqueTopic("maxmsg");
  const client = await open({}, s);
  try {
    assert.equal(client.authInfo.maxMsgSize, 1024);
    const many = Array.from({ length: 100 }, (_, i) => [topic, i, 1] as [string, number, number]);
    await assert.rejects(client.publish(many, { ack: true }), (e: unknown) => {
      assert.ok(e instanceof TickwireError);
      assert.equal(e.kind, "invalid_argument");
      assert.match(e.message, /over the server's MAX_MSG_SIZE 1024/);
      return true;
    });
    // Many small frames whose records the server must split over several DATA_BATCHes.
    await client.subscribe("tick", [topic]);
    for (let i = 0; i < 4; i++) await client.publish(many.slice(i * 25, i * 25 + 25), { ack: true });
    const got = ticks(await take(client, 100));
    assert.deepEqual(
      got.map((t) => t.seq),
      Array.from({ length: 100 }, (_, i) => BigInt(i + 1)),
    );
    assert.ok(client.stats.batches >= 4);
    assert.equal(client.state, "open");
  } finally {
    await client.close();
    await s.stop();
  }
});

test("backpressure: a full queue stops reading, and nothing is lost when the reader catches up", async () => {
  const topic = uniqueTopic("backpressure");
  const consumer = await open({ queueCapacity: 2 });
  const producer = await open();
  try {
    await consumer.subscribe("tick", [topic]);
    const n = 40;
    for (let i = 1; i <= n; i++) {
      await producer.publish([[topic, i, 1]], { ack: true });
      await new Promise((r) => setTimeout(r, 2)); // one DATA_BATCH each (5 ms window)
    }
    // Wait until the client has read all it will while nobody takes events.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(consumer.stats.readPauses >= 1, "reading stopped");
    assert.ok(consumer.stats.batches < n, `only a few batches read: ${consumer.stats.batches}`);
    const got = ticks(await take(consumer, n));
    assert.deepEqual(
      got.map((t) => t.price),
      Array.from({ length: n }, (_, i) => i + 1),
    );
    assert.equal(consumer.state, "open");
  } finally {
    await consumer.close();
    await producer.close();
  }
});

test("events end with 'closed' after close(); records() ends without error", async () => {
  const client = await open();
  const seen: TickwireEvent[] = [];
  const reading = (async () => {
    for await (const r of client.records()) seen.push(r as never);
  })();
  await client.close();
  await reading;
  assert.deepEqual(seen, []);
  await assert.rejects(client.subscribe("tick", ["A"]), ClientClosed);
});
