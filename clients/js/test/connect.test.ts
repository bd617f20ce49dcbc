// Connecting to the real server: AUTH_OK, refused credentials, unreachable servers, timeouts,
// options, and close().

import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, test } from "node:test";

import { ClientClosed, ErrorCode, ServerError, TickwireError, connect } from "@tickwire/client";

import { PASSWORD, ServerProcess, USER } from "./support/server.js";

let server: ServerProcess;
before(async () => {
  server = await new ServerProcess().start();
});
after(async () => {
  await server.stop();
});

test("AUTH succeeds: the server's AUTH_OK is available and the client is open", async () => {
  const client = await connect({
    port: server.port,
    username: USER,
    password: PASSWORD,
    clientName: "js-test",
  });
  try {
    assert.equal(client.state, "open");
    const a = client.authInfo;
    assert.equal(a.protocolVersion, 1);
    assert.equal(a.heartbeatIntervalMs, 15000);
    assert.equal(a.heartbeatTimeoutMs, 20000);
    assert.equal(a.maxMsgSize, 65536);
    assert.ok(a.sessionId.length > 0);
    assert.ok(a.serverVersion.length > 0);
    assert.equal(client.target, `127.0.0.1:${server.port}`);
  } finally {
    await client.close();
  }
  assert.equal(client.state, "closed");
  assert.equal(client.closeReason, undefined);
  assert.deepEqual(await client.nextEvent(0), { type: "closed", reason: undefined });
});

test("a url names the server too", async () => {
  const client = await connect({ url: `tcp://127.0.0.1:${server.port}`, username: USER, password: PASSWORD });
  assert.equal(client.state, "open");
  await client.close();
});

test("wrong credentials reject connect with AUTH_FAILED, without retrying", async () => {
  const started = Date.now();
  await assert.rejects(connect({ port: server.port, username: USER, password: "wrong" }), (e: unknown) => {
    assert.ok(e instanceof ServerError);
    assert.equal(e.code, ErrorCode.AUTH_FAILED);
    assert.equal(e.codeName, "AUTH_FAILED");
    assert.equal(e.fatal, true);
    assert.ok(!e.message.includes("wrong"), "the message never repeats the password");
    return true;
  });
  assert.ok(Date.now() - started < 3000);
});

test("too many failed AUTHs: AUTH_RATE_LIMITED with retry_after_ms", async () => {
  const s = await new ServerProcess({ AUTH_FAIL_BUDGET_ADDR: "1", AUTH_BACKOFF_MIN: "2s" }).start();
  try {
    await assert.rejects(connect({ port: s.port, username: USER, password: "bad" }), {
      code: ErrorCode.AUTH_FAILED,
    });
    await assert.rejects(connect({ port: s.port, username: USER, password: PASSWORD }), (e: unknown) => {
      assert.ok(e instanceof ServerError);
      assert.equal(e.code, ErrorCode.AUTH_RATE_LIMITED);
      assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 2000, `retry after ${e.retryAfterMs}`);
      return true;
    });
  } finally {
    await s.stop();
  }
});

test("nothing listening: a connect error at once", async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(connect({ port, username: USER, password: PASSWORD }), (e: unknown) => {
    assert.ok(e instanceof TickwireError);
    assert.equal(e.kind, "connect");
    assert.match(e.message, /ECONNREFUSED/);
    return true;
  });
});

test("a server that never answers AUTH: a timeout after connectTimeoutMs", async () => {
  const silent = net.createServer((s) => s.on("error", () => {}));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const started = Date.now();
    await assert.rejects(
      connect({ port, username: USER, password: PASSWORD, connectTimeoutMs: 300 }),
      (e: unknown) => {
        assert.ok(e instanceof TickwireError);
        assert.equal(e.kind, "timeout");
        return true;
      },
    );
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  } finally {
    silent.close();
  }
});

test("bad options are refused before connecting", async () => {
  await assert.rejects(connect({ port: 0, username: USER, password: PASSWORD }), /port must be/);
  await assert.rejects(connect({ url: "http://x", username: USER, password: PASSWORD }), /url must be/);
  await assert.rejects(
    connect({ port: server.port, username: USER, password: PASSWORD, queueCapacity: 0 }),
    /queueCapacity/,
  );
});

test("close() is idempotent and fails later calls with ClientClosed", async () => {
  const client = await connect({ port: server.port, username: USER, password: PASSWORD });
  await client.close();
  await client.close();
  await assert.rejects(client.subscribe("tick", ["A"]), ClientClosed);
  await assert.rejects(client.publish([["A", 1, 1]]), ClientClosed);
  await assert.rejects(client.unsubscribe(1), ClientClosed);
  const events = [];
  for await (const ev of client) events.push(ev);
  assert.deepEqual(events, []);
  await client.waitClosed();
});
