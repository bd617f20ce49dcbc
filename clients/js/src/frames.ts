// Framing (docs/PROTOCOL.md section 1): a 4-byte big-endian length that counts the type byte
// and the payload, the type byte, then the protobuf payload. No I/O here.

export const FrameType = {
  AUTH: 0x01,
  AUTH_OK: 0x02,
  SUBSCRIBE: 0x03,
  SUBSCRIBE_OK: 0x04,
  UNSUBSCRIBE: 0x05,
  PUBLISH: 0x06,
  PUBLISH_ACK: 0x07,
  DATA_BATCH: 0x08,
  HEARTBEAT: 0x09,
  ERROR: 0x0a,
} as const;

/** Bytes before the payload: length (4) and type (1). */
export const HEADER_SIZE = 5;

/**
 * The largest MAX_MSG_SIZE a server may announce (docs/PROTOCOL.md section 5): the bound on
 * frames read before AUTH_OK says the real one.
 */
export const MAX_MSG_SIZE_LIMIT = 16 * 1024 * 1024;

/** The server sent bytes the protocol does not allow; the connection cannot go on. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

export interface Frame {
  type: number;
  payload: Uint8Array;
}

/** A whole frame: header and payload. */
export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeHeader(out, payload.length + 1, type);
  out.set(payload, HEADER_SIZE);
  return out;
}

function writeHeader(out: Uint8Array, length: number, type: number): void {
  out[0] = (length >>> 24) & 0xff;
  out[1] = (length >>> 16) & 0xff;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
  out[4] = type;
}

/** The payload size a 4-byte length field announces, checked against `maxPayload`. */
export function payloadSize(bytes: Uint8Array, offset: number, maxPayload: number): number {
  const length =
    ((bytes[offset]! << 24) >>> 0) +
    (bytes[offset + 1]! << 16) +
    (bytes[offset + 2]! << 8) +
    bytes[offset + 3]!;
  if (length === 0) throw new ProtocolViolation("frame with length 0");
  if (length - 1 > maxPayload) {
    throw new ProtocolViolation(`frame payload of ${length - 1} bytes exceeds MAX_MSG_SIZE ${maxPayload}`);
  }
  return length - 1;
}

/**
 * One frame that fills a message exactly (a WebSocket message carries one frame).
 * Throws ProtocolViolation otherwise.
 */
export function parseWholeFrame(message: Uint8Array, maxPayload: number): Frame {
  if (message.length < HEADER_SIZE) {
    throw new ProtocolViolation(`message of ${message.length} bytes is shorter than a frame`);
  }
  const size = payloadSize(message, 0, maxPayload);
  if (size + HEADER_SIZE !== message.length) {
    throw new ProtocolViolation(
      `message of ${message.length} bytes holds a frame of ${size + HEADER_SIZE} bytes ` +
        "(one frame per message)",
    );
  }
  return { type: message[4]!, payload: message.subarray(HEADER_SIZE) };
}

/**
 * Reassembles frames from a byte stream (TCP, TLS). It buffers at most what was pushed and not
 * taken yet: the reader takes frames as they complete, so that is one partial frame (bounded by
 * `maxPayload`, checked as soon as its length field is complete) plus the rest of one chunk.
 *
 * Payloads are views into the pushed chunks, which must not be modified afterwards.
 */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  private total = 0; // bytes buffered
  private pendingSize = -1; // payload size of the frame whose header was read, or -1

  constructor(public maxPayload: number) {}

  /** Bytes buffered and not yet taken as frames. */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The next complete frame, or undefined; throws ProtocolViolation for a bad length. */
  next(): Frame | undefined {
    if (this.pendingSize < 0) {
      if (this.total < 4) return undefined;
      const header = this.peek(4);
      this.pendingSize = payloadSize(header, 0, this.maxPayload);
    }
    const frameSize = HEADER_SIZE + this.pendingSize;
    if (this.total < frameSize) return undefined;
    const bytes = this.take(frameSize);
    this.pendingSize = -1;
    return { type: bytes[4]!, payload: bytes.subarray(HEADER_SIZE) };
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    return this.copy(n, false);
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      this.total -= n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    return this.copy(n, true);
  }

  private copy(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    let index = 0;
    let head = this.head;
    while (filled < n) {
      const chunk = this.chunks[index]!;
      const count = Math.min(n - filled, chunk.length - head);
      out.set(chunk.subarray(head, head + count), filled);
      filled += count;
      head += count;
      if (head === chunk.length) {
        index++;
        head = 0;
      }
    }
    if (consume) {
      this.chunks.splice(0, index);
      this.head = head;
      this.total -= n;
    }
    return out;
  }
}
