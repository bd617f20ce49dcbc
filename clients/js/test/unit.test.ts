// Unit tests of the pure parts: framing, the codec (bigint exactness, unknown kinds and codes),
// backoff, resume points, the duplicate filter, and the bigint helpers.

import assert from "node:assert/strict";
import { test } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";

import {
  ErrorCode,
  Mode,
  TickwireError,
  bigintReplacer,
  dateToMs,
  errorCodeName,
  msToDate,
  nowNs,
  nsToDate,
  nsToIso,
  parseMode,
  toNumber,
} from "@tickwire/client";
// Internal modules, straight from the build.
import * as codec from "#internal/codec.js";
import { FrameReader, FrameType, ProtocolViolation, encodeFrame, parseWholeFrame } from "#internal/frames.js";
import * as pb from "#internal/gen/tickwire/v1/tickwire_pb.js";
import {
  DEFAULT_RECONNECT,
  DeliveredState,
  backoffDelayMs,
  reconnectOptions,
  resumeHistory,
  resumeSinceMs,
  retryAfterDelayMs,
  tickPointMs,
} from "#internal/resume.js";

const U64_MAX = (1n << 64n) - 1n;
const ABOVE_2_53 = (1n << 53n) + 1n; // the first integer a number cannot hold

test("the PROTOCOL.md worked examples encode byte for byte", () => {
  assert.deepEqual([...codec.heartbeatFrame(1n)], [0, 0, 0, 3, 0x09, 0x08, 0x01]);
  assert.deepEqual(
    [...codec.subscribeFrame(7, Mode.TICK, ["AAPL"], 0, 0n)],
    [0, 0, 0, 0x0b, 0x03, 0x08, 0x07, 0x10, 0x03, 0x1a, 0x04, 0x41, 0x41, 0x50, 0x4c],
  );
  const error = codec.decodeError(Uint8Array.from([0x08, 0x01, 0x20, 0x01]));
  assert.equal(error.code, ErrorCode.AUTH_REQUIRED);
  assert.equal(error.fatal, true);
  assert.equal(error.kind, "server");
});

test("FrameReader reassembles frames split anywhere and several frames per chunk", () => {
  const frames = [
    encodeFrame(FrameType.HEARTBEAT, Uint8Array.from([8, 1])),
    encodeFrame(FrameType.DATA_BATCH, new Uint8Array(300).fill(7)),
    encodeFrame(FrameType.SUBSCRIBE_OK, new Uint8Array(0)),
  ];
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(f, at);
    at += f.length;
  }
  for (const step of [1, 2, 3, 5, 7, 64, stream.length]) {
    const reader = new FrameReader(1024);
    const got: Array<[number, number[]]> = [];
    for (let i = 0; i < stream.length; i += step) {
      reader.push(stream.subarray(i, i + step));
      for (let f = reader.next(); f !== undefined; f = reader.next()) got.push([f.type, [...f.payload]]);
    }
    assert.deepEqual(
      got.map(([t, p]) => [t, p.length]),
      [
        [FrameType.HEARTBEAT, 2],
        [FrameType.DATA_BATCH, 300],
        [FrameType.SUBSCRIBE_OK, 0],
      ],
      `step ${step}`,
    );
    assert.ok(got[1]![1].every((b) => b === 7));
    assert.equal(reader.buffered, 0);
  }
});

test("FrameReader refuses a length 0 and an oversized length before the payload arrives", () => {
  const zero = new FrameReader(1024);
  zero.push(Uint8Array.from([0, 0, 0, 0]));
  assert.throws(() => zero.next(), ProtocolViolation);

  const big = new FrameReader(1024);
  big.push(Uint8Array.from([0, 0, 0x04, 0x02])); // 1025 bytes of payload announced, none sent
  assert.throws(() => big.next(), /exceeds MAX_MSG_SIZE 1024/);

  const exact = new FrameReader(1024);
  exact.push(encodeFrame(FrameType.DATA_BATCH, new Uint8Array(1024)));
  assert.equal(exact.next()?.payload.length, 1024);
});

