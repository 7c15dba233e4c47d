// A fake Slack for the bridge's tests (no internet): the Web API over HTTP (auth.test,
// apps.connections.open, chat.postMessage, chat.update; every call recorded) and a Socket Mode
// WebSocket that sends `hello`, pushes event envelopes and checks each envelope_id is acknowledged.
import { createServer } from 'node:http';
import { once } from 'node:events';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');

export const TEAM = 'T0TEST';
export const BOT_USER = 'UBOT0001';
export const BOT_ID = 'BBOT0001';
export const APP_ID = 'A0TEST01';
export const BOT_TOKEN = 'xoxb-1111-2222-fake';
export const APP_TOKEN = 'xapp-1-A0TEST01-3333-fake';

function parseBody(raw, contentType) {
  if (!raw) return {};
  if ((contentType || '').includes('application/json')) return JSON.parse(raw);
  const args = {};
  for (const [name, value] of new URLSearchParams(raw)) {
    // The Web API client sends blocks and attachments as JSON strings.
    if (/^[[{]/.test(value)) {
      try {
        args[name] = JSON.parse(value);
        continue;
      } catch {
        /* a plain string */
      }
    }
    args[name] = value;
  }
  return args;
}

export async function startFakeSlack() {
  const calls = []; // { method, args, token }
  const callWaiters = []; // { predicate, resolve }
  const envelopes = new Map(); // envelope_id -> { acked: bool, resolveAck }
  const sockets = new Set();
  const socketWaiters = [];
  let tsCounter = 0;
  let envelopeCounter = 0;

  const nextTs = () => `1765000000.${String(++tsCounter).padStart(6, '0')}`;

  const answer = (method, args, token) => {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.test/', team: 'Fake', user: 'backcheck', team_id: TEAM, user_id: BOT_USER, bot_id: BOT_ID, is_enterprise_install: false };
      case 'apps.connections.open':
        if (token !== APP_TOKEN) return { ok: false, error: 'invalid_auth' };
        return { ok: true, url: `ws://127.0.0.1:${server.address().port}/link/?ticket=fake` };
      case 'chat.postMessage': {
        const ts = nextTs();
        return { ok: true, channel: args.channel, ts, message: { type: 'message', ts, text: args.text, blocks: args.blocks, attachments: args.attachments, bot_id: BOT_ID, user: BOT_USER, thread_ts: args.thread_ts } };
      }
      case 'chat.update':
        return { ok: true, channel: args.channel, ts: args.ts, text: args.text };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const match = /^\/api\/([a-zA-Z.]+)/.exec(req.url);
      if (!match) {
        res.writeHead(404).end();
        return;
      }
      const method = match[1];
      const token = (req.headers.authorization || '').replace(/^Bearer /, '');
      let args;
      try {
        args = parseBody(Buffer.concat(chunks).toString(), req.headers['content-type']);
      } catch {
        args = {};
      }
      const body = answer(method, args, token);
      const call = { method, args, token, at: Date.now(), response: body };
      calls.push(call);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      for (const waiter of [...callWaiters]) {
        if (waiter.predicate(call)) {
          callWaiters.splice(callWaiters.indexOf(waiter), 1);
          waiter.resolve(call);
        }
      }
    });
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url.startsWith('/link')) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws) => {
    sockets.add(ws);
    // Slack pings its Socket Mode clients; the client reconnects when pings stop.
    const pinger = setInterval(() => ws.ping(), 2000);
    ws.on('close', () => {
      clearInterval(pinger);
      sockets.delete(ws);
    });
    ws.on('message', (data) => {
      let frame;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return;
      }
      const entry = frame.envelope_id && envelopes.get(frame.envelope_id);
      if (entry && !entry.acked) {
        entry.acked = true;
        entry.resolveAck(frame);
      }
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake', approximate_connection_time: 18060 }, connection_info: { app_id: APP_ID } }));
    socketWaiters.splice(0).forEach((w) => w(ws));
  });

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = server.address().port;

  const fake = {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    port,
    calls,
    // Resolves with the first call (already made, after `since`, or future) matching.
    waitForCall(predicate, { since = 0, timeoutMs = 20000 } = {}) {
      const found = calls.slice(since).find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { predicate, resolve };
        callWaiters.push(waiter);
        setTimeout(() => {
          const i = callWaiters.indexOf(waiter);
          if (i >= 0) {
            callWaiters.splice(i, 1);
            reject(new Error('fake slack: the expected Web API call did not come'));
          }
        }, timeoutMs).unref();
      });
    },
    posts(since = 0) {
      return calls.slice(since).filter((c) => c.method === 'chat.postMessage');
    },
    // Resolves once a Socket Mode client is connected (and was sent hello).
    async socket({ timeoutMs = 20000 } = {}) {
      const open = [...sockets].find((s) => s.readyState === 1);
      if (open) return open;
      return new Promise((resolve, reject) => {
        socketWaiters.push(resolve);
        setTimeout(() => reject(new Error('fake slack: no Socket Mode connection')), timeoutMs).unref();
      });
    },
    // Pushes an envelope to the connected client; resolves with the ack frame.
    async push(type, payload, { retryAttempt = 0, timeoutMs = 5000 } = {}) {
      const ws = await fake.socket();
      const envelope_id = `env-${++envelopeCounter}`;
      let resolveAck;
      const acked = new Promise((resolve) => {
        resolveAck = resolve;
      });
      envelopes.set(envelope_id, { acked: false, resolveAck });
      const envelope = { envelope_id, type, payload, accepts_response_payload: type !== 'events_api' };
      if (type === 'events_api') {
        envelope.retry_attempt = retryAttempt;
        envelope.retry_reason = retryAttempt > 0 ? 'timeout' : '';
      }
      ws.send(JSON.stringify(envelope));
      const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`fake slack: ${envelope_id} (${type}) not acknowledged within ${timeoutMs} ms`)), timeoutMs).unref());
      return Promise.race([acked, timer]);
    },
    // An events_api envelope for one event.
    pushEvent(event, options = {}) {
      const payload = {
        token: 'verification-token',
        team_id: TEAM,
        api_app_id: APP_ID,
        event,
        type: 'event_callback',
        event_id: options.eventId || `Ev${envelopeCounter + 1}`,
        event_time: Math.floor(Date.now() / 1000),
        authorizations: [{ enterprise_id: null, team_id: TEAM, user_id: BOT_USER, is_bot: true, is_enterprise_install: false }],
        is_ext_shared_channel: false,
      };
      return fake.push('events_api', payload, options);
    },
    unacknowledged() {
      return [...envelopes].filter(([, e]) => !e.acked).map(([id]) => id);
    },
    dropSockets() {
      for (const s of sockets) s.terminate();
    },
    async close() {
      for (const s of sockets) s.terminate();
      wss.close();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return fake;
}

