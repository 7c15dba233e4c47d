// BackcheckClient against a small fake of the server's /v1/chat (the `ws` package, taken from the
// Slack bridge's node_modules: bridges/common has no packages of its own). The end-to-end tests
// against the real chat-server are the bridges' tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { BackcheckClient } from '../backcheck-client.js';

const require = createRequire(new URL('../../slack/package.json', import.meta.url));
const WebSocket = require('ws');
const { WebSocketServer } = WebSocket;

// A fake server: records frames, hands each connection to the test.
async function fakeServer(port = 0) {
  const wss = new WebSocketServer({ port, host: '127.0.0.1' });
  await once(wss, 'listening');
  const connections = [];
  const waiters = [];
  wss.on('connection', (socket, request) => {
    const conn = { socket, request, frames: [], frameWaiters: [] };
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      conn.frames.push(frame);
      conn.frameWaiters.splice(0).forEach((w) => w());
    });
    conn.nextFrame = async (index) => {
      while (conn.frames.length <= index) await new Promise((r) => conn.frameWaiters.push(r));
      return conn.frames[index];
    };
    connections.push(conn);
    waiters.splice(0).forEach((w) => w());
  });
  return {
    wss,
    port: wss.address().port,
    connections,
    async connection(index) {
      while (connections.length <= index) await new Promise((r) => waiters.push(r));
      return connections[index];
    },
    async close() {
      for (const c of connections) c.socket.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

function client(port, extra = {}) {
  return new BackcheckClient({
    url: `ws://127.0.0.1:${port}/v1/chat`,
    token: 'secret-token-0123456789abcdef0123456789',
    WebSocket,
    backoff: { initialMs: 20, maxMs: 100 },
    requestTimeoutMs: 5000,
    log: null,
    ...extra,
  });
}

test('a message is answered by the reply with its ref; started and pushed frames are events', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const c = client(server.port);
  const started = [];
  const pushes = [];
  c.on('started', (f) => started.push(f));
  c.on('push', (f) => pushes.push(f));
  c.start();
  await once(c, 'connected');
  const conn = await server.connection(0);
  assert.equal(conn.request.headers.authorization, 'Bearer secret-token-0123456789abcdef0123456789');

  const replyPromise = c.send({ key: 'slack:T1:D1', text: 'hello', id: 'm1' });
  const sent = await conn.nextFrame(0);
  assert.equal(sent.type, 'message');
  assert.equal(sent.key, 'slack:T1:D1');
  assert.equal(sent.text, 'hello');
  assert.equal(sent.id, 'm1');
  assert.ok(sent.ref);
  conn.socket.send(JSON.stringify({ type: 'started', key: 'slack:T1:D1', conversation: 'c1' }));
  conn.socket.send(JSON.stringify({ type: 'reply', ref: 'someone-else', text: 'not yours' }));
  conn.socket.send(JSON.stringify({ type: 'notice', key: 'slack:T1:D1', notice: 'escalation_acknowledged', text: 'seen' }));
  conn.socket.send(JSON.stringify({ type: 'reply', ref: sent.ref, key: 'slack:T1:D1', id: 'm1', text: 'hi there', seq: 1 }));
  const reply = await replyPromise;
  assert.equal(reply.text, 'hi there');
  assert.equal(started.length, 1);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0].type, 'notice');
  await c.stop();
  await server.close();
});

test('an error frame rejects with code, guidance and frame', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const c = client(server.port);
  c.start();
  const conn = await server.connection(0);
  const p = c.send({ key: 'k', text: 'my legs are weak', id: 'x' });
  const sent = await conn.nextFrame(0);
  const guidance = { text: 'Call your local emergency number now.', urgency: 'emergency', red_flags: ['leg_weakness'], possible_flags: [] };
  conn.socket.send(JSON.stringify({ type: 'error', code: 'rate_limited', message: 'slow down', ref: sent.ref, guidance }));
  await assert.rejects(p, (error) => {
    assert.equal(error.code, 'rate_limited');
    assert.deepEqual(error.guidance, guidance);
    assert.equal(error.frame.message, 'slow down');
    return true;
  });
  await c.stop();
  await server.close();
});

