// The pure parts of reconnect and resume (no I/O), the same rules as the C++ and Python
// clients (docs/CLIENT.md, "Reconnect and resume"): backoff delays, the per-topic record of
// what was delivered (duplicate filter and gap detection), the seq positions a TICK
// subscription resumes after and the since_ms for everything else.

import { Mode } from "./types.js";

/** How the client reconnects after losing its connection. Times are in milliseconds. */
export interface ReconnectOptions {
  enabled: boolean;
  /**
   * Attempt n (1-based) waits initialBackoffMs * multiplier^(n-1), capped at maxBackoffMs,
   * less a random share of up to `jitter` of it (0.5: uniformly in [d/2, d]), so that clients
   * dropped together do not come back together.
   */
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  jitter: number;
  /** Consecutive failed attempts after which the client gives up and closes; 0 = never. */
  maxAttempts: number;
  /**
   * A resumed subscription asks for records from this long before the newest one it received,
   * to cover other topics' records that were in flight when the connection broke and ticks
   * stamped out of order by producers; the duplicates this brings are dropped.
   */
  resumeLookbackMs: number;
}

export const DEFAULT_RECONNECT: Readonly<ReconnectOptions> = Object.freeze({
  enabled: true,
  initialBackoffMs: 100,
  maxBackoffMs: 10000,
  multiplier: 2,
  jitter: 0.5,
  maxAttempts: 0,
  resumeLookbackMs: 1000,
});

/** The options for `reconnect: true | false | {...}`: the defaults with the caller's changes. */
export function reconnectOptions(value: boolean | Partial<ReconnectOptions> | undefined): ReconnectOptions {
  if (value === undefined || value === true) return { ...DEFAULT_RECONNECT };
  if (value === false) return { ...DEFAULT_RECONNECT, enabled: false };
  const o = { ...DEFAULT_RECONNECT, ...value };
  for (const key of [
    "initialBackoffMs",
    "maxBackoffMs",
    "multiplier",
    "jitter",
    "maxAttempts",
    "resumeLookbackMs",
  ] as const) {
    if (typeof o[key] !== "number" || !Number.isFinite(o[key]) || o[key] < 0) {
      throw new TypeError(`reconnect.${key} must be a finite number >= 0`);
    }
  }
  return o;
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}

/** Milliseconds before reconnect attempt `attempt` (1-based); `u` is uniform in [0, 1). */
export function backoffDelayMs(options: ReconnectOptions, attempt: number, u: number): number {
  const initial = Math.max(0, options.initialBackoffMs);
  const cap = Math.max(initial, options.maxBackoffMs);
  const multiplier = Math.max(1, options.multiplier);
  let d = initial;
  for (let i = 1; i < attempt && d < cap; i++) d *= multiplier;
  d = Math.min(d, cap);
  return d * (1 - clamp01(options.jitter) * clamp01(u));
}

/**
 * Milliseconds to wait when the server said when to come back (ERROR retry_after_ms): never
 * sooner, spread up to `jitter` later so that drained clients do not return at once.
 */
export function retryAfterDelayMs(options: ReconnectOptions, retryAfterMs: number, u: number): number {
  return retryAfterMs * (1 + clamp01(options.jitter) * clamp01(u));
}

/** A tick's resume point: floor(ts_ns / 1e6), what PROTOCOL.md S8b compares with since_ms. */
export function tickPointMs(tsNs: bigint): bigint {
  const q = tsNs / 1_000_000n;
  return tsNs < 0n && q * 1_000_000n !== tsNs ? q - 1n : q;
}

/**
 * since_ms for re-subscribing.
 *
 * `newestPointMs` is the newest point the subscription received (undefined: none), `anchorMs`
 * when it started (the caller's since_ms, or the client's clock at its first SUBSCRIBE_OK),
 * `userSinceMs` the caller's own since_ms (0n: none), below which it never goes. Always >= 1,
 * because since_ms 0 means "no history".
 */
