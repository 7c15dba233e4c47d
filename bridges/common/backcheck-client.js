// The Backcheck server client shared by the bridges: one WebSocket to /v1/chat carrying every
// person's conversation by key, with reconnect and back-off, request/reply correlation by `ref`,
// and pushed frames (notice, operator_message, handoff) as events.
//
// No npm imports: the WebSocket class (the `ws` package's) is injected by the bridge, so it
// resolves from the bridge's own node_modules.
//
// Never logs what a person writes or what the assistant answers: only events (connected,
// reconnect in N ms, error codes).

import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';

const PUSH_TYPES = new Set(['notice', 'operator_message', 'handoff']);

function clientError(code, message, frame) {
  const error = new Error(message);
  error.code = code;
  if (frame) {
    error.frame = frame;
    if (frame.guidance && typeof frame.guidance === 'object') error.guidance = frame.guidance;
  }
  return error;
}

function defaultLog(line) {
  process.stderr.write(`backcheck-client: ${line}\n`);
}

export class BackcheckClient extends EventEmitter {
  // url: ws://host:port/v1/chat (or wss://); token: the bridge token (Authorization: Bearer);
  // WebSocket: the `ws` package's class; backoff {initialMs=250, maxMs=30000}; requestTimeoutMs=30000.
  // Optional: log (a function taking one line, or null for silence; default: stderr),
  // rehold {maxKeys=500, perSecond=20} (see #rehold; null turns it off).
  constructor({ url, token, WebSocket, backoff = {}, requestTimeoutMs = 30000, log = defaultLog, rehold = {} } = {}) {
    super();
    if (!url || typeof url !== 'string') throw new TypeError('BackcheckClient: url is required');
    if (typeof WebSocket !== 'function') throw new TypeError('BackcheckClient: WebSocket (the ws class) is required');
    this.url = url;
    this.token = token || null;
    this.WebSocket = WebSocket;
    this.backoff = { initialMs: backoff.initialMs ?? 250, maxMs: backoff.maxMs ?? 30000 };
    this.requestTimeoutMs = requestTimeoutMs;
    this.log = typeof log === 'function' ? log : () => {};
    this.rehold = rehold === null ? null : { maxKeys: rehold.maxKeys ?? 500, perSecond: rehold.perSecond ?? 20 };

    this.ws = null;
    this.isOpen = false;
    this.stopped = true;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.reholdTimer = null;
    this.pending = new Map(); // ref -> { frame, resolve, reject, timer }
    this.keys = new Map(); // key -> last use (ms), most recent last; bounded by rehold.maxKeys
    this.refPrefix = randomBytes(4).toString('hex');
    this.refCounter = 0;
  }

  get connected() {
    return this.isOpen;
  }

