// End to end in Socket Mode: fake Slack <-> the bridge (a child process, src/index.js) <-> the
// real chat-server. No sleeps: every step waits for the call it expects (with a timeout).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeSlack, dmEvent, mentionEvent, blockActionsPayload, BOT_USER, BOT_ID, TEAM } from './fake-slack.js';
import { startServer, startBridge, historyOf, operator } from './helpers.js';
import { loadTexts } from '../src/texts.js';
import { DEFAULT_TEXTS } from '../src/config.js';

const texts = loadTexts(DEFAULT_TEXTS);
const GUIDANCE = /^(Please get medical care today|This could be a medical emergency)/;

let slack;
let server;
let bridge;
let previousBridgeLines = []; // the log of the bridge before a restart

before(async () => {
  slack = await startFakeSlack();
  server = await startServer({ operatorToken: 'operator-token-0123456789abcdef0123456789' });
  bridge = await startBridge({ server, slack });
});

after(async () => {
  await bridge?.stop();
  await server?.cleanup();
  await slack?.close();
});

// Sends one DM event; resolves with the bridge's next post to that channel.
async function dm(channel, text, options = {}) {
  const since = slack.calls.length;
  const event = dmEvent({ channel, text, ...options });
  await slack.pushEvent(event);
  const post = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
  return { post, event };
}

const allBlocks = (args) => [...(args.blocks || []), ...(args.attachments || []).flatMap((a) => a.blocks || [])];
const buttonsOf = (args) => allBlocks(args).filter((b) => b.type === 'actions').flatMap((b) => b.elements.map((e) => e.text.text));
const textOf = (args) => allBlocks(args).filter((b) => b.type === 'section').map((b) => b.text.text).join('\n\n');

function assertUrgentLayout(args) {
  assert.equal(args.blocks[0].type, 'header', 'the urgent layout starts with a header');
  assert.match(args.blocks[0].text.text, /^⚠️ /);
  const level = Object.entries(texts.levels).find(([, l]) => l.color === args.attachments?.[0]?.color);
  assert.ok(level, `an attachment coloured by level (got ${JSON.stringify(args.attachments?.[0]?.color)})`);
  const first = args.attachments[0].blocks[0];
  assert.equal(first.type, 'section');
  assert.match(first.text.text, GUIDANCE, 'the guidance comes first');
}

test('a DM: screening with Yes/No buttons, then an escalation in the urgent layout', { timeout: 30000 }, async () => {
  const first = await dm('D0DM0001', 'my upper back hurts after rows');
  assert.equal(first.post.args.thread_ts, undefined, 'a DM is answered in the DM, not a thread');
  assert.deepEqual(buttonsOf(first.post.args), ['Yes', 'No']);
  assert.ok(!first.post.args.attachments, 'a screening question is not urgent');
  assert.equal(first.post.token, 'xoxb-1111-2222-fake');
  const second = await dm('D0DM0001', 'yes, my fingers are numb');
  assertUrgentLayout(second.post.args);
  assert.deepEqual(slack.unacknowledged(), []);
});

test('a button click is sent as the person\'s message; the buttons are replaced by the choice', { timeout: 30000 }, async () => {
  const { post } = await dm('D0DM0002', 'my upper back hurts after rows');
  assert.deepEqual(buttonsOf(post.args), ['Yes', 'No']);
  const since = slack.calls.length;
  const payload = blockActionsPayload({ post, choice: 'Yes' });
  await slack.push('interactive', payload);
  const update = await slack.waitForCall((c) => c.method === 'chat.update', { since });
  assert.equal(update.args.channel, 'D0DM0002');
  assert.equal(update.args.ts, post.response.ts);
  assert.deepEqual(buttonsOf(update.args), [], 'no buttons left');
  assert.ok(allBlocks(update.args).some((b) => b.type === 'context' && b.elements[0].text === 'You chose: *Yes*'));
  // "Yes" to "does it spread down an arm, or numbness, tingling...": an escalation.
  const reply = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === 'D0DM0002', { since });
  assertUrgentLayout(reply.args);
  // The server holds "Yes" as the person's second message.
  const started = await historyOf(server, `slack:${TEAM}:D0DM0002`);
  assert.deepEqual(started.history.filter((t) => t.role === 'user').map((t) => t.text), ['my upper back hurts after rows', 'Yes']);

  // The same click delivered again (a double click before the update): one answer.
  const before2 = slack.posts().length;
  await slack.push('interactive', { ...payload, trigger_id: 'another' });
  const sentinel = await dm('D0DM0002', 'thanks');
  assert.equal(slack.posts().length, before2 + 1, 'only the sentinel message was answered');
  assert.ok(sentinel.post);
});

