// Messages of the wire protocol (docs/PROTOCOL.md): what the client sends, encoded to frames,
// and what the server sends, decoded into the client's records. No I/O here.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";

import * as pb from "./gen/tickwire/v1/tickwire_pb.js";
import { encodeFrame, FrameType, ProtocolViolation } from "./frames.js";
import type { ResumePosition } from "./resume.js";
import type { Bar, DataRecord, PublishTick, Tick, Watermark } from "./types.js";
import { TickwireError } from "./types.js";

export const PROTOCOL_VERSION = 1;

const UINT32_MAX = 0xffffffff;
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

// Unknown fields are of no use to the client: not keeping them saves work on every record.
const READ = { readUnknownFields: false };

export function parse<Desc extends DescMessage>(
  schema: Desc,
  payload: Uint8Array,
  what: string,
): MessageShape<Desc> {
  try {
    return fromBinary(schema, payload, READ);
  } catch (e) {
    throw new ProtocolViolation(`unparsable ${what}: ${(e as Error).message}`);
  }
}

export function authFrame(username: string, password: string, clientName: string): Uint8Array {
  const m = create(pb.AuthSchema, {
    username,
    password,
    clientName,
    protocolVersion: PROTOCOL_VERSION,
  });
  return encodeFrame(FrameType.AUTH, toBinary(pb.AuthSchema, m));
}

export function subscribeFrame(
  requestId: number,
  mode: number,
  topics: readonly string[],
  backfill: number,
  sinceMs: bigint,
  resumeAfter: readonly ResumePosition[] = [],
  resumeStreamEpoch = 0n,
  resumeFromNs = 0n,
): Uint8Array {
  const m = create(pb.SubscribeSchema, {
    requestId,
    mode,
    topics: [...topics],
    backfill,
    sinceMs,
    resumeAfter: resumeAfter.map((p) =>
      create(pb.ResumePointSchema, { topic: p.topic, afterSeq: p.afterSeq, topicEpoch: p.topicEpoch }),
    ),
    resumeStreamEpoch,
    resumeFromNs,
  });
  return encodeFrame(FrameType.SUBSCRIBE, toBinary(pb.SubscribeSchema, m));
}

export function unsubscribeFrame(requestId: number, subscriptionId: bigint): Uint8Array {
  const m = create(pb.UnsubscribeSchema, { requestId, subscriptionId });
  return encodeFrame(FrameType.UNSUBSCRIBE, toBinary(pb.UnsubscribeSchema, m));
}

export function heartbeatFrame(tsMs: bigint): Uint8Array {
  return encodeFrame(FrameType.HEARTBEAT, toBinary(pb.HeartbeatSchema, create(pb.HeartbeatSchema, { tsMs })));
}

/**
 * The PUBLISH payload for `ticks` and their number. Throws a TypeError for a tick that is not
 * `{topic, price, size, tsNs?}` or `[topic, price, size, tsNs?]` (the server judges the values).
 */
export function publishPayload(
  requestId: number,
  ticks: Iterable<PublishTick>,
  ack: boolean,
): { payload: Uint8Array; count: number } {
  const m = create(pb.PublishSchema, { requestId, ack });
  for (const t of ticks) {
    const i = m.ticks.length;
    let topic: unknown, price: unknown, size: unknown, tsNs: unknown;
    if (Array.isArray(t)) {
      if (t.length < 3 || t.length > 4) {
        throw new TypeError(`ticks[${i}]: a tick array is [topic, price, size, tsNs?]`);
      }
      [topic, price, size, tsNs] = t;
    } else if (t !== null && typeof t === "object") {
      ({ topic, price, size, tsNs } = t as unknown as { [k: string]: unknown });
    } else {
      throw new TypeError(`ticks[${i}]: a tick is {topic, price, size, tsNs?}`);
    }
    if (typeof topic !== "string") throw new TypeError(`ticks[${i}]: topic must be a string`);
    if (typeof price !== "number") throw new TypeError(`ticks[${i}]: price must be a number`);
    if (typeof size !== "number") throw new TypeError(`ticks[${i}]: size must be a number`);
    if (tsNs === undefined || tsNs === null) tsNs = 0n;
    if (typeof tsNs !== "bigint" || tsNs < INT64_MIN || tsNs > INT64_MAX) {
      throw new TypeError(`ticks[${i}]: tsNs must be a bigint (ns since the epoch; 0n: now)`);
    }
    m.ticks.push(create(pb.TickSchema, { topic, price, size, tsNs }));
  }
  return { payload: toBinary(pb.PublishSchema, m), count: m.ticks.length };
}

