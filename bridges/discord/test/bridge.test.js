// End to end: the bridge (node src/index.js, a child process) between a fake Discord (REST and
// gateway, test/fake-discord.js) and the real chat-server (BACKCHECK_SERVER, a child process).
// Every wait is for an event (a REST call the fake records, a line a process prints), bounded by
// a timeout; nothing sleeps.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeDiscord, INTENT, nextId } from './fake-discord.js';
import { escapeMarkdown } from 'discord.js';
import { connectOperator, holdConversation, serverHistory, startBridge, startServer, tempDir, writeBridgeTokens } from './helpers.js';

const GUILD = nextId();
const GENERAL = nextId();
const THREAD = nextId();
const OPERATOR_TOKEN = randomBytes(24).toString('hex');
const MAX_TEXT_CHARS = 400; // lowered so that a message too long for the server fits in a Discord message

let tmp;
let tokens;
let fake;
let server;
let bridge;
const bridges = []; // every bridge process started, for the logging check
const said = []; // everything people wrote, for the logging check

function serverOptions(port = 0) {
  return {
    dataDir: path.join(tmp.dir, 'data'),
    tokensFile: tokens.file,
    port,
    extraArgs: ['--max-text-chars', String(MAX_TEXT_CHARS)],
    env: { CHAT_OPERATOR_TOKEN: OPERATOR_TOKEN },
  };
}

async function launchBridge() {
  const from = fake.events.length;
  bridge = startBridge({ fake, serverUrl: server.url, bridgeToken: tokens.token });
  bridges.push(bridge);
  await fake.waitForReady(from);
  await bridge.stderr.waitFor(/discord-bridge: ready/, { what: 'the bridge to be ready' });
  return bridge;
}

before(async () => {
  tmp = tempDir();
  tokens = writeBridgeTokens(tmp.dir, 'discord');
  fake = await new FakeDiscord({ guilds: [{ id: GUILD, name: 'Gym', channels: [{ id: GENERAL, name: 'general' }], threads: [{ id: THREAD, name: 'sore after deadlifts', parent: GENERAL }] }] }).start();
  server = await startServer(serverOptions());
  await launchBridge();
});

after(async () => {
  await bridge?.stop();
  await server?.stop();
  await fake?.close();
  tmp?.remove();
});

let people = 0;
function person() {
  people += 1;
  return { id: nextId(), username: `person${people}` };
}

function dm(who, channelId, content) {
  said.push(content);
  return fake.dm({ who, channelId, content });
}

const postPath = (channelId) => `/api/v10/channels/${channelId}/messages`;
const isPost = (call, channelId) => call.method === 'POST' && call.path === postPath(channelId) && call.status === 200;
const hasButtons = (call) => Array.isArray(call.body.components) && call.body.components.length > 0;
const hasEmbed = (call) => Array.isArray(call.body.embeds) && call.body.embeds.length > 0;
const labels = (call) => call.body.components.flatMap((row) => row.components.map((button) => button.label));

async function waitForPost(channelId, predicate, from, what) {
  try {
    return await fake.waitForCall((call) => isPost(call, channelId) && predicate(call), { from, what: `${what} in channel ${channelId}` });
  } catch (error) {
    // What the bridge and the server said last, to tell where it stopped.
    error.message += `\nbridge:\n${bridge.stderr.lines.slice(-12).join('\n')}\nserver:\n${server.stderr.lines.slice(-8).join('\n')}`;
    throw error;
  }
}

async function userTurns(key) {
  const started = await serverHistory(server.url, tokens.token, key);
  return started.history.filter((turn) => turn.role === 'user').map((turn) => turn.text);
}

test('the gateway: JSON without compression, IDENTIFY with the intents the bridge needs, REST with the bot token', () => {
  const connect = fake.events.find((event) => event.kind === 'connect');
  assert.equal(connect.query.encoding, 'json');
  assert.equal(connect.query.v, '10');
  assert.equal(connect.query.compress, undefined);
  const identify = fake.events.find((event) => event.kind === 'identify');
  for (const intent of ['GUILDS', 'GUILD_MESSAGES', 'DIRECT_MESSAGES', 'MESSAGE_CONTENT']) {
    assert.ok(identify.intents & INTENT[intent], `IDENTIFY asks for ${intent}`);
  }
  assert.equal(identify.token, fake.token);
  const gateway = fake.calls.find((call) => call.path === '/api/v10/gateway/bot');
  assert.equal(gateway.authorization, `Bot ${fake.token}`);
});

