// The client: one connection at a time over any transport. It reads frames, sends HEARTBEATs,
// and with reconnect enabled replaces a lost connection (backoff with jitter, retry_after_ms
// honoured) and resumes every subscription (ticks by seq, the rest with since_ms), dropping the
// duplicates that brings; history_end markers become "history_end" events.
// The same semantics as the C++ client (docs/CLIENT.md) and the Python client.

import * as codec from "./codec.js";
import * as pb from "./gen/tickwire/v1/tickwire_pb.js";
import { encodeFrame, FrameType, HEADER_SIZE, MAX_MSG_SIZE_LIMIT, ProtocolViolation } from "./frames.js";
import {
  DeliveredState,
  backoffDelayMs,
  reconnectOptions,
  resumeHistory,
  resumeSinceMs,
  retryAfterDelayMs,
} from "./resume.js";
import type { ReconnectOptions } from "./resume.js";
import type { Transport, TransportConnector, TransportEvents } from "./transport.js";
import { toBigIntMs } from "./time.js";
import { ClientClosed, ErrorCode, Mode, TickwireError, newStats, parseMode } from "./types.js";
import type {
  AuthInfo,
  ConnectionState,
  DataRecord,
  ErrorInfo,
  HistoryEndEvent,
  ModeLike,
  PublishAck,
  PublishTick,
  Stats,
  TickwireEvent,
} from "./types.js";

/** Options every transport shares. Times are in milliseconds. */
export interface ClientOptions {
  username: string;
  password: string;
  /** Free text the server logs (default "tickwire-js"). */
  clientName?: string;
  /** For connecting, TLS or the WebSocket handshake, and AUTH together (default 5000). */
  connectTimeoutMs?: number;
  /** To wait for a reply (SUBSCRIBE, acked PUBLISH), including the wait for a reconnect (5000). */
  requestTimeoutMs?: number;
  /** Between HEARTBEATs (sent automatically); default: what the server asks for. */
  heartbeatIntervalMs?: number;
  /**
   * A connection with no frame from the server for this long (heartbeat echoes included) is
   * dead; default: the server's heartbeat timeout; 0 turns the check off.
   */
  idleTimeoutMs?: number;
  /** On by default; `false`, or changes to the defaults of ReconnectOptions. */
  reconnect?: boolean | Partial<ReconnectOptions>;
  /** Batches waiting to be read before the client stops reading (default 1024). */
  queueCapacity?: number;
  /**
   * Completeness watermarks (PROTOCOL.md S8d) as `Watermark` records in batches. Off by default,
   * so that code expecting only ticks and bars keeps working.
   */
  watermarks?: boolean;
}

export interface SubscribeOptions {
  /** First the N most recent retained records per topic. */
  backfill?: number;
  /** Or first every retained record from this time on (ms since the epoch, or a Date). */
  sinceMs?: bigint | number | Date;
}

export interface PublishOptions {
  /** Wait for the server's PUBLISH_ACK (and its verdict) before resolving. */
  ack?: boolean;
}

// Fatal errors a new connection may fix (the rest close the client).
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  ErrorCode.SERVER_DRAINING,
  ErrorCode.HEARTBEAT_TIMEOUT,
  ErrorCode.SLOW_CONSUMER,
  ErrorCode.INTERNAL,
  ErrorCode.AUTH_TIMEOUT,
  ErrorCode.AUTH_RATE_LIMITED,
]);

// Frame types a server never sends once AUTH_OK was received.
const NOT_FROM_SERVER: ReadonlySet<number> = new Set([
  FrameType.AUTH,
  FrameType.AUTH_OK,
  FrameType.SUBSCRIBE,
  FrameType.UNSUBSCRIBE,
  FrameType.PUBLISH,
]);

// Frames a connection holds between AUTH_OK and being served (the server sends nothing
// unasked then, but an ERROR such as SERVER_DRAINING may come).
const MAX_EARLY_FRAMES = 64;

// Batches beyond twice queueCapacity that may still arrive after reading was paused (the `ws`
// package delivers what it had already read) before the queue counts as overflowing.
const OVERFLOW_SLACK = 16;

function retryable(e: TickwireError): boolean {
  if (e.kind === "io" || e.kind === "connect" || e.kind === "timeout") return true;
  return e.kind === "server" && RETRYABLE_CODES.has(e.code);
}

const monotonicMs = (): number => performance.now();
const nowMs = (): bigint => BigInt(Date.now());

function err(kind: ErrorInfo["kind"], message: string, extra: Partial<ErrorInfo> = {}): TickwireError {
  return TickwireError.of({ kind, message, ...extra });
}

class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  private res!: (v: T) => void;
  private rej!: (e: unknown) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.res = resolve;
      this.rej = reject;
    });
    // A rejection nobody awaits (a request given up) must not be reported as unhandled.
    this.promise.catch(() => {});
  }

  resolve(v: T): void {
    if (this.settled) return;
    this.settled = true;
    this.res(v);
  }

  reject(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rej(e);
  }
}

/** Wakes everyone waiting on it (state changes, new events, queue space). */
class Signal {
  private waiters = new Set<() => void>();

  /** Resolves true when notified, false after `timeoutMs` (never, when undefined). */
  wait(timeoutMs?: number): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(true);
      };
      this.waiters.add(wake);
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => {
            this.waiters.delete(wake);
            resolve(false);
          },
          Math.max(0, timeoutMs),
        );
      }
    });
  }

  notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }
}

