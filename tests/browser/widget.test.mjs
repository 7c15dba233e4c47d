// Browser tests of the chat widget (web/widget.js, web/widget.css, web/index.html) against the
// real chat-server, in Debian's headless Chromium. Run from the repository root:
//
//   node --test-reporter=spec tests/browser/widget.test.mjs [--server build/chat-server]
//        [--screenshot-dir build/screenshots]
//
// or `node --test tests/browser/` (then the server comes from BACKCHECK_SERVER or the default).
// Missing prerequisites (server binary, /usr/bin/chromium, node_modules from `npm ci`,
// web/widget.js) make it exit 1 at once with a message saying what to install.
//
// Environment: BACKCHECK_SERVER (server binary), BACKCHECK_SCREENSHOT_DIR (default
// build/screenshots), BACKCHECK_TEST_TIMEOUT (seconds per wait, default 10),
// BACKCHECK_CHROMIUM (default /usr/bin/chromium).
//
// Only the selectors of web/WIDGET_CONTRACT.md are used. Each test has its own browser context
// (so its own localStorage, hence its own conversation). tests/browser/pages/host.html is a host
// page (position, title, colours, emergency number set the documented ways), served by a server
// of its own from a copy of web/. The operator test starts a server with CHAT_OPERATOR_TOKEN and
// talks to /v1/operator with the harness's node:http WebSocket client (no npm dependency).
// operator_message and handoff are rendered by the widget but not tested here: the server does
// not send them yet, and they are not faked.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  REPO, RECONNECT_TIMEOUT, S, OperatorSocket, Server, TIMEOUT, assertClean, countOf, focusIndicator, gotoDemo,
  kbBanners, kbWelcome, launchBrowser, loadKbFile, makeWebDir, missingPrerequisites, newPage, openPanel,
  readMessages, recordServerFrames, runAxe, screenshotPath, sendMessage, waitForAnimations, waitUnclipped,
  waitForMessages, waitForMoreThan, waitForStatus, waitForUserMessage, writeKbCopy,
} from './harness.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  console.error('browser tests cannot run:\n  ' + missing.join('\n  '));
  process.exit(1);
}

const CONVERSATION_ID = /^[A-Za-z0-9_-]{22,}$/;
const XSS = '<img src=x onerror="window.__xss=1">';
// While the server is down the browser logs its failed WebSocket attempts; that is expected.
const WS_DOWN = [/WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/v1\/chat' failed/i, /ERR_CONNECTION_REFUSED/];
// Chromium asks for /favicon.ico on its own; the demo page declares none, so the server says 404.
// That is the browser's request, not the widget's: allowed (see the report).
const FAVICON_404 = /Failed to load resource: the server responded with a status of 404 .*\/favicon\.ico\)$/;

let browser;
let server;

/** A new context + page on the main server, closed (and checked clean) after `fn`. */
async function withPage(fn, options = {}, { servers, allowConsole } = {}) {
  const { context, page, rec } = await newPage(browser, options);
  try {
    await fn(page, rec, context);
    assertClean(rec, servers || server, { allowConsole: [FAVICON_404, ...(allowConsole || [])] });
  } finally {
    await context.close();
  }
}

