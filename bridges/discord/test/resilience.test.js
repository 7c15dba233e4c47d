// When the server cannot be reached, and when Discord rate-limits a post (no chat-server here:
// the bridge points at a port where nothing listens).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeMarkdown } from 'discord.js';
import { FakeDiscord, nextId } from './fake-discord.js';
import { startBridge } from './helpers.js';
import { loadTexts } from '../src/texts.js';

const texts = loadTexts();
let fake;
let bridge;

before(async () => {
  fake = await new FakeDiscord().start();
  const from = fake.events.length;
  bridge = startBridge({
    fake,
    serverUrl: 'ws://127.0.0.1:9/v1/chat',
    bridgeToken: 'b'.repeat(64),
    env: { BACKCHECK_REQUEST_TIMEOUT_MS: '1000' },
  });
  await fake.waitForReady(from);
  await bridge.stderr.waitFor(/discord-bridge: ready/);
});

after(async () => {
  const { code } = await bridge.stop();
  assert.equal(code, 0);
  await fake.close();
});

const isPost = (call, channelId) => call.method === 'POST' && call.path === `/api/v10/channels/${channelId}/messages`;

test('the server cannot be reached: the person gets the bridge\'s own words, with what to do about severe symptoms', async () => {
  const channel = nextId();
  const from = fake.calls.length;
  fake.dm({ who: { id: nextId(), username: 'p1' }, channelId: channel, content: 'my upper back hurts after rows' });
  const post = await fake.waitForCall((call) => isPost(call, channel) && call.status === 200, { from, what: 'the unavailable text' });
  assert.equal(post.body.content, escapeMarkdown(texts.unavailable));
  await bridge.stderr.waitFor(/no reply for discord:dm:\d+: timeout/);
});

test('a post Discord rate-limits (429) is sent again by discord.js\'s REST queue after retry_after', async () => {
  const channel = nextId();
  const from = fake.calls.length;
  fake.rateLimitNextPosts = 1;
  fake.dm({ who: { id: nextId(), username: 'p2' }, channelId: channel, content: 'my upper back hurts after rows' });
  const limited = await fake.waitForCall((call) => isPost(call, channel) && call.status === 429, { from, what: 'the 429' });
  const retried = await fake.waitForCall((call) => isPost(call, channel) && call.status === 200, { from, what: 'the retried post' });
  assert.deepEqual(retried.body, limited.body);
  assert.equal(fake.postsTo(channel, from).length, 1, 'posted once');
});
