// The WebSocket transport: one frame (the same 5-byte header and payload as on TCP) per binary
// WebSocket message, in both directions. It uses only the standard WebSocket API, so it runs
// in browsers, in Node 22+ (global WebSocket) and in older Node with the `ws` package, whose
// pause()/resume() it uses when present.

import { MAX_MSG_SIZE_LIMIT, parseWholeFrame, ProtocolViolation } from "./frames.js";
import type { Transport, TransportConnector, TransportEvents } from "./transport.js";
import { WRITE_HIGH_WATER } from "./transport.js";
import { TickwireError } from "./types.js";

/** The part of the standard WebSocket API the transport uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  // `any` events: each implementation has event types of its own (MessageEvent, CloseEvent,
  // ws's), and only `data`, `code`, `reason` and `message` are read.
  /* eslint-disable @typescript-eslint/no-explicit-any */
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  /* eslint-enable @typescript-eslint/no-explicit-any */
  /** The `ws` package only: stop and restart reading. */
  pause?(): void;
  resume?(): void;
}

/** A WebSocket class: the browser's, Node 22's global one, or the `ws` package's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

export interface WebSocketTransportOptions {
  /** Subprotocols to offer in the handshake. */
  protocols?: string | string[];
}

/** A connector for `url` (ws:// or wss://) with the WebSocket class `WebSocketImpl`. */
export function webSocketConnector(
  url: string,
  WebSocketImpl: WebSocketConstructor,
  options: WebSocketTransportOptions = {},
): TransportConnector {
  return (events, maxPayload, signal) =>
    new Promise<Transport>((resolve, reject) => {
      let socket: WebSocketLike;
      try {
        socket =
          options.protocols === undefined
            ? new WebSocketImpl(url)
            : new WebSocketImpl(url, options.protocols);
      } catch (e) {
        reject(connectError(url, (e as Error).message ?? String(e)));
        return;
      }
      socket.binaryType = "arraybuffer";
      let transport: WebSocketTransport | undefined;
      const onAbort = (): void => {
        if (transport === undefined) {
          socket.onclose = socket.onerror = socket.onopen = socket.onmessage = null;
          safeClose(socket);
          reject(connectError(url, "aborted"));
        }
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      const fail = (why: string): void => {
        signal.removeEventListener("abort", onAbort);
        socket.onclose = socket.onopen = socket.onmessage = null;
        socket.onerror = () => {};
        safeClose(socket);
        reject(connectError(url, why));
      };
      // An error before "open" fails the handshake. Not all implementations follow it with a
      // close event (Node 20's experimental global WebSocket does not), so it ends the attempt.
      socket.onerror = (ev) => fail(errorText(ev));
      socket.onclose = (ev: { code?: number }) =>
        fail(`closed during the handshake (code ${ev.code ?? "none"})`);
      socket.onopen = () => {
        signal.removeEventListener("abort", onAbort);
        transport = new WebSocketTransport(socket, events, maxPayload, url.startsWith("wss:") ? "wss" : "ws");
        resolve(transport);
      };
    });
}

function connectError(url: string, why: string): TickwireError {
  return new TickwireError({ kind: "connect", message: `connect to ${url}: ${why}`, fatal: true });
}

function errorText(ev: unknown): string {
  const e = ev as { message?: unknown; error?: { message?: unknown } } | null;
  const text = e?.error?.message ?? e?.message;
  return typeof text === "string" && text ? text : "WebSocket error";
}

function safeClose(socket: WebSocketLike): void {
  try {
    socket.close();
  } catch {
    // Closing a socket that is not open yet may throw in some implementations.
  }
}

class WebSocketTransport implements Transport {
  private closed = false;
  private paused = false;
  private error: TickwireError | undefined;
  private writableWaiters: Array<() => void> = [];
  private pollTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly socket: WebSocketLike,
    private readonly events: TransportEvents,
    private maxPayload: number,
    readonly name: string,
  ) {
    socket.onmessage = (ev: { data: unknown }) => this.onMessage(ev.data);
    socket.onerror = (ev) => {
      this.error ??= new TickwireError({
        kind: "io",
        message: `connection lost: ${errorText(ev)}`,
        fatal: true,
      });
      // A close event should follow, but not every implementation sends one: end here.
      this.close();
    };
    socket.onclose = (ev: { code?: number; reason?: string }) => {
      const why = ev.reason ? `: ${ev.reason}` : "";
      this.finish(
        this.error ??
          new TickwireError({
            kind: "io",
            message: `connection lost: WebSocket closed (code ${ev.code ?? "none"}${why})`,
            fatal: true,
          }),
      );
    };
  }

  get backlog(): number {
    return this.closed ? 0 : this.socket.bufferedAmount;
  }

  send(frame: Uint8Array): void {
    if (this.closed || this.socket.readyState !== OPEN) return;
    try {
      this.socket.send(frame);
    } catch (e) {
      this.error ??= new TickwireError({
        kind: "io",
        message: `WebSocket send: ${(e as Error).message}`,
        fatal: true,
      });
      this.close();
    }
  }

  whenWritable(): Promise<void> {
    if (this.closed || this.socket.bufferedAmount < WRITE_HIGH_WATER) return Promise.resolve();
    // The standard API has no "drained" event: poll bufferedAmount.
    return new Promise((resolve) => {
      this.writableWaiters.push(resolve);
      this.poll();
    });
  }

  private poll(): void {
    if (this.pollTimer !== undefined) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      if (this.closed || this.socket.bufferedAmount < WRITE_HIGH_WATER) {
        const waiters = this.writableWaiters;
        this.writableWaiters = [];
        for (const w of waiters) w();
      } else {
        this.poll();
      }
    }, 5);
  }

  setMaxPayload(bytes: number): void {
    this.maxPayload = bytes;
  }

  pause(): boolean {
    if (typeof this.socket.pause !== "function" || typeof this.socket.resume !== "function") {
      return false;
    }
    this.paused = true;
    this.socket.pause();
    return true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume?.();
  }

  close(): void {
    if (this.closed) return;
    safeClose(this.socket);
    // Some implementations report onclose only after the closing handshake: end at once.
    this.finish(this.error);
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    try {
      if (typeof data === "string") {
        throw new ProtocolViolation("text WebSocket message (frames travel in binary messages)");
      }
      let bytes: Uint8Array;
      if (data instanceof ArrayBuffer) {
        bytes = new Uint8Array(data);
      } else if (ArrayBuffer.isView(data)) {
        bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      } else {
        throw new ProtocolViolation("WebSocket message that is not binary");
      }
      const frame = parseWholeFrame(bytes, Math.min(this.maxPayload, MAX_MSG_SIZE_LIMIT));
      this.events.onFrame(frame.type, frame.payload);
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      this.error ??= new TickwireError({ kind: "protocol", message: e.message, fatal: true });
      this.close();
    }
  }

  private finish(error: TickwireError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.onmessage = null;
    this.socket.onopen = null;
    this.socket.onclose = null;
    // Keep an error handler: some implementations report errors after close.
    this.socket.onerror = () => {};
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of waiters) w();
    this.events.onClose(error);
  }
}