test('a send made while disconnected waits; one in flight when the socket drops is sent again with the same id and ref', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const port = server.port;
  const c = client(port);
  const disconnected = [];
  c.on('disconnected', (code) => disconnected.push(code));
  c.start();
  const first = await server.connection(0);
  const p = c.send({ key: 'k', text: 'one', id: 'id-1' });
  const sent = await first.nextFrame(0);
  // The server goes away before answering.
  await server.close();
  await once(c, 'disconnected');
  const whileDown = c.send({ key: 'k', text: 'two', id: 'id-2' });

  const again = await fakeServer(port);
  const conn = await again.connection(0);
  const resent1 = await conn.nextFrame(0);
  const resent2 = await conn.nextFrame(1);
  assert.deepEqual(resent1, sent);
  assert.equal(resent2.id, 'id-2');
  assert.equal(resent2.text, 'two');
  conn.socket.send(JSON.stringify({ type: 'reply', ref: resent1.ref, id: 'id-1', text: 'a', duplicate: true }));
  conn.socket.send(JSON.stringify({ type: 'reply', ref: resent2.ref, id: 'id-2', text: 'b' }));
  assert.equal((await p).text, 'a');
  assert.equal((await whileDown).text, 'b');
  assert.ok(disconnected.length >= 1);
  await c.stop();
  await again.close();
});

test('after a reconnect the recently used keys are held again with start frames (for pushed notices)', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const port = server.port;
  const c = client(port);
  c.start();
  const first = await server.connection(0);
  for (const key of ['a', 'b']) {
    const p = c.send({ key, text: 'x' });
    const f = await first.nextFrame(first.frames.length);
    first.socket.send(JSON.stringify({ type: 'reply', ref: f.ref, text: 'ok' }));
    await p;
  }
  first.socket.close(1001);
  await once(c, 'disconnected');
  const conn = await server.connection(1);
  const f0 = await conn.nextFrame(0);
  const f1 = await conn.nextFrame(1);
  assert.deepEqual([f0.type, f0.key, f1.type, f1.key], ['start', 'b', 'start', 'a']);
  await c.stop();
  await server.close();
});

test('stop() rejects pending sends with code stopped and does not reconnect', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const c = client(server.port);
  c.start();
  const conn = await server.connection(0);
  const p = c.send({ key: 'k', text: 'x' });
  await conn.nextFrame(0);
  const closed = once(conn.socket, 'close');
  const rejected = assert.rejects(p, { code: 'stopped' });
  await c.stop();
  await rejected;
  const [code] = await closed;
  assert.equal(code, 1000);
  await assert.rejects(c.send({ key: 'k', text: 'y' }), { code: 'stopped' });
  await new Promise((r) => setTimeout(r, 150)); // longer than the back-off ceiling: no new connection
  assert.equal(server.connections.length, 1);
  await server.close();
});

test('a request without an answer times out with code timeout', { timeout: 10000 }, async () => {
  const server = await fakeServer();
  const c = client(server.port, { requestTimeoutMs: 100 });
  c.start();
  await server.connection(0);
  await assert.rejects(c.send({ key: 'k', text: 'x' }), { code: 'timeout' });
  await c.stop();
  await server.close();
});

test('a refused upgrade (HTTP 401) is retried with back-off, not thrown', { timeout: 10000 }, async () => {
  const { createServer } = await import('node:http');
  let hits = 0;
  const http = createServer((req, res) => {
    hits += 1;
    res.writeHead(401).end();
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const lines = [];
  const c = client(http.address().port, { log: (line) => lines.push(line) });
  c.start();
  while (hits < 3) await new Promise((r) => setTimeout(r, 20));
  await c.stop();
  http.close();
  assert.ok(lines.some((l) => l.includes('HTTP 401')));
  assert.ok(lines.some((l) => /reconnect in \d+ ms/.test(l)));
});
