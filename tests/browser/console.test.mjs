// Browser tests of the operators' console (web/operator.html, operator.js, operator.css at GET
// /operator) against the real chat-server, in Debian's headless Chromium, with the widget in a
// second browser context as the person. Run from the repository root:
//
//   node --test --test-concurrency=1 tests/browser/console.test.mjs [--server build/chat-server]
//        [--screenshot-dir build/screenshots]
//
// One server for the file, with --operators pointing to a file made with `chat-server
// --new-operator alice` in a temporary folder (mode 600). Every wait is on a condition; there are
// no sleeps. Environment as for widget.test.mjs (BACKCHECK_SERVER, BACKCHECK_SCREENSHOT_DIR,
// BACKCHECK_TEST_TIMEOUT, BACKCHECK_CHROMIUM).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  OperatorSocket, REPO, S, SERVER_BINARY, Server, TIMEOUT, assertClean, countOf, gotoDemo, launchBrowser, loadKbFile,
  missingPrerequisites, newPage, openPanel, runAxe, screenshotPath, sendMessage, waitForAnimations, waitForUserMessage,
} from './harness.mjs';

const missing = missingPrerequisites();
if (!fs.existsSync(path.join(REPO, 'web', 'operator.html'))) missing.push('web/operator.html missing');
if (missing.length) {
  console.error('browser tests cannot run:\n  ' + missing.join('\n  '));
  process.exit(1);
}

// The console's markup (web/operator.js).
const C = {
  token: '#op-token',
  signInError: '#op-signin-error',
  who: '.op-who',
  whoName: '.op-who-name',
  signOut: 'button.op-signout',
  status: '.op-status',
  queue: '.op-queue-list',
  item: '.op-queue-list button.op-item',
  itemOf: (conversation) => `.op-queue-list button.op-item[data-conversation="${conversation}"]`,
  detailTitle: '#op-detail-title',
  claimedBy: '.op-facts dd.op-claimed-by',
  joinedBy: '.op-facts dd.op-joined-by',
  claim: '.op-actions button[data-action="claim"]',
  join: '.op-actions button[data-action="join"]',
  leave: '.op-actions button[data-action="leave"]',
  note: '#op-note',
  ack: 'form.op-ack button[type="submit"]',
  transcript: 'div.op-transcript',
  turn: 'div.op-transcript div.op-turn[data-key]:not([data-key=""])',
  audit: 'div.op-transcript div.op-turn--action',
  auditOf: (action) => `div.op-transcript div.op-turn--action[data-action="${action}"]`,
  say: '#op-say',
  sayButton: 'form.op-say button[type="submit"]',
  actionError: '.op-detail-body .op-error',
};

const FAVICON_404 = /Failed to load resource: the server responded with a status of 404 .*\/favicon\.ico\)$/;
// The console asks GET /v1/operator/session who is signed in (401 before signing in) and a wrong
// token is answered 401; Chromium logs those responses. Nothing else may answer 401.
const SIGN_IN_401 = /Failed to load resource: the server responded with a status of 401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/v1\/operator\/session\)$/;

let browser;
let server;
let tmp;
let token;        // alice's
const OPERATOR = 'alice';

/** `chat-server --new-operator NAME`: {token, line}. */
function newOperator(name) {
  const out = execFileSync(SERVER_BINARY, ['--new-operator', name], { encoding: 'utf8' });
  const t = /^token for \S+ .*: (\S+)$/m.exec(out);
  const l = /^line for the --operators file: (.+)$/m.exec(out);
  assert.ok(t && l, `--new-operator output: ${out}`);
  return { token: t[1], line: l[1] };
}

/** Sign in on /operator through the form; waits for the operator's name. */
async function signIn(page, { tok = token } = {}) {
  await page.goto(server.origin + '/operator', { waitUntil: 'load' });
  await page.locator(C.token).waitFor({ state: 'visible' });
  await page.getByLabel('Operator token').fill(tok);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator(C.whoName).filter({ hasText: OPERATOR }).waitFor({ state: 'visible' });
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'connected', C.status);
}

async function newConsole(options = {}) {
  return newPage(browser, options);
}

function conversationOf(page) {
  return page.evaluate(() => localStorage.getItem('backcheck.conversation'));
}

/** The console's transcript: [{role, who, text}]. */
function readTranscript(page) {
  return page.evaluate((sel) => [...document.querySelectorAll(sel)].map((li) => ({
    role: li.dataset.role, who: li.querySelector('.op-turn-name')?.textContent ?? '',
    text: li.querySelector('.op-turn-text')?.textContent ?? '',
  })), C.turn);
}

