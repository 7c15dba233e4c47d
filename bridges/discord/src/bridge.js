// The Discord bridge: discord.js 14 over the gateway on one side, one Backcheck server connection
// (bridges/common/backcheck-client.js) carrying every person's conversation by key on the other.
//
// Logs events only (ready, a reply posted with its level, error codes): never what a person writes
// or what the assistant answers.

import { Client, Events, GatewayIntentBits, Options, Partials, Routes, escapeMarkdown } from 'discord.js';
import { WebSocket } from 'ws';
import { BackcheckClient } from '../../common/backcheck-client.js';
import { fill } from './texts.js';
import {
  channelIdFromKey,
  choiceContent,
  isAlert,
  keyFor,
  parseCustomId,
  renderMarkdown,
  renderReply,
  renderText,
  stripMentions,
} from './render.js';

// Guilds (guild and channel cache, needed to receive guild messages), GuildMessages (mentions in
// guild channels and threads), DirectMessages (DMs), MessageContent (the text of guild messages
// that reply to the bot without mentioning it; DMs and mentions carry their text without it).
export const INTENTS = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.DirectMessages,
  GatewayIntentBits.MessageContent,
];

// What an unrecoverable gateway close means for whoever runs the bridge.
const FATAL_CLOSE_HINTS = {
  4004: 'Discord refused the token: set DISCORD_TOKEN to the bot token (Developer Portal, Bot, Reset Token)',
  4013: 'invalid intents',
  4014: 'Discord refused the intents: turn on "Message Content Intent" under Privileged Gateway Intents (Developer Portal, Bot)',
};

const SEEN_LIMIT = 10000; // message and interaction ids remembered against redelivery
const POSTED_LIMIT = 10000; // ids of the bot's own messages, to recognise replies to them

function defaultLog(line) {
  process.stderr.write(`discord-bridge: ${line}\n`);
}

// An insertion-ordered set that forgets its oldest entries past `limit`.
class BoundedSet {
  constructor(limit) {
    this.limit = limit;
    this.items = new Set();
  }

  has(item) {
    return this.items.has(item);
  }

  add(item) {
    this.items.delete(item);
    this.items.add(item);
    while (this.items.size > this.limit) this.items.delete(this.items.values().next().value);
  }
}

