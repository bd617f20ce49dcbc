// bigint helpers: the wire's 64-bit integers (ts_ns, seq, start_ms, count) are bigints in this
// client, never numbers, because a number is exact only up to 2^53 and ts_ns is far above it.
// These turn them into Date, number or text where that is safe, and back.

const NS_PER_MS = 1_000_000n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * `value` as a number, exactly: throws a RangeError when it is beyond ±(2^53 - 1), where a
 * number would silently round (seq, count and start_ms are safe; ts_ns never is).
 */
export function toNumber(value: bigint): number {
  if (value > MAX_SAFE || value < -MAX_SAFE) {
    throw new RangeError(`${value} is beyond Number.MAX_SAFE_INTEGER: keep it a bigint`);
  }
  return Number(value);
}

/** ms since the epoch (a bar's startMs) as a Date. Exact. */
export function msToDate(ms: bigint): Date {
  return new Date(toNumber(ms));
}

/** ns since the epoch (a tick's tsNs) as a Date, rounded down to the millisecond. */
export function nsToDate(ns: bigint): Date {
  return msToDate(floorDiv(ns, NS_PER_MS));
}

/** A Date (or ms since the epoch) as ms since the epoch. */
export function dateToMs(date: Date | number): bigint {
  const ms = typeof date === "number" ? date : date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError("invalid date");
  return BigInt(Math.floor(ms));
}

/** A Date (or ms since the epoch) as ns since the epoch, for a tick's tsNs. */
export function dateToNs(date: Date | number): bigint {
  return dateToMs(date) * NS_PER_MS;
}

/**
 * The current time in ns since the epoch: the clock's milliseconds with the sub-millisecond
 * part of the monotonic clock, so that successive calls in one millisecond still differ.
 */
export function nowNs(): bigint {
  const ms = Date.now();
  const sub = Math.floor((performance.now() % 1) * 1e6);
  return BigInt(ms) * NS_PER_MS + BigInt(sub);
}

/** ns since the epoch as RFC 3339 UTC with all nine digits: "2024-05-01T12:00:00.123456789Z". */
export function nsToIso(ns: bigint): string {
  const ms = floorDiv(ns, NS_PER_MS);
  const rest = ns - ms * NS_PER_MS; // 0 .. 999999
  const iso = msToDate(ms).toISOString(); // "....SSSZ"
  return `${iso.slice(0, -1)}${rest.toString().padStart(6, "0")}Z`;
}

/**
 * A JSON.stringify replacer that writes bigints as decimal strings (JSON numbers above 2^53
 * are lossy in most readers): `JSON.stringify(record, bigintReplacer)`.
 */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** since_ms and friends from what callers pass: bigint, a whole number, or a Date. */
export function toBigIntMs(value: bigint | number | Date, name: string): bigint {
  if (typeof value === "bigint") return value;
  if (value instanceof Date) return dateToMs(value);
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  throw new TypeError(`${name} must be a bigint, a whole number of ms, or a Date`);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
