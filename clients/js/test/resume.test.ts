// Resume by the server's numbering and the end of history (PROTOCOL.md S7a, S8c) against the
// real server: a back-dated tick published while the connection was cut is replayed exactly
// once, history_end events mark the end of each replay, and acked publishes report late ticks.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, nowNs } from "@tickwire/client";
import type { DataRecord, TickwireEvent } from "@tickwire/client";

import { Collector, Proxy } from "./support/net.js";
import { PASSWORD, USER, uniqueTopic, withServer } from "./support/server.js";

const FAST_RETRY = { initialBackoffMs: 20, maxBackoffMs: 200 };
const SECOND_NS = 1_000_000_000n;

test("a back-dated tick published while away is replayed once on reconnect (resume by seq)", async () => {
  await withServer({}, async (s) => {
    const proxy = await new Proxy(s.port).start();
    const topic = uniqueTopic("backdated");
    const other = uniqueTopic("backdated-bars");
    const consumer = await connect({ port: proxy.port, username: USER, password: PASSWORD, reconnect: FAST_RETRY });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
    try {
      assert.notEqual(consumer.authInfo.streamEpoch, 0n, "this server names its stream");
      const handle = await consumer.subscribe("tick", [topic]);
      const got = new Collector(consumer);
      await producer.publish(
        [1, 2, 3].map((p) => [topic, p, 1] as [string, number, number]),
        { ack: true },
      );
      await got.wait(() => got.ticks(topic).length === 3, "3 live ticks");
      const epoch = got.ticks(topic)[0]!.topicEpoch;
      assert.notEqual(epoch, 0n);
      assert.equal(got.of("history_end").length, 0, "no history asked for: no marker");

      proxy.accepting = false;
      proxy.cut();
      await got.wait(() => got.of("disconnected").length === 1, "the disconnect");
      // Stamped 10 s ago: below any since_ms the resume would ask for (the newest tick less the
      // 1 s lookback), but its seq is above the last one the consumer holds. Its second closed
      // long ago, so the server counts it late.
      const ack = await producer.publishAcked([[topic, 4, 1, nowNs() - 10n * SECOND_NS]]);
      assert.deepEqual(ack, { accepted: 1, late: 1 });
      assert.equal(producer.stats.lateTicks, 1);
      // A topic the consumer had not received yet resumes by since_ms (it is not listed).
      await producer.publish([[other, 1, 1]], { ack: true });
      proxy.accepting = true;

      await got.wait(() => got.of("reconnected").length === 1, "the reconnect");
      const back = got.of("reconnected")[0]!;
      assert.equal(back.resubscribed, 1);
      assert.equal(back.streamEpochChanged, false);
      assert.equal(back.streamEpoch, consumer.authInfo.streamEpoch);
      // A live tick after the reconnect: everything replayed comes before it.
      await producer.publish([[topic, 5, 1]], { ack: true });
      await got.wait(() => got.ticks(topic).some((t) => t.seq === 5n), "the live tick after the reconnect");

      const ticks = got.ticks(topic);
      assert.deepEqual(
        ticks.map((t) => t.seq),
        [1n, 2n, 3n, 4n, 5n],
      );
      assert.deepEqual(
        ticks.map((t) => t.price),
        [1, 2, 3, 4, 5],
      );
      assert.ok(ticks.every((t) => t.topicEpoch === epoch));
      assert.equal(consumer.stats.duplicatesDropped, 0, "resumed after seq 3: nothing re-sent");
      assert.equal(consumer.stats.tickGaps, 0);

      // The resumed subscription's replay ends with one marker, after the replayed tick and
      // before the live one, with nothing left out.
      const ends = got.of("history_end");
      assert.equal(ends.length, 1);
      const end = ends[0]!;
      assert.equal(end.subscription, handle);
      assert.equal(end.truncated, false);
      assert.equal(end.epochChanged, false);
      assert.deepEqual(end.lost, []);
      const order = positions(got.events);
      assert.ok(order.indexOf(`tick ${topic} 4`) < order.indexOf("history_end"));
      assert.ok(order.indexOf("history_end") < order.indexOf(`tick ${topic} 5`));
      assert.equal(consumer.stats.historyEnds, 1);
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
      await proxy.close();
    }
  });
});