export class DiscordBridge {
  // discordToken: the bot token; backcheckUrl: ws://host:port/v1/chat; bridgeToken: the server's
  // bridge token; texts: loadTexts(); restApi: another REST base than https://discord.com/api (tests);
  // backoff, requestTimeoutMs: for the server client; log: a function taking one line.
  // onFatal(closeCode): Discord closed the gateway for good (the process should exit).
  constructor({ discordToken, backcheckUrl, bridgeToken, texts, restApi = null, backoff, requestTimeoutMs, log = defaultLog, onFatal = () => {} }) {
    this.token = discordToken;
    this.texts = texts;
    this.log = log;
    this.stopping = false;
    this.banners = null; // level -> banner line, from the server's `started` frames
    this.welcomes = new Map(); // key -> the welcome of a conversation just started, posted before its first reply
    this.channels = new Map(); // key -> channel id (also derivable from the key itself)
    this.chains = new Map(); // key -> the promise of the conversation's last post (posts go in order)
    this.seen = new BoundedSet(SEEN_LIMIT);
    this.posted = new BoundedSet(POSTED_LIMIT);

    this.backcheck = new BackcheckClient({
      url: backcheckUrl,
      token: bridgeToken,
      WebSocket,
      backoff,
      requestTimeoutMs,
      log: (line) => this.log(`server: ${line}`),
    });
    this.backcheck.on('started', (frame) => this.#onStarted(frame));
    this.backcheck.on('push', (frame) => this.#onPush(frame));

    this.discord = new Client({
      intents: INTENTS,
      // DM channels are not cached when a DM arrives: without the Channel partial, discord.js drops it.
      partials: [Partials.Channel],
      rest: restApi ? { api: restApi } : {},
      allowedMentions: { parse: [], repliedUser: true },
      // The bridge never reads old messages: no message cache (every delivery reaches the handler,
      // and the bridge's own id set decides what is a redelivery).
      makeCache: Options.cacheWithLimits({ ...Options.DefaultMakeCacheSettings, MessageManager: 0 }),
    });
    this.discord.on(Events.ClientReady, (client) => this.log(`ready (Discord user ${client.user.id}, ${client.guilds.cache.size} guilds)`));
    this.discord.on(Events.MessageCreate, (message) => this.#onMessage(message).catch((error) => this.#logError('message', error)));
    this.discord.on(Events.InteractionCreate, (interaction) => this.#onInteraction(interaction).catch((error) => this.#logError('interaction', error)));
    this.discord.on(Events.Error, (error) => this.#logError('discord', error));
    // discord.js emits shardDisconnect only when it will not reconnect (a bad token, intents the
    // portal does not allow, ...): the bridge cannot work on, so it says why and gives up.
    this.discord.on(Events.ShardDisconnect, (event, id) => {
      const code = event?.code ?? '?';
      this.log(`gateway shard ${id} closed for good (${code})${FATAL_CLOSE_HINTS[code] ? `: ${FATAL_CLOSE_HINTS[code]}` : ''}`);
      if (!this.stopping) onFatal(code);
    });
    this.discord.on(Events.ShardReconnecting, (id) => this.log(`gateway shard ${id} reconnecting`));
    this.discord.on(Events.ShardResume, (id) => this.log(`gateway shard ${id} resumed`));
  }

  async start() {
    this.backcheck.start();
    await this.discord.login(this.token);
  }

  async stop() {
    this.stopping = true;
    await this.discord.destroy();
    await this.backcheck.stop();
    // Posts already under way finish or fail on their own; the REST queue is gone with the client.
  }

  // ---- Discord events ----------------------------------------------------------------------

  async #onMessage(message) {
    if (this.stopping) return;
    if (message.author?.bot || message.webhookId || message.system) return; // bots (this one too), webhooks, system messages
    const botId = this.discord.user?.id;
    const inGuild = Boolean(message.guildId);
    let text = message.content ?? '';
    if (inGuild) {
      const mentioned = botId && message.mentions?.users?.has(botId);
      // A reply to one of the bot's messages: Discord sends the replied-to message along (its
      // author is mentions.repliedUser, pinged or not); the ids posted since the start cover the rest.
      const repliesToBot = (botId && message.mentions?.repliedUser?.id === botId)
        || (message.reference?.messageId && this.posted.has(message.reference.messageId));
      if (!mentioned && !repliesToBot) return;
      text = stripMentions(text, botId);
    } else {
      text = text.trim();
    }
    if (this.seen.has(message.id)) {
      this.log(`message ${message.id}: delivered again, ignored`);
      return;
    }
    this.seen.add(message.id);

    const key = keyFor({ guildId: message.guildId, channelId: message.channelId });
    this.channels.set(key, message.channelId);
    const replyTo = inGuild ? message.id : null;
    if (text === '') {
      this.#enqueue(key, () => this.#post(message.channelId, renderMarkdown(escapeMarkdown(this.texts.empty_mention)), replyTo));
      return;
    }
    this.log(`message ${message.id} for ${key}`);
    this.#converse({ key, channelId: message.channelId, text, id: message.id, replyTo });
  }

  async #onInteraction(interaction) {
    if (this.stopping || !interaction.isButton()) return;
    const parsed = parseCustomId(interaction.customId);
    if (!parsed) return;
    // A button belongs to the conversation of the channel it was posted in.
    if (channelIdFromKey(parsed.key) !== interaction.channelId) {
      this.log(`interaction ${interaction.id}: button of another channel, ignored`);
      return;
    }
    if (this.seen.has(interaction.id)) return;
    this.seen.add(interaction.id);
    const label = interaction.component?.label;
    if (typeof label !== 'string' || label.trim() === '') return;

    this.log(`button ${interaction.id} for ${parsed.key}`);
    // Answer the interaction at once (Discord allows 3 s): the buttons make way for the choice.
    try {
      await interaction.update({ content: choiceContent(interaction.message?.content, label, this.texts), components: [] });
    } catch (error) {
      this.#logError(`interaction ${interaction.id} update`, error);
    }
    this.channels.set(parsed.key, interaction.channelId);
    this.#converse({ key: parsed.key, channelId: interaction.channelId, text: label, id: interaction.id, replyTo: null });
  }

  // ---- the server --------------------------------------------------------------------------

  // Sends now (the server client keeps the order); posts the answer after the conversation's
  // earlier posts.
  #converse({ key, channelId, text, id, replyTo }) {
    this.discord.rest.post(Routes.channelTyping(channelId)).catch(() => {});
    const outcome = this.backcheck.send({ key, text, id }).then(
      (reply) => ({ reply }),
      (error) => ({ error }),
    );
    this.#enqueue(key, async () => {
      const { reply, error } = await outcome;
      if (this.stopping) return;
      if (reply) await this.#postReply(key, channelId, reply, replyTo);
      else await this.#postError(key, channelId, error, replyTo);
    });
  }

