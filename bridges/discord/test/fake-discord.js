// A fake Discord for the bridge's tests, on 127.0.0.1 only: the REST API (what discord.js and the
// bridge call, checked against @discordjs/rest and @discordjs/ws in node_modules) and a gateway
// WebSocket (HELLO, IDENTIFY checked, heartbeats answered, READY, GUILD_CREATE, then the
// MESSAGE_CREATE and INTERACTION_CREATE dispatches a test asks for). Every REST call and gateway
// event is recorded; waitFor* resolve when a matching one has happened (no sleeps in the tests).

import { EventEmitter } from 'node:events';
import http from 'node:http';
import { WebSocketServer } from 'ws';

export const INTENT = Object.freeze({
  GUILDS: 1 << 0,
  GUILD_MESSAGES: 1 << 9,
  DIRECT_MESSAGES: 1 << 12,
  MESSAGE_CONTENT: 1 << 15,
});

const OP = { DISPATCH: 0, HEARTBEAT: 1, IDENTIFY: 2, RESUME: 6, INVALID_SESSION: 9, HELLO: 10, HEARTBEAT_ACK: 11 };

let snowflake = 1300000000000000000n;
export function nextId() {
  snowflake += 1n;
  return snowflake.toString();
}

function user(id, username, bot = false) {
  return { id, username, discriminator: '0', global_name: username, avatar: null, bot, flags: 0 };
}

export class FakeDiscord extends EventEmitter {
  // token: the bot token the bridge must use;
  // guilds: [{ id, name, channels: [{ id, name }], threads: [{ id, name, parent }] }]
  // messageContentAllowed: false plays an application whose Message Content intent is off in the
  // Developer Portal (IDENTIFY asking for it is closed with 4014).
  constructor({ token = 'fake-bot-token', botId = nextId(), applicationId = botId, guilds = [], heartbeatIntervalMs = 2000, messageContentAllowed = true } = {}) {
    super();
    this.setMaxListeners(0);
    this.token = token;
    this.bot = user(botId, 'Backcheck', true);
    this.applicationId = applicationId;
    this.guilds = guilds;
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.messageContentAllowed = messageContentAllowed;
    this.calls = []; // REST: { method, path, query, body, authorization }
    this.events = []; // gateway: { kind: 'connect' | 'identify' | 'ready' | 'heartbeat' | 'resume' | 'close', ... }
    this.messages = new Map(); // message id -> the message object as Discord would hold it
    this.channelTypes = new Map(); // channel id -> { type, guild_id? }
    this.sockets = new Set(); // gateway sockets that got READY
    for (const guild of guilds) {
      for (const channel of guild.channels) this.channelTypes.set(channel.id, { type: channel.type ?? 0, guild_id: guild.id });
      for (const thread of guild.threads ?? []) this.channelTypes.set(thread.id, { type: 11, guild_id: guild.id, parent_id: thread.parent });
    }
    this.sequence = 0;
    this.rateLimitNextPosts = 0; // answer that many POST .../messages with a 429 (Discord's rate limit)
  }

  async start() {
    this.server = http.createServer((req, res) => this.#onRequest(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url, 'http://fake');
      if (url.pathname !== '/gateway') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.#onGateway(ws, url));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  get apiUrl() {
    return `http://127.0.0.1:${this.port}/api`;
  }

  get gatewayUrl() {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }

  async close() {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise((resolve) => this.wss.close(resolve));
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(resolve));
  }

  // ---- waiting -----------------------------------------------------------------------------