test("a WebSocket message must hold exactly one frame", () => {
  const f = encodeFrame(FrameType.HEARTBEAT, Uint8Array.from([8, 1]));
  assert.equal(parseWholeFrame(f, 1024).type, FrameType.HEARTBEAT);
  const two = new Uint8Array(f.length * 2);
  two.set(f);
  two.set(f, f.length);
  assert.throws(() => parseWholeFrame(two, 1024), /one frame per message/);
  assert.throws(() => parseWholeFrame(f.subarray(0, f.length - 1), 1024), /one frame per message/);
  assert.throws(() => parseWholeFrame(f.subarray(0, 3), 1024), /shorter than a frame/);
});

function dataBatch(batchSeq: bigint, records: pb.Record[]): Uint8Array {
  return toBinary(pb.DataBatchSchema, create(pb.DataBatchSchema, { batchSeq, records }));
}

test("64-bit fields decode exactly as bigints, far above 2^53", () => {
  const tsNs = 1_714_564_800_123_456_789n; // 2024-05-01T12:00:00.123456789Z
  const payload = dataBatch(U64_MAX, [
    create(pb.RecordSchema, {
      kind: {
        case: "tick",
        value: create(pb.TickSchema, {
          topic: "A",
          price: 1.5,
          size: 2,
          tsNs,
          seq: U64_MAX,
          prevSeq: ABOVE_2_53,
        }),
      },
    }),
    create(pb.RecordSchema, {
      kind: {
        case: "bar",
        value: create(pb.BarSchema, {
          topic: "B",
          interval: pb.Mode.SECOND,
          startMs: (1n << 62n) + 1n,
          count: ABOVE_2_53,
          open: 1,
          high: 2,
          low: 0.5,
          close: 1.25,
          volume: 3,
          vwap: 1.1,
        }),
      },
    }),
  ]);
  const b = codec.decodeDataBatch(payload);
  assert.equal(b.batchSeq, U64_MAX);
  const [t, bar] = b.records;
  assert.ok(t?.kind === "tick" && bar?.kind === "bar");
  assert.equal(t.tsNs, tsNs);
  assert.equal(t.seq, U64_MAX);
  assert.equal(t.prevSeq, ABOVE_2_53);
  assert.equal(typeof t.seq, "bigint");
  assert.equal(bar.startMs, (1n << 62n) + 1n);
  assert.equal(bar.count, ABOVE_2_53);
  assert.equal(bar.interval, Mode.SECOND);
  assert.equal(nsToIso(t.tsNs), "2024-05-01T12:00:00.123456789Z");
});

test("publish encodes bigint ts_ns exactly and refuses numbers for it", () => {
  const tsNs = (1n << 62n) + 12345n;
  const { payload, count } = codec.publishPayload(
    9,
    [{ topic: "A", price: 1, size: 2, tsNs }, ["B", 3, 4]],
    true,
  );
  assert.equal(count, 2);
  const m = codec.parse(pb.PublishSchema, payload, "PUBLISH");
  assert.equal(m.requestId, 9);
  assert.equal(m.ack, true);
  assert.equal(m.ticks[0]!.tsNs, tsNs);
  assert.equal(m.ticks[1]!.tsNs, 0n);
  assert.equal(m.ticks[1]!.topic, "B");
  assert.throws(
    () => codec.publishPayload(1, [{ topic: "A", price: 1, size: 1, tsNs: 5 as unknown as bigint }], false),
    /tsNs must be a bigint/,
  );
  assert.throws(
    () => codec.publishPayload(1, [["A", 1] as unknown as [string, number, number]], false),
    /ticks\[0\]/,
  );
});