  async #postReply(key, channelId, reply, replyTo) {
    const bodies = [];
    const welcome = this.welcomes.get(key);
    this.welcomes.delete(key);
    // A new conversation shows the service's welcome first, unless the first answer is an alert:
    // then the guidance comes first and alone.
    if (welcome && typeof welcome.text === 'string' && !isAlert(reply)) bodies.push(...renderText(welcome.text));
    bodies.push(...renderReply(reply, { key, texts: this.texts, banners: this.banners }));
    await this.#post(channelId, bodies, replyTo);
    this.log(`reply ${reply.seq ?? '?'} posted for ${key} (urgency ${reply.urgency ?? '?'}${reply.duplicate ? ', duplicate' : ''}${isAlert(reply) ? ', alert' : ''})`);
  }

  async #postError(key, channelId, error, replyTo) {
    this.welcomes.delete(key);
    const code = error?.code ?? 'error';
    if (code === 'stopped' && this.stopping) return;
    this.log(`no reply for ${key}: ${code}`);
    const bodies = [];
    const guidance = error?.guidance;
    if (guidance && typeof guidance.text === 'string' && guidance.text.trim() !== '') {
      // The person always gets the safety guidance, shown like the reply it stands for.
      const asReply = {
        text: guidance.text,
        urgency: guidance.urgency ?? 'none',
        red_flags: guidance.red_flags ?? [],
        escalated: guidance.urgency !== undefined && guidance.urgency !== 'none',
        quick_replies: [],
        sources: [],
      };
      bodies.push(...renderReply(asReply, { key, texts: this.texts, banners: this.banners }));
    }
    const own = code === 'rate_limited' ? this.texts.rate_limited
      : code === 'text_too_long' ? this.texts.text_too_long
        : this.texts.unavailable;
    bodies.push(...renderMarkdown(escapeMarkdown(own)));
    await this.#post(channelId, bodies, replyTo);
  }

  #onStarted(frame) {
    if (frame.banners && typeof frame.banners === 'object') this.banners = frame.banners;
    if (typeof frame.key === 'string' && frame.resumed === false && frame.welcome) this.welcomes.set(frame.key, frame.welcome);
  }

  #onPush(frame) {
    if (this.stopping || typeof frame.key !== 'string') return;
    const channelId = this.channels.get(frame.key) ?? channelIdFromKey(frame.key);
    if (!channelId) return;
    let bodies = [];
    if (frame.type === 'notice' && typeof frame.text === 'string') {
      bodies = renderText(frame.text);
    } else if (frame.type === 'operator_message' && typeof frame.text === 'string') {
      bodies = renderMarkdown(fill(this.texts.operator_message, { operator: escapeMarkdown(String(frame.operator ?? '')), text: escapeMarkdown(frame.text) }));
    } else if (frame.type === 'handoff' && (frame.event === 'joined' || frame.event === 'left')) {
      const template = frame.event === 'joined' ? this.texts.handoff_joined : this.texts.handoff_left;
      bodies = renderMarkdown(fill(template, { operator: escapeMarkdown(String(frame.operator ?? '')) }));
    }
    if (bodies.length === 0) return;
    this.log(`${frame.type} for ${frame.key}`);
    this.#enqueue(frame.key, () => this.#post(channelId, bodies));
  }

  // ---- posting -----------------------------------------------------------------------------

  // Runs `task` after the conversation's earlier posts; a failure is logged and does not stop
  // the ones after it.
  #enqueue(key, task) {
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(task).catch((error) => this.#logError(`post for ${key}`, error));
    this.chains.set(key, next);
    next.then(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  // Posts the bodies in order through discord.js's REST queue (which keeps Discord's rate
  // limits); the first one answers `replyTo` (a guild message) when given.
  async #post(channelId, bodies, replyTo = null) {
    let first = true;
    for (const body of bodies) {
      if (this.stopping) return;
      const payload = first && replyTo
        ? { ...body, message_reference: { message_id: replyTo, fail_if_not_exists: false } }
        : body;
      first = false;
      const sent = await this.discord.rest.post(Routes.channelMessages(channelId), { body: payload });
      if (sent && typeof sent.id === 'string') this.posted.add(sent.id);
    }
  }

  #logError(where, error) {
    // Error codes and names only: a message could quote what was sent.
    const code = error?.code ?? error?.status ?? error?.name ?? 'error';
    this.log(`${where} failed: ${code}`);
  }
}