export function resumeSinceMs(
  userSinceMs: bigint,
  anchorMs: bigint,
  newestPointMs: bigint | undefined,
  lookbackMs: bigint,
): bigint {
  const start = newestPointMs === undefined || newestPointMs < anchorMs ? anchorMs : newestPointMs;
  let since = start - (lookbackMs > 0n ? lookbackMs : 0n);
  if (userSinceMs > 0n && since < userSinceMs) since = userSinceMs;
  return since < 1n ? 1n : since;
}

/** The history a resumed SUBSCRIBE asks for (besides `resume_after` and `resume_from_ns`). */
export interface ResumeHistory {
  backfill: number;
  sinceMs: bigint;
  /** The caller's backfill / since_ms again: its history_end marker is awaited anew. */
  resent: boolean;
}

/**
 * What a resumed SUBSCRIBE asks for by `backfill` / `since_ms` (PROTOCOL.md S8c).
 *
 * `historyPending`: the subscription asked for history (`userBackfill` or `userSinceMs`), the
 * server announced a history_end marker for it, and none has arrived yet. Its replay was cut,
 * so topics the replay had not reached still need it: a TICK subscription asks for the caller's
 * original `backfill` and `since_ms` again (its `resume_after` positions and `resume_from_ns`
 * cover the rest), and so does a bar subscription with `since_ms` (the duplicates are
 * dropped). A bar subscription with `backfill` keeps resuming by time (the N newest bars would
 * miss those that closed while the client was away). Otherwise: `resumeSinceMs`'s value
 * (`lookbackSinceMs`) and no backfill.
 */
export function resumeHistory(
  mode: number,
  userBackfill: number,
  userSinceMs: bigint,
  historyPending: boolean,
  lookbackSinceMs: bigint,
): ResumeHistory {
  if (historyPending && (mode === Mode.TICK ? userBackfill > 0 || userSinceMs > 0n : userSinceMs > 0n)) {
    return { backfill: userBackfill, sinceMs: userSinceMs, resent: true };
  }
  return { backfill: 0, sinceMs: lookbackSinceMs, resent: false };
}

interface TickState {
  lastSeq: bigint;
  maxTsNs: bigint;
  /** topic_epoch of lastSeq (0n: not known). */
  epoch: bigint;
}

/** Where a TICK subscription resumes a topic (PROTOCOL.md S8c, `ResumePoint`). */
export interface ResumePosition {
  topic: string;
  /** The last seq received on the topic. */
  afterSeq: bigint;
  /** The topic_epoch it belongs to (0n: not known). */
  topicEpoch: bigint;
}

/** Whether a subscription to `topics` (names, "P.*" prefixes) or `*` covers `topic`. */
export function covers(wildcard: boolean, topics: readonly string[], topic: string): boolean {
  if (wildcard) return true;
  for (const t of topics) {
    if (t === topic) return true;
    if (t.length >= 2 && t.endsWith(".*") && topic.startsWith(t.slice(0, -1))) return true;
  }
  return false;
}

// Upper bound of one ResumePoint's encoding besides its topic: tags, lengths, two varints.
const POSITION_OVERHEAD = 26;

/** The outcome of `DeliveredState.acceptTick`. */
export interface TickVerdict {
  /** False for a duplicate (already delivered). */
  fresh: boolean;
  /** The last seq seen before it when its prev_seq reveals a gap; 0n otherwise. */
  gapAfter: bigint;
}

/**
 * Per (mode, topic), the last record handed to the user.
 *
 * A resume re-sends what the client may already have; this drops those duplicates: a tick
 * whose seq is not above the last seq of its topic, a bar whose start_ms is not above the last
 * one of its topic and interval. About 100 bytes per distinct topic received per mode.
 */
export class DeliveredState {
  private readonly ticks = new Map<string, TickState>();
  private readonly bars = new Map<number, Map<string, bigint>>([
    [Mode.SECOND, new Map()],
    [Mode.MINUTE, new Map()],
  ]);
  private readonly newest = new Map<number, bigint>();
  duplicates = 0;
  tickGaps = 0;
  renumbered = 0;
  topicEpochChanges = 0;