// Slack event and payload shapes.
let msgCounter = 0;
export function dmEvent({ channel, text, user = 'UPERSON1', ts, clientMsgId }) {
  msgCounter += 1;
  return {
    type: 'message',
    channel,
    channel_type: 'im',
    user,
    text,
    ts: ts || `1765001000.${String(msgCounter).padStart(6, '0')}`,
    client_msg_id: clientMsgId || `cmid-${msgCounter}-${Math.random().toString(16).slice(2)}`,
    team: TEAM,
    event_ts: ts || `1765001000.${String(msgCounter).padStart(6, '0')}`,
  };
}

export function mentionEvent({ channel, text, user = 'UPERSON2', threadTs }) {
  msgCounter += 1;
  const ts = `1765002000.${String(msgCounter).padStart(6, '0')}`;
  const event = { type: 'app_mention', channel, user, text: `<@${BOT_USER}> ${text}`, ts, client_msg_id: `cmid-m-${msgCounter}`, team: TEAM, event_ts: ts };
  if (threadTs) event.thread_ts = threadTs;
  return event;
}

// block_actions for a click on the button labelled `choice` of a posted message (a postMessage call).
export function blockActionsPayload({ post, choice, user = 'UPERSON1' }) {
  const allBlocks = [...(post.args.blocks || []), ...(post.args.attachments || []).flatMap((a) => a.blocks || [])];
  const actions = allBlocks.find((b) => b.type === 'actions');
  if (!actions) throw new Error('the post has no buttons');
  const button = actions.elements.find((e) => e.text.text === choice);
  if (!button) throw new Error(`no button "${choice}"`);
  const ts = post.response?.ts || post.ts;
  return {
    type: 'block_actions',
    user: { id: user, username: 'person', team_id: TEAM },
    api_app_id: APP_ID,
    token: 'verification-token',
    container: { type: 'message', message_ts: ts, channel_id: post.args.channel, is_ephemeral: false, thread_ts: post.args.thread_ts },
    trigger_id: `trigger-${Math.random().toString(16).slice(2)}`,
    team: { id: TEAM, domain: 'fake' },
    channel: { id: post.args.channel, name: 'directmessage' },
    message: { type: 'message', ts, text: post.args.text, blocks: post.args.blocks, attachments: post.args.attachments, bot_id: BOT_ID, user: BOT_USER, thread_ts: post.args.thread_ts },
    response_url: 'https://hooks.slack.test/actions/fake',
    actions: [{ type: 'button', action_id: button.action_id, block_id: actions.block_id, text: button.text, value: button.value, action_ts: `${Date.now() / 1000}` }],
  };
}