test("records of unknown kinds and unknown error codes are tolerated", () => {
  // A Record with field 7 (a kind a later server may add, e.g. a watermark) next to a tick.
  const tick = dataBatch(3n, [
    create(pb.RecordSchema, {
      kind: { case: "tick", value: create(pb.TickSchema, { topic: "A", seq: 1n }) },
    }),
  ]);
  // records (field 2, length-delimited) = Record{ field 7 (length-delimited) = {field 1 = 5} }
  const unknownRecord = Uint8Array.from([0x12, 0x04, 0x3a, 0x02, 0x08, 0x05]);
  const payload = new Uint8Array(tick.length + unknownRecord.length);
  payload.set(tick);
  payload.set(unknownRecord, tick.length);
  const b = codec.decodeDataBatch(payload);
  assert.equal(b.records.length, 1);
  assert.equal(b.unknown, 1);

  const e = codec.decodeError(
    toBinary(
      pb.ErrorSchema,
      create(pb.ErrorSchema, { code: 99 as pb.ErrorCode, message: "new", fatal: false }),
    ),
  );
  assert.equal(e.code, 99);
  assert.equal(e.codeName, "CODE_99");
  assert.equal(errorCodeName(ErrorCode.UNAVAILABLE), "UNAVAILABLE");
  assert.equal(errorCodeName(15), "TOPIC_LIMIT");
  assert.match(e.message, /^CODE_99: new$/);
});

test("errors carry kind, code and retry_after_ms, and pick their class by kind", () => {
  const e = TickwireError.of({
    kind: "server",
    message: "draining",
    code: ErrorCode.SERVER_DRAINING,
    fatal: true,
    retryAfterMs: 250,
  });
  assert.equal(e.constructor.name, "ServerError");
  assert.equal(e.message, "SERVER_DRAINING: draining (retry after 250 ms)");
  const copy = e.with({ fatal: false, kind: "io" });
  assert.equal(copy.constructor.name, "ConnectionLost");
  assert.equal(copy.retryAfterMs, 250);
  assert.ok(copy instanceof TickwireError && copy instanceof Error);
});

test("backoff grows, is capped and jittered; retry_after is never shortened", () => {
  const o = { ...DEFAULT_RECONNECT };
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => backoffDelayMs(o, n, 0)),
    [100, 200, 400, 800],
  );
  assert.equal(backoffDelayMs(o, 40, 0), 10000);
  assert.equal(backoffDelayMs(o, 1, 0.999999) > 50, true);
  assert.equal(backoffDelayMs(o, 1, 1), 50); // jitter 0.5: [d/2, d]
  assert.equal(retryAfterDelayMs(o, 400, 0), 400);
  assert.equal(retryAfterDelayMs(o, 400, 1), 600);
  assert.throws(() => reconnectOptions({ maxBackoffMs: -1 }), /maxBackoffMs/);
  assert.equal(reconnectOptions(false).enabled, false);
});

test("resume points: floor of ts_ns, lookback, never before the caller's since_ms, never 0", () => {
  assert.equal(tickPointMs(1_999_999n), 1n);
  assert.equal(tickPointMs(-1n), -1n);
  assert.equal(resumeSinceMs(0n, 5000n, undefined, 1000n), 4000n);
  assert.equal(resumeSinceMs(0n, 5000n, 9000n, 1000n), 8000n);
  assert.equal(resumeSinceMs(8500n, 5000n, 9000n, 1000n), 8500n);
  assert.equal(resumeSinceMs(0n, 500n, undefined, 1000n), 1n);
});

test("a resume asks for the caller's history again only while its replay was cut (S8c)", () => {
  const lookback = 8000n; // what resumeSinceMs gave
  const byTime = { backfill: 0, sinceMs: lookback, resent: false };
  // History delivered (or none asked for, or no marker announced): by time, without backfill.
  for (const mode of [Mode.TICK, Mode.SECOND, Mode.MINUTE]) {
    assert.deepEqual(resumeHistory(mode, 5, 0n, false, lookback), byTime);
    assert.deepEqual(resumeHistory(mode, 0, 3000n, false, lookback), byTime);
    assert.deepEqual(resumeHistory(mode, 0, 0n, true, lookback), byTime);
  }
  // Cut before the marker: TICK sends the caller's backfill or since_ms, not the adjusted one.
  const backfill = { backfill: 5, sinceMs: 0n, resent: true };
  assert.deepEqual(resumeHistory(Mode.TICK, 5, 0n, true, lookback), backfill);
  const since = { backfill: 0, sinceMs: 3000n, resent: true };
  assert.deepEqual(resumeHistory(Mode.TICK, 0, 3000n, true, lookback), since);
  // Bars: since_ms again; backfill keeps resuming by time (N newest bars would leave a hole).
  assert.deepEqual(resumeHistory(Mode.SECOND, 0, 3000n, true, lookback), since);
  assert.deepEqual(resumeHistory(Mode.MINUTE, 5, 0n, true, lookback), byTime);
});