// PROTOCOL.md S8c, topics without a position: a topic created while the consumer was away is
// not in resume_after, and its back-dated ticks are older than any since_ms the resume sends;
// the first SUBSCRIBE_OK's resume_from_ns brings them.
test("ticks of a topic new while away, stamped 60 s back, are replayed once (resume_from_ns)", async () => {
  await withServer({}, async (s) => {
    const proxy = await new Proxy(s.port).start();
    const seen = uniqueTopic("seen");
    const fresh = uniqueTopic("new-while-away");
    const consumer = await connect({
      port: proxy.port,
      username: USER,
      password: PASSWORD,
      reconnect: FAST_RETRY,
    });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
    try {
      await consumer.subscribe("tick", ["*"]);
      const got = new Collector(consumer);
      await producer.publish([[seen, 1, 1]], { ack: true });
      await got.wait(() => got.ticks(seen).length === 1, "a tick of a topic seen before the cut");

      proxy.accepting = false;
      proxy.cut();
      await got.wait(() => got.of("disconnected").length === 1, "the disconnect");
      const stamped = nowNs() - 60n * SECOND_NS;
      const ack = await producer.publishAcked(
        [1, 2, 3].map((p) => [fresh, p, 1, stamped + BigInt(p)] as [string, number, number, bigint]),
      );
      assert.equal(ack.accepted, 3);
      proxy.accepting = true;

      await got.wait(() => got.of("reconnected").length === 1, "the reconnect");
      await got.wait(() => got.of("history_end").length === 1, "the end of the resumed replay");
      // A live tick as a fence: a second marker or a late replayed tick would come before it.
      await producer.publish([[fresh, 4, 1]], { ack: true });
      await got.wait(() => got.ticks(fresh).some((t) => t.seq === 4n), "the live tick after the reconnect");

      assert.deepEqual(
        got.ticks(fresh).map((t) => [t.seq, t.price]),
        [
          [1n, 1],
          [2n, 2],
          [3n, 3],
          [4n, 4],
        ],
      );
      const replayed = got.ticks(fresh).slice(0, 3);
      assert.deepEqual(
        replayed.map((t) => t.tsNs),
        [stamped + 1n, stamped + 2n, stamped + 3n],
      );
      assert.deepEqual(
        got.ticks(seen).map((t) => t.seq),
        [1n],
      );
      assert.equal(consumer.stats.duplicatesDropped, 0);
      assert.equal(consumer.stats.tickGaps, 0);
      const ends = got.of("history_end");
      assert.equal(ends.length, 1, "the resumed subscription's replay ends once");
      assert.equal(ends[0]!.truncated, false);
      const order = positions(got.events);
      assert.ok(order.indexOf(`tick ${fresh} 3`) < order.indexOf("history_end"));
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
      await proxy.close();
    }
  });
});

test("a subscription with backfill yields one history_end event after its replay", async () => {
  await withServer({}, async (s) => {
    const topic = uniqueTopic("history-end");
    const consumer = await connect({ port: s.port, username: USER, password: PASSWORD });
    const producer = await connect({ port: s.port, username: USER, password: PASSWORD });
    try {
      await producer.publish(
        [1, 2, 3, 4, 5].map((p) => [topic, p, 1] as [string, number, number]),
        { ack: true },
      );
      const got = new Collector(consumer);
      const plain = await consumer.subscribe("second", [topic]); // no history: no marker
      const handle = await consumer.subscribe("tick", [topic], { backfill: 3 });
      // The replay takes what the topic retains when the server reaches it (S8b), which may be
      // after a tick published right after SUBSCRIBE_OK: the live tick waits for the marker.
      await got.wait(() => got.of("history_end").length >= 1, "the marker");
      await producer.publish([[topic, 6, 1]], { ack: true });
      await got.wait(() => got.ticks(topic).some((t) => t.seq === 6n), "the live tick");
      // One more live tick as a fence: a second marker would have come before it.
      await producer.publish([[topic, 7, 1]], { ack: true });
      await got.wait(() => got.ticks(topic).some((t) => t.seq === 7n), "the fence tick");

      const ends = got.of("history_end");
      assert.equal(ends.length, 1);
      assert.equal(ends[0]!.subscription, handle);
      assert.notEqual(ends[0]!.subscription, plain);
      assert.equal(ends[0]!.truncated, false);
      assert.equal(ends[0]!.retention, false);
      assert.equal(ends[0]!.backfillLimit, false);
      assert.deepEqual(ends[0]!.lost, []);
      assert.deepEqual(
        got.ticks(topic).map((t) => t.seq),
        [3n, 4n, 5n, 6n, 7n],
      );
      const order = positions(got.events);
      assert.ok(order.indexOf(`tick ${topic} 5`) < order.indexOf("history_end"));
    } finally {
      await Promise.all([consumer.close(), producer.close()]);
    }
  });
});

/** The events as short strings in the order they came: "tick T seq", "history_end", ... */
function positions(events: readonly TickwireEvent[]): string[] {
  const name = (r: DataRecord): string => (r.kind === "tick" ? `tick ${r.topic} ${r.seq}` : r.kind);
  return events.flatMap((e) => (e.type === "batch" ? e.records.map(name) : [e.type]));
}