test('the same event delivered twice: one reply posted, one turn in the server', { timeout: 30000 }, async () => {
  const channel = 'D0DM0003';
  const event = dmEvent({ channel, text: 'my upper back hurts after rows' });
  const since = slack.calls.length;
  await slack.pushEvent(event);
  await slack.pushEvent(event, { retryAttempt: 1 }); // Slack's retry: the same event, a new envelope
  await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
  // A later message is answered; nothing was posted for the retry before it.
  const sentinel = await dm(channel, 'no');
  assert.equal(slack.posts(since).filter((c) => c.args.channel === channel).length, 2);
  assert.ok(sentinel.post);
  const started = await historyOf(server, `slack:${TEAM}:${channel}`);
  assert.deepEqual(started.history.filter((t) => t.role === 'user').map((t) => t.text), ['my upper back hurts after rows', 'no']);
  assert.equal(bridge.stderr.lines.filter((l) => /duplicate: not posted/.test(l)).length >= 1, true);
});

test('the bot\'s own messages and edits are ignored', { timeout: 30000 }, async () => {
  const channel = 'D0DM0004';
  const since = slack.calls.length;
  await slack.pushEvent({ ...dmEvent({ channel, text: 'my upper back hurts', user: BOT_USER }), bot_id: BOT_ID });
  await slack.pushEvent({ ...dmEvent({ channel, text: 'a bot says hi' }), bot_id: 'BOTHER01', subtype: 'bot_message' });
  await slack.pushEvent({
    type: 'message',
    subtype: 'message_changed',
    channel,
    channel_type: 'im',
    hidden: true,
    ts: '1765009999.000001',
    message: { type: 'message', user: 'UPERSON1', text: 'my upper back hurts after rows (edited)', ts: '1765009998.000001', edited: { user: 'UPERSON1', ts: '1765009999.000001' } },
    previous_message: { type: 'message', user: 'UPERSON1', text: 'old', ts: '1765009998.000001' },
  });
  const sentinel = await dm(channel, 'my upper back hurts after rows');
  assert.equal(slack.posts(since).length, 1, 'only the person\'s new message was answered');
  // The sentinel opens the conversation: no earlier message reached the server.
  const started = await historyOf(server, `slack:${TEAM}:${channel}`);
  assert.deepEqual(started.history.filter((t) => t.role === 'user').map((t) => t.text), ['my upper back hurts after rows']);
  assert.deepEqual(buttonsOf(sentinel.post.args), ['Yes', 'No']);
});

test('a mention in a channel is answered in its thread; the server restarted mid-conversation, the thread continues', { timeout: 40000 }, async () => {
  const channel = 'C0CHAN01';
  let since = slack.calls.length;
  const mention = mentionEvent({ channel, text: 'my upper back hurts after rows' });
  await slack.pushEvent(mention);
  const first = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
  assert.equal(first.args.thread_ts, mention.ts, 'answered in the thread of the mention');
  assert.deepEqual(buttonsOf(first.args), ['Yes', 'No']);

  // The server stops and comes back on the same port and data directory.
  const mark = bridge.stderr.lines.length;
  await server.stop();
  await bridge.stderr.waitFor(/server: disconnected/, { since: mark });
  await server.start();
  await bridge.stderr.waitFor(/server: connected/, { since: mark });

  since = slack.calls.length;
  // A bare "yes" escalates only as the answer to the screening question of this conversation.
  await slack.pushEvent(mentionEvent({ channel, text: 'yes', threadTs: mention.ts }));
  const second = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
  assert.equal(second.args.thread_ts, mention.ts);
  assertUrgentLayout(second.args); // the answer follows the screening question, not a welcome
});

