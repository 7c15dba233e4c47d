// Start-up problems an admin meets first: each one named in the log, with a non-zero exit
// status (no chat-server needed: the bridge never gets that far).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDiscord } from './fake-discord.js';
import { startBridge } from './helpers.js';

const NOWHERE = 'ws://127.0.0.1:9/v1/chat'; // the server client retries quietly; Discord decides here
const TOKEN = 'b'.repeat(64);

let fake;
before(async () => {
  fake = await new FakeDiscord({ messageContentAllowed: false }).start();
});
after(async () => {
  await fake.close();
});

test('Message Content intent off in the Developer Portal: the bridge says what to turn on and exits 1', async () => {
  const bridge = startBridge({ fake, serverUrl: NOWHERE, bridgeToken: TOKEN });
  const { code } = await bridge.exit;
  assert.equal(code, 1);
  assert.match(bridge.output(), /4014.*Message Content Intent/);
});

test('a wrong bot token: exit 1, the token not printed', async () => {
  const bridge = startBridge({ fake, serverUrl: NOWHERE, bridgeToken: TOKEN, env: { DISCORD_TOKEN: 'not-the-bot-token' } });
  const { code } = await bridge.exit;
  assert.equal(code, 1);
  assert.match(bridge.output(), /cannot start: TokenInvalid/);
  assert.ok(!bridge.output().includes('not-the-bot-token'));
});

test('settings missing: each one named, exit 2', async () => {
  const bridge = startBridge({ fake, serverUrl: 'http://wrong', bridgeToken: '', env: { DISCORD_TOKEN: '' } });
  const { code } = await bridge.exit;
  assert.equal(code, 2);
  const output = bridge.output();
  assert.match(output, /DISCORD_TOKEN is not set/);
  assert.match(output, /BACKCHECK_BRIDGE_TOKEN is not set/);
  assert.match(output, /BACKCHECK_URL must be a ws:\/\/ or wss:\/\/ URL/);
});