test('a DM goes through screening to an escalation shown as the urgent embed, guidance first', async () => {
  const who = person();
  const channel = nextId();
  let from = fake.calls.length;
  dm(who, channel, 'my upper back hurts after rows');
  const question = await waitForPost(channel, hasButtons, from, 'the screening question with buttons');
  assert.deepEqual(labels(question), ['Yes', 'No']);
  assert.match(question.body.content, /numbness, tingling or weakness/);
  assert.match(question.body.content, /\n-# Source: /, 'sources as a small line');
  const posts = fake.postsTo(channel, from);
  assert.match(posts[0].body.content, /^Hi, I'm Backcheck/, 'a new conversation shows the welcome first');
  assert.equal(posts[0].body.components, undefined, 'the welcome has no buttons: the person already said what is going on');
  for (const call of posts) assert.deepEqual(call.body.allowed_mentions, { parse: [] });

  from = fake.calls.length;
  dm(who, channel, 'yes, my fingers are numb');
  const alert = await waitForPost(channel, hasEmbed, from, 'the urgent embed');
  assert.equal(fake.postsTo(channel, from)[0], alert, 'the guidance is the first thing posted');
  const [embed] = alert.body.embeds;
  assert.equal(embed.color, 0xe67e22, 'urgent is orange');
  assert.equal(embed.title, '\u26a0\ufe0f Get medical care today.', 'the server\'s banner for the level');
  assert.match(embed.description, /^Please get medical care today/);
  assert.ok(hasButtons(alert), 'the follow-up questions as buttons');
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['my upper back hurts after rows', 'yes, my fingers are numb']);
});

test('a button click is sent as the person\'s message, and the buttons make way for the choice', async () => {
  const who = person();
  const channel = nextId();
  let from = fake.calls.length;
  dm(who, channel, 'my upper back hurts after rows');
  const question = await waitForPost(channel, hasButtons, from, 'the screening question');

  from = fake.calls.length;
  fake.click({ who, messageId: question.message.id, label: 'No' });
  said.push('No');
  const callback = await fake.waitForCall((call) => call.method === 'POST' && call.path.startsWith('/api/v10/interactions/'), { from, what: 'the interaction callback' });
  assert.equal(callback.status, 204);
  assert.equal(callback.body.type, 7, 'UPDATE_MESSAGE');
  assert.deepEqual(callback.body.data.components, [], 'the buttons are removed');
  assert.match(callback.body.data.content, /numbness, tingling or weakness[\s\S]*\n\n> \*\*You chose: No\*\*$/, 'the choice shown under the question');
  assert.deepEqual(fake.messages.get(question.message.id).components, []);

  const next = await waitForPost(channel, () => true, from, 'the answer to the click');
  assert.ok(next.body.content || next.body.embeds);
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['my upper back hurts after rows', 'No']);
});

test('in a guild, a mention is answered in that channel as a reply; messages without one are not read', async () => {
  const who = person();
  const from = fake.calls.length;
  said.push('my back is fine, just saying hi', 'my upper back hurts after rows');
  fake.guildMessage({ who, guildId: GUILD, channelId: GENERAL, content: 'my back is fine, just saying hi', mention: false });
  const mention = fake.guildMessage({ who, guildId: GUILD, channelId: GENERAL, content: 'my upper back hurts after rows' });
  await waitForPost(GENERAL, hasButtons, from, 'the answer to the mention');
  const posts = fake.postsTo(GENERAL, from);
  assert.equal(posts[0].body.message_reference.message_id, mention.id, 'the first post replies to the mention');
  assert.ok(posts.slice(1).every((call) => call.body.message_reference === undefined));
  assert.deepEqual(await userTurns(`discord:${GUILD}:${GENERAL}`), ['my upper back hurts after rows'], 'the mention is stripped; the other message never sent');

  // Replying to the bot's message counts as talking to it, without a mention.
  const from2 = fake.calls.length;
  said.push('no');
  fake.guildMessage({ who, guildId: GUILD, channelId: GENERAL, content: 'no', mention: false, replyTo: posts.at(-1).message.id });
  const question = await waitForPost(GENERAL, hasButtons, from2, 'the answer to a reply to the bot');
  assert.deepEqual(await userTurns(`discord:${GUILD}:${GENERAL}`), ['my upper back hurts after rows', 'no']);

  // A button in a guild channel: the click goes to the channel's conversation.
  const from3 = fake.calls.length;
  fake.click({ who, messageId: question.message.id, label: 'No', guildId: GUILD });
  const callback = await fake.waitForCall((call) => call.method === 'POST' && call.path.startsWith('/api/v10/interactions/'), { from: from3, what: 'the interaction callback' });
  assert.deepEqual(callback.body.data.components, []);
  await waitForPost(GENERAL, () => true, from3, 'the answer to the click');
  assert.deepEqual(await userTurns(`discord:${GUILD}:${GENERAL}`), ['my upper back hurts after rows', 'no', 'No']);
});

