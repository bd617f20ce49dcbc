// For servers built without a WebSocket endpoint: a WebSocket endpoint on 127.0.0.1 (an
// ephemeral port, printed as "port N" on stdout) that relays to the server's TCP port given as
// the argument. Each binary message from the page goes to the server as is; each frame from
// the server (4-byte big-endian length, then that many bytes) goes back as one binary message,
// as the server's own endpoint does. Uses the `ws` package that clients/js installs.
import net from "node:net";
import { createRequire } from "node:module";

const require = createRequire(new URL("../../clients/js/package.json", import.meta.url));
const { WebSocketServer } = require("ws");

const target = Number(process.argv[2]);
const maxBuffered = 64 << 20; // a frame never exceeds MAX_MSG_SIZE; this bounds a bad stream
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 16 << 20 });
wss.on("connection", (ws) => {
  const tcp = net.connect({ host: "127.0.0.1", port: target });
  let buf = Buffer.alloc(0);
  const end = () => {
    tcp.destroy();
    ws.terminate();
  };
  tcp.on("error", end);
  ws.on("error", end);
  tcp.on("close", end);
  ws.on("close", end);
  tcp.on("data", (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (buf.length > maxBuffered) return end();
    while (buf.length >= 4) {
      const size = 4 + buf.readUInt32BE(0);
      if (buf.length < size) break;
      ws.send(buf.subarray(0, size));
      buf = buf.subarray(size);
    }
  });
  ws.on("message", (data, isBinary) => (isBinary ? tcp.write(data) : end()));
});
wss.on("listening", () => console.log(`port ${wss.address().port}`));
process.on("SIGTERM", () => process.exit(0));
