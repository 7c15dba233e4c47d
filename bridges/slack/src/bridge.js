// The Slack bridge: Bolt (Socket Mode, or the HTTP Events API) on one side, one WebSocket to the
// Backcheck server (BackcheckClient, keyed conversations) on the other.
//
// Logs only events (connected, reconnecting, error codes, a duplicate not posted): never what a
// person writes nor what the assistant answers.
import bolt from '@slack/bolt';
import WebSocket from 'ws';
import { BackcheckClient } from '../../common/backcheck-client.js';
import { ChannelQueue } from './channel-queue.js';
import { dmKey, threadKey, placeOfKey } from './keys.js';
import { ACTIONS_BLOCK_PREFIX, renderGuidance, renderNotice, renderPlain, renderReply, replaceButtons } from './render.js';

const { App, LogLevel } = bolt;

const LOG_LEVELS = { info: LogLevel.INFO, warn: LogLevel.WARN, error: LogLevel.ERROR };
const HANDLED_IDS_KEPT = 10000;
const PLACES_KEPT = 50000;

function defaultLog(line) {
  process.stderr.write(`slack-bridge: ${line}\n`);
}

// A bounded insertion-ordered map (the oldest entries go first).
function remember(map, key, value, max) {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value);
}

function slackErrorCode(error) {
  return error?.data?.error || error?.code || error?.name || 'error';
}

export class SlackBridge {
  constructor(config, { texts, log = defaultLog } = {}) {
    this.config = config;
    this.texts = texts;
    this.log = log;
    this.queue = new ChannelQueue({ intervalMs: config.postIntervalMs });
    this.places = new Map(); // key -> { channel, threadTs? }: where its answers go
    this.handledIds = new Map(); // message ids whose reply this process posted (duplicates are not posted again)
    this.banners = null; // level -> banner line, from the server's `started` frames
    this.botUserId = null;

    this.client = new BackcheckClient({
      url: config.backcheckUrl,
      token: config.bridgeToken,
      WebSocket,
      requestTimeoutMs: config.requestTimeoutMs,
      log: (line) => this.log(`server: ${line}`),
    });
    this.client.on('started', (frame) => {
      if (frame.banners && typeof frame.banners === 'object') this.banners = frame.banners;
    });
    this.client.on('push', (frame) => this.#onPush(frame));

    const clientOptions = config.slackApiUrl ? { slackApiUrl: config.slackApiUrl } : {};
    const common = { token: config.botToken, logLevel: LOG_LEVELS[config.logLevel] ?? LogLevel.INFO, clientOptions };
    this.app =
      config.mode === 'http'
        ? new App({ ...common, signingSecret: config.signingSecret })
        : new App({ ...common, appToken: config.appToken, socketMode: true });

    this.app.error(async (error) => {
      this.log(`bolt error: ${slackErrorCode(error.original || error)}`);
    });
    this.app.message(async ({ message, context }) => {
      this.#onMessage(message, context);
    });
    this.app.event('app_mention', async ({ event, context, body }) => {
      this.#onMention(event, context, body);
    });
    this.app.action(/^qr_\d+$/, async ({ ack, body, action }) => {
      await ack(); // within 3 s: the server round trip happens after
      this.#onClick(body, action);
    });
  }

  // Resolves once Slack is connected (Socket Mode) or the HTTP server listens; returns the
  // HTTP port in HTTP mode.
  async start() {
    this.client.start();
    if (this.config.mode === 'http') {
      const listen = this.config.host ? { port: this.config.port, host: this.config.host } : this.config.port;
      const server = await this.app.start(listen);
      const port = server?.address?.()?.port ?? this.config.port;
      this.log(`http: listening on port ${port} (POST /slack/events)`);
      return port;
    }
    await this.app.start();
    this.log('socket mode: connected to Slack');
    return null;
  }

  async stop() {
    try {
      await this.app.stop();
    } catch (error) {
      this.log(`stopping bolt: ${slackErrorCode(error)}`);
    }
    await this.client.stop();
  }

  #onMessage(message, context) {
    // Only a person's new message in a DM: no bot messages (this bot's own included), no edits,
    // deletions, joins or other subtypes. Channel messages reach the bridge as app_mention.
    if (message.subtype || message.bot_id || message.bot_profile) return;
    if (this.botUserId === null && context?.botUserId) this.botUserId = context.botUserId;
    if (message.user && context?.botUserId && message.user === context.botUserId) return;
    if (message.channel_type !== 'im') return;
    const text = typeof message.text === 'string' ? message.text.trim() : '';
    if (!text) return;
    const team = message.team || context?.teamId || 'T';
    const key = dmKey(team, message.channel);
    const id = message.client_msg_id || `${message.channel}:${message.ts}`;
    this.#converse({ key, text, id, place: { channel: message.channel } });
  }