describe('chat widget in Chromium', { concurrency: false }, () => {
  before(async () => {
    server = await new Server().start();
    browser = await launchBrowser();
    console.log(`# server ${server.origin}; ${browser.version()}`);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.cleanup();
  });

  test('0. the first message is the server\'s welcome, with its quick replies, again after a reload', { timeout: 60_000 }, async () => {
    const kb = kbWelcome();
    await withPage(async (page) => {
      const frames = recordServerFrames(page);
      await gotoDemo(page, server);
      assert.equal(await countOf(page, S.msg), 0, 'the widget says nothing of its own before the server does');
      await openPanel(page);
      const started = frames.find((f) => f.type === 'started');
      assert.ok(started && started.welcome, `a started frame with a welcome: ${JSON.stringify(frames)}`);
      assert.equal(started.welcome.text, kb.text, 'the server sends flow.jsonc\'s greeting');
      // What the person sees: exactly one message, the welcome, as the assistant's.
      const shown = [{ role: 'assistant', text: kb.text }];
      await waitForMessages(page, shown);
      assert.equal(await countOf(page, S.welcome), 1, 'the welcome is marked bc-msg--welcome');
      const quick = page.locator(S.quick);
      await quick.first().waitFor({ state: 'visible' });
      assert.deepEqual((await quick.allTextContents()).map((t) => t.trim()), kb.quick_replies,
        'the welcome\'s quick replies are flow.jsonc\'s "welcome" list');

      // A reload before anything was said shows the same welcome (the resumed started has none).
      await page.reload({ waitUntil: 'load' });
      await page.locator(S.launcher).waitFor({ state: 'visible' });
      await openPanel(page);
      await waitForMessages(page, shown);
      await quick.first().waitFor({ state: 'visible' });
      assert.deepEqual((await quick.allTextContents()).map((t) => t.trim()), kb.quick_replies);

      // A welcome quick reply is sent like a typed message and answered after the welcome.
      await quick.first().click();
      await waitForUserMessage(page, kb.quick_replies[0]);
      await waitForMoreThan(page, S.assistant, 1);
      const log = await readMessages(page);
      assert.deepEqual(log.slice(0, 2), [...shown, { role: 'user', text: kb.quick_replies[0] }]);
      assert.equal(log.length, 3, `welcome, the quick reply, its answer:\n${JSON.stringify(log, null, 1)}`);
    });
  });

  test('0b. the welcome and the banner are whatever the knowledge base says (nothing hard-coded)', { timeout: 60_000 }, async () => {
    // A copy of the knowledge base with marked texts: the widget must show the marked ones.
    const marker = 'kb-' + Math.random().toString(36).slice(2, 10);
    const kbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'backcheck-kb-'));
    try {
      writeKbCopy(kbDir, (flow, redFlags) => {
        flow.texts.greeting = `(${marker}) ${flow.texts.greeting}`;
        flow.quick_replies.welcome = [`What is DOMS? ${marker}`, ...flow.quick_replies.welcome];
        for (const g of redFlags.guidance) g.banner = `${g.banner} (${marker} ${g.level})`;
      });
      const welcome = kbWelcome(kbDir);
      const banners = kbBanners(kbDir);
      assert.ok(welcome.text.includes(marker) && banners.emergency.includes(marker), 'the copy is marked');
      const own = new Server({ kbDir });
      try {
        await own.start();
        await withPage(async (page) => {
          await gotoDemo(page, own);
          await openPanel(page);
          await waitForMessages(page, [{ role: 'assistant', text: welcome.text }]);
          assert.deepEqual((await page.locator(S.quick).allTextContents()).map((t) => t.trim()), welcome.quick_replies);
          await sendMessage(page, "I'm short of breath");
          const banner = page.locator(`${S.banner}[role="alert"][data-level="emergency"]`);
          await banner.waitFor({ state: 'visible' });
          assert.equal((await page.locator(S.bannerText).textContent()).trim(), banners.emergency, 'the banner is red_flags.jsonc\'s line');
        }, {}, { servers: [own] });
        await own.stop();
      } finally {
        await own.cleanup();
      }
    } finally {
      fs.rmSync(kbDir, { recursive: true, force: true });
    }
  });

  test('1. ask a question: user message, reply with "24 to 72", typing indicator gone, sources', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      const launcher = page.locator(S.launcher);
      assert.equal(await launcher.getAttribute('aria-expanded'), 'false', 'launcher starts collapsed');
      assert.equal(await page.getByRole('button', { name: 'Open chat', exact: true }).count(), 1, 'launcher named "Open chat"');
      assert.ok(await page.locator(S.panel).isHidden(), 'panel starts hidden');
      await openPanel(page);
      await waitForStatus(page, 'connected');
      // Names a screen reader announces.
      assert.equal(await page.getByRole('button', { name: 'Close chat', exact: true }).count(), 1, 'launcher named "Close chat" when open');
      assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).evaluate((el, sel) => el.matches(sel), S.send), true, 'send button named "Send"');
      assert.equal(await page.getByLabel('Message', { exact: true }).evaluate((el, sel) => el.matches(sel), S.input), true, 'message box labelled "Message"');
      assert.equal(await page.locator(S.panel).getAttribute('role'), 'dialog');
      assert.equal(await page.locator(S.panel).getAttribute('aria-label'), 'Backcheck chat');
      assert.equal(await page.locator(S.launcher).getAttribute('aria-controls'), await page.locator(S.panel).getAttribute('id'));
      assert.equal(await page.evaluate((sel) => !!document.querySelector(sel)?.closest('[role="log"]'), S.log), true,
        'the log is (inside) a role="log" region');

      const input = page.locator(S.input);
      await input.fill('What is DOMS?');
      await input.press('Enter');
      await waitForUserMessage(page, 'What is DOMS?');
      const reply = page.locator(S.assistant).filter({ hasText: '24 to 72' });
      await reply.first().waitFor({ state: 'visible' });
      assert.equal(await reply.count(), 1, 'exactly one reply mentions "24 to 72"');
      await page.locator(S.typing).waitFor({ state: 'hidden' });
      assert.equal(await input.inputValue(), '', 'the message box is cleared after sending');

      const sources = reply.first().locator(S.sources);
      assert.equal(await sources.count(), 1, 'the reply has one details.bc-sources');
      const summary = (await sources.locator('summary').first().textContent()).trim();
      assert.ok(summary.startsWith('From the article:'), `summary is ${JSON.stringify(summary)}`);
      assert.match(summary, /Common Muscular Causes of Upper Back Pain/, 'summary names the section');
      // Opening the citations shows the quote.
      await sources.locator('summary').first().click();
      assert.equal(await sources.evaluate((d) => d.open), true, 'details opens on click');
      assert.match(await sources.textContent(), /peaks 24 to 72 hours after the workout/);
    });
  });

  test('1b. the typing indicator shows while the reply is awaited', { timeout: 60_000 }, async () => {
    // The reply is held back (the page still talks to the real server through Playwright's
    // WebSocket route) so the "awaiting" moment can be observed without racing the server.
    await withPage(async (page, rec, context) => {
      let release;
      const held = new Promise((resolve) => { release = resolve; });
      await context.routeWebSocket(/\/v1\/chat$/, (ws) => {
        const upstream = ws.connectToServer();
        upstream.onMessage(async (msg) => {
          if (JSON.parse(String(msg)).type === 'reply') await held;
          ws.send(msg);
        });
      });
      await gotoDemo(page, server);
      await openPanel(page);
      const input = page.locator(S.input);
      await input.fill('Should I use heat or ice?');
      await input.press('Enter');
      await waitForUserMessage(page, 'Should I use heat or ice?');
      await page.locator(S.typing).waitFor({ state: 'visible' });
      assert.equal(await page.locator(S.assistant).filter({ hasText: 'ice pack' }).count(), 0, 'no reply yet');
      // Sent but not answered: the message is marked pending, with a visible "Sending…".
      await assertPendingShown(page, 'Should I use heat or ice?', 'sending', /^Sending…$/);
      release();
      await page.locator(S.assistant).filter({ hasText: 'ice pack' }).first().waitFor({ state: 'visible' });
      await page.locator(S.typing).waitFor({ state: 'hidden' });
      await assertNothingPending(page);
    });
  });

  test('2. quick replies "Yes"/"No"; clicking "No" sends it', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, 'My upper back hurts after rows yesterday');
      const quick = page.locator(S.quick);
      await quick.first().waitFor({ state: 'visible' });
      const labels = (await quick.allTextContents()).map((t) => t.trim());
      assert.ok(labels.includes('Yes') && labels.includes('No'), `quick replies are ${JSON.stringify(labels)}`);
      await waitUnclipped(page, S.quick); // every quick reply wholly visible, none cut off
      await waitUnclipped(page, S.assistant, { whole: false, last: true }); // the new reply is scrolled into view (at least partly)

      const assistants = await countOf(page, S.assistant);
      await quick.filter({ hasText: /^\s*No\s*$/ }).click();
      await waitForUserMessage(page, 'No');
      await waitForMoreThan(page, S.assistant, assistants);
      await page.locator(S.typing).waitFor({ state: 'hidden' });
      const log = await readMessages(page);
      assert.deepEqual(log.filter((m) => m.role === 'user').map((m) => m.text),
        ['My upper back hurts after rows yesterday', 'No']);
      // The quick replies shown are the latest reply's only: not the first set plus the second.
      assert.ok((await quick.filter({ hasText: /^\s*No\s*$/ }).count()) <= 1, 'quick replies were replaced, not appended');
    });
  });

  test('3. escalation banner appears and stays', { timeout: 60_000 }, async () => {
    const expected = kbBanners().emergency;
    assert.ok(expected, 'red_flags.jsonc has an emergency banner');
    await withPage(async (page) => {
      const frames = recordServerFrames(page);
      await gotoDemo(page, server);
      await openPanel(page);
      assert.equal(await countOf(page, S.banner), 0, 'no banner before anything is said');
      const started = frames.find((f) => f.type === 'started');
      assert.equal(started && started.banners && started.banners.emergency, expected,
        'the started frame carries red_flags.jsonc\'s banners');
      await sendMessage(page, "I'm short of breath");
      const banner = page.locator(`${S.banner}[role="alert"][data-level="emergency"]`);
      await banner.waitFor({ state: 'visible' });
      assert.equal((await page.locator(S.bannerText).textContent()).trim(), expected, 'the banner shows the server\'s line for the level');
      await sendMessage(page, 'What is DOMS?');
      await banner.waitFor({ state: 'visible' });
      assert.equal(await page.locator(S.banner).count(), 1, 'one banner');
      assert.equal(await page.locator(S.banner).getAttribute('data-level'), 'emergency', 'level never goes down');
    });
  });

  test('3b. a red flag in a message the server cannot answer still shows the guidance and the banner', { timeout: 60_000 }, async () => {
    // A message over --max-text-chars is refused (text_too_long), but the part within the limit
    // reports a red flag: the error carries the guidance, and the widget shows it like a reply.
    const own = new Server({ extraArgs: ['--max-text-chars', '30'] });
    try {
      await own.start();
      await withPage(async (page) => {
        await gotoDemo(page, own);
        await openPanel(page);
        await waitForStatus(page, 'connected');
        await sendMessage(page, "I can't breathe, and this message is far longer than thirty characters");
        const guidance = page.locator('li.bc-msg--assistant.bc-msg--guidance .bc-text');
        await guidance.waitFor({ state: 'visible' });
        assert.ok((await guidance.textContent()).trim().length > 0, 'the guidance has text');
        await page.locator(`${S.banner}[role="alert"][data-level="emergency"]`).waitFor({ state: 'visible' });
      }, {}, { servers: [own] });
      await own.stop();
    } finally {
      await own.cleanup();
    }
  });

  test('4. reload restores the conversation and the banner', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, 'What is DOMS?');
      await sendMessage(page, "I'm short of breath");
      await sendMessage(page, 'Should I use heat or ice?');
      await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      const before = await readMessages(page);
      assert.deepEqual(before.filter((m) => m.role === 'user').map((m) => m.text),
        ['What is DOMS?', "I'm short of breath", 'Should I use heat or ice?']);
      const id = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));
      assert.match(id || '', CONVERSATION_ID, 'conversation id kept in localStorage["backcheck.conversation"]');

      await page.reload({ waitUntil: 'load' });
      await page.locator(S.launcher).waitFor({ state: 'visible' });
      await openPanel(page);
      await waitForMessages(page, before);
      assert.deepEqual(before[0], { role: 'assistant', text: kbWelcome().text }, 'the welcome opens the restored log too');
      const banner = page.locator(`${S.banner}[role="alert"][data-level="emergency"]`);
      await banner.waitFor({ state: 'visible' });
      assert.equal((await page.locator(S.bannerText).textContent()).trim(), kbBanners().emergency, 'the restored banner is the server\'s line');
      assert.equal(await page.evaluate(() => localStorage.getItem('backcheck.conversation')), id, 'same conversation');

      // The resumed conversation goes on: a new message is answered in it.
      await sendMessage(page, 'Should I rest?');
      const after = await readMessages(page);
      assert.deepEqual(after.slice(0, before.length), before, 'history unchanged by the new message');
      assert.equal(after.length, before.length + 2);
    });
  });

  test('4b. an unknown stored conversation id is forgotten and a fresh one starts', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      const stale = 'AAAAAAAAAAAAAAAAAAAAAA';
      await page.addInitScript((v) => {
        if (!sessionStorage.getItem('seeded')) { localStorage.setItem('backcheck.conversation', v); sessionStorage.setItem('seeded', '1'); }
      }, stale);
      await gotoDemo(page, server);
      await openPanel(page);
      const reply = await sendMessage(page, 'What is DOMS?');
      assert.match(await reply.textContent(), /24 to 72/);
      const id = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));
      assert.ok(id !== stale && CONVERSATION_ID.test(id || ''), `stored id after the fresh start: ${id}`);
    });
  });

  test('5. server restart: reconnecting, queued message, resumed without duplicates', { timeout: 120_000 }, async () => {
    const own = new Server(); // its own server: this test stops and restarts it
    try {
      await own.start();
      const port = own.port;
      await withPage(async (page) => {
        await gotoDemo(page, own);
        await openPanel(page);
        await waitForStatus(page, 'connected');
        await sendMessage(page, 'What is DOMS?');
        await sendMessage(page, 'My upper back hurts after rows yesterday');
        const before = await readMessages(page);
        const id = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));

        await own.stop();
        await waitForStatus(page, 'reconnecting');
        const status = page.locator(S.status);
        await status.waitFor({ state: 'visible' });
        assert.match(await status.innerText(), /Reconnecting/, 'visible text says Reconnecting');

        const queued = 'Should I use heat or ice?';
        const input = page.locator(S.input);
        await input.fill(queued);
        await input.press('Enter');
        await waitForUserMessage(page, queued, 3000); // shown at once, while the server is down
        // ... and shown as not sent yet: pending, with a visible marker saying it waits.
        await assertPendingShown(page, queued, 'queued', /^Waiting for connection…$/);
        assert.equal(await countOf(page, S.pending), 1, 'only the queued message is pending; the answered ones are not');

        await own.start(port); // same port, same --data-dir
        await waitForStatus(page, 'connected', RECONNECT_TIMEOUT);
        await page.locator(S.assistant).filter({ hasText: 'ice pack' }).first().waitFor({ state: 'visible' });
        await page.locator(S.typing).waitFor({ state: 'hidden' });
        await assertNothingPending(page); // answered: it looks like any sent message again

        const afterLog = await readMessages(page);
        assert.deepEqual(afterLog.slice(0, before.length), before, 'earlier history shown once, in order');
        assert.equal(afterLog.length, before.length + 2, `log after the restart:\n${JSON.stringify(afterLog, null, 1)}`);
        assert.deepEqual(afterLog[before.length], { role: 'user', text: queued });
        assert.equal(afterLog[before.length + 1].role, 'assistant');
        assert.match(afterLog[before.length + 1].text, /ice pack/);
        assert.equal(await page.evaluate(() => localStorage.getItem('backcheck.conversation')), id,
          'the queued message went to the resumed conversation');
        assert.ok(!(await page.locator(S.status).innerText().catch(() => '')).includes('Reconnecting'),
          'no "Reconnecting" once connected');

        // What the server kept is what was shown: a reload re-renders the same log from history.
        await page.reload({ waitUntil: 'load' });
        await openPanel(page);
        await waitForMessages(page, afterLog);
      }, {}, { servers: [own], allowConsole: WS_DOWN });
      await own.stop();
    } finally {
      await own.cleanup();
    }
  });

  test('6. markup in a message is shown as text, never run', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      await openPanel(page);
      const assistants = await countOf(page, S.assistant);
      await page.locator(S.input).fill(XSS);
      await page.locator(S.input).press('Enter');
      await waitForMoreThan(page, S.assistant, assistants); // answered: everything is rendered
      const text = await page.locator(S.user).last().locator(S.text).textContent();
      assert.equal(text, XSS, 'the user message shows the literal text');
      assert.equal(await countOf(page, `${S.log} img`), 0, 'no img element in the log');
      assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
      // And after a reload (the text now comes back from the server's history).
      await page.reload({ waitUntil: 'load' });
      await openPanel(page);
      await waitForUserMessage(page, XSS);
      assert.equal(await countOf(page, `${S.log} img`), 0, 'no img element in the restored log');
      assert.equal(await page.evaluate(() => typeof window.__xss), 'undefined');
    });
  });

  test('7. keyboard only: launcher, typing, Enter, Tab to every control, visible focus', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      const focused = (sel) => page.evaluate((s) => !!document.activeElement && document.activeElement.matches(s), sel);
      const tabTo = async (sel, max = 40) => {
        for (let i = 0; i < max; i++) {
          if (await focused(sel)) return;
          await page.keyboard.press('Tab');
        }
        assert.fail(`Tab never reached ${sel} in ${max} presses`);
      };
      const assertFocusVisible = async (name) => {
        const f = await focusIndicator(page);
        assert.ok(f.ok, `${name} has no visible focus indicator: ${JSON.stringify(f)}`);
      };

      await tabTo(S.launcher);
      await assertFocusVisible('launcher');
      await page.keyboard.press('Enter');
      await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('aria-expanded') === 'true', S.launcher);
      await page.locator(S.panel).waitFor({ state: 'visible' });
      await waitForStatus(page, 'connected'); // the welcome is in the log: what follows is the answer

      await tabTo(S.input);
      await assertFocusVisible('textarea');
      // Shift+Enter is a new line, not a send.
      await page.keyboard.type('a');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('b');
      assert.equal(await page.locator(S.input).inputValue(), 'a\nb');
      assert.equal(await countOf(page, S.user), 0, 'Shift+Enter sent nothing');
      await page.keyboard.press('ControlOrMeta+a');
      await page.keyboard.press('Backspace');

      const assistants = await countOf(page, S.assistant);
      await page.keyboard.type('My upper back hurts after rows yesterday');
      await page.keyboard.press('Enter');
      await waitForUserMessage(page, 'My upper back hurts after rows yesterday');
      await waitForMoreThan(page, S.assistant, assistants);
      await page.locator(S.quick).first().waitFor({ state: 'visible' });
      assert.ok(await focused(S.input), 'focus stays in the message box after sending');

      const reached = new Map([[S.input, false], [S.send, false], [S.quick, false]]);
      for (let i = 0; i < 40 && [...reached.values()].includes(false); i++) {
        await page.keyboard.press('Tab');
        for (const sel of reached.keys()) {
          if (!reached.get(sel) && await focused(sel)) {
            reached.set(sel, true);
            await assertFocusVisible(sel);
          }
        }
      }
      assert.deepEqual(Object.fromEntries(reached), { [S.input]: true, [S.send]: true, [S.quick]: true },
        'Tab reaches the textarea, the send button and a quick reply');

      // A quick reply works from the keyboard too.
      await tabTo(S.quick);
      const label = (await page.evaluate(() => document.activeElement.textContent)).trim();
      const before = await countOf(page, S.assistant);
      await page.keyboard.press('Enter');
      await waitForUserMessage(page, label);
      await waitForMoreThan(page, S.assistant, before);
    });
  });

  test('8. no serious or critical axe-core violations (panel open, conversation, banner)', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, 'My upper back hurts after rows yesterday');
      await sendMessage(page, "I'm short of breath");
      await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      await page.locator(S.quick).first().waitFor({ state: 'visible' });
      await page.locator(`${S.assistant} ${S.sources} summary`).first().click();
      await runAxe(page, 'light');
    });
  });

  test('9. screenshots at 360x740 and 1280x800; at 360 px the page and the panel fit', { timeout: 90_000 }, async () => {
    // Layout problems are collected, not thrown at once, so that the screenshot is always taken.
    const problems = [];
    for (const [width, height, mobile] of [[360, 740, true], [1280, 800, false]]) {
      await withPage(async (page) => {
        await gotoDemo(page, server);
        const where = `${width}x${height}${mobile ? ' (mobile)' : ''}`;
        const inView = async (sel) => {
          const box = await page.locator(sel).boundingBox();
          const ok = box && box.x >= -0.5 && box.x + box.width <= width + 0.5 && box.y >= -0.5 && box.y + box.height <= height + 0.5;
          if (!ok) problems.push(`${where}: ${sel} ${JSON.stringify(box)} is not inside the viewport`);
          return ok;
        };
        const overflow = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth }));
        if (overflow.scrollWidth > width || overflow.innerWidth > width) {
          const wide = await page.evaluate((w) => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > w + 0.5)
            .map((e) => `${e.tagName.toLowerCase()}${e.getAttribute('class') ? '.' + e.getAttribute('class').trim().split(/\s+/).join('.') : ''} (right ${Math.round(e.getBoundingClientRect().right)})`)
            .slice(0, 5), width);
          problems.push(`${where}: the page is wider than the viewport (${JSON.stringify(overflow)}); too wide: ${wide.join(', ')}`);
        }
        if (await inView(S.launcher)) {
          await openPanel(page);
        } else { // still open it, to get the screenshot of the panel
          await page.locator(S.launcher).dispatchEvent('click');
          await page.locator(S.panel).waitFor({ state: 'visible' });
        }
        await sendMessage(page, 'My upper back hurts after rows yesterday');
        await sendMessage(page, 'No');
        await page.locator(S.quick).first().waitFor({ state: 'visible' });
        await waitForAnimations(page);
        for (const [sel, opts] of [[S.quick, {}], [S.assistant, { whole: false, last: true }]]) {
          await waitUnclipped(page, sel, { ...opts, timeout: 2000 }).catch((e) => problems.push(`${where}: ${e.message}`));
        }
        const file = screenshotPath(`widget-${width}.png`);
        await page.screenshot({ path: file });
        assert.ok(fs.statSync(file).size > 1000, `${file} written`);
        console.log(`# screenshot ${file}`);

        const panel = await page.locator(S.panel).boundingBox();
        if (!panel || panel.width > width) problems.push(`${where}: panel ${JSON.stringify(panel)} is wider than the viewport`);
        await inView(S.panel);
        await inView(S.input);
        await inView(S.send);
      }, { viewport: { width, height }, isMobile: mobile, hasTouch: mobile, deviceScaleFactor: 1 });
    }
    assert.deepEqual(problems, [], 'layout problems');
  });

  test('10. every request goes to the server the page came from', { timeout: 60_000 }, async () => {
    await withPage(async (page, rec) => {
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, 'What is DOMS?');
      const paths = rec.requests.map((u) => new URL(u)).filter((u) => u.host === server.host).map((u) => u.pathname);
      for (const p of ['/', '/widget.js', '/widget.css']) assert.ok(paths.includes(p), `GET ${p} seen; requests: ${rec.requests.join(' ')}`);
      assert.deepEqual([...new Set(rec.websockets)], [`ws://${server.host}/v1/chat`], 'one WebSocket URL, the server\'s /v1/chat');
      const foreign = [...rec.requests, ...rec.websockets].filter((u) => {
        const url = new URL(u);
        return !['data:', 'blob:'].includes(url.protocol) && url.host !== server.host;
      });
      assert.deepEqual(foreign, [], 'requests to other hosts');
    });
  });

  test('11. dark mode and reduced motion render without errors (and pass axe)', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await page.emulateMedia({ reducedMotion: 'reduce', colorScheme: 'dark' });
      await gotoDemo(page, server);
      assert.deepEqual(await page.evaluate(() => [matchMedia('(prefers-color-scheme: dark)').matches,
        matchMedia('(prefers-reduced-motion: reduce)').matches]), [true, true]);
      await openPanel(page);
      await sendMessage(page, 'What is DOMS?');
      await sendMessage(page, "I'm short of breath");
      await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      await waitForAnimations(page);
      await page.screenshot({ path: screenshotPath('widget-1280-dark.png') });
      await runAxe(page, 'dark, reduced motion');
    });
  });

  test('12. quick replies are compact chips that wrap; the log is the main area (360x740, 1280x800)', { timeout: 90_000 }, async () => {
    for (const [width, height, mobile] of [[360, 740, true], [1280, 800, false]]) {
      await withPage(async (page) => {
        const where = `${width}x${height}`;
        await gotoDemo(page, server);
        await openPanel(page);
        // Measured in the browser: the panel, the log, the quick-reply area and each chip.
        const measure = () => page.evaluate((S) => {
          const box = (e) => e.getBoundingClientRect();
          const quick = document.querySelector('.bc-quick');
          const chips = [...document.querySelectorAll(S.quick)].map((c) => ({ text: c.textContent, ...JSON.parse(JSON.stringify(box(c))) }));
          return { panel: box(document.querySelector(S.panel)).height, log: box(document.querySelector(S.log)).height,
            quick: quick.hidden ? 0 : box(quick).height, quickWidth: quick.clientWidth, chips };
        }, S);
        const check = (m, label) => {
          assert.ok(m.log >= 0.5 * m.panel, `${where} ${label}: the log is ${Math.round(m.log)} px of a ${Math.round(m.panel)} px panel (less than half): ${JSON.stringify(m)}`);
          for (const c of m.chips) {
            const lines = Math.round(c.height / 16); // a chip whose label fits one line is one compact line
            assert.ok(c.height <= 36 || lines > 1, `${where} ${label}: chip "${c.text}" is ${c.height} px tall`);
            assert.ok(c.width < m.quickWidth - 20 || c.text.length > 24, `${where} ${label}: chip "${c.text}" is stretched to the full width (${c.width} of ${m.quickWidth})`);
          }
          assert.ok(m.quick <= 0.25 * m.panel, `${where} ${label}: the quick replies take ${Math.round(m.quick)} px of ${Math.round(m.panel)}`);
        };
        await page.locator(S.quick).first().waitFor({ state: 'visible' });
        await waitForAnimations(page);
        check(await measure(), 'welcome');

        // Short labels share a line: "Yes" and "No" sit side by side.
        await sendMessage(page, 'My upper back hurts after rows yesterday');
        await page.locator(S.quick).filter({ hasText: /^\s*No\s*$/ }).waitFor({ state: 'visible' });
        const yesNo = await measure();
        check(yesNo, 'yes/no');
        const rows = new Set(yesNo.chips.map((c) => Math.round(c.top)));
        assert.ok(rows.size < yesNo.chips.length, `${where}: the chips wrap in rows, not one per line: ${JSON.stringify(yesNo.chips)}`);

        // The worst case: the emergency banner and the four escalated quick replies.
        await sendMessage(page, "I'm short of breath");
        await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
        await page.locator(S.quick).first().waitFor({ state: 'visible' });
        await waitForAnimations(page);
        check(await measure(), 'emergency');
        await waitUnclipped(page, S.quick);
      }, { viewport: { width, height }, isMobile: mobile, hasTouch: mobile, deviceScaleFactor: 1 });
    }
  });

  test('13. the banner is a warning for each level: icon, colours, axe in light and dark; a tel: link only with a number', { timeout: 90_000 }, async () => {
    const kb = kbBanners();
    await withPage(async (page) => {
      const frames = recordServerFrames(page);
      await gotoDemo(page, server);
      await openPanel(page);
      const started = frames.find((f) => f.type === 'started');
      const styles = {};
      for (const [level, message] of [
        ['see_doctor', 'the pain is severe and has not improved after a week of rest'],
        ['urgent', 'my fingers tingle and my arm feels weak'],
        ['emergency', "I'm short of breath"],
      ]) {
        await sendMessage(page, message);
        const banner = page.locator(`${S.banner}[role="alert"][data-level="${level}"]`);
        await banner.waitFor({ state: 'visible' });
        assert.equal(await countOf(page, S.banner), 1, 'one banner, whose level rises');
        assert.equal((await page.locator(S.bannerText).textContent()).trim(), kb[level], `the ${level} line of red_flags.jsonc`);
        // An icon, decorative (the words say it all), drawn.
        const icon = await page.locator(S.bannerIcon).evaluate((e) => ({
          hidden: e.getAttribute('aria-hidden'), svg: !!e.querySelector('svg'), w: e.getBoundingClientRect().width, text: e.textContent,
        }));
        assert.deepEqual(icon, { hidden: 'true', svg: true, w: icon.w, text: '' }, `${level}: the banner has an aria-hidden icon`);
        assert.ok(icon.w >= 16, `${level}: the icon is drawn (${icon.w} px)`);
        styles[level] = await banner.evaluate((e) => {
          const cs = getComputedStyle(e);
          return { bg: cs.backgroundColor, fg: cs.color, edge: `${cs.borderLeftWidth} ${cs.borderLeftStyle}` };
        });
        assert.match(styles[level].edge, /^[4-9]px solid$/, `${level}: a warning edge: ${JSON.stringify(styles[level])}`);
        // The call link: only where the level says to call the emergency number, and only with a
        // number. The demo server sends none so far (it would be started.emergency_number).
        const number = started && typeof started.emergency_number === 'string' ? started.emergency_number.replace(/[\s().-]/g, '') : null;
        if (level === 'emergency' && number) {
          assert.equal(await page.locator(S.call).getAttribute('href'), `tel:${number}`, 'tel: link with the server\'s number');
        } else {
          assert.equal(await countOf(page, S.call), 0, `${level}: no call link (${number ? 'not this level' : 'no number known'})`);
        }
        await runAxe(page, `${level} banner, light`);
        await page.emulateMedia({ colorScheme: 'dark' });
        await runAxe(page, `${level} banner, dark`);
        await page.emulateMedia({ colorScheme: 'light' });
      }
      // Three distinct looks, the emergency one solid red.
      assert.equal(new Set(Object.values(styles).map((s) => s.bg)).size, 3, `three banner colours: ${JSON.stringify(styles)}`);
      assert.equal(styles.emergency.bg, 'rgb(179, 0, 27)');
      assert.ok(!/^rgb\(143, 61, 0\)$/.test(styles.urgent.bg), 'urgent is not the old brown');
    });
  });

  test('14. a reload restores each reply\'s sources and the last reply\'s quick replies', { timeout: 60_000 }, async () => {
    // The server's history entries carry each reply's `sources` and `quick_replies`.
    await withPage(async (page) => {
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, 'What is DOMS?');
      await sendMessage(page, 'My upper back hurts after rows yesterday');
      await page.locator(S.quick).first().waitFor({ state: 'visible' });
      const live = await page.evaluate((S) => ({
        sources: [...document.querySelectorAll(S.assistant)].map((li) => [...li.querySelectorAll(`${S.sources} summary`)].map((s) => s.textContent)),
        quick: [...document.querySelectorAll(S.quick)].map((b) => b.textContent),
      }), S);
      assert.ok(live.sources.some((s) => s.length), `some live reply has sources: ${JSON.stringify(live)}`);
      assert.ok(live.quick.length >= 2, `the last reply has quick replies: ${JSON.stringify(live)}`);
      const log = await readMessages(page);

      await page.reload({ waitUntil: 'load' });
      await openPanel(page);
      await waitForMessages(page, log);
      await page.locator(S.quick).first().waitFor({ state: 'visible' });
      const restored = await page.evaluate((S) => ({
        sources: [...document.querySelectorAll(S.assistant)].map((li) => [...li.querySelectorAll(`${S.sources} summary`)].map((s) => s.textContent)),
        quick: [...document.querySelectorAll(S.quick)].map((b) => b.textContent),
      }), S);
      assert.deepEqual(restored, live, 'after the reload: the same "From the article" sources on each reply, the last reply\'s quick replies');
      // A restored quick reply works like a live one.
      const before = await countOf(page, S.assistant);
      await page.locator(S.quick).filter({ hasText: /^\s*No\s*$/ }).click();
      await waitForUserMessage(page, 'No');
      await waitForMoreThan(page, S.assistant, before);
    });
  });

  test('15. "New chat" (by keyboard) ends the conversation and starts a new one', { timeout: 60_000 }, async () => {
    const kb = kbWelcome();
    await withPage(async (page) => {
      const sent = recordClientFrames(page);
      const received = recordServerFrames(page);
      await gotoDemo(page, server);
      await openPanel(page);
      await sendMessage(page, "I'm short of breath");
      await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
      const first = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));
      assert.match(first || '', CONVERSATION_ID);

      const control = page.getByRole('button', { name: 'Start a new chat', exact: true });
      assert.equal(await control.evaluate((el, sel) => el.matches(sel), S.newChat), true, 'a labelled "New chat" button in the header');
      assert.match((await control.innerText()).trim(), /New chat/, 'its visible text is part of its name');
      // Keyboard: Tab reaches it, it shows focus, Enter works.
      for (let i = 0; i < 30 && !(await control.evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
      assert.ok(await control.evaluate((el) => el === document.activeElement), 'Tab reaches "New chat"');
      const f = await focusIndicator(page);
      assert.ok(f.ok, `visible focus on "New chat": ${JSON.stringify(f)}`);
      await page.keyboard.press('Enter');

      await page.waitForFunction((old) => {
        const id = localStorage.getItem('backcheck.conversation');
        return !!id && id !== old;
      }, first);
      const second = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));
      assert.match(second, CONVERSATION_ID);
      assert.ok(sent.some((m) => m.type === 'end' && m.conversation === first), `an end frame for the old conversation: ${JSON.stringify(sent)}`);
      assert.ok(received.some((m) => m.type === 'started' && m.conversation === second && m.resumed === false), 'a new conversation started');
      // A fresh start: the welcome and its quick replies only, no banner, the old log gone.
      await waitForMessages(page, [{ role: 'assistant', text: kb.text }]);
      assert.equal(await countOf(page, S.banner), 0, 'the old conversation\'s banner is gone');
      assert.deepEqual((await page.locator(S.quick).allTextContents()).map((t) => t.trim()), kb.quick_replies);
      assert.ok(await page.evaluate((sel) => document.activeElement?.matches(sel), S.input), 'focus goes to the message box');

      // It goes on in the new conversation, and a reload resumes the new one.
      const reply = await sendMessage(page, 'What is DOMS?');
      assert.match(await reply.textContent(), /24 to 72/);
      assert.ok(received.some((m) => m.type === 'reply' && m.conversation === second), 'answered in the new conversation');
      const log = await readMessages(page);
      await page.reload({ waitUntil: 'load' });
      await openPanel(page);
      await waitForMessages(page, log);
      assert.equal(await page.evaluate(() => localStorage.getItem('backcheck.conversation')), second);
      assert.equal(await countOf(page, S.banner), 0);
    });
  });

  test('16. a host page sets position, title, colours and the emergency number', { timeout: 90_000 }, async () => {
    const webDir = makeWebDir({ 'host.html': path.join(REPO, 'tests', 'browser', 'pages', 'host.html') });
    const own = new Server({ webDir });
    try {
      await own.start();
      for (const [width, height, mobile] of [[1280, 800, false], [360, 740, true]]) {
        await withPage(async (page) => {
          const resp = await page.goto(own.origin + '/host.html', { waitUntil: 'load' });
          assert.equal(resp.status(), 200);
          await page.locator(S.launcher).waitFor({ state: 'visible' });
          const launcher = await page.locator(S.launcher).evaluate((e) => {
            const r = e.getBoundingClientRect();
            return { left: r.left, right: innerWidth - r.right, bg: getComputedStyle(e).backgroundColor, position: e.dataset.position };
          });
          assert.equal(launcher.position, 'bottom-left');
          assert.ok(launcher.left < launcher.right, `data-position="bottom-left": the launcher is on the left ${JSON.stringify(launcher)}`);
          if (!mobile) assert.equal(Math.round(launcher.left), 24, '--bc-offset: 24px');
          assert.equal(launcher.bg, 'rgb(106, 27, 154)', '--bc-accent colours the launcher');
          await openPanel(page);
          assert.equal((await page.locator(S.title).textContent()).trim(), 'Riverside helper', 'data-title is the heading');
          assert.equal(await page.locator(S.panel).getAttribute('aria-label'), 'Riverside helper chat');
          const panel = await page.locator(S.panel).evaluate((e) => {
            const r = e.getBoundingClientRect();
            return { left: r.left, right: innerWidth - r.right, radius: getComputedStyle(e).borderTopLeftRadius };
          });
          if (!mobile) {
            assert.ok(panel.left < panel.right, `the panel opens on the left: ${JSON.stringify(panel)}`);
            assert.equal(panel.radius, '4px', '--bc-radius');
          }
          await sendMessage(page, 'What is DOMS?');
          assert.equal(await page.locator(S.user).last().evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(106, 27, 154)',
            'the person\'s bubble in the accent colour');

          // data-emergency-number: the emergency banner calls it; the urgent one does not.
          await sendMessage(page, 'my fingers tingle and my arm feels weak');
          await page.locator(`${S.banner}[data-level="urgent"]`).waitFor({ state: 'visible' });
          assert.equal(await countOf(page, S.call), 0, 'no call link on the urgent banner');
          await sendMessage(page, "I'm short of breath");
          await page.locator(`${S.banner}[data-level="emergency"]`).waitFor({ state: 'visible' });
          const call = page.locator(S.call);
          await call.waitFor({ state: 'visible' });
          assert.equal(await call.getAttribute('href'), 'tel:112');
          assert.equal((await call.innerText()).trim(), 'Call 112');
          const box = await call.boundingBox();
          assert.ok(box.height >= 24 && box.width >= 44, `the call link is a tap target: ${JSON.stringify(box)}`);
          await waitUnclipped(page, S.call);
          await waitForAnimations(page);
          await page.screenshot({ path: screenshotPath(`widget-host-${width}.png`) });
          await runAxe(page, `host page ${width}`);
        }, { viewport: { width, height }, isMobile: mobile, hasTouch: mobile, deviceScaleFactor: 1 }, { servers: [own] });
      }
      await own.stop();
    } finally {
      await own.cleanup();
      fs.rmSync(webDir, { recursive: true, force: true });
    }
  });

  test('17. at 360 px the launcher covers none of the demo page\'s safety notice', { timeout: 60_000 }, async () => {
    await withPage(async (page) => {
      await gotoDemo(page, server);
      // As the page opens: the safety notice (and the title above it) wholly on screen, and the
      // launcher on none of it.
      const first = await overlap(page, 'main .notice, main h1, main .lead');
      assert.deepEqual(first.filter((o) => o.hit), [], 'launcher over the notice as the page opens');
      const notice = await page.locator('main .notice').boundingBox();
      assert.ok(notice.y >= 0 && notice.y + notice.height <= 740, `the notice is on the first screen: ${JSON.stringify(notice)}`);
      // Scrolled to the end: the launcher covers no text of the page.
      await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
      await page.waitForFunction(() => Math.abs(innerHeight + scrollY - document.documentElement.scrollHeight) < 2);
      const end = await overlap(page, 'main p, main li, main h1, main h2, main pre');
      assert.deepEqual(end.filter((o) => o.hit), [], 'launcher over the page\'s text at the end of the page');
      const box = await page.locator(S.launcher).boundingBox();
      assert.ok(box.width <= 56 && box.height >= 44, `on a phone the closed launcher is a compact round button: ${JSON.stringify(box)}`);
      assert.equal(await page.getByRole('button', { name: 'Open chat', exact: true }).count(), 1, 'still named "Open chat"');
    }, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  });

  test('18. an operator\'s acknowledgement reaches the person as a notice from the service', { timeout: 60_000 }, async () => {
    const token = 'op-' + crypto.randomBytes(24).toString('hex');
    const expected = loadKbFile('flow.jsonc').texts.care_team_seen;
    assert.ok(expected, 'flow.jsonc has the care_team_seen text');
    const own = new Server({ env: { CHAT_OPERATOR_TOKEN: token } });
    let op = null;
    try {
      await own.start();
      await withPage(async (page) => {
        await gotoDemo(page, own);
        await openPanel(page);
        await sendMessage(page, "I'm short of breath");
        const id = await page.evaluate(() => localStorage.getItem('backcheck.conversation'));
        op = await OperatorSocket.connect(own, token);
        const esc = await op.waitFor((f) => f.type === 'escalation' && f.conversation === id, `the escalation of ${id}`);
        assert.equal(esc.level, 'emergency');
        assert.equal(await countOf(page, S.notice), 0, 'no notice before the acknowledgement');
        op.send({ type: 'ack', id: esc.id });
        await op.waitFor((f) => f.type === 'acked' && f.id === esc.id, 'acked');
        const notice = page.locator(S.notice);
        await notice.waitFor({ state: 'visible' });
        assert.equal((await notice.locator(S.text).textContent()).trim(), expected, 'the server\'s words (flow.jsonc care_team_seen)');
        assert.equal(await notice.evaluate((e) => e.classList.contains('bc-msg--assistant') || e.classList.contains('bc-msg--user')), false,
          'shown as the service\'s, not as the assistant\'s or the person\'s');
        const looks = await page.evaluate((S) => [S.notice, S.assistant].map((sel) => getComputedStyle(document.querySelector(sel)).backgroundColor), S);
        assert.notEqual(looks[0], looks[1], 'the notice looks different from a reply');
        await waitUnclipped(page, S.notice);
        await runAxe(page, 'notice');
      }, {}, { servers: [own] });
      op.close();
      await own.stop();
    } finally {
      if (op) op.close();
      await own.cleanup();
    }
  });

  test('the server exits 0 on SIGTERM', async () => {
    const ms = await server.stop();
    console.log(`# server stopped in ${ms} ms`);
  });
});