test('a mention in a thread is the thread\'s own conversation, answered in the thread', async () => {
  const who = person();
  const from = fake.calls.length;
  said.push('why does my upper back hurt?');
  const mention = fake.guildMessage({ who, guildId: GUILD, channelId: THREAD, content: 'why does my upper back hurt?' });
  const answer = await waitForPost(THREAD, () => true, from, 'the answer in the thread');
  assert.equal(answer.body.message_reference.message_id, mention.id);
  assert.deepEqual(await userTurns(`discord:${GUILD}:${THREAD}`), ['why does my upper back hurt?']);
});

test('the bot\'s own messages, other bots\' and edits are ignored', async () => {
  const who = person();
  const channel = nextId();
  const from = fake.calls.length;
  fake.dm({ who: { id: fake.bot.id, username: fake.bot.username, bot: true }, channelId: channel, content: 'my upper back hurts after rows' });
  fake.dm({ who: { id: nextId(), username: 'otherbot', bot: true }, channelId: channel, content: 'yes, my fingers are numb' });
  const first = dm(who, channel, 'why does my upper back hurt?');
  await waitForPost(channel, () => true, from, 'the answer to the person');
  // An edit is not a new message: MESSAGE_UPDATE is not read.
  const from2 = fake.calls.length;
  fake.dispatch('MESSAGE_UPDATE', { ...first, content: 'yes, my fingers are numb', edited_timestamp: new Date().toISOString() });
  dm(who, channel, 'when should I see a doctor?');
  await waitForPost(channel, () => true, from2, 'the answer after the edit');
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['why does my upper back hurt?', 'when should I see a doctor?']);
});

test('the same MESSAGE_CREATE delivered twice gets one reply and makes one turn', async () => {
  const who = person();
  const channel = nextId();
  const from = fake.calls.length;
  const message = dm(who, channel, 'my upper back hurts after rows');
  fake.redeliver(message);
  const question = await waitForPost(channel, hasButtons, from, 'the screening question');
  const afterQuestion = fake.calls.indexOf(question) + 1;
  dm(who, channel, 'no');
  const next = await waitForPost(channel, hasButtons, afterQuestion, 'the next question');
  assert.notEqual(next.body.content, question.body.content, 'the redelivery was not answered again');
  assert.equal(fake.postsTo(channel, from).filter((call) => /^Hi, I'm Backcheck/.test(call.body.content ?? '')).length, 1);
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['my upper back hurts after rows', 'no']);
});

test('an error still shows the safety guidance: a message too long that reports a red flag', async () => {
  const who = person();
  const channel = nextId();
  const text = `my fingers are numb and ${'my upper back has been hurting since the gym yesterday, '.repeat(8)}`.trim();
  assert.ok(text.length > MAX_TEXT_CHARS && text.length < 2000);
  const from = fake.calls.length;
  dm(who, channel, text);
  const guidance = await waitForPost(channel, hasEmbed, from, 'the guidance embed');
  assert.equal(fake.postsTo(channel, from)[0], guidance, 'guidance first');
  assert.match(guidance.body.embeds[0].description, /medical care|emergency/i);
  const after = await waitForPost(channel, (call) => call !== guidance, fake.calls.indexOf(guidance) + 1, 'the bridge\'s own words');
  assert.equal(after.body.content, 'That message is too long for me. Please send a shorter one.');
});

test('the server restarted mid-conversation: the bridge reconnects and the conversation continues by key', async () => {
  const who = person();
  const channel = nextId();
  let from = fake.calls.length;
  dm(who, channel, 'my upper back hurts after rows');
  await waitForPost(channel, hasButtons, from, 'the screening question');

  const port = server.port;
  const logFrom = bridge.stderr.count;
  await server.stop();
  await bridge.stderr.waitFor(/server: disconnected/, { from: logFrom, what: 'the bridge to see the server go' });
  // Written while the server is down: the bridge holds it and sends it once it is back.
  from = fake.calls.length;
  dm(who, channel, 'yes, my fingers are numb');
  server = await startServer(serverOptions(port));
  await bridge.stderr.waitFor(/server: connected/, { from: logFrom, what: 'the bridge to reconnect' });
  const alert = await waitForPost(channel, hasEmbed, from, 'the urgent embed after the restart');
  assert.equal(alert.body.embeds[0].color, 0xe67e22);
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['my upper back hurts after rows', 'yes, my fingers are numb']);
});

