// The Node entry point ("@tickwire/client" under the "node" condition, or
// "@tickwire/client/node"): TCP, TLS and WebSocket.

import { readFileSync } from "node:fs";

import type { Client, ClientOptions } from "./client.js";
import { connectWith } from "./core.js";
import { tcpConnector } from "./tcp.js";
import type { TlsConnectOptions } from "./tcp.js";
import { TickwireError } from "./types.js";
import type { WebSocketConstructor, WebSocketLike } from "./websocket.js";
import { webSocketConnector } from "./websocket.js";

export * from "./core.js";

/**
 * TLS settings: `node:tls` connect options (`ca`, `cert`, `key` as PEM text or Buffers,
 * `servername`, `rejectUnauthorized`, ...), or the same read from files. The server's
 * certificate is verified (against `ca`, else the system's CAs) and must match the host.
 */
export interface TlsOptions extends TlsConnectOptions {
  /** PEM file of the CAs that sign the server's certificate. */
  caFile?: string;
  /** PEM files of a client certificate and its key, for servers that require mutual TLS. */
  certFile?: string;
  keyFile?: string;
}

export interface ConnectOptions extends ClientOptions {
  /**
   * Where the server is: "tcp://host:port", "tls://host:port", "ws://host:port/path" or
   * "wss://host:port/path". Instead of it, `host` and `port` (TCP, or TLS with `tls`).
   */
  url?: string;
  /** Default "127.0.0.1". */
  host?: string;
  /** Default 7878. */
  port?: number;
  /** TLS for "tcp" (and for "wss" with the `ws` package): true for the system's CAs, or settings. */
  tls?: boolean | TlsOptions;
  /**
   * The WebSocket class for ws:// and wss:// (default: the global WebSocket of Node 22+, else
   * the `ws` package).
   */
  webSocket?: WebSocketConstructor;
  /** WebSocket subprotocols to offer in the handshake. */
  protocols?: string | string[];
}

/**
 * Connects, sends AUTH and waits for AUTH_OK. Rejects with a ServerError (AUTH_FAILED,
 * AUTH_RATE_LIMITED, ...) or a TickwireError (kind "connect", "timeout") without retrying;
 * once connected, the client reconnects by itself (unless `reconnect: false`).
 */
export async function connect(options: ConnectOptions): Promise<Client> {
  const { url, host, port, tls, webSocket, protocols, ...rest } = options;
  let scheme = tls ? "tls" : "tcp";
  let h = host ?? "127.0.0.1";
  let p = port ?? 7878;
  if (url !== undefined) {
    const m = /^([a-z]+):\/\//i.exec(url);
    scheme = m?.[1]?.toLowerCase() ?? "";
    if (scheme === "ws" || scheme === "wss") {
      const impl = webSocket ?? (await defaultWebSocket(scheme === "wss" ? tlsSettings(tls) : undefined));
      const connector = webSocketConnector(url, impl, protocols === undefined ? {} : { protocols });
      return connectWith(connector, url, rest);
    }
    if (scheme !== "tcp" && scheme !== "tls") {
      throw new TypeError(`url must be tcp://, tls://, ws:// or wss://, got ${JSON.stringify(url)}`);
    }
    const parsed = new URL(url);
    h = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    p = parsed.port === "" ? 7878 : Number(parsed.port);
  }
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TypeError(`port must be 1..65535, got ${p}`);
  const tlsOptions = scheme === "tls" ? (tlsSettings(tls) ?? {}) : undefined;
  const target = `${h.includes(":") ? `[${h}]` : h}:${p}`;
  return connectWith(tcpConnector(h, p, tlsOptions), target, rest);
}

function tlsSettings(tls: boolean | TlsOptions | undefined): TlsConnectOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  const { caFile, certFile, keyFile, ...rest } = tls;
  const out: TlsConnectOptions = { ...rest };
  if (caFile !== undefined) out.ca = readFileSync(caFile);
  if (certFile !== undefined) out.cert = readFileSync(certFile);
  if (keyFile !== undefined) out.key = readFileSync(keyFile);
  return out;
}

type WsPackageClass = new (url: string, protocols?: string | string[], options?: object) => WebSocketLike;

/**
 * The global WebSocket (Node 22+), else the `ws` package. TLS settings for wss:// need the
 * `ws` package (the global WebSocket takes none).
 */
async function defaultWebSocket(tls: TlsConnectOptions | undefined): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global !== undefined && tls === undefined) return global;
  let Ws: WsPackageClass;
  try {
    const mod = (await import("ws")) as unknown as { default?: WsPackageClass; WebSocket?: WsPackageClass };
    Ws = (mod.WebSocket ?? mod.default)!;
  } catch {
    throw new TickwireError({
      kind: "connect",
      message:
        tls === undefined
          ? "no WebSocket in this Node (before 22): install the `ws` package"
          : "TLS settings for wss:// need the `ws` package: install it",
      fatal: true,
    });
  }
  if (tls === undefined) return Ws;
  const options = { ...tls, minVersion: tls.minVersion ?? "TLSv1.2" };
  return class extends Ws {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, options);
    }
  } as unknown as WebSocketConstructor;
}