  #onMention(event, context, body) {
    if (event.subtype || event.bot_id || event.bot_profile || event.edited) return;
    if (event.channel_type === 'im' || (typeof event.channel === 'string' && event.channel.startsWith('D'))) return; // a DM: the message event has it
    const botUserId = context?.botUserId;
    if (botUserId && event.user === botUserId) return;
    const mention = botUserId ? new RegExp(`<@${botUserId}(\\|[^>]*)?>`, 'g') : /<@[A-Z0-9]+(\|[^>]*)?>/;
    const text = (event.text || '').replace(mention, ' ').replace(/\s+/g, ' ').trim();
    const threadTs = event.thread_ts || event.ts;
    const team = event.team || body?.team_id || context?.teamId || 'T';
    const place = { channel: event.channel, threadTs };
    if (!text) {
      this.#post(place, renderPlain(this.texts.empty_mention));
      return;
    }
    const key = threadKey(team, event.channel, threadTs);
    const id = event.client_msg_id || `${event.channel}:${event.ts}`;
    this.#converse({ key, text, id, place });
  }

  #onClick(body, action) {
    const channel = body.channel?.id || body.container?.channel_id;
    const messageTs = body.container?.message_ts || body.message?.ts;
    const choice = typeof action.value === 'string' ? action.value : action.text?.text;
    if (!channel || !messageTs || !choice) return;
    let key = typeof action.block_id === 'string' && action.block_id.startsWith(ACTIONS_BLOCK_PREFIX) ? action.block_id.slice(ACTIONS_BLOCK_PREFIX.length) : null;
    let place = key ? placeOfKey(key) : null;
    if (!place) {
      // Not one of ours (or an old message): the place of the click names the conversation.
      const team = body.team?.id || body.user?.team_id || 'T';
      const threadTs = body.message?.thread_ts || body.container?.thread_ts;
      key = threadTs && !channel.startsWith('D') ? threadKey(team, channel, threadTs) : dmKey(team, channel);
      place = placeOfKey(key);
    }
    // One answer per set of buttons: a second click on the same message is the same message id.
    const id = `slack-action:${channel}:${messageTs}`;
    if (body.message) {
      this.queue
        .run(channel, () => this.app.client.chat.update({ channel, ts: messageTs, ...replaceButtons(body.message, choice, this.texts) }))
        .catch((error) => this.log(`chat.update failed: ${slackErrorCode(error)}`));
    }
    this.#converse({ key, text: choice, id, place: { channel: place.channel, threadTs: place.threadTs } });
  }

  #converse({ key, text, id, place }) {
    remember(this.places, key, place, PLACES_KEPT);
    this.client.send({ key, text, id }).then(
      (reply) => {
        if (reply.duplicate === true && this.handledIds.has(id)) {
          this.log('a repeated delivery was answered as a duplicate: not posted again');
          return;
        }
        remember(this.handledIds, id, true, HANDLED_IDS_KEPT);
        this.#post(place, renderReply(reply, { key, texts: this.texts, banners: this.banners }));
      },
      (error) => {
        this.log(`message not answered: ${error.code || 'error'}`);
        if (error.guidance && typeof error.guidance.text === 'string' && error.guidance.text) {
          // The person always gets the safety guidance, whatever went wrong.
          this.#post(place, renderGuidance(error.guidance, { texts: this.texts, banners: this.banners }));
          return;
        }
        const words = error.code === 'rate_limited' ? this.texts.rate_limited : error.code === 'text_too_long' ? this.texts.text_too_long : this.texts.unavailable;
        this.#post(place, renderPlain(words));
      },
    );
  }

  #onPush(frame) {
    if (frame.type !== 'notice' && frame.type !== 'operator_message') return; // handoff: nothing to show yet
    if (typeof frame.text !== 'string' || !frame.text || typeof frame.key !== 'string') return;
    const place = this.places.get(frame.key) || placeOfKey(frame.key);
    if (!place) return;
    this.log(`posting a pushed ${frame.type}`);
    this.#post(place, renderNotice(frame, { texts: this.texts }));
  }

  #post(place, payloads) {
    for (const payload of payloads) {
      const args = { channel: place.channel, ...payload };
      if (place.threadTs) args.thread_ts = place.threadTs;
      this.queue
        .run(place.channel, () => this.app.client.chat.postMessage(args))
        .catch((error) => this.log(`chat.postMessage failed: ${slackErrorCode(error)}`));
    }
  }
}
