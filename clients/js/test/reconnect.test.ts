// Reconnect and resume against the real server: cut connections (through a TCP proxy) while
// ticks and bars flow, SIGTERM drains and kill -9 restarts, and the errors that end retrying.

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import { ClientClosed, ErrorCode, connect } from "@tickwire/client";
import type { Bar, TickwireEvent } from "@tickwire/client";

import { Collector, Proxy } from "./support/net.js";
import {
  PASSWORD,
  ServerProcess,
  USER,
  tempDir,
  uniqueTopic,
  withServer,
  writeUsersFile,
} from "./support/server.js";

const FAST_RETRY = { initialBackoffMs: 20, maxBackoffMs: 200 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const barKey = (b: Bar): string =>
  [b.topic, b.startMs, b.count, b.open, b.high, b.low, b.close, b.volume].join("|");

test("resume after cut connections is lossless and without duplicates (ticks and bars)", async () => {
  await withServer({}, async (s) => {
    const proxy = await new Proxy(s.port).start();
    const base = uniqueTopic("cut");
    const topics = [`${base}.A`, `${base}.B`];
    const consumer = await connect({
      port: proxy.port,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    const reference = await connect({ port: s.port, username: USER, password: PASSWORD });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
    try {
      for (const c of [consumer, reference]) {
        await c.subscribe("tick", topics);
        await c.subscribe("second", topics);
      }
      const got = new Collector(consumer);
      const ref = new Collector(reference);
      const rounds = 30;
      const perRound = 10;
      for (let r = 0; r < rounds; r++) {
        const ticks = topics.flatMap((t) =>
          Array.from({ length: perRound }, () => [t, 100 + r, 1] as [string, number, number]),
        );
        await producer.publish(ticks, { ack: true });
        if (r === 8 || r === 16 || r === 24) {
          // Back from the last cut first, so that each cut breaks an open connection.
          await got.wait(() => consumer.state === "open", "the reconnect");
          proxy.cut(); // ticks and bars of this round and earlier ones are in flight
        }
        await sleep(30);
      }
      const n = BigInt(rounds * perRound);
      const complete = (c: Collector): boolean =>
        topics.every((t) => {
          const ts = c.ticks(t);
          return (
            ts.length > 0 && ts.at(-1)!.seq === n && c.bars(t).reduce((sum, b) => sum + b.count, 0n) === n
          );
        });
      await ref.wait(() => complete(ref), "the reference's bars");
      await got.wait(() => complete(got), "every tick and bar through the proxy");
      for (const t of topics) {
        assert.deepEqual(
          got.ticks(t).map((x) => x.seq),
          Array.from({ length: Number(n) }, (_, i) => BigInt(i + 1)),
        );
        assert.deepEqual(got.bars(t).map(barKey), ref.bars(t).map(barKey));
      }
      const stats = consumer.stats;
      assert.equal(stats.disconnects, 3);
      assert.equal(stats.reconnects, 3);
      // Whether a resume re-sends a bar (dropped as a duplicate) depends on where the cut falls
      // in its second: the sequences above are the property, not that count.
      assert.equal(stats.tickGaps, 0);
      const back = got.of("reconnected");
      assert.equal(back.length, 3);
      assert.ok(back.every((e) => e.resubscribed === 2));
    } finally {
      await Promise.all([consumer.close(), reference.close(), producer.close()]);
      await proxy.close();
    }
  });
});

for (const how of ["drain", "kill9"] as const) {
  test(`a server restart (${how}): reconnect, resume, and the new numbering taken without duplicates`, async () => {
    const s = await new ServerProcess().start();
    const topic = uniqueTopic(`restart-${how}`);
    const consumer = await connect({
      port: s.port,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    const producer = await connect({
      port: s.port,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    try {
      const handle = await consumer.subscribe("tick", [topic]);
      const got = new Collector(consumer);
      await producer.publish(
        [0, 1, 2, 3, 4].map((i) => [topic, i, 1] as [string, number, number]),
        { ack: true },
      );
      await got.wait(() => got.records.length === 5, "5 ticks");
      const oldEpoch = consumer.authInfo.streamEpoch;
      const oldTopicEpoch = got.ticks(topic)[0]!.topicEpoch;

      if (how === "drain") assert.equal(await s.stop("SIGTERM"), 0);
      else await s.kill();
      await got.wait(() => got.of("reconnecting").length > 0, "a reconnecting event");
      const lost = got.of("disconnected")[0]!.reason;
      if (how === "drain") {
        assert.equal(lost.code, ErrorCode.SERVER_DRAINING);
        assert.ok(lost.retryAfterMs >= 100 && lost.retryAfterMs <= 999, `retry after ${lost.retryAfterMs}`);
        const first = got.of("reconnecting")[0]!;
        assert.ok(
          first.delayMs >= lost.retryAfterMs && first.delayMs <= lost.retryAfterMs * 1.5,
          `waited ${first.delayMs} for retry_after_ms ${lost.retryAfterMs}`,
        );
      } else {
        assert.equal(lost.kind, "io");
      }
      await s.start(); // same port, empty history
      await got.wait(() => got.of("reconnected").length > 0, "the reconnect");
      const back = got.of("reconnected")[0]!;
      assert.equal(back.resubscribed, 1);
      // Restarted without its history: another stream, and the resume by seq is told that what
      // followed seq 5 of the old numbering is lost.
      assert.equal(back.previousStreamEpoch, oldEpoch);
      assert.ok(back.streamEpochChanged && back.streamEpoch !== 0n);
      assert.equal(consumer.stats.streamEpochChanges, 1);
      await got.wait(() => got.of("history_end").length > 0, "the end of the resumed history");
      const end = got.of("history_end")[0]!;
      assert.equal(end.subscription, handle);
      assert.ok(end.truncated && end.epochChanged);
      assert.deepEqual(
        end.lost.map((l) => [l.topic, l.fromSeq, l.topicEpoch]),
        [[topic, 6n, oldTopicEpoch]],
      );

      // The producer's publish waits for its own reconnect.
      await producer.publish(
        [5, 6, 7].map((i) => [topic, i, 1] as [string, number, number]),
        { ack: true },
      );
      await got.wait(() => got.records.length === 8, "3 more ticks");
      const ticks = got.ticks(topic);
      assert.deepEqual(
        ticks.map((t) => t.price),
        [0, 1, 2, 3, 4, 5, 6, 7],
      );
      // The new server numbers from 1 again: a fresh numbering, not duplicates.
      assert.deepEqual(
        ticks.map((t) => t.seq),
        [1n, 2n, 3n, 4n, 5n, 1n, 2n, 3n],
      );
      assert.equal(consumer.stats.duplicatesDropped, 0);
      assert.equal(consumer.state, "open");
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
      await s.stop();
    }
  });
}

test("requests made while reconnecting wait for the connection", async () => {
  const s = await new ServerProcess().start();
  const topic = uniqueTopic("waits");
  const client = await connect({
    port: s.port,
    username: USER,
    password: PASSWORD,
    reconnect: FAST_RETRY,
    requestTimeoutMs: 10000,
  });
  try {
    await s.kill();
    await new Promise<void>((resolve) => {
      const poll = (): void => (client.state === "reconnecting" ? resolve() : void setTimeout(poll, 5));
      poll();
    });
    let settled = false;
    const subscribing = client.subscribe("tick", [topic]).finally(() => {
      settled = true;
    });
    await sleep(200);
    assert.equal(settled, false);
    assert.equal(client.state, "reconnecting");
    await s.start();
    const handle = await subscribing;
    assert.equal(await client.publish([[topic, 1, 1]], { ack: true }), 1);
    for (;;) {
      const ev = await client.nextEvent(5000);
      assert.ok(ev !== undefined);
      if (ev.type === "batch") break;
    }
    assert.deepEqual(client.subscriptions, [handle]);
  } finally {
    await client.close();
    await s.stop();
  }
});

test("a subscription the server refuses on resume is dropped and reported", async () => {
  const users = join(tempDir("users"), "users");
  writeUsersFile(users, [["viewer", "pw", "publish=* subscribe=*"]]);
  const s = await new ServerProcess({
    USERS_FILE: users,
    STREAM_USER: undefined,
    STREAM_PASS: undefined,
  }).start();
  const client = await connect({ port: s.port, username: "viewer", password: "pw", reconnect: FAST_RETRY });
  try {
    await client.subscribe("tick", ["EQ.AAPL"]);
    const keep = await client.subscribe("tick", ["FX.EURUSD"]);
    const got = new Collector(client);
    await s.stop();
    writeUsersFile(users, [["viewer", "pw", "publish=* subscribe=FX.*"]]);
    await s.start();
    await got.wait(() => got.of("reconnected").length > 0, "the reconnect");
    assert.equal(got.of("reconnected")[0]!.resubscribed, 1);
    const refused = got.of("error").filter((e) => e.error.code === ErrorCode.FORBIDDEN);
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.error.message, /resuming subscription 1 failed/);
    assert.deepEqual(client.subscriptions, [keep]);
    assert.equal(client.stats.resubscribeFailures, 1);
  } finally {
    await client.close();
    await s.stop();
  }
});

test("AUTH_FAILED on reconnect closes the client", async () => {
  const s = await new ServerProcess().start();
  const client = await connect({ port: s.port, username: USER, password: PASSWORD, reconnect: FAST_RETRY });
  try {
    await s.stop();
    s.overrides.STREAM_PASS = "rotated";
    await s.start();
    await client.waitClosed();
    assert.equal(client.closeReason?.code, ErrorCode.AUTH_FAILED);
    await assert.rejects(client.subscribe("tick", ["A"]), ClientClosed);
  } finally {
    await s.stop();
  }
});

test("reconnecting gives up after maxAttempts", async () => {
  const s = await new ServerProcess().start();
  const client = await connect({
    port: s.port,
    username: USER,
    password: PASSWORD,
    reconnect: { initialBackoffMs: 10, maxAttempts: 3 },
  });
  await s.kill();
  const events: TickwireEvent[] = [];
  for await (const ev of client) events.push(ev);
  const retries = events.filter(
    (e): e is Extract<TickwireEvent, { type: "reconnecting" }> => e.type === "reconnecting",
  );
  assert.deepEqual(
    retries.map((e) => e.attempt),
    [1, 2, 3],
  );
  assert.deepEqual(
    retries.slice(1).map((e) => e.reason.kind),
    ["connect", "connect"],
  );
  assert.match(client.closeReason!.message, /gave up reconnecting after 3 attempts/);
  const last = events.at(-1);
  assert.ok(last?.type === "error" && last.error.fatal);
  assert.equal(client.stats.reconnectAttempts, 3);
});

test("without reconnect, a lost connection closes the client", async () => {
  const s = await new ServerProcess().start();
  const client = await connect({ port: s.port, username: USER, password: PASSWORD, reconnect: false });
  assert.equal(await s.stop("SIGTERM"), 0);
  await client.waitClosed();
  assert.equal(client.closeReason?.code, ErrorCode.SERVER_DRAINING);
  assert.equal(client.stats.reconnectAttempts, 0);
});

test("an acked publish in flight when the connection breaks fails (at most once)", async () => {
  await withServer({}, async (s) => {
    const proxy = await new Proxy(s.port).start();
    const client = await connect({
      port: proxy.port,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    try {
      // Nothing gets through: the proxy's upstream is cut right after the frame is written.
      proxy.accepting = false;
      const publishing = client.publish([[uniqueTopic("inflight"), 1, 1]], { ack: true });
      proxy.cut();
      await assert.rejects(publishing, (e: unknown) => (e as { kind?: string }).kind === "io");
    } finally {
      await client.close();
      await proxy.close();
    }
  });
});
