// The values the client hands out: records (Tick, Bar), events, errors and counters.
//
// Every 64-bit integer of the wire (ts_ns, seq, prev_seq, start_ms, count, batch_seq) is a
// bigint, so it is exact; src/time.ts turns them into Date or number where that is safe.

/** Subscription modes; the numbers are the wire enum `Mode`. */
export const Mode = {
  /** One closed bar per topic per UTC second. */
  SECOND: 1,
  /** One closed bar per topic per UTC minute. */
  MINUTE: 2,
  /** Every published tick. */
  TICK: 3,
} as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/** What `subscribe` takes as a mode: `Mode.SECOND`, `1`, `"second"` and `"SECOND"` are one. */
export type ModeLike = Mode | "second" | "minute" | "tick" | "SECOND" | "MINUTE" | "TICK";

const MODE_NAMES: { [name: string]: Mode } = { second: 1, minute: 2, tick: 3 };

/** The Mode for `value`; throws a TypeError for anything else. */
export function parseMode(value: ModeLike | string | number): Mode {
  if (typeof value === "number") {
    if (value === 1 || value === 2 || value === 3) return value;
  } else if (typeof value === "string") {
    const m = MODE_NAMES[value.trim().toLowerCase()];
    if (m !== undefined) return m;
  }
  throw new TypeError(`unknown mode ${JSON.stringify(value)} (second, minute or tick)`);
}

/** "second", "minute", "tick", or "mode_N" for a number this version does not know. */
export function modeName(mode: number): string {
  for (const [name, m] of Object.entries(MODE_NAMES)) if (m === mode) return name;
  return `mode_${mode}`;
}

/** Length of a bar mode's bucket in ms; 0 for TICK. */
export function intervalMs(mode: number): number {
  return mode === Mode.SECOND ? 1000 : mode === Mode.MINUTE ? 60000 : 0;
}

/**
 * Wire error codes. Servers may add codes: a code this version does not know arrives as its
 * number, and `errorCodeName` calls it `CODE_<n>`.
 */