  // Resolves with the first element of list (from index `from`) that matches, now or when it is
  // added; rejects after timeoutMs naming `what`.
  #waitIn(list, eventName, predicate, { from = 0, timeoutMs = 20000, what = 'an event' } = {}) {
    for (let i = from; i < list.length; i++) if (predicate(list[i])) return Promise.resolve(list[i]);
    return new Promise((resolve, reject) => {
      const onItem = (item) => {
        if (!predicate(item)) return;
        clearTimeout(timer);
        this.off(eventName, onItem);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.off(eventName, onItem);
        reject(new Error(`fake Discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.on(eventName, onItem);
    });
  }

  waitForCall(predicate, options) {
    return this.#waitIn(this.calls, 'call', predicate, options);
  }

  waitForEvent(predicate, options) {
    return this.#waitIn(this.events, 'gateway', predicate, options);
  }

  // A session that got READY after `from` (an index into events).
  waitForReady(from = 0) {
    return this.waitForEvent((event) => event.kind === 'ready', { from, what: 'a gateway session to get READY' });
  }

  // The `count`-th message posted into channelId after call index `from`, with its call.
  async waitForPosts(channelId, count, { from = 0, timeoutMs } = {}) {
    const path = `/api/v10/channels/${channelId}/messages`;
    const found = [];
    let index = from;
    while (found.length < count) {
      const call = await this.waitForCall((c) => c.method === 'POST' && c.path === path && c.status === 200, {
        from: index,
        timeoutMs,
        what: `message ${found.length + 1} of ${count} posted into channel ${channelId}`,
      });
      index = this.calls.indexOf(call) + 1;
      found.push(call);
    }
    return found;
  }

  postsTo(channelId, from = 0) {
    const path = `/api/v10/channels/${channelId}/messages`;
    return this.calls.slice(from).filter((c) => c.method === 'POST' && c.path === path && c.status === 200);
  }

  // ---- REST --------------------------------------------------------------------------------

  async #onRequest(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://fake');
    let body = null;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    const call = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      authorization: req.headers.authorization ?? null,
      status: 0,
    };
    const send = (status, payload) => {
      call.status = status;
      this.calls.push(call);
      if (payload === undefined) {
        res.writeHead(status);
        res.end();
      } else {
        const text = JSON.stringify(payload);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      }
      this.emit('call', call);
    };

    const botAuth = call.authorization === `Bot ${this.token}`;
    const p = url.pathname;
    let m;
    if (!p.startsWith('/api/v10/')) return send(404, { message: '404: Not Found', code: 0 });

    // Interaction callbacks are authenticated by the interaction's token, not the bot token.
    if ((m = /^\/api\/v10\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(p)) && req.method === 'POST') {
      const interaction = this.interactions?.get(m[1]);
      if (!interaction || interaction.token !== m[2]) return send(404, { message: 'Unknown interaction', code: 10062 });
      if (interaction.answered) return send(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
      interaction.answered = true;
      if (body?.type === 7 && interaction.messageId) this.#patchMessage(interaction.messageId, body.data ?? {});
      return send(204);
    }
    if (!botAuth) return send(401, { message: '401: Unauthorized', code: 0 });

    if (p === '/api/v10/gateway/bot' && req.method === 'GET') {
      return send(200, {
        url: this.gatewayUrl,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 14400000, max_concurrency: 1 },
      });
    }
    if (p === '/api/v10/users/@me' && req.method === 'GET') return send(200, this.bot);
    if ((m = /^\/api\/v10\/channels\/(\d+)$/.exec(p)) && req.method === 'GET') {
      const known = this.channelTypes.get(m[1]);
      if (!known) return send(404, { message: 'Unknown Channel', code: 10003 });
      return send(200, { id: m[1], ...known, ...(known.type === 1 ? { recipients: [known.recipient] } : {}) });
    }
    if ((m = /^\/api\/v10\/channels\/(\d+)\/typing$/.exec(p)) && req.method === 'POST') return send(204);
    if ((m = /^\/api\/v10\/channels\/(\d+)\/messages$/.exec(p)) && req.method === 'POST') {
      if (this.rateLimitNextPosts > 0) {
        // As Discord answers a route's rate limit: 429, retry_after in seconds, the bucket headers.
        this.rateLimitNextPosts -= 1;
        call.status = 429;
        this.calls.push(call);
        const text = JSON.stringify({ message: 'You are being rate limited.', retry_after: 0.3, global: false });
        res.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': '1',
          'x-ratelimit-limit': '5',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset-after': '0.3',
          'x-ratelimit-bucket': 'fake-bucket',
          'x-ratelimit-scope': 'user',
        });
        res.end(text);
        this.emit('call', call);
        return undefined;
      }
      const problem = checkMessageBody(body);
      if (problem) return send(400, { message: `Invalid Form Body: ${problem}`, code: 50035 });
      const message = this.#storeMessage(m[1], this.bot, body);
      call.message = message;
      return send(200, message);
    }
    if ((m = /^\/api\/v10\/channels\/(\d+)\/messages\/(\d+)$/.exec(p)) && req.method === 'PATCH') {
      const message = this.#patchMessage(m[2], body ?? {});
      if (!message) return send(404, { message: 'Unknown Message', code: 10008 });
      return send(200, message);
    }
    return send(404, { message: '404: Not Found', code: 0 });
  }

  #storeMessage(channelId, author, body) {
    const known = this.channelTypes.get(channelId);
    const message = {
      id: nextId(),
      channel_id: channelId,
      ...(known?.guild_id ? { guild_id: known.guild_id } : {}),
      author,
      content: body.content ?? '',
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: body.embeds ?? [],
      components: body.components ?? [],
      pinned: false,
      type: body.message_reference ? 19 : 0,
      flags: 0,
      ...(body.message_reference ? { message_reference: { ...body.message_reference, channel_id: channelId } } : {}),
    };
    this.messages.set(message.id, message);
    return message;
  }

  #patchMessage(id, data) {
    const message = this.messages.get(id);
    if (!message) return null;
    for (const field of ['content', 'embeds', 'components']) if (field in data) message[field] = data[field];
    message.edited_timestamp = new Date().toISOString();
    return message;
  }

  // ---- gateway -----------------------------------------------------------------------------

  #record(event) {
    this.events.push(event);
    this.emit('gateway', event);
  }

  #send(ws, payload) {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(payload));
  }

  #onGateway(ws, url) {
    const query = Object.fromEntries(url.searchParams);
    this.#record({ kind: 'connect', query });
    // Speak only what the client asked for: JSON, no transport compression.
    if (query.encoding !== 'json' || query.compress || query.v !== '10') {
      this.#record({ kind: 'refused', reason: `unsupported query ${url.search}` });
      ws.close(4002, 'fake Discord speaks v10 json without compression only');
      return;
    }
    ws.on('message', (data) => {
      let payload;
      try {
        payload = JSON.parse(data.toString());
      } catch {
        ws.close(4002, 'decode error');
        return;
      }
      this.#onGatewayPayload(ws, payload);
    });
    ws.on('close', (code) => {
      this.sockets.delete(ws);
      this.#record({ kind: 'close', code });
    });
    this.#send(ws, { op: OP.HELLO, d: { heartbeat_interval: this.heartbeatIntervalMs }, s: null, t: null });
  }

  #onGatewayPayload(ws, payload) {
    if (payload.op === OP.HEARTBEAT) {
      this.#record({ kind: 'heartbeat' });
      this.#send(ws, { op: OP.HEARTBEAT_ACK, d: null, s: null, t: null });
      return;
    }
    if (payload.op === OP.RESUME) {
      // No session to resume here: a fresh IDENTIFY follows.
      this.#record({ kind: 'resume' });
      this.#send(ws, { op: OP.INVALID_SESSION, d: false, s: null, t: null });
      return;
    }
    if (payload.op !== OP.IDENTIFY) return;
    const d = payload.d ?? {};
    const intents = Number(d.intents ?? 0);
    this.#record({ kind: 'identify', intents, token: d.token, compress: d.compress, shard: d.shard });
    if (d.token !== this.token) {
      ws.close(4004, 'Authentication failed.');
      return;
    }
    if ((intents & INTENT.MESSAGE_CONTENT) && !this.messageContentAllowed) {
      ws.close(4014, 'Disallowed intent(s).');
      return;
    }
    const required = INTENT.GUILDS | INTENT.GUILD_MESSAGES | INTENT.DIRECT_MESSAGES | INTENT.MESSAGE_CONTENT;
    if ((intents & required) !== required) {
      ws.close(4013, 'Invalid intent(s).');
      return;
    }
    const sessionId = `fake-session-${nextId()}`;
    this.sockets.add(ws);
    this.#dispatchTo(ws, 'READY', {
      v: 10,
      user: this.bot,
      guilds: this.guilds.map((guild) => ({ id: guild.id, unavailable: true })),
      session_id: sessionId,
      resume_gateway_url: this.gatewayUrl,
      shard: d.shard ?? [0, 1],
      application: { id: this.applicationId, flags: 0 },
      private_channels: [],
    });
    for (const guild of this.guilds) {
      this.#dispatchTo(ws, 'GUILD_CREATE', {
        id: guild.id,
        name: guild.name,
        icon: null,
        owner_id: nextId(),
        unavailable: false,
        member_count: 2,
        large: false,
        joined_at: new Date().toISOString(),
        features: [],
        roles: [{ id: guild.id, name: '@everyone', permissions: '0', position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
        emojis: [],
        stickers: [],
        members: [],
        presences: [],
        voice_states: [],
        threads: (guild.threads ?? []).map((thread) => ({
          id: thread.id,
          type: 11,
          name: thread.name,
          guild_id: guild.id,
          parent_id: thread.parent,
          owner_id: nextId(),
          message_count: 0,
          member_count: 1,
          rate_limit_per_user: 0,
          thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
        })),
        stage_instances: [],
        guild_scheduled_events: [],
        soundboard_sounds: [],
        channels: guild.channels.map((channel, position) => ({
          id: channel.id,
          type: channel.type ?? 0,
          name: channel.name,
          guild_id: guild.id,
          position,
          permission_overwrites: [],
          parent_id: null,
          nsfw: false,
        })),
      });
    }
    this.#record({ kind: 'ready', sessionId, intents });
  }

  #dispatchTo(ws, t, d) {
    this.sequence += 1;
    this.#send(ws, { op: OP.DISPATCH, t, s: this.sequence, d });
  }

  dispatch(t, d) {
    if (this.sockets.size === 0) throw new Error(`fake Discord: no gateway session to dispatch ${t} to`);
    for (const ws of this.sockets) this.#dispatchTo(ws, t, d);
  }

  // Closes every gateway session (as Discord does at times); the client reconnects.
  dropGateway(code = 4000) {
    for (const ws of this.sockets) ws.close(code, 'fake Discord: dropped');
  }

  // ---- what people do ----------------------------------------------------------------------

  // A person `who` ({ id, username }) writes in their DM channel with the bot. Returns the message
  // object (dispatch it again with redeliver()).
  dm({ who, channelId, content, id = nextId() }) {
    this.channelTypes.set(channelId, { type: 1, recipient: user(who.id, who.username) });
    const message = {
      id,
      channel_id: channelId,
      channel_type: 1,
      author: user(who.id, who.username, who.bot ?? false),
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      components: [],
      pinned: false,
      type: 0,
      flags: 0,
      nonce: id,
    };
    this.messages.set(id, message);
    this.dispatch('MESSAGE_CREATE', message);
    return message;
  }

  // A person writes in a guild channel; `mention` puts the bot's mention first; `replyTo` (a
  // message id) makes it a reply to that message, as Discord's reply button does.
  guildMessage({ who, guildId, channelId, content, mention = true, replyTo = null, id = nextId() }) {
    const message = {
      id,
      channel_id: channelId,
      guild_id: guildId,
      channel_type: this.channelTypes.get(channelId)?.type ?? 0,
      author: user(who.id, who.username, who.bot ?? false),
      member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
      content: mention ? `<@${this.bot.id}> ${content}` : content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: mention ? [{ ...this.bot, member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 } }] : [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      components: [],
      pinned: false,
      type: replyTo ? 19 : 0,
      flags: 0,
      nonce: id,
      ...(replyTo
        ? {
          message_reference: { type: 0, message_id: replyTo, channel_id: channelId, guild_id: guildId },
          referenced_message: this.messages.get(replyTo) ?? null,
        }
        : {}),
    };
    this.messages.set(id, message);
    this.dispatch('MESSAGE_CREATE', message);
    return message;
  }

  // The same message delivered again (a gateway replay, a client resend).
  redeliver(message) {
    this.dispatch('MESSAGE_CREATE', message);
  }

  // A person clicks the button with `label` on a message the bot posted. Returns the interaction.
  click({ who, messageId, label, guildId = null }) {
    const message = this.messages.get(messageId);
    if (!message) throw new Error(`fake Discord: no message ${messageId}`);
    const button = message.components.flatMap((row) => row.components).find((c) => c.label === label);
    if (!button) throw new Error(`fake Discord: message ${messageId} has no button "${label}"`);
    const interaction = {
      id: nextId(),
      application_id: this.applicationId,
      type: 3,
      token: `interaction-token-${nextId()}`,
      version: 1,
      data: { custom_id: button.custom_id, component_type: 2 },
      channel_id: message.channel_id,
      channel: guildId
        ? { id: message.channel_id, type: 0, guild_id: guildId, name: 'channel', permissions: '0' }
        : { id: message.channel_id, type: 1, recipients: [user(who.id, who.username)] },
      ...(guildId
        ? { guild_id: guildId, member: { user: user(who.id, who.username), roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0, permissions: '0' } }
        : { user: user(who.id, who.username) }),
      message: structuredClone(message),
      app_permissions: '0',
      locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { 0: guildId ?? '0' },
      context: guildId ? 0 : 1,
      attachment_size_limit: 10485760,
    };
    this.interactions ??= new Map();
    this.interactions.set(interaction.id, { token: interaction.token, messageId, answered: false });
    this.dispatch('INTERACTION_CREATE', interaction);
    return interaction;
  }
}

// What Discord refuses in a message body (so a test fails where Discord would).
function checkMessageBody(body) {
  if (!body || typeof body !== 'object') return 'no body';
  const content = body.content ?? '';
  if (typeof content !== 'string') return 'content must be a string';
  if (content.length > 2000) return 'content: Must be 2000 or fewer in length.';
  const embeds = body.embeds ?? [];
  if (content === '' && embeds.length === 0 && (body.components ?? []).length === 0) return 'Cannot send an empty message';
  if (embeds.length > 10) return 'embeds: Must be 10 or fewer in length.';
  for (const embed of embeds) {
    if ((embed.description ?? '').length > 4096) return 'embeds.description: Must be 4096 or fewer in length.';
    if ((embed.title ?? '').length > 256) return 'embeds.title: Must be 256 or fewer in length.';
  }
  const rows = body.components ?? [];
  if (rows.length > 5) return 'components: Must be 5 or fewer in length.';
  for (const row of rows) {
    if (row.type !== 1 || !Array.isArray(row.components) || row.components.length > 5) return 'components: bad action row';
    for (const c of row.components) {
      if (c.type !== 2 || typeof c.custom_id !== 'string' || c.custom_id.length > 100 || (c.label ?? '').length > 80) return 'components: bad button';
    }
  }
  return null;
}
