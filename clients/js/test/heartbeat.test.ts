// Heartbeats against the real server (HEARTBEAT_INTERVAL 200ms, HEARTBEAT_TIMEOUT 600ms).

import assert from "node:assert/strict";
import { test } from "node:test";

import { ErrorCode, connect } from "@tickwire/client";
import type { TickwireEvent } from "@tickwire/client";

import { PASSWORD, USER, uniqueTopic, withServer } from "./support/server.js";

const FAST = { HEARTBEAT_INTERVAL: "200ms", HEARTBEAT_TIMEOUT: "600ms" };

test("heartbeats at the server's interval keep a quiet connection alive", async () => {
  await withServer(FAST, async (s) => {
    const topic = uniqueTopic("quiet");
    const client = await connect({ port: s.port, username: USER, password: PASSWORD, reconnect: false });
    try {
      assert.equal(client.authInfo.heartbeatIntervalMs, 200);
      await client.subscribe("tick", [topic]);
      // Three heartbeat timeouts of silence from our side but for HEARTBEATs.
      assert.equal(await client.nextEvent(2000), undefined);
      assert.equal(client.state, "open");
      const stats = client.stats;
      assert.ok(stats.heartbeatsSent >= 6, JSON.stringify(stats));
      assert.ok(stats.heartbeatEchoes >= 5, JSON.stringify(stats));
      assert.equal(await client.publish([[topic, 1, 1]], { ack: true }), 1);
      assert.equal((await client.nextEvent(5000))?.type, "batch");
    } finally {
      await client.close();
    }
  });
});

test("without heartbeats the server drops the client with HEARTBEAT_TIMEOUT", async () => {
  await withServer(FAST, async (s) => {
    // Heartbeating far slower than the server requires, and no reconnect.
    const client = await connect({
      port: s.port,
      username: USER,
      password: PASSWORD,
      reconnect: false,
      heartbeatIntervalMs: 30000,
      idleTimeoutMs: 0,
    });
    const events: TickwireEvent[] = [];
    for await (const ev of client) events.push(ev);
    assert.equal(events.length, 1);
    const [ev] = events;
    assert.ok(ev?.type === "error");
    assert.equal(ev.error.code, ErrorCode.HEARTBEAT_TIMEOUT);
    assert.equal(ev.error.fatal, true);
    assert.equal(client.closed, true);
    assert.equal(client.closeReason?.code, ErrorCode.HEARTBEAT_TIMEOUT);
  });
});

test("a HEARTBEAT_TIMEOUT is retried when reconnect is on", async () => {
  await withServer(FAST, async (s) => {
    const topic = uniqueTopic("hbretry");
    const client = await connect({
      port: s.port,
      username: USER,
      password: PASSWORD,
      heartbeatIntervalMs: 30000,
      idleTimeoutMs: 0,
      reconnect: { initialBackoffMs: 10 },
    });
    try {
      await client.subscribe("tick", [topic]);
      const events: TickwireEvent[] = [];
      while (!events.some((e) => e.type === "reconnected")) {
        const ev = await client.nextEvent(5000);
        assert.ok(ev !== undefined, JSON.stringify(events.map((e) => e.type)));
        events.push(ev);
      }
      const [notice, lost, retrying] = events;
      assert.ok(notice?.type === "error" && !notice.error.fatal);
      assert.equal(notice.error.code, ErrorCode.HEARTBEAT_TIMEOUT);
      assert.match(notice.error.message, /\(reconnecting\)/);
      assert.equal(lost?.type, "disconnected");
      assert.ok(retrying?.type === "reconnecting" && retrying.attempt === 1);
      const epoch = client.authInfo.streamEpoch;
      assert.deepEqual(events.at(-1), {
        type: "reconnected",
        attempt: 1,
        resubscribed: 1,
        previousStreamEpoch: epoch,
        streamEpoch: epoch,
        streamEpochChanged: false,
      });
    } finally {
      await client.close();
    }
  });
});