test('the bridge restarted: the same conversation, and a message delivered again makes no second turn', async () => {
  const who = person();
  const channel = nextId();
  let from = fake.calls.length;
  const first = dm(who, channel, 'my upper back hurts after rows');
  const question = await waitForPost(channel, hasButtons, from, 'the screening question');

  const stopped = await bridge.stop('SIGTERM');
  assert.deepEqual(stopped, { code: 0, signal: null }, 'SIGTERM: a clean exit');
  assert.match(bridge.output(), /SIGTERM: stopping[\s\S]*stopped/);
  await launchBridge();

  // The old message again (as a replay would bring it): the server answers from what it stored.
  from = fake.calls.length;
  fake.redeliver(first);
  const again = await waitForPost(channel, hasButtons, from, 'the stored answer');
  assert.equal(again.body.content, question.body.content, 'the stored reply, not a new turn');
  await bridge.stderr.waitFor(/duplicate/, { what: 'the duplicate to be logged' });

  from = fake.calls.length;
  dm(who, channel, 'yes, my fingers are numb');
  const alert = await waitForPost(channel, hasEmbed, from, 'the urgent embed after the bridge restart');
  assert.equal(alert.body.embeds[0].color, 0xe67e22);
  assert.deepEqual(await userTurns(`discord:dm:${channel}`), ['my upper back hurts after rows', 'yes, my fingers are numb']);
});

test('an operator\'s acknowledgement reaches the person as a notice in the conversation\'s channel', async () => {
  const who = person();
  const channel = nextId();
  const key = `discord:dm:${channel}`;
  const operator = await connectOperator(server.port, OPERATOR_TOKEN);
  try {
    let from = fake.calls.length;
    dm(who, channel, 'my upper back hurts after rows');
    await waitForPost(channel, hasButtons, from, 'the screening question');
    from = fake.calls.length;
    dm(who, channel, 'yes, my fingers are numb');
    await waitForPost(channel, hasEmbed, from, 'the urgent embed');

    // The test holds the conversation too, to see the frame the server pushes.
    const held = await holdConversation(server.url, tokens.token, key);
    try {
      const { conversation } = held.started;
      const escalation = await operator.waitFor((frame) => frame.type === 'escalation' && frame.conversation === conversation);
      from = fake.calls.length;
      operator.send({ type: 'ack', id: escalation.id });
      const pushed = await held.waitFor((frame) => frame.type === 'notice');
      assert.equal(pushed.notice, 'escalation_acknowledged');
      const notice = await waitForPost(channel, () => true, from, 'the notice');
      assert.equal(notice.body.content, escapeMarkdown(pushed.text), 'the notice\'s text, as the server sent it');
      assert.equal(notice.body.components, undefined);
      assert.equal(notice.body.message_reference, undefined);
    } finally {
      held.close();
    }
  } finally {
    operator.close();
  }
});

test('the bridge logs events, never what people write or what the assistant answers; SIGINT stops it cleanly', async () => {
  const stopped = await bridge.stop('SIGINT');
  assert.deepEqual(stopped, { code: 0, signal: null });
  const output = bridges.map((b) => b.output()).join('\n');
  assert.match(output, /reply \d+ posted for discord:dm:\d+ \(urgency urgent, alert\)/);
  // (Short answers such as "no" are words of the log's own too; everything longer is checked.)
  for (const text of [...said.filter((t) => t.length >= 10), 'Please get medical care today', "I'm sorry your upper back hurts", 'Hi, I\'m Backcheck']) {
    assert.ok(!output.includes(text), `the log holds "${text}"`);
  }
  bridge = null;
});