interface Subscription {
  handle: number;
  mode: number;
  topics: readonly string[];
  wildcard: boolean;
  backfill: number;
  /** The caller's since_ms (0n: none). */
  sinceMs: bigint;
  /** Complete from here: the caller's since_ms, or the first SUBSCRIBE_OK time. */
  anchorMs: bigint;
  /**
   * TICK only: the `resume_from_ns` sent on every resume (PROTOCOL.md S8c, topics without a
   * position; 0n: none yet). The first SUBSCRIBE_OK's (or the first one that had one), replaced
   * by a resume's `okResumeFromNs` once that resume's history_end marker has arrived.
   */
  resumeFromNs: bigint;
  /**
   * TICK only: `resume_from_ns` of the latest resume's SUBSCRIBE_OK (0n: none), taken as
   * `resumeFromNs` when that resume's history_end marker arrives: everything accepted before it
   * has then been received or reported.
   */
  okResumeFromNs: bigint;
  /**
   * The caller asked for history, the server announced its history_end marker, and it has not
   * arrived yet: a resume asks for the caller's backfill / since_ms again (`resumeHistory`).
   */
  historyPending: boolean;
  /** 0n while not established on the current connection. */
  serverId: bigint;
}

interface Pending {
  reply: Deferred<unknown>;
  /** For a caller's SUBSCRIBE: what to register on SUBSCRIBE_OK. */
  subscribe?: Subscription;
  /** For a resumed SUBSCRIBE: the handle. */
  resumeHandle?: number;
  /** For a resumed SUBSCRIBE: it asked for the caller's backfill / since_ms again. */
  resentHistory?: boolean;
}

/** One connection after AUTH_OK. */
class Conn {
  readonly maxPayload: number;
  lastRx = monotonicMs();
  lastBatchSeq = 0n;
  readPaused = false;
  serving = false;
  early: Array<[number, Uint8Array]> = [];
  /** Why the client dropped it (idle, close), which wins over what the transport says. */
  lost: TickwireError | undefined;
  /** Resolves once with why the connection ended. */
  readonly ended = new Deferred<TickwireError>();
  timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly transport: Transport,
    readonly authOk: pb.AuthOk,
    readonly heartbeatIntervalMs: number,
    readonly idleTimeoutMs: number,
  ) {
    this.maxPayload = authOk.maxMsgSize || 65536;
  }

  get done(): boolean {
    return this.ended.settled;
  }

  /** Ends the connection for `reason` (the first reason given wins). */
  abort(reason: TickwireError): void {
    this.lost ??= reason;
    this.finish(this.lost);
  }

  finish(reason: TickwireError): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.ended.resolve(this.lost ?? reason);
    this.transport.close();
  }
}

/**
 * A tickwire connection; create it with `connect()` (from "@tickwire/client"). Every method may
 * be called at any time; requests made while reconnecting wait for the connection.
 */
export class Client implements AsyncIterable<TickwireEvent> {
  private readonly clientName: string;
  private readonly connectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly heartbeatOverrideMs: number | undefined;
  private readonly idleOverrideMs: number | undefined;
  private readonly queueCapacity: number;
  private readonly watermarks: boolean;
  /** The reconnect settings in force. */
  readonly reconnectOptions: ReconnectOptions;

  private state_: ConnectionState = "connecting";
  private authInfo_: AuthInfo | undefined;
  private closeReason_: TickwireError | undefined;
  private conn: Conn | undefined;
  private closing = false;
  private supervisor: Promise<void> | undefined;
  private readonly closedDeferred = new Deferred<void>();

  private nextRequestId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly subs = new Map<number, Subscription>();
  private nextHandle = 1;
  private readonly delivered = new DeliveredState();
  /** AUTH_OK stream_epoch of the current (or last) connection, and of the one before it. */
  private streamEpoch = 0n;
  private previousStreamEpoch = 0n;
  /** Newest watermark delivered per interval: a resumed connection may repeat one. */
  private readonly lastWatermark = new Map<number, bigint>();
  private readonly stats_: Stats = newStats();

  // The event queue. Batches count against queueCapacity (reading stops while it is full);
  // notices do not, but are capped at the same number (the oldest dropped).
  private events: TickwireEvent[] = [];
  private eventsHead = 0;
  private queuedBatches = 0;
  private queuedNotices = 0;
  private endDelivered = false;
  private readonly eventSignal = new Signal();
  private readonly stateSignal = new Signal();
  private readonly spaceSignal = new Signal();