async function waitForTranscript(page, pred, what) {
  try {
    await page.waitForFunction(`(${pred.toString()})([...document.querySelectorAll(${JSON.stringify(C.turn)})].map((li) => ({
      role: li.dataset.role, who: li.querySelector('.op-turn-name')?.textContent ?? '',
      text: li.querySelector('.op-turn-text')?.textContent ?? '' })))`);
  } catch (e) {
    throw new Error(`console transcript: no ${what}; it is ${JSON.stringify(await readTranscript(page), null, 1)}`);
  }
}

/** The queue as shown: [{conversation, level, levelText, flags, claim, age}]. */
function readQueue(page) {
  return page.evaluate((sel) => [...document.querySelectorAll(sel)].map((b) => ({
    id: Number(b.dataset.id), conversation: b.dataset.conversation, level: b.dataset.level,
    levelText: b.querySelector('.op-level-text')?.textContent ?? '', flags: b.querySelector('.op-item-flags')?.textContent ?? '',
    claim: b.querySelector('.op-item-claim')?.textContent ?? '', age: b.querySelector('.op-age')?.textContent ?? '',
    at: b.querySelector('.op-age')?.getAttribute('datetime') ?? '',
  })), C.item);
}

/** The person types `text` in the widget; during a handoff there is no reply, so wait until it is taken. */
async function personSays(page, text) {
  await page.locator(S.input).fill(text);
  await page.locator(S.input).press('Enter');
  await waitForUserMessage(page, text);
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 0, S.pending);
}