  // Connect; on any close, reconnect with exponential back-off and jitter, forever, until stop().
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.#connect();
  }

  // Close (1000) and stop reconnecting; pending sends reject with code 'stopped'.
  async stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    clearTimeout(this.reholdTimer);
    this.reholdTimer = null;
    for (const [ref, entry] of this.pending) {
      clearTimeout(entry.timer);
      this.pending.delete(ref);
      entry.reject(clientError('stopped', 'the client was stopped'));
    }
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === this.WebSocket.CLOSED) return;
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        try { ws.terminate(); } catch { /* already gone */ }
        resolve();
      }, 2000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        if (ws.readyState === this.WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'bridge stopping');
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  // Sends {type:"message", key, text, id, ref} and resolves with the server's `reply` frame.
  // A server `error` frame rejects with an Error that has .code, .guidance (if the frame had one:
  // the bridge must still show guidance.text to the person) and .frame. Sends made while
  // disconnected wait for the connection; a send in flight when the socket drops is sent again
  // after the reconnect with the same id (the server answers a repeated id with the stored reply).
  async send({ key, text, id } = {}) {
    if (typeof key !== 'string' || key.length === 0) throw clientError('bad_request', 'send: key is required');
    if (typeof text !== 'string' || text.length === 0) throw clientError('bad_request', 'send: text is required');
    if (this.stopped) throw clientError('stopped', 'the client is not started');
    const ref = `${this.refPrefix}-${++this.refCounter}`;
    const frame = { type: 'message', key, text, ref };
    if (id !== undefined && id !== null && id !== '') frame.id = String(id);
    this.#remember(key);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(ref)) return;
        this.log(`request timed out after ${this.requestTimeoutMs} ms`);
        reject(clientError('timeout', `no reply within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(ref, { frame, resolve, reject, timer });
      if (this.isOpen) this.#write(frame);
    });
  }

  #remember(key) {
    if (!this.rehold) return;
    this.keys.delete(key);
    this.keys.set(key, Date.now());
    while (this.keys.size > this.rehold.maxKeys) this.keys.delete(this.keys.keys().next().value);
  }

  #write(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      // The socket is going away; the close handler reconnects and sends the frame again.
    }
  }

  #connect() {
    if (this.stopped) return;
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    let ws;
    try {
      ws = new this.WebSocket(this.url, { headers, handshakeTimeout: 10000 });
    } catch (error) {
      this.log(`cannot connect: ${error.code || error.name}`);
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.isOpen = true;
      this.attempt = 0;
      this.log('connected');
      this.emit('connected');
      // Everything not yet answered goes (again) in the order it was sent: same ref, same id.
      for (const entry of this.pending.values()) this.#write(entry.frame);
      this.#startRehold();
    });
    ws.on('unexpected-response', (request, response) => {
      // e.g. 401 for a wrong bridge token, 503 when the server is full.
      this.log(`connection refused: HTTP ${response.statusCode}`);
      try { request.destroy(); } catch { /* ignore */ }
      try { ws.terminate(); } catch { /* ignore */ }
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        this.log('ignored a frame that is not JSON');
        return;
      }
      if (frame && typeof frame === 'object') this.#onFrame(frame);
    });
    ws.on('error', (error) => {
      // 'close' follows; only the kind of error is logged.
      this.log(`connection error: ${error.code || error.name || 'error'}`);
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      const wasOpen = this.isOpen;
      this.isOpen = false;
      this.ws = null;
      clearTimeout(this.reholdTimer);
      this.reholdTimer = null;
      if (wasOpen) {
        const why = reason ? reason.toString() : '';
        this.log(`disconnected (${code})`);
        this.emit('disconnected', code, why);
      }
      this.#scheduleReconnect();
    });
  }

  #scheduleReconnect() {
    if (this.stopped || this.reconnectTimer) return;
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this.log(`reconnect in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.#connect();
    }, delay);
  }

  // Pushed frames (notice, ...) go to the connections that hold a conversation. A new connection
  // holds none, so after a reconnect the client sends `start` with each recently used key (most
  // recent first, paced under the server's new-conversations rate) to receive them again.
  // Keys with a message waiting are skipped: sending it holds the conversation.
  #startRehold() {
    if (!this.rehold || this.keys.size === 0) return;
    const waiting = new Set([...this.pending.values()].map((entry) => entry.frame.key));
    const queue = [...this.keys.keys()].reverse().filter((key) => !waiting.has(key));
    if (queue.length === 0) return;
    this.log(`holding ${queue.length} conversation(s) again`);
    const step = () => {
      this.reholdTimer = null;
      if (!this.isOpen) return;
      for (let i = 0; i < this.rehold.perSecond && queue.length > 0; i++) {
        this.#write({ type: 'start', key: queue.shift(), ref: `${this.refPrefix}-hold` });
      }
      if (queue.length > 0) this.reholdTimer = setTimeout(step, 1000);
    };
    step();
  }

  #onFrame(frame) {
    const type = frame.type;
    if (type === 'reply') {
      const entry = frame.ref !== undefined ? this.pending.get(frame.ref) : undefined;
      if (!entry) return; // an answer to a request already given up on
      this.pending.delete(frame.ref);
      clearTimeout(entry.timer);
      entry.resolve(frame);
      return;
    }
    if (type === 'error') {
      const entry = frame.ref !== undefined ? this.pending.get(frame.ref) : undefined;
      this.log(`server error: ${frame.code}`);
      if (!entry) return;
      this.pending.delete(frame.ref);
      clearTimeout(entry.timer);
      entry.reject(clientError(frame.code || 'error', `server error: ${frame.code}`, frame));
      return;
    }
    if (type === 'started') {
      this.emit('started', frame);
      return;
    }
    if (PUSH_TYPES.has(type)) {
      this.emit('push', frame);
    }
    // ended and unknown types: nothing to do.
  }
}
