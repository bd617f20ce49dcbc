// The browser entry point ("@tickwire/client" under the "browser" condition, or
// "@tickwire/client/browser"): the client over WebSocket only. Imports no node: module.

import type { Client, ClientOptions } from "./client.js";
import { connectWith } from "./core.js";
import type { WebSocketConstructor } from "./websocket.js";
import { webSocketConnector } from "./websocket.js";

export * from "./core.js";

export interface ConnectOptions extends ClientOptions {
  /** The server's WebSocket endpoint: "wss://host:port/path" (or "ws://..."). */
  url: string;
  /** The WebSocket class to use (default: the global WebSocket). */
  webSocket?: WebSocketConstructor;
  /** Subprotocols to offer in the handshake. */
  protocols?: string | string[];
}

/**
 * Connects to `options.url` over WebSocket, sends AUTH and waits for AUTH_OK. Rejects with a
 * ServerError (AUTH_FAILED, AUTH_RATE_LIMITED, ...) or a TickwireError (kind "connect",
 * "timeout") without retrying; once connected, the client reconnects by itself.
 */
export function connect(options: ConnectOptions): Promise<Client> {
  const { url, webSocket, protocols, ...rest } = options;
  if (!/^wss?:\/\//i.test(url ?? "")) {
    return Promise.reject(new TypeError(`url must start with ws:// or wss://, got ${JSON.stringify(url)}`));
  }
  const impl = webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (impl === undefined) {
    return Promise.reject(new TypeError("no global WebSocket: pass options.webSocket"));
  }
  const connector = webSocketConnector(url, impl, protocols === undefined ? {} : { protocols });
  return connectWith(connector, url, rest);
}