test("the delivered state drops duplicates, reports gaps and accepts a fresh numbering", () => {
  const d = new DeliveredState();
  assert.deepEqual(d.acceptTick("A", 1n, 0n, 1000n), { fresh: true, gapAfter: 0n });
  assert.deepEqual(d.acceptTick("A", 2n, 1n, 2000n), { fresh: true, gapAfter: 0n });
  assert.deepEqual(d.acceptTick("A", 2n, 1n, 2000n), { fresh: false, gapAfter: 0n }); // resent
  assert.deepEqual(d.acceptTick("A", 5n, 4n, 3000n), { fresh: true, gapAfter: 2n }); // 3, 4 missed
  // A restarted server without history: seq 1 again, prev_seq 0, newer time.
  assert.deepEqual(d.acceptTick("A", 1n, 0n, 4000n), { fresh: true, gapAfter: 0n });
  // An old first tick resent: a duplicate, not a fresh numbering.
  assert.deepEqual(d.acceptTick("A", 1n, 0n, 4000n), { fresh: false, gapAfter: 0n });
  assert.equal(d.duplicates, 2);
  assert.equal(d.tickGaps, 1);
  assert.equal(d.renumbered, 1);

  assert.equal(d.acceptBar(Mode.SECOND, "A", 1000n), true);
  assert.equal(d.acceptBar(Mode.SECOND, "A", 1000n), false);
  assert.equal(d.acceptBar(Mode.MINUTE, "A", 1000n), true); // another interval
  assert.equal(d.acceptBar(9, "A", 1000n), true); // an interval this version does not know
  assert.equal(d.newestPoint(Mode.SECOND, false, ["A", "B"]), 1000n);
  assert.equal(d.newestPoint(Mode.SECOND, false, ["B"]), undefined);
  assert.equal(d.newestPoint(Mode.TICK, true, []), 0n); // 4000 ns -> 0 ms
});

test("topic epochs start a new numbering; tick positions cover patterns and fit the budget", () => {
  const d = new DeliveredState();
  assert.ok(d.acceptTick("FX.EUR", 5n, 4n, 10n, 7n).fresh);
  assert.ok(!d.acceptTick("FX.EUR", 5n, 4n, 10n, 7n).fresh, "same seq, same epoch: a duplicate");
  // The topic was forgotten and published again: seq 1 of another epoch is new, not a duplicate.
  const v = d.acceptTick("FX.EUR", 1n, 0n, 5n, 9n);
  assert.ok(v.fresh);
  assert.equal(v.gapAfter, 0n);
  assert.equal(d.topicEpochChanges, 1);
  assert.ok(d.acceptTick("FX.GBP", 3n, 2n, 10n, 4n).fresh);
  assert.ok(d.acceptTick("EQ.AAPL", 8n, 7n, 10n, 2n).fresh);
  assert.deepEqual(d.tickPositions(false, ["FX.*"], 1000), [
    { topic: "FX.EUR", afterSeq: 1n, topicEpoch: 9n },
    { topic: "FX.GBP", afterSeq: 3n, topicEpoch: 4n },
  ]);
  assert.deepEqual(
    d.tickPositions(true, ["*"], 1000).map((p) => p.topic),
    ["EQ.AAPL", "FX.EUR", "FX.GBP"],
  );
  assert.deepEqual(
    d.tickPositions(false, ["EQ.AAPL", "FX.GBP"], 1000).map((p) => p.topic),
    ["EQ.AAPL", "FX.GBP"],
  );
  // Each position costs its topic's bytes plus 26: the first two (33 and 32 bytes) fit in 66.
  assert.deepEqual(
    d.tickPositions(true, ["*"], 2 * (7 + 26)).map((p) => p.topic),
    ["EQ.AAPL", "FX.EUR"],
  );
  assert.deepEqual(d.tickPositions(true, ["*"], 10), []);
  // A new stream epoch: the seqs held no longer mark duplicates, and nothing is listed.
  d.resetTickNumbering();
  assert.deepEqual(d.tickPositions(true, ["*"], 1000), []);
  assert.ok(d.acceptTick("FX.GBP", 1n, 0n, 1n, 1n).fresh);
});

