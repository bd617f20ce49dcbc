// What both entry points (Node and browser) export: the client, its values and helpers, and
// the WebSocket transport. Nothing here imports a node: module.

import { Client } from "./client.js";
import type { ClientOptions } from "./client.js";
import type { TransportConnector } from "./transport.js";

export { Client } from "./client.js";
export type { ClientOptions, PublishOptions, SubscribeOptions } from "./client.js";
export {
  ClientClosed,
  ConnectionLost,
  ErrorCode,
  Mode,
  RequestTimeout,
  ServerError,
  TickwireError,
  errorCodeName,
  intervalMs,
  modeName,
  parseMode,
} from "./types.js";
export type {
  AuthInfo,
  Bar,
  Batch,
  Closed,
  ConnectionState,
  DataRecord,
  Disconnected,
  ErrorEvent,
  ErrorInfo,
  ErrorKind,
  HistoryEndEvent,
  LostRange,
  ModeLike,
  PublishAck,
  PublishTick,
  Reconnected,
  Reconnecting,
  Stats,
  Tick,
  TickGap,
  TickInput,
  TickwireEvent,
  Watermark,
} from "./types.js";
export { DEFAULT_RECONNECT } from "./resume.js";
export type { ReconnectOptions, ResumePosition } from "./resume.js";
export { bigintReplacer, dateToMs, dateToNs, msToDate, nowNs, nsToDate, nsToIso, toNumber } from "./time.js";
export { webSocketConnector } from "./websocket.js";
export type { WebSocketConstructor, WebSocketLike, WebSocketTransportOptions } from "./websocket.js";
export type { Transport, TransportConnector, TransportEvents } from "./transport.js";

/**
 * Connects over a transport of the caller's (see Transport): AUTH, then AUTH_OK. `target`
 * names the server in messages. Rejects without retrying when the first connection fails.
 */
export async function connectWith(
  connector: TransportConnector,
  target: string,
  options: ClientOptions,
): Promise<Client> {
  const { username, password, ...rest } = options;
  if (typeof username !== "string" || typeof password !== "string") {
    throw new TypeError("username and password must be strings");
  }
  const client = new Client(connector, target, { username, password }, rest);
  await client.start();
  return client;
}
