// HTTP Events API mode: Slack's request signing (Bolt's verification) guards POST /slack/events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startFakeSlack, dmEvent, TEAM, APP_ID } from './fake-slack.js';
import { startServer, startBridge } from './helpers.js';
import { loadTexts } from '../src/texts.js';
import { DEFAULT_TEXTS } from '../src/config.js';

const texts = loadTexts(DEFAULT_TEXTS);

const SECRET = 'fake-signing-secret-8f14e45fceea167a5a36dedd4bea2543';

let slack;
let server;
let bridge;

before(async () => {
  slack = await startFakeSlack();
  server = await startServer();
  bridge = await startBridge({ server, slack, mode: 'http', extraEnv: { SLACK_SIGNING_SECRET: SECRET, SLACK_PORT: '0', SLACK_HOST: '127.0.0.1', BACKCHECK_REQUEST_TIMEOUT_MS: '1500' } });
});

after(async () => {
  await bridge?.stop();
  await server?.cleanup();
  await slack?.close();
});

function sign(body, timestamp, secret = SECRET) {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

async function post(body, { timestamp = Math.floor(Date.now() / 1000), signature } = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`http://127.0.0.1:${bridge.port}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature ?? sign(text, timestamp),
    },
    body: text,
  });
  return { status: response.status, text: await response.text() };
}

test('url_verification is answered with its challenge', { timeout: 20000 }, async () => {
  const r = await post({ token: 'x', challenge: 'c-123-challenge', type: 'url_verification' });
  assert.equal(r.status, 200);
  assert.match(r.text, /c-123-challenge/);
});

test('a bad signature gets 401', { timeout: 20000 }, async () => {
  const body = JSON.stringify({ token: 'x', challenge: 'nope', type: 'url_verification' });
  const now = Math.floor(Date.now() / 1000);
  assert.equal((await post(body, { signature: sign(body, now, 'another-secret') })).status, 401);
  assert.equal((await post(body, { signature: 'v0=00' })).status, 401);
});

test('a stale timestamp gets 401, even correctly signed', { timeout: 20000 }, async () => {
  const body = JSON.stringify({ token: 'x', challenge: 'old', type: 'url_verification' });
  const old = Math.floor(Date.now() / 1000) - 10 * 60;
  assert.equal((await post(body, { timestamp: old })).status, 401);
});

test('a signed DM event is acknowledged at once and answered through the server', { timeout: 20000 }, async () => {
  const since = slack.calls.length;
  const event = dmEvent({ channel: 'D0HTTP01', text: 'my upper back hurts after rows' });
  const r = await post({ token: 'x', team_id: TEAM, api_app_id: APP_ID, event, type: 'event_callback', event_id: 'EvHTTP1', event_time: Math.floor(Date.now() / 1000) });
  assert.equal(r.status, 200);
  const reply = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === 'D0HTTP01', { since });
  assert.ok(reply.args.blocks.some((b) => b.type === 'actions'));
});

test('the server cannot be reached: the person is told so, with the emergency advice', { timeout: 20000 }, async () => {
  await server.stop();
  const since = slack.calls.length;
  const event = dmEvent({ channel: 'D0HTTP02', text: 'my upper back hurts after rows' });
  const r = await post({ token: 'x', team_id: TEAM, api_app_id: APP_ID, event, type: 'event_callback', event_id: 'EvHTTP2', event_time: Math.floor(Date.now() / 1000) });
  assert.equal(r.status, 200, 'acknowledged although the server is down');
  const reply = await slack.waitForCall((c) => c.method === 'chat.postMessage' && c.args.channel === 'D0HTTP02', { since });
  assert.equal(reply.args.blocks[0].text.text, texts.unavailable);
  assert.match(texts.unavailable, /emergency number/);
});