  /**
   * A tick with prev_seq 0 and a ts_ns newer than anything seen on its topic starts a fresh
   * numbering (a restarted server that kept no history): it is fresh, and the topic's seq
   * starts over from it. So does a tick whose topic_epoch differs from the last one seen on its
   * topic (both non-zero): the topic was forgotten and created again (PROTOCOL.md S7a).
   */
  acceptTick(topic: string, seq: bigint, prevSeq: bigint, tsNs: bigint, topicEpoch = 0n): TickVerdict {
    let s = this.ticks.get(topic);
    if (s === undefined) {
      s = { lastSeq: 0n, maxTsNs: 0n, epoch: 0n };
      this.ticks.set(topic, s);
    }
    if (topicEpoch !== 0n && s.epoch !== 0n && topicEpoch !== s.epoch) {
      this.topicEpochChanges++; // a new incarnation: its seqs do not compare with the old ones
      s.lastSeq = 0n;
    }
    if (topicEpoch !== 0n) s.epoch = topicEpoch;
    let gapAfter = 0n;
    if (s.lastSeq !== 0n && seq <= s.lastSeq) {
      if (prevSeq !== 0n || tsNs <= s.maxTsNs) {
        this.duplicates++;
        return { fresh: false, gapAfter: 0n };
      }
      this.renumbered++;
    } else if (s.lastSeq !== 0n && prevSeq !== s.lastSeq) {
      this.tickGaps++;
      gapAfter = s.lastSeq;
    }
    s.lastSeq = seq;
    if (tsNs > s.maxTsNs) s.maxTsNs = tsNs;
    this.take(Mode.TICK, tickPointMs(tsNs));
    return { fresh: true, gapAfter };
  }

  acceptBar(interval: number, topic: string, startMs: bigint): boolean {
    const bars = this.bars.get(interval);
    if (bars === undefined) return true; // an interval this version does not know
    const last = bars.get(topic);
    if (last !== undefined && startMs <= last) {
      this.duplicates++;
      return false;
    }
    bars.set(topic, startMs);
    this.take(interval, startMs);
    return true;
  }

  /**
   * The server's stream epoch changed (PROTOCOL.md S7a): every topic's numbering starts over,
   * so the seqs seen so far no longer mark duplicates. Bar positions stay (start_ms is wall time).
   */
  resetTickNumbering(): void {
    for (const s of this.ticks.values()) {
      s.lastSeq = 0n;
      s.epoch = 0n;
    }
  }

  /**
   * Resume positions (PROTOCOL.md S8c) of the topics a TICK subscription to `topics` (or `*`
   * when `wildcard`; "P.*" prefixes included) has received ticks of, in topic order, at most
   * `maxBytes` of them by their encoded size (the rest resume by since_ms).
   */
  tickPositions(wildcard: boolean, topics: readonly string[], maxBytes: number): ResumePosition[] {
    const out: ResumePosition[] = [];
    for (const [topic, s] of this.ticks) {
      if (s.lastSeq !== 0n && covers(wildcard, topics, topic)) {
        out.push({ topic, afterSeq: s.lastSeq, topicEpoch: s.epoch });
      }
    }
    out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    const encoder = new TextEncoder();
    let bytes = 0;
    let keep = 0;
    while (keep < out.length) {
      const cost = encoder.encode(out[keep]!.topic).length + POSITION_OVERHEAD;
      if (bytes + cost > maxBytes) break;
      bytes += cost;
      keep++;
    }
    out.length = keep;
    return out;
  }

  /** Newest resume point received for `mode` on `topics`, or on any topic when `wildcard`. */
  newestPoint(mode: number, wildcard: boolean, topics: readonly string[]): bigint | undefined {
    if (wildcard) return this.newest.get(mode);
    let newest: bigint | undefined;
    for (const topic of topics) {
      let p: bigint | undefined;
      if (mode === Mode.TICK) {
        const s = this.ticks.get(topic);
        p = s === undefined ? undefined : tickPointMs(s.maxTsNs);
      } else {
        p = this.bars.get(mode)?.get(topic);
      }
      if (p !== undefined && (newest === undefined || p > newest)) newest = p;
    }
    return newest;
  }

  private take(mode: number, point: bigint): void {
    const cur = this.newest.get(mode);
    if (cur === undefined || point > cur) this.newest.set(mode, point);
  }
}
