// The TCP and TLS transport (Node only): frames reassembled from the byte stream.

import * as net from "node:net";
import * as tls from "node:tls";

import { FrameReader, ProtocolViolation } from "./frames.js";
import type { Transport, TransportConnector, TransportEvents } from "./transport.js";
import { WRITE_HIGH_WATER } from "./transport.js";
import { TickwireError } from "./types.js";

/** `tls.connect` options (ca, cert, key, servername, ...); TLS 1.2 or later is enforced. */
export type TlsConnectOptions = Omit<tls.ConnectionOptions, "host" | "port" | "socket">;

export function tcpConnector(
  host: string,
  port: number,
  tlsOptions: TlsConnectOptions | undefined,
): TransportConnector {
  const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  return (events, maxPayload, signal) =>
    new Promise<Transport>((resolve, reject) => {
      let socket: net.Socket;
      const fail = (why: string): void => {
        signal.removeEventListener("abort", onAbort);
        socket.destroy();
        reject(new TickwireError({ kind: "connect", message: `connect to ${target}: ${why}`, fatal: true }));
      };
      const onAbort = (): void => fail("aborted");
      if (tlsOptions === undefined) {
        socket = net.connect({ host, port });
        socket.once("connect", () => established("tcp"));
      } else {
        const options: tls.ConnectionOptions = { minVersion: "TLSv1.2", ...tlsOptions, host, port };
        // SNI takes a host name, never an address; the certificate check uses `host` either way.
        if (options.servername === undefined && net.isIP(host) === 0) options.servername = host;
        socket = tls.connect(options);
        socket.once("secureConnect", () => established("tls"));
      }
      const onError = (e: Error): void => fail(e.message);
      socket.once("error", onError);
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });

      function established(name: string): void {
        signal.removeEventListener("abort", onAbort);
        socket.removeListener("error", onError);
        resolve(new TcpTransport(socket, events, maxPayload, name));
      }
    });
}

class TcpTransport implements Transport {
  private readonly reader: FrameReader;
  private closed = false;
  private paused = false;
  private error: TickwireError | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly events: TransportEvents,
    maxPayload: number,
    readonly name: string,
  ) {
    this.reader = new FrameReader(maxPayload);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Uint8Array) => {
      this.reader.push(chunk);
      this.drainFrames();
    });
    socket.on("error", (e: Error) => {
      this.error ??= new TickwireError({ kind: "io", message: `connection lost: ${e.message}`, fatal: true });
    });
    socket.on("close", () => this.finish());
    socket.on("end", () => {
      // The server closed its side: nothing more will come.
      socket.destroy();
    });
  }

  get backlog(): number {
    return this.closed ? 0 : this.socket.writableLength;
  }

  send(frame: Uint8Array): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(frame);
  }

  whenWritable(): Promise<void> {
    if (this.closed || this.socket.writableLength < WRITE_HIGH_WATER) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.removeListener("drain", done);
        this.socket.removeListener("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  setMaxPayload(bytes: number): void {
    this.reader.maxPayload = bytes;
  }

  pause(): boolean {
    this.paused = true;
    this.socket.pause();
    return true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
    // Frames already buffered when reading stopped go first.
    queueMicrotask(() => this.drainFrames());
  }

  close(): void {
    if (this.closed) return;
    this.socket.destroy();
    this.finish();
  }

  private drainFrames(): void {
    try {
      while (!this.paused && !this.closed) {
        const frame = this.reader.next();
        if (frame === undefined) return;
        this.events.onFrame(frame.type, frame.payload);
      }
    } catch (e) {
      if (!(e instanceof ProtocolViolation)) throw e;
      this.error ??= new TickwireError({ kind: "protocol", message: e.message, fatal: true });
      this.close();
    }
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.events.onClose(
      this.error ?? new TickwireError({ kind: "io", message: "connection lost: end of stream", fatal: true }),
    );
  }
}