export const ErrorCode = {
  ERROR_CODE_UNSPECIFIED: 0,
  AUTH_REQUIRED: 1,
  AUTH_FAILED: 2,
  AUTH_RATE_LIMITED: 3,
  AUTH_TIMEOUT: 4,
  MALFORMED_FRAME: 5,
  FRAME_TOO_LARGE: 6,
  UNKNOWN_FRAME_TYPE: 7,
  INVALID_REQUEST: 8,
  FORBIDDEN: 9,
  HEARTBEAT_TIMEOUT: 10,
  SLOW_CONSUMER: 11,
  SERVER_DRAINING: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  /** Ticks for new topics refused by the server's topic cap: a report, not an answer. */
  TOPIC_LIMIT: 15,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const CODE_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** `AUTH_FAILED` for 2, ...; `CODE_<n>` for a code this version does not know. */
export function errorCodeName(code: number): string {
  return CODE_NAMES.get(code) ?? `CODE_${code}`;
}

/** Where an error came from. */
export type ErrorKind =
  /** An ERROR frame from the server (`code` says which). */
  | "server"
  /** Resolving, TCP, TLS or the WebSocket handshake failed. */
  | "connect"
  /** Connecting, a reply, or an idle connection took too long. */
  | "timeout"
  /** The connection broke (end of stream, reset, a write failure). */
  | "io"
  /** The server sent something the protocol does not allow. */
  | "protocol"
  /** DATA_BATCH batch_seq skipped a number on one connection. */
  | "batch_gap"
  /** A call the client refuses before sending anything. */
  | "invalid_argument"
  /** The client is closed. */
  | "closed";

/** The fields of a TickwireError. */
export interface ErrorInfo {
  kind: ErrorKind;
  /** Human-readable detail (for a server ERROR, the server's message). */
  message: string;
  /** The wire error code of a server ERROR; 0 otherwise. */
  code?: number;
  /** True when the error ended the connection (or the client). */
  fatal?: boolean;
  /** The request it answers (a server ERROR carrying request_id); 0 otherwise. */
  requestId?: number;
  /** When the server said to come back (AUTH_RATE_LIMITED, SERVER_DRAINING, UNAVAILABLE). */
  retryAfterMs?: number;
}

/**
 * Every error the client throws or reports. `kind` says where it came from; for a server
 * ERROR, `code` says which (compare with `ErrorCode.*`), `codeName` names it.
 */
export class TickwireError extends Error {
  readonly kind: ErrorKind;
  readonly code: number;
  readonly fatal: boolean;
  readonly requestId: number;
  readonly retryAfterMs: number;
  /** The message without the kind or code in front. */
  readonly detail: string;

  constructor(info: ErrorInfo) {
    super(describe(info));
    this.name = new.target.name;
    this.kind = info.kind;
    this.detail = info.message;
    this.code = info.code ?? 0;
    this.fatal = info.fatal ?? false;
    this.requestId = info.requestId ?? 0;
    this.retryAfterMs = info.retryAfterMs ?? 0;
  }

  get codeName(): string {
    return errorCodeName(this.code);
  }

  /** The fields, for copying with changes. */
  get info(): ErrorInfo {
    return {
      kind: this.kind,
      message: this.detail,
      code: this.code,
      fatal: this.fatal,
      requestId: this.requestId,
      retryAfterMs: this.retryAfterMs,
    };
  }

  /** A copy with some fields changed (of the class that fits its kind). */
  with(changes: Partial<ErrorInfo>): TickwireError {
    return TickwireError.of({ ...this.info, ...changes });
  }

  /** The error class that fits `info.kind`. */
  static of(info: ErrorInfo): TickwireError {
    switch (info.kind) {
      case "server":
        return new ServerError(info);
      case "io":
        return new ConnectionLost(info);
      case "closed":
        return new ClientClosed(info);
      case "timeout":
        return new RequestTimeout(info);
      default:
        return new TickwireError(info);
    }
  }
}

function describe(info: ErrorInfo): string {
  let text =
    info.kind === "server"
      ? `${errorCodeName(info.code ?? 0)}: ${info.message}`
      : `${info.kind}: ${info.message}`;
  if (info.retryAfterMs) text += ` (retry after ${info.retryAfterMs} ms)`;
  return text;
}

/** The server answered with an ERROR (AUTH_FAILED, INVALID_REQUEST, FORBIDDEN, ...). */
export class ServerError extends TickwireError {}
/** The connection broke before the reply came (an acked publish is not resent). */
export class ConnectionLost extends TickwireError {}
/** The client is closed. */
export class ClientClosed extends TickwireError {}
/** No reply (or no connection) within the timeout. */
export class RequestTimeout extends TickwireError {}

/** A tick as delivered (seq and prev_seq are set by the server). */
export interface Tick {
  readonly kind: "tick";
  readonly topic: string;
  readonly price: number;
  readonly size: number;
  /** Event time, ns since the Unix epoch. */
  readonly tsNs: bigint;
  /** Per topic, strictly increasing (set by the server). */
  readonly seq: bigint;
  /** seq of the topic's previous tick; 0n for its first. */
  readonly prevSeq: bigint;
  /**
   * The incarnation of the topic's numbering this seq belongs to (PROTOCOL.md S7a): a new
   * value means the topic was forgotten and published again, numbered from 1. 0n from servers
   * without epochs.
   */
  readonly topicEpoch: bigint;
}

/** A closed SECOND or MINUTE bar: OHLC, volume, count and vwap of one topic's bucket. */
export interface Bar {
  readonly kind: "bar";
  readonly topic: string;
  /** Mode.SECOND or Mode.MINUTE (a number this version does not know stays a number). */
  readonly interval: number;
  /** Bucket start, ms since the Unix epoch, aligned to the UTC second or minute. */
  readonly startMs: bigint;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Sum of the ticks' sizes. */
  readonly volume: number;
  /** Number of ticks. */
  readonly count: bigint;
  /** sum(price*size)/volume; 0 when volume is 0. */
  readonly vwap: number;
}

/**
 * The interval starting at `startMs`, and every earlier one, is final on this connection
 * (PROTOCOL.md S8d): every bar of it came before this record, so a subscribed topic without a
 * bar for it had no trade in it. One per interval on a connection with a SECOND (MINUTE)
 * subscription, also when nothing traded.
 */
export interface Watermark {
  readonly kind: "watermark";
  /** Mode.SECOND or Mode.MINUTE. */
  readonly interval: number;
  /** Start of the newest final interval, ms since the Unix epoch. */
  readonly startMs: bigint;
}

/** A record of a DATA_BATCH. Kinds this version does not know are skipped (and counted). */
export type DataRecord = Tick | Bar | Watermark;

/** Ticks of one topic and numbering that a replay left out, from..to inclusive. */
export interface LostRange {
  readonly topic: string;
  readonly fromSeq: bigint;
  /** 0n: to the end of that numbering. */
  readonly toSeq: bigint;
  readonly topicEpoch: bigint;
}

/**
 * The end of a subscription's history replay (PROTOCOL.md S8c): every record of it after this
 * event is live. Once per SUBSCRIBE with backfill or sinceMs, and once per resumed
 * subscription after each reconnect. It comes after the batch holding the last replayed
 * record (a batch is split around it), and says what the replay left out.
 */
export interface HistoryEndEvent {
  readonly type: "history_end";
  /** The subscription's handle (what `subscribe` resolved to). */
  readonly subscription: number;
  /** True when the replay left out something asked for (one of the three below is set). */
  readonly truncated: boolean;
  /** The server's history no longer held records asked for. */
  readonly retention: boolean;
  /** MAX_BACKFILL_RECORDS cut the replay. */
  readonly backfillLimit: boolean;
  /** A resume position belonged to another stream or topic epoch (the server restarted without
   * its history, or the topic was forgotten). */
  readonly epochChanged: boolean;
  /** The ticks known to be lost, for topics resumed by seq. */
  readonly lost: readonly LostRange[];
  /** Further lost ranges the server did not list. */
  readonly lostOmitted: number;
}

/** The server's answer to an acked PUBLISH. */
export interface PublishAck {
  /** Ticks applied. */
  readonly accepted: number;
  /** Of those, ticks too late for their bar (delivered to TICK subscribers, in no bar; S8a). */
  readonly late: number;
}

/** A tick to publish: `ts_ns` 0n (the default) lets the server stamp its receive time. */
export interface TickInput {
  topic: string;
  price: number;
  size: number;
  tsNs?: bigint;
}

/** What `publish` takes per tick: an object, or `[topic, price, size, tsNs?]`. */
export type PublishTick = TickInput | readonly [string, number, number, bigint?];

/** One DATA_BATCH, without the records delivered before (resume duplicates removed). */
export interface Batch {
  readonly type: "batch";
  readonly batchSeq: bigint;
  readonly records: DataRecord[];
}

/**
 * An error that answers no request: a non-fatal ERROR (a rejected PUBLISH without ack, ...), a
 * lost connection (`fatal` false, while reconnecting), a subscription refused on resume, a
 * batch_seq gap, or (`fatal` true, the last event before "closed") the error that closed the
 * client.
 */
export interface ErrorEvent {
  readonly type: "error";
  readonly error: TickwireError;
}

/**
 * A tick whose prev_seq is not the last seq received on its topic: ticks were missed
 * (for example, they fell out of the server's history during an outage). Comes just before
 * the batch that holds the tick.
 */
export interface TickGap {
  readonly type: "gap";
  readonly topic: string;
  readonly seq: bigint;
  readonly prevSeq: bigint;
  /** The last seq received on the topic before this tick. */
  readonly lastSeq: bigint;
}

/** The connection was lost; the client reconnects. */
export interface Disconnected {
  readonly type: "disconnected";
  readonly reason: TickwireError;
}

/** Reconnect attempt `attempt` (1-based) starts after `delayMs`. */
export interface Reconnecting {
  readonly type: "reconnecting";
  readonly attempt: number;
  readonly delayMs: number;
  /** The last failure. */
  readonly reason: TickwireError;
}

/** Attempt `attempt` succeeded and `resubscribed` subscriptions were resumed. */
export interface Reconnected {
  readonly type: "reconnected";
  readonly attempt: number;
  readonly resubscribed: number;
  /** The server's stream epoch before and now (PROTOCOL.md S7a). */
  readonly previousStreamEpoch: bigint;
  readonly streamEpoch: bigint;
  /**
   * The server restarted without its history: tick seqs start over, and what the old stream had
   * not delivered is lost (the history_end events of the resumed subscriptions list it).
   */
  readonly streamEpochChanged: boolean;
}

/** The client is closed: the last event. `reason` is undefined after close(). */
export interface Closed {
  readonly type: "closed";
  readonly reason: TickwireError | undefined;
}

export type TickwireEvent =
  | Batch
  | HistoryEndEvent
  | ErrorEvent
  | TickGap
  | Disconnected
  | Reconnecting
  | Reconnected
  | Closed;

export type ConnectionState =
  /** connect() has not returned yet. */
  | "connecting"
  /** Connected, authenticated, every subscription (re)established. */
  | "open"
  /** Lost: waiting, connecting, authenticating or resubscribing. */
  | "reconnecting"
  /** For good: close(), an error retrying cannot fix, or reconnecting gave up. */
  | "closed";

/** The server's AUTH_OK of the first connection. */
export interface AuthInfo {
  readonly sessionId: string;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxMsgSize: number;
  readonly batchWindowMs: number;
  readonly serverVersion: string;
  readonly protocolVersion: number;
  /** BAR_CLOSE_DELAY_MS (0 from servers without watermarks). */
  readonly barCloseDelayMs: number;
  /** The SECOND watermark when the session began (0n: none yet). */
  readonly watermarkMs: bigint;
  /**
   * Names the server's stream (PROTOCOL.md S7a): another value on a later connection means the
   * server restarted without its history. 0n in multi-instance mode and from older servers.
   */
  readonly streamEpoch: bigint;
}

/** Counters for monitoring and tests. */
export interface Stats {
  framesReceived: number;
  bytesReceived: number;
  batches: number;
  /** Records delivered (after duplicate filtering). */
  records: number;
  /** batch_seq discontinuities on one connection. */
  batchGaps: number;
  /** Times reading stopped because the event queue was full. */
  readPauses: number;
  /** Connections dropped because the event queue overflowed (transports that cannot pause). */
  queueOverflows: number;
  /** Notices dropped because nobody read the queue. */
  droppedEvents: number;
  heartbeatsSent: number;
  /** HEARTBEAT replies received. */
  heartbeatEchoes: number;
  /** Records of kinds this version does not know (skipped). */
  unknownRecords: number;
  /** Frames of types this version does not know (skipped). */
  unknownFrames: number;
  /** Established connections lost. */
  disconnects: number;
  /** Connection attempts after a loss. */
  reconnectAttempts: number;
  /** Attempts that ended with every subscription resumed. */
  reconnects: number;
  /** Subscriptions the server refused on resume (dropped). */
  resubscribeFailures: number;
  /** Records already delivered, filtered out. */
  duplicatesDropped: number;
  /** Ticks whose prev_seq was not the last seq seen ("gap" events). */
  tickGaps: number;
  /** Ticks that came with another topic_epoch than the last one of their topic. */
  topicEpochChanges: number;
  /** Reconnects that found another stream epoch (a server restarted without its history). */
  streamEpochChanges: number;
  /** "history_end" events delivered. */
  historyEnds: number;
  /** Resumes that asked for the caller's backfill / sinceMs again (a replay cut short). */
  historyResends: number;
  /** Acked published ticks the server counted late (PublishAck.late). */
  lateTicks: number;
}

export function newStats(): Stats {
  return {
    framesReceived: 0,
    bytesReceived: 0,
    batches: 0,
    records: 0,
    batchGaps: 0,
    readPauses: 0,
    queueOverflows: 0,
    droppedEvents: 0,
    heartbeatsSent: 0,
    heartbeatEchoes: 0,
    unknownRecords: 0,
    unknownFrames: 0,
    disconnects: 0,
    reconnectAttempts: 0,
    reconnects: 0,
    resubscribeFailures: 0,
    duplicatesDropped: 0,
    tickGaps: 0,
    topicEpochChanges: 0,
    streamEpochChanges: 0,
    historyEnds: 0,
    historyResends: 0,
    lateTicks: 0,
  };
}