describe('operators\' console in Chromium', { concurrency: false }, () => {
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'backcheck-console-'));
    const op = newOperator(OPERATOR);
    token = op.token;
    const file = path.join(tmp, 'operators');
    fs.writeFileSync(file, op.line + '\n', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    server = await new Server({ extraArgs: ['--operators', file] }).start();
    browser = await launchBrowser();
    console.log(`# server ${server.origin}; ${browser.version()}`);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('1. a wrong token is refused, and the console says so', { timeout: 60_000 }, async () => {
    const { context, page, rec } = await newConsole();
    try {
      await page.goto(server.origin + '/operator', { waitUntil: 'load' });
      const field = page.getByLabel('Operator token');
      assert.equal(await field.getAttribute('type'), 'password', 'the token field is a password field');
      await field.fill('not-' + crypto.randomBytes(16).toString('hex'));
      await field.press('Enter');
      await page.locator(C.signInError).filter({ hasText: /not accepted/ }).waitFor({ state: 'visible' });
      assert.equal(await page.locator(C.signInError).getAttribute('role'), 'alert');
      assert.equal(await field.getAttribute('aria-invalid'), 'true');
      assert.equal(await page.locator(C.who).isVisible(), false, 'not signed in');
      assert.equal((await context.cookies()).length, 0, 'no cookie for a wrong token');
      const status = await page.evaluate(async () => (await fetch('/v1/operator/session')).status);
      assert.equal(status, 401);
      assertClean(rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
    } finally {
      await context.close();
    }
  });

  test('2. signed in: an HttpOnly, SameSite=Strict cookie; a reload keeps it; sign-out ends it', { timeout: 60_000 }, async () => {
    const { context, page, rec } = await newConsole();
    try {
      await signIn(page);
      const cookies = await context.cookies(server.origin);
      const c = cookies.find((k) => k.name === 'backcheck_operator');
      assert.ok(c, `the session cookie: ${JSON.stringify(cookies)}`);
      assert.equal(c.httpOnly, true, 'HttpOnly');
      assert.equal(c.sameSite, 'Strict', 'SameSite=Strict');
      assert.equal(c.path, '/');
      assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read it');
      assert.equal(await page.locator(C.token).isVisible(), false, 'no token field once signed in');
      await page.reload({ waitUntil: 'load' });
      await page.locator(C.whoName).filter({ hasText: OPERATOR }).waitFor({ state: 'visible' });
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.locator(C.token).waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(async () => (await fetch('/v1/operator/session')).status), 401, 'signed out on the server');
      await page.reload({ waitUntil: 'load' });
      await page.locator(C.token).waitFor({ state: 'visible' });
      assertClean(rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
    } finally {
      await context.close();
    }
  });

  test('3. a person and an operator: escalation, claim, join, write, answer, red flag, leave, ack, reloads', { timeout: 180_000 }, async () => {
    const person = await newPage(browser);
    const op = await newConsole();
    const careTeamSeen = loadKbFile('flow.jsonc').texts.care_team_seen;
    const sent = []; // what the console sends on its socket
    op.page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => { try { sent.push(JSON.parse(String(payload))); } catch { /* not JSON */ } }));
    try {
      await signIn(op.page);
      // The person reports an urgent red flag (a fever): the escalation appears live.
      await gotoDemo(person.page, server);
      await openPanel(person.page);
      await sendMessage(person.page, 'I have a fever and my upper back hurts');
      const id = await conversationOf(person.page);
      const item = op.page.locator(C.itemOf(id));
      await item.waitFor({ state: 'visible' });
      let q = (await readQueue(op.page)).filter((e) => e.conversation === id);
      assert.equal(q.length, 1, JSON.stringify(q));
      assert.equal(q[0].level, 'urgent');
      assert.equal(q[0].levelText, 'Urgent', 'the level in words, not only colour');
      assert.match(q[0].flags, /fever/);
      assert.equal(q[0].claim, 'Not claimed');
      assert.ok(q[0].age && q[0].at, `an age: ${JSON.stringify(q[0])}`);

      // Open it: the whole transcript, who wrote each line.
      await item.click();
      await waitForTranscript(op.page, (t) => t.length >= 2 && t[0].role === 'user' && t[1].role === 'assistant', 'person + assistant');
      let t = await readTranscript(op.page);
      assert.equal(t[0].who, 'Person');
      assert.equal(t[0].text, 'I have a fever and my upper back hurts');
      assert.equal(t[1].who, 'Assistant');
      assert.equal(await op.page.locator(C.say).isDisabled(), true, 'no writing before Join');

      // Claim: claimed by alice in the queue and the conversation; the person is told.
      await op.page.locator(C.claim).click();
      await op.page.locator(C.itemOf(id) + ' .op-item-claim').filter({ hasText: `Claimed by ${OPERATOR}` }).waitFor();
      await op.page.locator(C.claimedBy).filter({ hasText: OPERATOR }).waitFor();
      const notice = person.page.locator(S.notice).filter({ hasText: careTeamSeen });
      await notice.waitFor({ state: 'visible' });

      // Join: the widget shows the handoff; the message box opens.
      await op.page.locator(C.join).click();
      const joined = person.page.locator(`${S.handoff}[data-event="joined"]`);
      await joined.waitFor({ state: 'visible' });
      assert.match(await joined.textContent(), new RegExp(OPERATOR));
      await op.page.locator(C.joinedBy).filter({ hasText: OPERATOR }).waitFor();
      await op.page.waitForFunction((sel) => !document.querySelector(sel).disabled, C.say);
      assert.equal(await op.page.locator(C.leave).isDisabled(), false);

      // The operator writes: the person sees it with the name.
      const hello = 'Hello, this is Alice from the clinic. How high is the fever?';
      await op.page.getByLabel('Message to the person').fill(hello);
      await op.page.locator(C.sayButton).click();
      const opMsg = person.page.locator(S.operator).filter({ hasText: hello });
      await opMsg.waitFor({ state: 'visible' });
      assert.equal((await opMsg.locator('.bc-author-name').textContent()).trim(), OPERATOR);
      await waitForTranscript(op.page, (t) => t.some((x) => x.role === 'operator' && x.who === 'alice'), 'the operator\'s line');

      // The person answers: it appears in the console live (user_message), even while the console
      // cannot fetch the transcript (held here); no reply from the assistant.
      const held = [];
      let holding = true;
      await op.page.route('**/v1/operator/conversations/**', (route) => (holding ? held.push(route) : route.continue()));
      const assistantsBefore = await countOf(person.page, S.assistant);
      await personSays(person.page, 'About 38.5 since this morning');
      await waitForTranscript(op.page, (t) => t.length && t[t.length - 1].role === 'user' && t[t.length - 1].text === 'About 38.5 since this morning', 'the person\'s answer');
      assert.equal(await countOf(person.page, S.assistant), assistantsBefore, 'the assistant stayed silent');
      assert.ok(held.length > 0, 'the console asked for the transcript (held)');
      holding = false;
      for (const r of held) await r.continue();
      await op.page.unroute('**/v1/operator/conversations/**');

      // A red flag during the handoff: the assistant answers it at once, it escalates further.
      const red = 'Now my legs are numb and I can\'t control my bladder';
      await personSays(person.page, red);
      await person.page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      await op.page.waitForFunction((sel) => document.querySelector(sel)?.dataset.level === 'emergency', C.item);
      q = await readQueue(op.page);
      assert.equal(q[0].conversation, id, 'the emergency leads the queue');
      assert.equal(q[0].levelText, 'Emergency');
      assert.match(q[0].flags, /cord signs/);
      assert.equal(q[0].claim, `${OPERATOR} has joined`);
      await waitForTranscript(op.page, (t) => t.some((x) => x.role === 'user' && /legs are numb/.test(x.text)) &&
        t[t.length - 1].role === 'assistant', 'the red flag and the assistant\'s guidance');

      // Leave: the assistant answers the widget again.
      await op.page.locator(C.leave).click();
      await person.page.locator(`${S.handoff}[data-event="left"]`).waitFor({ state: 'visible' });
      await op.page.locator(C.joinedBy).filter({ hasText: /Nobody/ }).waitFor();
      await op.page.waitForFunction((sel) => document.querySelector(sel).disabled, C.say);
      await sendMessage(person.page, 'Thank you');

      // Acknowledge the emergency with a note: it leaves the queue; then the urgent one.
      const emergencyId = (await readQueue(op.page)).find((e) => e.conversation === id && e.level === 'emergency').id;
      await op.page.locator(`${C.item}[data-id="${emergencyId}"]`).click();
      await op.page.getByLabel('Note (optional)').fill('Called her; ambulance on the way');
      await op.page.locator(C.ack).click();
      await op.page.locator(`${C.item}[data-id="${emergencyId}"]`).waitFor({ state: 'detached' });
      await person.page.locator(S.notice).nth(1).waitFor({ state: 'visible' }); // escalation_acknowledged
      assert.equal(await op.page.locator(C.note).inputValue(), '', 'the note field is cleared after the ack');
      assert.deepEqual(sent.filter((f) => f.type === 'ack').map(({ ref, ...f }) => f),
        [{ type: 'ack', id: emergencyId, note: 'Called her; ambulance on the way' }], 'the ack carries the note');
      assert.deepEqual(sent.filter((f) => f.type !== 'ack').map((f) => f.type), ['claim', 'join', 'say', 'leave']);
      assert.ok(sent.every((f) => typeof f.ref === 'string' && f.ref), `every action carries a ref: ${JSON.stringify(sent)}`);
      assert.equal(new Set(sent.map((f) => f.ref)).size, sent.length, `a new ref for each: ${JSON.stringify(sent)}`);
      await op.page.locator(C.ack).click(); // the conversation's remaining (urgent) escalation
      await op.page.locator(C.itemOf(id)).waitFor({ state: 'detached' });

      // Both acks are in the transcript's audit (fetched after each `acked`), then reload the
      // console: still signed in, the same conversation and transcript, the audit included.
      await op.page.locator(C.auditOf('ack')).nth(1).waitFor({ state: 'visible' });
      t = await readTranscript(op.page);
      assert.ok(t.length >= 7, JSON.stringify(t));
      await op.page.reload({ waitUntil: 'load' });
      await op.page.locator(C.whoName).filter({ hasText: OPERATOR }).waitFor({ state: 'visible' });
      await waitForTranscript(op.page, (got) => got.length > 0, 'a transcript after the reload');
      assert.deepEqual(await readTranscript(op.page), t, 'the same transcript after a reload');
      const audit = await op.page.evaluate((sel) => [...document.querySelectorAll(sel)].map((li) => ({
        action: li.dataset.action, text: li.textContent, time: li.querySelector('time')?.getAttribute('datetime') ?? '',
      })), C.audit);
      assert.deepEqual(audit.map((a) => a.action), ['claim', 'join', 'leave', 'ack', 'ack'], JSON.stringify(audit));
      assert.ok(audit.every((a) => a.text.includes(OPERATOR) && !Number.isNaN(Date.parse(a.time))), JSON.stringify(audit));
      assert.match(audit[3].text, /Called her; ambulance on the way/, 'the ack keeps its note');
      assert.equal(await op.page.locator(C.itemOf(id)).count(), 0, 'acked escalations stay gone');
      assert.match(await op.page.locator(C.claimedBy).textContent(), new RegExp(OPERATOR));

      // Reload the widget: the history shows the operator's message with the name.
      await person.page.reload({ waitUntil: 'load' });
      await openPanel(person.page);
      const again = person.page.locator(S.operator).filter({ hasText: hello });
      await again.waitFor({ state: 'visible' });
      assert.equal((await again.locator('.bc-author-name').textContent()).trim(), OPERATOR);
      assertClean(op.rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
      assertClean(person.rec, server, { allowConsole: [FAVICON_404] });
    } finally {
      await person.context.close();
      await op.context.close();
    }
  });

  test('3b. chest pain, then another emergency flag during the handoff: guidance in the widget, the flag and the guidance in the console', { timeout: 90_000 }, async () => {
    const person = await newPage(browser);
    const op = await newConsole();
    try {
      await signIn(op.page);
      await gotoDemo(person.page, server);
      await openPanel(person.page);
      await sendMessage(person.page, 'I have chest pain');
      const id = await conversationOf(person.page);
      await op.page.locator(C.itemOf(id)).waitFor();
      assert.equal((await readQueue(op.page)).find((e) => e.conversation === id).levelText, 'Emergency');
      await op.page.locator(C.itemOf(id)).click();
      await op.page.locator(C.join).click();
      await person.page.locator(`${S.handoff}[data-event="joined"]`).waitFor({ state: 'visible' });
      await op.page.waitForFunction((sel) => !document.querySelector(sel).disabled, C.say);
      const before = await countOf(person.page, S.assistant);
      await personSays(person.page, 'my legs are numb and I can\'t control my bladder');
      await person.page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length > n, [S.assistant, before]);
      await person.page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      await waitForTranscript(op.page, (t) => t.length >= 2 && /legs are numb/.test(t[t.length - 2].text) &&
        t[t.length - 1].role === 'assistant', 'the flag and the assistant\'s guidance after it');
      await op.page.locator('.op-facts dd').filter({ hasText: /cord signs/ }).waitFor();
      // Informative: the server escalates only when the urgency rises, so a second emergency flag
      // makes no new escalation (see the report); not asserted, the server may change.
      console.log(`# 3b: open escalations of the conversation after the second emergency flag: ${(await readQueue(op.page)).filter((e) => e.conversation === id).length}`);
      await op.page.locator(C.leave).click();
      await person.page.locator(`${S.handoff}[data-event="left"]`).waitFor({ state: 'visible' });
      for (const e of (await readQueue(op.page)).filter((x) => x.conversation === id)) {
        await op.page.locator(`${C.item}[data-id="${e.id}"]`).click();
        await op.page.locator(C.ack).click();
        await op.page.locator(`${C.item}[data-id="${e.id}"]`).waitFor({ state: 'detached' });
      }
      assertClean(op.rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
    } finally {
      await person.context.close();
      await op.context.close();
    }
  });

  test('4. the queue: emergencies first, then oldest; what another operator sees live', { timeout: 120_000 }, async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    const c = await newPage(browser);
    const op = await newConsole();
    try {
      await signIn(op.page);
      await gotoDemo(a.page, server); await openPanel(a.page);
      await sendMessage(a.page, 'I have a fever');
      const idA = await conversationOf(a.page);
      await op.page.locator(C.itemOf(idA)).waitFor();
      await gotoDemo(b.page, server); await openPanel(b.page);
      await sendMessage(b.page, 'I have a fever too');
      const idB = await conversationOf(b.page);
      await op.page.locator(C.itemOf(idB)).waitFor();
      await gotoDemo(c.page, server); await openPanel(c.page);
      await sendMessage(c.page, 'I have chest pain');
      const idC = await conversationOf(c.page);
      await op.page.locator(C.itemOf(idC)).waitFor();
      const order = (await readQueue(op.page)).map((e) => e.conversation).filter((x) => [idA, idB, idC].includes(x));
      assert.deepEqual(order, [idC, idA, idB], 'the emergency first, then the urgent ones oldest first');
      // A second console (another tab) sees a claim made in the first, live.
      const op2 = await newConsole();
      try {
        await signIn(op2.page);
        await op2.page.locator(C.itemOf(idC)).waitFor();
        assert.deepEqual((await readQueue(op2.page)).map((e) => e.conversation).filter((x) => [idA, idB, idC].includes(x)),
          [idC, idA, idB], 'the backlog on connect, in the same order');
        await op.page.locator(C.itemOf(idC)).click();
        await op.page.locator(C.claim).click();
        await op2.page.locator(C.itemOf(idC) + ' .op-item-claim').filter({ hasText: `Claimed by ${OPERATOR}` }).waitFor();
        // A console opened after the claim learns it from the transcript's claimed_by.
        const op3 = await newConsole();
        try {
          await signIn(op3.page);
          await op3.page.locator(C.itemOf(idC) + ' .op-item-claim').filter({ hasText: `Claimed by ${OPERATOR}` }).waitFor();
          assert.equal(await op3.page.locator(C.itemOf(idA) + ' .op-item-claim').textContent(), 'Not claimed');
        } finally {
          await op3.context.close();
        }
        for (const id of [idA, idB, idC]) {
          await op.page.locator(C.itemOf(id)).click();
          await op.page.locator(C.ack).click();
          await op2.page.locator(C.itemOf(id)).waitFor({ state: 'detached' });
        }
      } finally {
        await op2.context.close();
      }
      assertClean(op.rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
    } finally {
      for (const p of [a, b, c, op]) await p.context.close();
    }
  });

  test('5. a cross-origin upgrade to /v1/operator is refused (403), with a signed-in cookie', { timeout: 60_000 }, async () => {
    const { context, page } = await newConsole();
    try {
      await signIn(page);
      const cookie = (await context.cookies(server.origin)).find((k) => k.name === 'backcheck_operator');
      const upgrade = (origin) => new Promise((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1', port: server.port, path: '/v1/operator',
          headers: {
            Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
            'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
            Cookie: `${cookie.name}=${cookie.value}`, Origin: origin,
          },
        });
        req.setTimeout(TIMEOUT, () => req.destroy(new Error('timeout')));
        req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
        req.on('upgrade', (res, socket) => { socket.destroy(); resolve(101); });
        req.on('error', reject);
        req.end();
      });
      assert.equal(await upgrade(`http://127.0.0.1:${server.port + 1}`), 403, 'another port is another origin');
      assert.equal(await upgrade('https://evil.example'), 403);
      assert.equal(await upgrade(server.origin), 101, 'the console\'s own origin is accepted (the check is not vacuous)');
    } finally {
      await context.close();
    }
  });

  test('6. axe-core (light and dark) and screenshots at 360 and 1280 px, a transcript open', { timeout: 120_000 }, async () => {
    const person = await newPage(browser);
    try {
      await gotoDemo(person.page, server);
      await openPanel(person.page);
      await sendMessage(person.page, 'I have chest pain when I breathe in');
      const id = await conversationOf(person.page);
      for (const [width, height, name, scheme] of [[1280, 800, 'console-1280.png', 'light'], [360, 740, 'console-360.png', 'light'],
        [1280, 800, null, 'dark'], [360, 740, null, 'dark']]) {
        const op = await newConsole({ viewport: { width, height }, colorScheme: scheme, ...(width < 500 ? { isMobile: true, hasTouch: true } : {}) });
        try {
          await signIn(op.page);
          await op.page.locator(C.itemOf(id)).first().click();
          await waitForTranscript(op.page, (t) => t.length >= 2, 'the transcript');
          const overflow = await op.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `no horizontal scrolling at ${width} px (${overflow} px too wide)`);
          await runAxe(op.page, `${width} px ${scheme}`);
          if (name) {
            await op.page.evaluate(() => window.scrollTo(0, 0));
            await op.page.screenshot({ path: screenshotPath(name), fullPage: true });
          }
          assertClean(op.rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
        } finally {
          await op.context.close();
        }
      }
    } finally {
      await person.context.close();
    }
  });

  test('7. keyboard: sign in, Tab to an escalation, Enter opens it and moves the focus, a visible focus ring', { timeout: 60_000 }, async () => {
    const { context, page } = await newConsole();
    try {
      await page.goto(server.origin + '/operator', { waitUntil: 'load' });
      await page.locator(C.token).waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'op-token', 'the token field has the focus');
      await page.keyboard.type(token);
      await page.keyboard.press('Enter');
      await page.locator(C.whoName).filter({ hasText: OPERATOR }).waitFor({ state: 'visible' });
      await page.locator(C.item).first().waitFor();
      // Tab to the first queue item and open it with Enter: the focus moves to the conversation.
      for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.classList.contains('op-item'))); i++) {
        await page.keyboard.press('Tab');
      }
      assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('op-item')), 'a queue item is reachable by Tab');
      const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(ring, 'none', 'a visible focus ring');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.activeElement?.id === 'op-detail-title');
      await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('aria-current') === 'true', C.item);
    } finally {
      await context.close();
    }
  });

  test('8. a dropped connection: reconnects, no duplicate escalations, an ack made meanwhile is gone', { timeout: 90_000 }, async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    const op = await newConsole();
    let prog = null;
    try {
      // The page's WebSocket constructor, instrumented by the test only: the test can drop the
      // console's socket, and hold new ones off (they go to a closed port) while it acts.
      await op.page.addInitScript(() => {
        const Real = window.WebSocket;
        window.__sockets = [];
        window.__blocked = false;
        window.WebSocket = function (url, protocols) {
          const s = new Real(window.__blocked ? 'ws://127.0.0.1:9/' : url, protocols);
          window.__sockets.push(s);
          return s;
        };
        window.WebSocket.prototype = Real.prototype;
        Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
      });
      await signIn(op.page);
      await gotoDemo(a.page, server); await openPanel(a.page);
      await sendMessage(a.page, 'I have a fever');
      const idA = await conversationOf(a.page);
      await gotoDemo(b.page, server); await openPanel(b.page);
      await sendMessage(b.page, 'I have chest pain');
      const idB = await conversationOf(b.page);
      await op.page.locator(C.itemOf(idA)).waitFor();
      await op.page.locator(C.itemOf(idB)).waitFor();
      await op.page.locator(C.itemOf(idA)).click();
      await waitForTranscript(op.page, (t) => t.length >= 2, 'the transcript');
      const before = await readQueue(op.page);

      await op.page.evaluate(() => { window.__blocked = true; window.__sockets.at(-1).close(); });
      await op.page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'reconnecting', C.status);
      // Meanwhile another operator (a program, with the token) acknowledges A's escalation.
      const { OperatorSocket } = await import('./harness.mjs');
      prog = await OperatorSocket.connect(server, token);
      const escA = await prog.waitFor((f) => f.type === 'escalation' && f.conversation === idA, 'A\'s escalation');
      prog.send({ type: 'ack', id: escA.id });
      await prog.waitFor((f) => f.type === 'acked' && f.id === escA.id, 'acked');
      await op.page.evaluate(() => { window.__blocked = false; });
      await op.page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'connected', C.status, { timeout: 30_000 });
      await op.page.locator(C.itemOf(idA)).waitFor({ state: 'detached' });
      const afterQ = await readQueue(op.page);
      const ids = afterQ.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, `no duplicates after the reconnect: ${JSON.stringify(afterQ)}`);
      assert.deepEqual(ids, before.filter((e) => e.id !== escA.id).map((e) => e.id), 'the same queue, without the acked one');
      assert.equal(await op.page.evaluate(() => window.__sockets.length >= 2 && window.__sockets.at(-1).readyState === 1), true,
        'it reconnected (a new socket, open)');
    } finally {
      if (prog) prog.close();
      for (const p of [a, b, op]) await p.context.close();
    }
  });

  test('9. a server restart ends the sign-in: the console says so, and signing in again shows the queue', { timeout: 90_000 }, async () => {
    const person = await newPage(browser);
    const op = await newConsole();
    try {
      await signIn(op.page);
      await gotoDemo(person.page, server); await openPanel(person.page);
      await sendMessage(person.page, 'I have chest pain');
      const id = await conversationOf(person.page);
      await op.page.locator(C.itemOf(id)).waitFor();
      const port = server.port;
      await server.stop();
      await op.page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === 'reconnecting', C.status);
      await server.start(port);
      await op.page.locator(C.signInError).filter({ hasText: /sign-in has ended/ }).waitFor({ state: 'visible', timeout: 30_000 });
      await op.page.getByLabel('Operator token').fill(token);
      await op.page.getByRole('button', { name: 'Sign in' }).click();
      await op.page.locator(C.itemOf(id)).waitFor();
      assert.equal(await op.page.locator(C.itemOf(id)).count(), 1);
    } finally {
      await person.context.close();
      await op.context.close();
    }
  });

  test('10. the age of an escalation updates as time passes', { timeout: 60_000 }, async () => {
    const person = await newPage(browser);
    const op = await newConsole();
    try {
      await gotoDemo(person.page, server); await openPanel(person.page);
      await sendMessage(person.page, 'I have a fever');
      const id = await conversationOf(person.page);
      await op.page.clock.install(); // the page's clock, moved on by the test (no waiting)
      await signIn(op.page);
      const age = op.page.locator(C.itemOf(id) + ' .op-age');
      await age.filter({ hasText: /just now|s ago/ }).waitFor();
      await op.page.clock.fastForward('05:00');
      await age.filter({ hasText: /^5 min ago$/ }).waitFor();
      await op.page.clock.fastForward('02:00:00');
      await age.filter({ hasText: /^2 h ago$/ }).waitFor();
    } finally {
      await person.context.close();
      await op.context.close();
    }
  });

  test('11. two messages in flight, the second refused: the error is the second\'s (its ref), `said` confirms the first (its ref, its text)', { timeout: 120_000 }, async () => {
    const x = await newPage(browser);
    const y = await newPage(browser);
    const op = await newConsole();
    let prog = null;
    const heldFetches = [];
    let holdFetches = true;
    try {
      // The console's socket goes through the test, which can hold what the server sends it.
      const fromServer = []; // held, in the order the server sent them
      const toServer = [];   // what the console sent
      let holding = false;
      let pageSide = null;
      await op.page.routeWebSocket(/\/v1\/operator$/, (ws) => {
        const srv = ws.connectToServer();
        pageSide = ws;
        ws.onMessage((m) => { try { toServer.push(JSON.parse(String(m))); } catch { /* not JSON */ } srv.send(m); });
        srv.onMessage((m) => (holding ? fromServer.push(String(m)) : ws.send(m)));
      });
      await signIn(op.page);
      await gotoDemo(x.page, server); await openPanel(x.page);
      await sendMessage(x.page, 'I have a fever');
      const idX = await conversationOf(x.page);
      await gotoDemo(y.page, server); await openPanel(y.page);
      await sendMessage(y.page, 'I have a fever too');
      const idY = await conversationOf(y.page);
      for (const id of [idY, idX]) { // join both; X stays open
        await op.page.locator(C.itemOf(id)).click();
        await op.page.locator(C.join).click();
        await op.page.locator(C.joinedBy).filter({ hasText: OPERATOR }).waitFor();
      }
      await op.page.waitForFunction((sel) => !document.querySelector(sel).disabled, C.say);

      // From here the console hears nothing from the server, and gets no transcript, until the test lets it.
      holding = true;
      await op.page.route('**/v1/operator/conversations/**', (route) => (holdFetches ? heldFetches.push(route) : route.continue()));
      const first = 'First message, to X';
      await op.page.locator(C.say).fill(first);
      await op.page.locator(C.sayButton).click();
      // Alice leaves Y from another tab (a program with her token); the console does not know yet.
      prog = await OperatorSocket.connect(server, token);
      prog.send({ type: 'leave', conversation: idY });
      await prog.waitFor((f) => f.type === 'left' && f.conversation === idY, 'the leave');
      await op.page.locator(C.itemOf(idY)).click();
      await op.page.waitForFunction((sel) => !document.querySelector(sel).disabled, C.say);
      const second = 'Second message, to Y';
      await op.page.locator(C.say).fill(second);
      await op.page.locator(C.sayButton).click();
      const deadline = Date.now() + TIMEOUT;
      const heard = () => fromServer.map((m) => JSON.parse(m));
      while (!(heard().some((f) => f.type === 'said') && heard().some((f) => f.type === 'error'))) {
        assert.ok(Date.now() < deadline, `no said and error for the console: ${JSON.stringify(heard())}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const says = toServer.filter((f) => f.type === 'say');
      assert.deepEqual(says.map((f) => [f.conversation, f.text]), [[idX, first], [idY, second]]);
      assert.ok(says.every((f) => typeof f.ref === 'string' && f.ref) && says[0].ref !== says[1].ref, JSON.stringify(says));
      const error = heard().find((f) => f.type === 'error');
      assert.deepEqual([error.ref, error.conversation], [says[1].ref, idY], JSON.stringify(error));

      // The refusal reaches the console first: it waits for no commit, the first message's `said`
      // does, so for two conversations the server may answer in this order.
      holding = false;
      const frames = fromServer.splice(0);
      for (const m of [...frames.filter((m) => JSON.parse(m).type === 'error'), ...frames.filter((m) => JSON.parse(m).type !== 'error')]) {
        pageSide.send(m);
      }
      // Y is open: the error is shown as the second message's, which is back in the box, not "Sending…".
      await op.page.locator(C.actionError).filter({ hasText: /^Your message was not sent: / }).waitFor();
      assert.match(await op.page.locator(C.actionError).textContent(), /join the conversation before writing/);
      assert.equal(await op.page.locator(C.say).inputValue(), second, 'the refused message is back in the box');
      assert.equal(await op.page.locator('.op-turn--pending').count(), 0, 'nothing of Y left "Sending…"');
      // X (its transcript still held): the first message is confirmed, with the text `said` carries.
      await op.page.locator(C.itemOf(idX)).click();
      await waitForTranscript(op.page, (t) => t.some((x) => x.role === 'operator' && x.text === 'First message, to X'), 'the first message, confirmed');
      assert.equal(await op.page.locator('.op-turn--pending').count(), 0, 'nothing of X left "Sending…"');
      holdFetches = false;
      for (const r of heldFetches.splice(0)) await r.continue();
      await op.page.unroute('**/v1/operator/conversations/**');
      assertClean(op.rec, server, { allowConsole: [FAVICON_404, SIGN_IN_401] });
    } finally {
      if (prog) prog.close();
      for (const r of heldFetches) await r.continue().catch(() => {});
      for (const p of [x, y, op]) await p.context.close();
    }
  });

  test('the server exits 0 on SIGTERM', async () => {
    const ms = await server.stop();
    console.log(`# server stopped in ${ms} ms`);
  });
});