/**
 * The last user message is `text`, marked pending (class and marker, data-state `state`), and its
 * marker is really seen: text matching `re`, an icon hidden from assistive tech, opacity 1 once any
 * fade-in has finished.
 */
async function assertPendingShown(page, text, state, re) {
  const li = page.locator(S.pending).filter({ hasText: text }).last();
  await li.waitFor({ state: 'visible' });
  const marker = li.locator('.bc-pending');
  await page.locator(`${S.pendingMarker}[data-state="${state}"]`).last().waitFor({ state: 'visible' });
  await waitForAnimations(page);
  const seen = await marker.evaluate((m) => ({
    text: m.textContent.trim(), opacity: getComputedStyle(m).opacity, display: getComputedStyle(m).display,
    icon: !!m.querySelector('[aria-hidden="true"] svg'), inUser: !!m.closest('li.bc-msg--user'),
  }));
  assert.match(seen.text, re, `pending marker text: ${JSON.stringify(seen)}`);
  assert.ok(seen.opacity === '1' && seen.display !== 'none' && seen.icon && seen.inUser, `pending marker shown: ${JSON.stringify(seen)}`);
  const sent = await page.locator(S.user).filter({ hasNotText: text }).evaluateAll((els) => els.map((e) => e.className));
  assert.ok(sent.every((c) => !c.includes('bc-msg--pending')), `answered messages are not pending: ${JSON.stringify(sent)}`);
}

async function assertNothingPending(page) {
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 0, S.pending);
  assert.equal(await countOf(page, `${S.log} .bc-pending`), 0, 'no pending marker left in the log');
}

/** Record every frame the page's widget sends (parsed JSON). Call before the page connects. */
function recordClientFrames(page) {
  const frames = [];
  page.on('websocket', (ws) => ws.on('framesent', ({ payload }) => {
    try { frames.push(JSON.parse(String(payload))); } catch { /* not JSON */ }
  }));
  return frames;
}

/** Bounding boxes of the launcher and `selector`, and whether they overlap. */
function overlap(page, selector) {
  return page.evaluate(([l, sel]) => {
    const a = document.querySelector(l).getBoundingClientRect();
    return [...document.querySelectorAll(sel)].map((e) => {
      const b = e.getBoundingClientRect();
      const hit = a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
      return { hit, what: `${e.tagName.toLowerCase()} "${e.textContent.trim().slice(0, 30)}"`,
        launcher: [a.left, a.top, a.right, a.bottom].map(Math.round), box: [b.left, b.top, b.right, b.bottom].map(Math.round) };
    });
  }, [S.launcher, selector]);
}