export function checkRequestFields(backfill: number): void {
  if (!Number.isInteger(backfill) || backfill < 0 || backfill > UINT32_MAX) {
    throw new TypeError(`backfill must be an integer from 0 to ${UINT32_MAX}`);
  }
}

export function decodeError(payload: Uint8Array): TickwireError {
  const m = parse(pb.ErrorSchema, payload, "ERROR");
  return TickwireError.of({
    kind: "server",
    // An open enum: a code this version does not know stays its number.
    code: m.code as number,
    message: m.message,
    requestId: m.requestId,
    fatal: m.fatal,
    retryAfterMs: m.retryAfterMs,
  });
}

function tick(m: pb.Tick): Tick {
  return {
    kind: "tick",
    topic: m.topic,
    price: m.price,
    size: m.size,
    tsNs: m.tsNs,
    seq: m.seq,
    prevSeq: m.prevSeq,
    topicEpoch: m.topicEpoch,
  };
}

function bar(m: pb.Bar): Bar {
  return {
    kind: "bar",
    topic: m.topic,
    interval: m.interval as number,
    startMs: m.startMs,
    open: m.open,
    high: m.high,
    low: m.low,
    close: m.close,
    volume: m.volume,
    count: m.count,
    vwap: m.vwap,
  };
}

function watermark(m: pb.Watermark): Watermark {
  return { kind: "watermark", interval: m.interval as number, startMs: m.startMs };
}

/** A history_end marker of a DATA_BATCH, with the server's subscription id. */
export interface DecodedHistoryEnd {
  subscriptionId: bigint;
  truncated: boolean;
  retention: boolean;
  backfillLimit: boolean;
  epochChanged: boolean;
  lost: Array<{ topic: string; fromSeq: bigint; toSeq: bigint; topicEpoch: bigint }>;
  lostOmitted: number;
  /** Where it sat in the batch: after records[0 .. recordIndex). */
  recordIndex: number;
}

export interface DecodedBatch {
  batchSeq: bigint;
  records: DataRecord[];
  /** The history_end markers in the batch, in order (PROTOCOL.md S8c). */
  historyEnds: DecodedHistoryEnd[];
  /** Records of kinds this version does not know (of later servers): skipped. */
  unknown: number;
}

export function decodeDataBatch(payload: Uint8Array): DecodedBatch {
  const m = parse(pb.DataBatchSchema, payload, "DATA_BATCH");
  const records: DataRecord[] = [];
  const historyEnds: DecodedHistoryEnd[] = [];
  let unknown = 0;
  for (const r of m.records) {
    switch (r.kind.case) {
      case "tick":
        records.push(tick(r.kind.value));
        break;
      case "bar":
        records.push(bar(r.kind.value));
        break;
      case "watermark":
        records.push(watermark(r.kind.value));
        break;
      case "historyEnd": {
        const h = r.kind.value;
        historyEnds.push({
          subscriptionId: h.subscriptionId,
          truncated: h.truncated,
          retention: h.retention,
          backfillLimit: h.backfillLimit,
          epochChanged: h.epochChanged,
          lost: h.lost.map((l) => ({ topic: l.topic, fromSeq: l.fromSeq, toSeq: l.toSeq, topicEpoch: l.topicEpoch })),
          lostOmitted: h.lostOmitted,
          recordIndex: records.length,
        });
        break;
      }
      default:
        unknown++;
    }
  }
  return { batchSeq: m.batchSeq, records, historyEnds, unknown };
}