test('a message sent while the server is down is answered once it is back', { timeout: 40000 }, async () => {
  const channel = 'D0DM0005';
  await dm(channel, 'my upper back hurts after rows');
  const mark = bridge.stderr.lines.length;
  await server.stop();
  await bridge.stderr.waitFor(/server: disconnected/, { since: mark });
  const since = slack.calls.length;
  await slack.pushEvent(dmEvent({ channel, text: 'yes' })); // acknowledged right away
  await server.start();
  const reply = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
  assertUrgentLayout(reply.args);
});

test('the bridge restarted: the same DM continues the same conversation', { timeout: 40000 }, async () => {
  const channel = 'D0DM0006';
  const first = await dm(channel, 'my upper back hurts after rows');
  assert.deepEqual(buttonsOf(first.post.args), ['Yes', 'No']);
  const { code } = await bridge.stop('SIGTERM');
  previousBridgeLines = [...bridge.stderr.lines, ...bridge.stdout.lines];
  assert.equal(code, 0, 'a clean exit on SIGTERM');
  assert.ok(bridge.stderr.lines.some((l) => /stopped/.test(l)));
  bridge = await startBridge({ server, slack });
  const second = await dm(channel, 'yes'); // only the screening question's answer escalates
  assertUrgentLayout(second.post.args);
  // The premise: a bare "yes" opening a new conversation does not escalate.
  const fresh = await dm('D0DM0007', 'yes');
  assert.ok(!fresh.post.args.attachments, 'a "yes" out of context is not urgent');
});

test('an error still gives the person the safety guidance; other errors the bridge\'s own words', { timeout: 30000 }, async () => {
  // Over the server's --max-text-chars (2000): text_too_long, which carries the guidance of a red flag.
  const filler = 'my upper back hurts after rows. '.repeat(70);
  const flagged = await dm('D0DM0009', `${filler}Now my left arm is numb and weak.`);
  assertUrgentLayout(flagged.post.args);
  const plain = await dm('D0DM0010', filler);
  assert.equal(textOf(plain.post.args), texts.text_too_long);
  assert.ok(!plain.post.args.attachments);
});

test('the log holds events only, nothing a person wrote or the assistant answered', () => {
  const lines = [...previousBridgeLines, ...bridge.stderr.lines, ...bridge.stdout.lines];
  assert.ok(lines.length > 5);
  for (const words of ['upper back', 'fingers', 'numb', 'Yes', 'medical care', 'emergency number', 'thanks']) {
    const line = lines.find((l) => l.includes(words));
    assert.equal(line, undefined, `a log line holds "${words}": ${line}`);
  }
});

test('an operator\'s acknowledgement reaches the conversation as a notice, in its thread, also after the server restarted', { timeout: 40000 }, async () => {
  const escalate = async (channel, text) => {
    const since = slack.calls.length;
    const mention = mentionEvent({ channel, text });
    await slack.pushEvent(mention);
    const reply = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
    assertUrgentLayout(reply.args);
    return mention;
  };
  const ackAndWaitForNotice = async (channel, text, mention) => {
    const op = await operator(server);
    const escalation = await op.waitFor((f) => f.type === 'escalation' && f.text === text);
    const since = slack.calls.length;
    op.send({ type: 'ack', id: escalation.id });
    const notice = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === channel, { since });
    op.close();
    assert.equal(notice.args.thread_ts, mention.ts, 'the notice goes to the conversation\'s thread');
    assert.ok(!notice.args.attachments);
    assert.ok(notice.args.blocks.some((b) => b.type === 'context' && b.elements[0].text === texts.notice_label));
    assert.ok(textOf(notice.args).length > 0);
  };

  const first = 'my upper back hurts after rows and my arm is numb';
  const m1 = await escalate('C0CHAN02', first);
  await ackAndWaitForNotice('C0CHAN02', first, m1);

  // After a server restart the bridge's new connection holds its recent conversations again
  // (start by key), so a later acknowledgement still reaches the thread.
  const second = 'my upper back hurts after pull ups and my hand is numb';
  const m2 = await escalate('C0CHAN03', second);
  const mark = bridge.stderr.lines.length;
  await server.stop();
  await server.start();
  await bridge.stderr.waitFor(/server: holding \d+ conversation/, { since: mark });
  await dm('D0DM0008', 'hello'); // a round trip on the new connection: the start frames are handled
  await ackAndWaitForNotice('C0CHAN03', second, m2);
});
