// What the client needs from a connection, whatever carries it: TCP or TLS (Node), or a
// WebSocket (browsers and Node). A transport moves whole frames; the client never sees bytes.

import type { TickwireError } from "./types.js";

/** What a transport reports to the client. */
export interface TransportEvents {
  /** A complete frame. Not called after `onClose`, nor while paused (for long). */
  onFrame(type: number, payload: Uint8Array): void;
  /**
   * The connection ended, for any reason (including `close()`); called exactly once. `error`
   * says why when the transport knows (a reset, a protocol violation in the framing, ...).
   */
  onClose(error: TickwireError | undefined): void;
}

export interface Transport {
  /** "tcp", "tls", "ws" or "wss": for messages. */
  readonly name: string;
  /** Queues a whole frame for writing. Never throws; does nothing once closed. */
  send(frame: Uint8Array): void;
  /** Bytes queued and not yet handed to the operating system. */
  readonly backlog: number;
  /** Resolves once the backlog is small again, or the transport closed. */
  whenWritable(): Promise<void>;
  /** The largest payload accepted from the server (AUTH_OK's max_msg_size, once known). */
  setMaxPayload(bytes: number): void;
  /**
   * Stops delivering frames until `resume()`. Returns false when this transport cannot stop
   * reading (a browser WebSocket); frames then keep coming.
   */
  pause(): boolean;
  resume(): void;
  /** Closes the connection at once (queued output may be lost); `onClose` follows. */
  close(): void;
}

/**
 * Opens a connection: resolves once it is established (TCP/TLS connected, WebSocket open),
 * rejects with a TickwireError of kind "connect" otherwise. Aborting `signal` gives up.
 */
export type TransportConnector = (
  events: TransportEvents,
  maxPayload: number,
  signal: AbortSignal,
) => Promise<Transport>;

/** Output a transport queues before `whenWritable` makes requests wait. */
export const WRITE_HIGH_WATER = 1024 * 1024;
