// A WebSocket echo server on Node's `ws`, what many chat backends are built on: the second
// reference in bench/run. Prints "listening on http://127.0.0.1:PORT" like chat-server.
//   node bench/node-echo/echo.mjs [port]
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0), maxPayload: 16 * 1024 });
wss.on("listening", () => console.log(`listening on http://127.0.0.1:${wss.address().port}`));
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => wss.close(() => process.exit(0)));