  /** @internal Use connect(). */
  constructor(
    private readonly connector: TransportConnector,
    /** Where it connects, for messages: "127.0.0.1:7878", "wss://host/path". */
    readonly target: string,
    private readonly credentials: { username: string; password: string },
    options: Omit<ClientOptions, "username" | "password"> = {},
  ) {
    this.clientName = options.clientName ?? "tickwire-js";
    this.connectTimeoutMs = positive(options.connectTimeoutMs, 5000, "connectTimeoutMs");
    this.requestTimeoutMs = positive(options.requestTimeoutMs, 5000, "requestTimeoutMs");
    this.heartbeatOverrideMs =
      options.heartbeatIntervalMs === undefined
        ? undefined
        : positive(options.heartbeatIntervalMs, 0, "heartbeatIntervalMs");
    if (options.idleTimeoutMs !== undefined && !(options.idleTimeoutMs >= 0)) {
      throw new TypeError("idleTimeoutMs must be >= 0");
    }
    this.idleOverrideMs = options.idleTimeoutMs;
    this.reconnectOptions = reconnectOptions(options.reconnect);
    const capacity = options.queueCapacity ?? 1024;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new TypeError("queueCapacity must be an integer >= 1");
    }
    this.queueCapacity = capacity;
    this.watermarks = options.watermarks ?? false;
  }

  // ------------------------------------------------------------------------------- public API

  get state(): ConnectionState {
    return this.state_;
  }

  get closed(): boolean {
    return this.state_ === "closed";
  }

  /** The first connection's AUTH_OK. */
  get authInfo(): AuthInfo {
    if (this.authInfo_ === undefined) throw new Error("not connected yet");
    return this.authInfo_;
  }

  /** The error that closed the client; undefined while open or after close(). */
  get closeReason(): TickwireError | undefined {
    return this.closeReason_;
  }

  /** A copy of the counters. */
  get stats(): Stats {
    return { ...this.stats_ };
  }

  /** Handles of the subscriptions the client holds (and resumes). */
  get subscriptions(): number[] {
    return [...this.subs.keys()];
  }

  /**
   * Subscribes and resolves to the subscription's handle (1, 2, ...; stable across reconnects,
   * while the server's ids change). `topics`: names, or "*" for every topic.
   *
   * `backfill` (the N most recent retained records per topic) or `sinceMs` (every retained
   * record from then on) replay history first. Rejects with a ServerError (INVALID_REQUEST,
   * FORBIDDEN) when the server refuses. A connection lost before the reply is retried after the
   * reconnect, within requestTimeoutMs.
   */
  async subscribe(
    mode: ModeLike,
    topics: string | readonly string[],
    options: SubscribeOptions = {},
  ): Promise<number> {
    const m = parseMode(mode);
    const list = typeof topics === "string" ? [topics] : [...topics];
    const backfill = options.backfill ?? 0;
    codec.checkRequestFields(backfill);
    const sinceMs = options.sinceMs === undefined ? 0n : toBigIntMs(options.sinceMs, "sinceMs");
    const spec: Subscription = {
      handle: 0,
      mode: m,
      topics: list,
      wildcard: list.includes("*"),
      backfill,
      sinceMs,
      anchorMs: 0n,
      resumeFromNs: 0n,
      okResumeFromNs: 0n,
      historyPending: false,
      serverId: 0n,
    };
    const deadline = monotonicMs() + this.requestTimeoutMs;
    for (;;) {
      const conn = await this.waitOpen(deadline);
      const requestId = this.requestId();
      const reply = new Deferred<unknown>();
      this.pending.set(requestId, { reply, subscribe: spec });
      try {
        await this.sendRequest(conn, codec.subscribeFrame(requestId, m, list, backfill, sinceMs), deadline);
        return (await this.awaitReply(reply, deadline)) as number;
      } catch (e) {
        if (e instanceof TickwireError && e.kind === "io" && this.reconnectOptions.enabled && !this.closed) {
          continue; // lost before the reply: again on the next connection
        }
        throw e;
      } finally {
        this.pending.delete(requestId);
      }
    }
  }

  /**
   * Stops a subscription (records already queued may still arrive) and no longer resumes it.
   */
  async unsubscribe(handle: number): Promise<void> {
    if (this.closed) throw new ClientClosed(this.closedError().info);
    const sub = this.subs.get(handle);
    if (sub === undefined) {
      throw err("invalid_argument", `no subscription ${handle} on this client`);
    }
    this.subs.delete(handle);
    const conn = this.conn;
    if (sub.serverId !== 0n && conn !== undefined && this.state_ === "open") {
      conn.transport.send(codec.unsubscribeFrame(this.requestId(), sub.serverId));
    }
  }

  /**
   * Sends the ticks in one PUBLISH frame: `{topic, price, size, tsNs?}` objects or
   * `[topic, price, size, tsNs?]` arrays; tsNs 0n (the default) lets the server stamp them.
   *
   * With `ack`, waits for PUBLISH_ACK and resolves to its `accepted` count; without, resolves
   * to the number of ticks once the frame is written. When the server's topic cap refuses ticks
   * for new topics, an "error" event with code TOPIC_LIMIT says so, and `accepted` counts only
   * the ticks applied. Rejects with a ServerError
   * (INVALID_REQUEST naming the bad tick, FORBIDDEN, UNAVAILABLE) when the server rejects an
   * acked frame (without ack, the rejection arrives as an "error" event), and with kind
   * "invalid_argument" for a frame larger than the server's MAX_MSG_SIZE. At most once: a frame
   * in flight when the connection breaks is not resent (ConnectionLost).
   */
  async publish(ticks: Iterable<PublishTick>, options: PublishOptions = {}): Promise<number> {
    const ack = options.ack ?? false;
    if (!ack) return (await this.publishFrame(ticks, false)) as number;
    return ((await this.publishFrame(ticks, true)) as PublishAck).accepted;
  }

  /**
   * `publish` with `ack`, resolving to the whole PUBLISH_ACK: `accepted`, and `late`, how many
   * of them were too late for their bar (PROTOCOL.md S8a; 0 from servers that do not say).
   */
  async publishAcked(ticks: Iterable<PublishTick>): Promise<PublishAck> {
    return (await this.publishFrame(ticks, true)) as PublishAck;
  }

  /** Without ack: the number of ticks once written; with: the PublishAck. */
  private async publishFrame(ticks: Iterable<PublishTick>, ack: boolean): Promise<number | PublishAck> {
    const deadline = monotonicMs() + this.requestTimeoutMs;
    const conn = await this.waitOpen(deadline);
    const requestId = this.requestId();
    let encoded: { payload: Uint8Array; count: number };
    try {
      encoded = codec.publishPayload(requestId, ticks, ack);
    } catch (e) {
      throw err("invalid_argument", (e as Error).message);
    }
    const { payload, count } = encoded;
    if (payload.length > conn.maxPayload) {
      throw err(
        "invalid_argument",
        `PUBLISH of ${count} ticks is ${payload.length} bytes, over the server's MAX_MSG_SIZE ` +
          `${conn.maxPayload}: publish fewer ticks per call`,
      );
    }
    const frame = encodeFrame(FrameType.PUBLISH, payload);
    if (!ack) {
      await this.sendRequest(conn, frame, deadline);
      return count;
    }
    const reply = new Deferred<unknown>();
    this.pending.set(requestId, { reply });
    try {
      await this.sendRequest(conn, frame, deadline);
      return (await this.awaitReply(reply, deadline)) as PublishAck;
    } finally {
      this.pending.delete(requestId);
    }
  }

  /**
   * The next event; a "closed" event once the client is closed and every event was taken;
   * undefined when `timeoutMs` passes first (without it, waits as long as it takes).
   */
  async nextEvent(timeoutMs?: number): Promise<TickwireEvent | undefined> {
    const deadline = timeoutMs === undefined ? undefined : monotonicMs() + timeoutMs;
    while (this.eventsHead >= this.events.length) {
      if (this.endDelivered) return { type: "closed", reason: this.closeReason_ };
      const wait = deadline === undefined ? undefined : deadline - monotonicMs();
      if (wait !== undefined && wait <= 0) return undefined;
      await this.eventSignal.wait(wait);
    }
    const ev = this.events[this.eventsHead]!;
    this.events[this.eventsHead++] = undefined as unknown as TickwireEvent;
    if (this.eventsHead > 1024 && this.eventsHead * 2 > this.events.length) {
      this.events = this.events.slice(this.eventsHead);
      this.eventsHead = 0;
    }
    if (ev.type === "batch") {
      this.queuedBatches--;
      if (this.queuedBatches <= this.queueCapacity / 2) this.onSpace();
    } else if (ev.type === "closed") {
      this.endDelivered = true;
    } else if (ev.type !== "history_end") {
      this.queuedNotices--;
    }
    return ev;
  }

  /** Every event until the client is closed (the "closed" event itself ends the loop). */
  async *[Symbol.asyncIterator](): AsyncGenerator<TickwireEvent, void, undefined> {
    for (;;) {
      const ev = await this.nextEvent();
      if (ev === undefined || ev.type === "closed") return;
      yield ev;
    }
  }

  /**
   * Only the records (Tick, Bar), one at a time; ends after close(), throws the TickwireError
   * that closed the client otherwise. Other events are skipped.
   */
  async *records(): AsyncGenerator<DataRecord, void, undefined> {
    for await (const ev of this) {
      if (ev.type === "batch") yield* ev.records;
    }
    if (this.closeReason_ !== undefined) throw this.closeReason_;
  }

  /** Closes the connection (idempotent); pending requests fail with ClientClosed. */
  async close(): Promise<void> {
    this.closeWith(undefined);
    await this.supervisor;
  }

  /** Resolves once the client is closed (by close(), or by an error). */
  waitClosed(): Promise<void> {
    return this.closedDeferred.promise;
  }

  // ------------------------------------------------------------------------ connection setup

  /** @internal First connection: no retry, errors thrown to the caller of connect(). */
  async start(): Promise<void> {
    let conn: Conn;
    try {
      conn = await this.handshake();
    } catch (e) {
      this.setState("closed");
      this.closedDeferred.resolve();
      throw e;
    }
    const a = conn.authOk;
    this.authInfo_ = {
      sessionId: a.sessionId,
      heartbeatIntervalMs: a.heartbeatIntervalMs,
      heartbeatTimeoutMs: a.heartbeatTimeoutMs,
      maxMsgSize: a.maxMsgSize,
      batchWindowMs: a.batchWindowMs,
      serverVersion: a.serverVersion,
      protocolVersion: a.protocolVersion,
      barCloseDelayMs: a.barCloseDelayMs,
      watermarkMs: a.watermarkMs,
      streamEpoch: a.streamEpoch,
    };
    this.streamEpoch = a.streamEpoch;
    this.conn = conn;
    this.serve(conn);
    this.setState("open");
    this.supervisor = this.supervise(conn);
  }

  /** Connect, AUTH, AUTH_OK, all within connectTimeoutMs. */
  /** Whether a watermark moves past the newest one delivered for its interval (and records it). */
  private acceptWatermark(interval: number, startMs: bigint): boolean {
    const last = this.lastWatermark.get(interval);
    if (last !== undefined && startMs <= last) return false;
    this.lastWatermark.set(interval, startMs);
    return true;
  }

  private handshake(): Promise<Conn> {
    const result = new Deferred<Conn>();
    const abort = new AbortController();
    let transport: Transport | undefined;
    let conn: Conn | undefined;
    const fail = (e: TickwireError): void => {
      result.reject(e);
      transport?.close();
    };
    const timer = setTimeout(() => {
      abort.abort();
      fail(
        err("timeout", `no AUTH_OK from ${this.target} within ${this.connectTimeoutMs} ms`, {
          fatal: true,
        }),
      );
    }, this.connectTimeoutMs);
    const events: TransportEvents = {
      onFrame: (type, payload) => {
        this.stats_.framesReceived++;
        this.stats_.bytesReceived += payload.length + HEADER_SIZE;
        if (conn !== undefined) {
          this.onFrame(conn, type, payload);
          return;
        }
        try {
          if (type === FrameType.AUTH_OK) {
            const ok = codec.parse(pb.AuthOkSchema, payload, "AUTH_OK");
            const interval = this.heartbeatOverrideMs ?? (ok.heartbeatIntervalMs || 15000);
            const idle = this.idleOverrideMs ?? ok.heartbeatTimeoutMs;
            conn = new Conn(transport!, ok, interval, idle);
            transport!.setMaxPayload(conn.maxPayload);
            result.resolve(conn);
          } else if (type === FrameType.ERROR) {
            fail(codec.decodeError(payload).with({ fatal: true }));
          } else {
            throw new ProtocolViolation(`frame type ${type} before AUTH_OK`);
          }
        } catch (e) {
          if (!(e instanceof ProtocolViolation)) throw e;
          fail(err("protocol", e.message, { fatal: true }));
        }
      },
      onClose: (error) => {
        if (conn !== undefined) {
          conn.finish(error ?? err("io", "connection lost: end of stream", { fatal: true }));
          return;
        }
        const why = error?.detail.replace(/^connection lost: /, "") ?? "end of stream";
        const kind = error?.kind === "protocol" ? "protocol" : "io";
        result.reject(err(kind, `connection lost during AUTH: ${why}`, { fatal: true }));
      },
    };
    // (A connector that throws instead of rejecting is treated alike.)
    Promise.resolve()
      .then(() => this.connector(events, MAX_MSG_SIZE_LIMIT, abort.signal))
      .then(
        (t) => {
          transport = t;
          if (result.settled) {
            t.close(); // timed out meanwhile
            return;
          }
          t.send(codec.authFrame(this.credentials.username, this.credentials.password, this.clientName));
        },
        (e: unknown) =>
          result.reject(
            e instanceof TickwireError
              ? e
              : err("connect", `connect to ${this.target}: ${String(e)}`, { fatal: true }),
          ),
      );
    return result.promise.finally(() => clearTimeout(timer));
  }

  /** Starts delivering the connection's frames and its heartbeats. */
  private serve(conn: Conn): void {
    conn.serving = true;
    const early = conn.early;
    conn.early = [];
    for (const [type, payload] of early) {
      if (conn.done) break;
      this.onFrame(conn, type, payload);
    }
    if (!conn.done) this.scheduleHeartbeat(conn, monotonicMs());
  }

  /**
   * HEARTBEAT every heartbeat interval; a connection silent for idleTimeoutMs (heartbeat echoes
   * included) is dropped as dead even without a FIN.
   */
  private scheduleHeartbeat(conn: Conn, lastSent: number): void {
    const now = monotonicMs();
    let wake = lastSent + conn.heartbeatIntervalMs;
    if (conn.idleTimeoutMs > 0) wake = Math.min(wake, now + Math.max(conn.idleTimeoutMs / 4, 1));
    conn.timer = setTimeout(
      () => {
        if (conn.done) return;
        const t = monotonicMs();
        if (conn.idleTimeoutMs > 0 && !conn.readPaused && t - conn.lastRx > conn.idleTimeoutMs) {
          conn.abort(err("timeout", `nothing from the server for ${conn.idleTimeoutMs} ms`, { fatal: true }));
          return;
        }
        let sent = lastSent;
        if (t - lastSent >= conn.heartbeatIntervalMs) {
          sent = t;
          this.stats_.heartbeatsSent++;
          conn.transport.send(codec.heartbeatFrame(nowMs()));
        }
        this.scheduleHeartbeat(conn, sent);
      },
      Math.max(0, wake - now),
    );
  }

  // ----------------------------------------------------------------------------- supervision

  /** Serves the connection; with reconnect enabled, replaces it when it is lost. */
  private async supervise(first: Conn): Promise<void> {
    try {
      let conn = first;
      for (;;) {
        const reason = await conn.ended.promise;
        if (this.closing) return;
        if (!(this.reconnectOptions.enabled && retryable(reason))) {
          this.closeWith(reason);
          return;
        }
        this.disconnected(reason);
        const next = await this.reconnect(reason);
        if (next === undefined) return;
        conn = next;
      }
    } catch (e) {
      // A bug: close rather than hang with a dead connection.
      this.closeWith(err("protocol", `client failure: ${String(e)}`, { fatal: true }));
    }
  }

  private disconnected(reason: TickwireError): void {
    this.dropConnection(reason);
    this.stats_.disconnects++;
    this.notify({
      type: "error",
      error: reason.with({ fatal: false, message: `${reason.detail} (reconnecting)` }),
    });
    this.notify({ type: "disconnected", reason });
  }

  /**
   * Attempts until a connection is back with every subscription resumed, and returns it;
   * undefined when the client closed instead.
   */
  private async reconnect(reason: TickwireError): Promise<Conn | undefined> {
    const ro = this.reconnectOptions;
    let attempt = 0;
    while (!this.closing) {
      attempt++;
      if (ro.maxAttempts && attempt > ro.maxAttempts) {
        this.closeWith(
          reason.with({
            message: `gave up reconnecting after ${ro.maxAttempts} attempts; last error: ${reason.message}`,
          }),
        );
        return undefined;
      }
      const u = Math.random();
      const delayMs =
        reason.kind === "server" && reason.retryAfterMs
          ? retryAfterDelayMs(ro, reason.retryAfterMs, u)
          : backoffDelayMs(ro, attempt, u);
      this.notify({ type: "reconnecting", attempt, delayMs, reason });
      await this.sleep(delayMs);
      // No use reconnecting while the reader is far behind: the server would only queue more.
      while (!this.closing && this.queuedBatches > this.queueCapacity / 2) await this.spaceSignal.wait();
      if (this.closing) return undefined;
      this.stats_.reconnectAttempts++;
      let conn: Conn;
      try {
        conn = await this.handshake();
      } catch (e) {
        if (!(e instanceof TickwireError)) throw e;
        reason = e;
        if (!retryable(reason)) {
          this.closeWith(reason);
          return undefined;
        }
        continue;
      }
      if (this.closing) {
        conn.abort(err("closed", "client closed", { fatal: true }));
        return undefined;
      }
      this.conn = conn;
      this.serve(conn);
      this.previousStreamEpoch = this.streamEpoch;
      this.streamEpoch = conn.authOk.streamEpoch;
      const { lost, resumed } = await this.resume(conn);
      if (this.closing) return undefined;
      if (lost !== undefined) {
        reason = lost;
        this.disconnected(lost);
        continue;
      }
      this.stats_.reconnects++;
      this.setState("open");
      this.notify({
        type: "reconnected",
        attempt,
        resubscribed: resumed,
        previousStreamEpoch: this.previousStreamEpoch,
        streamEpoch: this.streamEpoch,
        streamEpochChanged: this.previousStreamEpoch !== this.streamEpoch,
      });
      return conn;
    }
    return undefined;
  }

  /**
   * Re-subscribes everything, while the connection is served (history arrives between the
   * replies): TICK subscriptions by seq for every topic received (PROTOCOL.md S8c, so that a
   * back-dated tick published meanwhile is replayed too) and by the subscription's
   * resume_from_ns (`resumeFromNs`) for the topics not received, since_ms from what was received for the other
   * topics and for bars (or the caller's own backfill / since_ms while its replay is
   * unfinished, `resumeHistory`). Returns why the connection was lost meanwhile (or undefined)
   * and the number of subscriptions resumed.
   */
  private async resume(conn: Conn): Promise<{ lost: TickwireError | undefined; resumed: number }> {
    const lookback = BigInt(Math.round(this.reconnectOptions.resumeLookbackMs));
    const replies: Array<Promise<unknown>> = [];
    const handles: number[] = [];
    for (const [handle, sub] of this.subs) {
      sub.serverId = 0n;
      sub.okResumeFromNs = 0n; // a marker of this connection's own SUBSCRIBE_OK decides
      const history = resumeHistory(
        sub.mode,
        sub.backfill,
        sub.sinceMs,
        sub.historyPending,
        resumeSinceMs(
          sub.sinceMs,
          sub.anchorMs,
          this.delivered.newestPoint(sub.mode, sub.wildcard, sub.topics),
          lookback,
        ),
      );
      // Positions take at most half of a frame; topics beyond resume by since_ms.
      const positions =
        sub.mode === Mode.TICK
          ? this.delivered.tickPositions(sub.wildcard, sub.topics, Math.floor(conn.maxPayload / 2))
          : [];
      const requestId = this.requestId();
      const reply = new Deferred<unknown>();
      if (history.resent) this.stats_.historyResends++;
      this.pending.set(requestId, { reply, resumeHandle: handle, resentHistory: history.resent });
      replies.push(reply.promise);
      handles.push(handle);
      conn.transport.send(
        codec.subscribeFrame(
          requestId,
          sub.mode,
          sub.topics,
          history.backfill,
          history.sinceMs,
          positions,
          this.previousStreamEpoch,
          sub.mode === Mode.TICK ? sub.resumeFromNs : 0n,
        ),
      );
    }
    if (this.previousStreamEpoch !== this.streamEpoch) {
      // The server restarted without its history (PROTOCOL.md S7a). The positions went out with
      // the old epoch, so that the server says what was lost; the seqs held no longer compare
      // with the new numbering. (No record of this connection has been handled yet.)
      this.delivered.resetTickNumbering();
      this.stats_.streamEpochChanges++;
    }
    if (replies.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), this.requestTimeoutMs);
      });
      const outcome = await Promise.race([
        Promise.allSettled(replies).then(() => "answered" as const),
        conn.ended.promise.then(() => "lost" as const),
        timedOut,
      ]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        conn.abort(
          err("timeout", `no reply to a resumed SUBSCRIBE within ${this.requestTimeoutMs} ms`, {
            fatal: true,
          }),
        );
      }
    }
    if (conn.done) return { lost: await conn.ended.promise, resumed: 0 };
    const resumed = handles.filter((h) => (this.subs.get(h)?.serverId ?? 0n) !== 0n).length;
    return { lost: undefined, resumed };
  }

  // -------------------------------------------------------------------------------- dispatch

  private onFrame(conn: Conn, type: number, payload: Uint8Array): void {
    if (conn.done) return;
    conn.lastRx = monotonicMs();
    if (!conn.serving) {
      if (conn.early.length >= MAX_EARLY_FRAMES) {
        conn.abort(
          err("protocol", `more than ${MAX_EARLY_FRAMES} frames before any request`, { fatal: true }),
        );
        return;
      }
      conn.early.push([type, payload]);
      return;
    }
    try {
      const reason = this.dispatch(conn, type, payload);
      if (reason !== undefined) conn.finish(reason);
    } catch (e) {
      if (e instanceof ProtocolViolation) {
        conn.abort(err("protocol", e.message, { fatal: true }));
      } else {
        conn.abort(err("protocol", `client failure: ${String(e)}`, { fatal: true }));
      }
    }
  }

  /** Handles one frame; returns an error when the connection must end. */
  private dispatch(conn: Conn, type: number, payload: Uint8Array): TickwireError | undefined {
    switch (type) {
      case FrameType.DATA_BATCH:
        this.onBatch(conn, payload);
        return undefined;
      case FrameType.HEARTBEAT:
        this.stats_.heartbeatEchoes++;
        return undefined;
      case FrameType.SUBSCRIBE_OK: {
        const m = codec.parse(pb.SubscribeOkSchema, payload, "SUBSCRIBE_OK");
        this.onSubscribeOk(conn, m);
        return undefined;
      }
      case FrameType.PUBLISH_ACK: {
        const m = codec.parse(pb.PublishAckSchema, payload, "PUBLISH_ACK");
        const p = this.pending.get(m.requestId);
        if (p !== undefined) {
          this.pending.delete(m.requestId);
          this.stats_.lateTicks += m.late;
          p.reply.resolve({ accepted: m.accepted, late: m.late } satisfies PublishAck);
        }
        return undefined;
      }
      case FrameType.ERROR:
        return this.onError(codec.decodeError(payload));
      default:
        if (NOT_FROM_SERVER.has(type)) {
          throw new ProtocolViolation(`unexpected frame type ${type} from the server`);
        }
        // A frame type this version does not know (a later protocol addition): skipped.
        this.stats_.unknownFrames++;
        return undefined;
    }
  }

  private onSubscribeOk(conn: Conn, m: pb.SubscribeOk): void {
    const { requestId, subscriptionId: serverId } = m;
    const p = this.pending.get(requestId);
    this.pending.delete(requestId);
    if (p === undefined || p.reply.settled) {
      // Its caller gave up waiting (timeout): nobody holds this subscription.
      conn.transport.send(codec.unsubscribeFrame(this.requestId(), serverId));
      return;
    }
    if (p.resumeHandle !== undefined) {
      const sub = this.subs.get(p.resumeHandle);
      if (sub !== undefined) {
        sub.serverId = serverId;
        // A resume's own place is later than what it replays: it replaces the value held only
        // once this resume's marker has arrived (historyEndEvent), or topics without a position
        // would miss what was accepted in between if the replay is cut.
        if (sub.mode === Mode.TICK) {
          if (sub.resumeFromNs === 0n) sub.resumeFromNs = m.resumeFromNs;
          sub.okResumeFromNs = m.resumeFromNs;
        }
        // A resume that asked for no history of the caller's waits for none of it; and a
        // server that announces no marker sends none (its replay's end cannot be known).
        sub.historyPending = p.resentHistory === true && m.historyEnd;
      } else conn.transport.send(codec.unsubscribeFrame(this.requestId(), serverId)); // unsubscribed meanwhile
      p.reply.resolve(undefined);
      return;
    }
    // Registered here, before any later frame is handled, so that a reconnect right after
    // resumes it.
    const spec = p.subscribe!;
    const sub: Subscription = {
      ...spec,
      handle: this.nextHandle++,
      serverId,
      anchorMs: spec.sinceMs > 0n ? spec.sinceMs : nowMs(),
      resumeFromNs: spec.mode === Mode.TICK ? m.resumeFromNs : 0n,
      historyPending: m.historyEnd && (spec.backfill > 0 || spec.sinceMs > 0n),
    };
    this.subs.set(sub.handle, sub);
    p.reply.resolve(sub.handle);
  }

  private onError(e: TickwireError): TickwireError | undefined {
    // TOPIC_LIMIT reports refused ticks of a PUBLISH; its PUBLISH_ACK (if asked for) follows
    // and answers the request.
    const answers = e.requestId !== 0 && e.code !== ErrorCode.TOPIC_LIMIT;
    const p = answers ? this.pending.get(e.requestId) : undefined;
    if (p !== undefined && !p.reply.settled) {
      this.pending.delete(e.requestId);
      if (p.resumeHandle !== undefined) {
        // The server refuses a subscription it accepted before (permissions changed, ...): it
        // is dropped, and the caller hears why.
        this.subs.delete(p.resumeHandle);
        this.stats_.resubscribeFailures++;
        this.notify({
          type: "error",
          error: e.with({
            fatal: false,
            requestId: 0,
            message: `resuming subscription ${p.resumeHandle} failed: ${e.detail}`,
          }),
        });
        p.reply.resolve(undefined);
      } else {
        p.reply.reject(e);
      }
      return e.fatal ? e : undefined;
    }
    if (e.fatal) return e; // reported as the disconnect or close reason
    this.notify({ type: "error", error: e });
    return undefined;
  }

  private onBatch(conn: Conn, payload: Uint8Array): void {
    const { batchSeq, records, historyEnds, unknown } = codec.decodeDataBatch(payload);
    this.stats_.batches++;
    this.stats_.unknownRecords += unknown;
    if (batchSeq !== conn.lastBatchSeq + 1n) {
      this.stats_.batchGaps++;
      this.notify({
        type: "error",
        error: err(
          "batch_gap",
          `DATA_BATCH batch_seq ${batchSeq} after ${conn.lastBatchSeq} (expected ${conn.lastBatchSeq + 1n})`,
        ),
      });
    }
    conn.lastBatchSeq = batchSeq;
    let kept: DataRecord[] = [];
    const delivered = this.delivered;
    const before = delivered.duplicates;
    const epochsBefore = delivered.topicEpochChanges;
    // A history_end marker comes as its own event where it sat: the batch is split around it.
    let marker = 0;
    const flushMarkers = (upTo: number): void => {
      for (; marker < historyEnds.length && historyEnds[marker]!.recordIndex <= upTo; marker++) {
        const ev = this.historyEndEvent(historyEnds[marker]!);
        if (ev === undefined) continue; // unsubscribed meanwhile
        if (kept.length > 0) {
          this.queueBatch(batchSeq, kept);
          kept = [];
        }
        this.events.push(ev);
        this.stats_.historyEnds++;
        this.eventSignal.notify();
      }
    };
    for (let i = 0; i < records.length; i++) {
      flushMarkers(i);
      const r = records[i]!;
      let fresh: boolean;
      if (r.kind === "tick") {
        const verdict = delivered.acceptTick(r.topic, r.seq, r.prevSeq, r.tsNs, r.topicEpoch);
        fresh = verdict.fresh;
        if (verdict.gapAfter !== 0n) {
          this.stats_.tickGaps++;
          this.notify({
            type: "gap",
            topic: r.topic,
            seq: r.seq,
            prevSeq: r.prevSeq,
            lastSeq: verdict.gapAfter,
          });
        }
      } else if (r.kind === "bar") {
        fresh = delivered.acceptBar(r.interval, r.topic, r.startMs);
      } else {
        fresh = this.watermarks && this.acceptWatermark(r.interval, r.startMs);
      }
      if (fresh) kept.push(r);
    }
    flushMarkers(records.length);
    this.stats_.duplicatesDropped += delivered.duplicates - before;
    this.stats_.topicEpochChanges += delivered.topicEpochChanges - epochsBefore;
    if (kept.length > 0) this.queueBatch(batchSeq, kept);
    this.checkQueue(conn);
  }

  /** The event for a history_end marker, naming the client's handle; undefined for a
   * subscription the client no longer holds. */
  private historyEndEvent(h: codec.DecodedHistoryEnd): HistoryEndEvent | undefined {
    for (const sub of this.subs.values()) {
      if (sub.serverId === h.subscriptionId) {
        sub.historyPending = false; // the caller's history has been replayed (S8c)
        // This resume's replay is complete: later resumes start from its place (S8c).
        if (sub.okResumeFromNs > sub.resumeFromNs) sub.resumeFromNs = sub.okResumeFromNs;
        return {
          type: "history_end",
          subscription: sub.handle,
          truncated: h.truncated,
          retention: h.retention,
          backfillLimit: h.backfillLimit,
          epochChanged: h.epochChanged,
          lost: h.lost,
          lostOmitted: h.lostOmitted,
        };
      }
    }
    return undefined;
  }

  private queueBatch(batchSeq: bigint, records: DataRecord[]): void {
    this.stats_.records += records.length;
    this.events.push({ type: "batch", batchSeq, records });
    this.queuedBatches++;
    this.eventSignal.notify();
  }

  private checkQueue(conn: Conn): void {
    // Backpressure: while the queue holds queueCapacity batches, stop reading (the server then
    // holds the data, and its slow-consumer rule applies as for any consumer that stops
    // reading). A transport that cannot stop (a browser WebSocket) is dropped once about twice
    // that many wait, and resumed from history when the reader has caught up.
    if (this.queuedBatches >= this.queueCapacity && !conn.readPaused) {
      if (conn.transport.pause()) {
        conn.readPaused = true;
        this.stats_.readPauses++;
      }
    }
    if (this.queuedBatches >= 2 * this.queueCapacity + OVERFLOW_SLACK) {
      this.stats_.queueOverflows++;
      conn.abort(
        err(
          "io",
          `event queue overflow: ${this.queuedBatches} batches unread (queueCapacity ${this.queueCapacity})`,
          {
            fatal: true,
          },
        ),
      );
    }
  }

  private onSpace(): void {
    this.spaceSignal.notify();
    const conn = this.conn;
    if (conn !== undefined && conn.readPaused && !conn.done) {
      conn.readPaused = false;
      conn.lastRx = monotonicMs();
      conn.transport.resume();
    }
  }

  // --------------------------------------------------------------------------------- helpers

  private setState(state: ConnectionState): void {
    this.state_ = state;
    this.stateSignal.notify();
  }

  private requestId(): number {
    this.nextRequestId = (this.nextRequestId % 0xffffffff) + 1; // 1 .. 2^32-1
    return this.nextRequestId;
  }

  private closedError(): TickwireError {
    const r = this.closeReason_;
    if (r !== undefined) {
      return r.with({ kind: "closed", requestId: 0, message: `client closed: ${r.message}` });
    }
    return err("closed", "client closed", { fatal: true });
  }

  /** The current connection once it is open, waiting for a reconnect until `deadline`. */
  private async waitOpen(deadline: number): Promise<Conn> {
    for (;;) {
      if (this.closed || this.closing) throw this.closedError();
      if (this.state_ === "open" && this.conn !== undefined) return this.conn;
      const remaining = deadline - monotonicMs();
      if (remaining <= 0) throw err("timeout", "not connected: still reconnecting");
      await this.stateSignal.wait(remaining);
    }
  }

  /** Writes a request frame, waiting for the transport to take it (backpressure). */
  private async sendRequest(conn: Conn, frame: Uint8Array, deadline: number): Promise<void> {
    if (conn !== this.conn || conn.done) {
      throw err("io", "connection lost before the request");
    }
    conn.transport.send(frame);
    if (conn.transport.backlog === 0) return;
    const remaining = deadline - monotonicMs();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const writable = await Promise.race([
      conn.transport.whenWritable().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, remaining));
      }),
    ]);
    clearTimeout(timer);
    if (!writable) throw err("timeout", "the server did not take the request in time");
  }

  private async awaitReply(reply: Deferred<unknown>, deadline: number): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(err("timeout", `no reply within ${this.requestTimeoutMs} ms`)),
        Math.max(0, deadline - monotonicMs()),
      );
    });
    try {
      return await Promise.race([reply.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queues an event that is not a batch (never blocks: the oldest notice is dropped when
   * queueCapacity notices wait). */
  private notify(ev: TickwireEvent): void {
    if (this.state_ === "closed") return;
    if (this.queuedNotices >= this.queueCapacity) {
      for (let i = this.eventsHead; i < this.events.length; i++) {
        const old = this.events[i]!;
        if (old.type !== "batch" && old.type !== "closed") {
          this.events.splice(i, 1);
          this.queuedNotices--;
          this.stats_.droppedEvents++;
          break;
        }
      }
    }
    this.events.push(ev);
    this.queuedNotices++;
    this.eventSignal.notify();
  }

  private failPending(error: TickwireError): void {
    const pending = [...this.pending.entries()];
    this.pending.clear();
    for (const [requestId, p] of pending) p.reply.reject(error.with({ requestId }));
  }

  /** Closes the connection and fails what waited on it; subscriptions and what was delivered
   * stay. */
  private dropConnection(reason: TickwireError): void {
    this.setState("reconnecting");
    const conn = this.conn;
    this.conn = undefined;
    conn?.abort(reason);
    this.failPending(err("io", `connection lost before the reply (${reason.message})`));
    for (const sub of this.subs.values()) sub.serverId = 0n;
  }

  private closeWith(reason: TickwireError | undefined): void {
    if (this.state_ === "closed" || this.closing) return;
    this.closing = true;
    if (reason !== undefined) {
      reason = reason.with({ fatal: true });
      this.notify({ type: "error", error: reason });
    }
    this.closeReason_ = reason;
    this.setState("closed");
    this.failPending(this.closedError());
    const conn = this.conn;
    this.conn = undefined;
    conn?.abort(err("closed", "client closed", { fatal: true }));
    this.events.push({ type: "closed", reason });
    this.eventSignal.notify();
    this.spaceSignal.notify();
    this.closedDeferred.resolve();
  }

  /** Waits `ms`, or less when the client closes meanwhile. */
  private async sleep(ms: number): Promise<void> {
    const end = monotonicMs() + ms;
    while (!this.closing) {
      const left = end - monotonicMs();
      if (left <= 0) return;
      await this.stateSignal.wait(left);
    }
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a number > 0`);
  }
  return value;
}