test("history_end markers decode with their place in the batch; SUBSCRIBE carries positions", () => {
  const payload = toBinary(
    pb.DataBatchSchema,
    create(pb.DataBatchSchema, {
      batchSeq: 3n,
      records: [
        { kind: { case: "tick", value: { topic: "A", seq: 4n, prevSeq: 3n, topicEpoch: 11n } } },
        {
          kind: {
            case: "historyEnd",
            value: {
              subscriptionId: 2n,
              truncated: true,
              epochChanged: true,
              lost: [{ topic: "A", fromSeq: 5n, toSeq: 0n, topicEpoch: 11n }],
              lostOmitted: 3,
            },
          },
        },
        { kind: { case: "tick", value: { topic: "A", seq: 9n, prevSeq: 8n, topicEpoch: 11n } } },
      ],
    }),
  );
  const b = codec.decodeDataBatch(payload);
  assert.equal(b.records.length, 2);
  assert.equal(b.unknown, 0);
  assert.ok(b.records[0]!.kind === "tick" && b.records[0]!.topicEpoch === 11n);
  assert.deepEqual(b.historyEnds, [
    {
      subscriptionId: 2n,
      truncated: true,
      retention: false,
      backfillLimit: false,
      epochChanged: true,
      lost: [{ topic: "A", fromSeq: 5n, toSeq: 0n, topicEpoch: 11n }],
      lostOmitted: 3,
      recordIndex: 1,
    },
  ]);

  const frame = codec.subscribeFrame(7, Mode.TICK, ["A", "B"], 0, 42n, [{ topic: "A", afterSeq: 4n, topicEpoch: 11n }], 99n);
  const m = codec.parse(pb.SubscribeSchema, frame.subarray(5), "SUBSCRIBE");
  assert.equal(m.sinceMs, 42n);
  assert.equal(m.resumeStreamEpoch, 99n);
  assert.deepEqual(
    m.resumeAfter.map((p) => [p.topic, p.afterSeq, p.topicEpoch]),
    [["A", 4n, 11n]],
  );
  assert.equal(m.resumeFromNs, 0n);
  // resume_from_ns is field 8 (varint), after the others, and carries an int64 exactly (an
  // accept position in ns is far above 2^53); absent when 0n.
  const r = 1_765_000_000_123_456_789n;
  const withR = codec.subscribeFrame(7, Mode.TICK, ["A"], 0, 42n, [], 0n, r).subarray(5);
  const withoutR = codec.subscribeFrame(7, Mode.TICK, ["A"], 0, 42n, [], 0n).subarray(5);
  assert.equal(codec.parse(pb.SubscribeSchema, withR, "SUBSCRIBE").resumeFromNs, r);
  assert.deepEqual(withR.subarray(0, withoutR.length), withoutR);
  assert.equal(withR[withoutR.length], (8 << 3) | 0);
});

test("bigint helpers convert only where it is exact", () => {
  assert.equal(toNumber(123n), 123);
  assert.equal(toNumber(BigInt(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  assert.throws(() => toNumber(ABOVE_2_53), RangeError);
  assert.equal(msToDate(1_714_564_800_000n).toISOString(), "2024-05-01T12:00:00.000Z");
  assert.equal(nsToDate(1_714_564_800_999_999_999n).toISOString(), "2024-05-01T12:00:00.999Z");
  assert.equal(nsToIso(-1n), "1969-12-31T23:59:59.999999999Z");
  assert.equal(dateToMs(new Date("2024-05-01T12:00:00Z")), 1_714_564_800_000n);
  assert.equal(JSON.stringify({ seq: U64_MAX }, bigintReplacer), `{"seq":"${U64_MAX}"}`);
  const a = nowNs();
  assert.ok(a > 1_600_000_000_000_000_000n && a < 4_000_000_000_000_000_000n);
  assert.equal(parseMode("Second"), Mode.SECOND);
  assert.equal(parseMode(3), Mode.TICK);
  assert.throws(() => parseMode("hour" as never), /unknown mode/);
});
