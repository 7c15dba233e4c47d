// Shared harness for the widget's browser tests (tests/browser/*.test.mjs).
//
// Starts the real build/chat-server on a free port (--port 0) with a temporary --data-dir and
// --store sqlite, reads the exact line `listening on http://127.0.0.1:PORT`, and stops it with
// SIGTERM (the tests assert exit status 0). Drives Debian's /usr/bin/chromium through
// playwright-core; it never downloads a browser.
//
// Every wait is on a condition (a selector, a DOM state, a process event) with a timeout; there
// are no fixed sleeps. The widget is only touched through the selectors of web/WIDGET_CONTRACT.md.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How long to wait for any single thing a user would wait for (ms). */
export const TIMEOUT = Math.round(1000 * Number(process.env.BACKCHECK_TEST_TIMEOUT || 10));
/** Reconnecting: the widget backs off to about 10 s between attempts, with jitter. */
export const RECONNECT_TIMEOUT = Math.max(30_000, 3 * TIMEOUT);
const STARTUP_TIMEOUT = 10_000;
const SHUTDOWN_TIMEOUT = 5_000; // SPEC section 7: exit 0 within 5 s of SIGTERM
const LISTENING_RE = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/;

export const CHROMIUM = process.env.BACKCHECK_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync'];

// ------------------------------------------------------------------------------------------
// Command line and paths

function argValue(name) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name && i + 1 < argv.length) return argv[i + 1];
    if (argv[i].startsWith(name + '=')) return argv[i].slice(name.length + 1);
  }
  return undefined;
}

function resolveFromRepo(value, fallback) {
  if (!value) return path.join(REPO, fallback);
  if (path.isAbsolute(value) || fs.existsSync(value)) return path.resolve(value);
  return path.resolve(REPO, value); // relative to the repository (CTest runs from build/)
}

/** --server PATH, else $BACKCHECK_SERVER, else build/chat-server of the repository. */
export const SERVER_BINARY = resolveFromRepo(argValue('--server') || process.env.BACKCHECK_SERVER,
  'build/chat-server');
/** Where screenshots go: --screenshot-dir, $BACKCHECK_SCREENSHOT_DIR, else build/screenshots. */
export const SCREENSHOT_DIR = resolveFromRepo(
  argValue('--screenshot-dir') || process.env.BACKCHECK_SCREENSHOT_DIR, 'build/screenshots');
export const WEB_DIR = process.env.BACKCHECK_WEB_DIR ? path.resolve(process.env.BACKCHECK_WEB_DIR) : path.join(REPO, 'web');
export const KB_DIR = path.join(REPO, 'knowledge');

// ------------------------------------------------------------------------------------------
// The knowledge data (JSON with comments): what the widget must show is what these files say

// `text` without its line and block comments (a "//" inside a string is kept).
export function stripJsonComments(text) {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\' && i + 1 < text.length) out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (text.startsWith('//', i)) {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else {
      out += c;
    }
  }
  return out;
}

/** KB_DIR/data/NAME (e.g. "flow.jsonc"), parsed; `kbDir` for another knowledge folder. */
export function loadKbFile(name, kbDir = KB_DIR) {
  return JSON.parse(stripJsonComments(fs.readFileSync(path.join(kbDir, 'data', name), 'utf8')));
}

/** The welcome the knowledge base defines: flow text "greeting", quick replies "welcome". */
export function kbWelcome(kbDir = KB_DIR) {
  const flow = loadKbFile('flow.jsonc', kbDir);
  const replies = flow.quick_replies || {};
  const list = (replies.welcome && replies.welcome.length ? replies.welcome : replies.default) || [];
  return { text: flow.texts.greeting, quick_replies: [...list] };
}

/** Urgency level -> banner line, from red_flags.jsonc guidance. */
export function kbBanners(kbDir = KB_DIR) {
  const out = {};
  for (const g of loadKbFile('red_flags.jsonc', kbDir).guidance) if (g.level !== 'none') out[g.level] = g.banner;
  return out;
}

/**
 * A copy of the knowledge folder (article.txt and data/) in `dir`, with `edit(flow, redFlags)`
 * applied to the parsed flow.jsonc and red_flags.jsonc (written back as plain JSON).
 */
export function writeKbCopy(dir, edit) {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.copyFileSync(path.join(KB_DIR, 'article.txt'), path.join(dir, 'article.txt'));
  for (const f of fs.readdirSync(path.join(KB_DIR, 'data'))) {
    fs.copyFileSync(path.join(KB_DIR, 'data', f), path.join(dir, 'data', f));
  }
  const flow = loadKbFile('flow.jsonc');
  const redFlags = loadKbFile('red_flags.jsonc');
  edit(flow, redFlags);
  fs.writeFileSync(path.join(dir, 'data', 'flow.jsonc'), JSON.stringify(flow, null, 1));
  fs.writeFileSync(path.join(dir, 'data', 'red_flags.jsonc'), JSON.stringify(redFlags, null, 1));
  return dir;
}

/** Missing prerequisites, each as a sentence that says how to get it (empty: all there). */
export function missingPrerequisites() {
  const missing = [];
  const executable = (p) => { try { fs.accessSync(p, fs.constants.X_OK); return fs.statSync(p).isFile(); } catch { return false; } };
  if (!executable(SERVER_BINARY)) missing.push(`server binary not found or not executable: ${SERVER_BINARY} (ninja -C build chat-server)`);
  if (!executable(CHROMIUM)) missing.push(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  for (const pkg of ['playwright-core', 'axe-core']) {
    if (!fs.existsSync(path.join(REPO, 'node_modules', pkg, 'package.json'))) missing.push(`npm package ${pkg} missing (npm ci in ${REPO})`);
  }
  if (!fs.existsSync(path.join(WEB_DIR, 'widget.js'))) missing.push(`web/widget.js missing`);
  return missing;
}

// ------------------------------------------------------------------------------------------
// The server process

const liveServers = new Set();
function killAll() { for (const s of liveServers) s.kill(); }
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killAll(); process.exit(128 + os.constants.signals[sig]); });
}

export class Server {
  /**
   * One chat-server on a loopback port with its own temporary data dir (kept across restarts).
   * `env`: variables added to the server's environment (e.g. CHAT_OPERATOR_TOKEN); `webDir`: the
   * folder it serves (--web), default web/.
   */
  constructor({ threads = 2, extraArgs = [], kbDir = KB_DIR, env = {}, webDir = WEB_DIR } = {}) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'backcheck-browser-'));
    this.dataDir = path.join(this.tmp, 'data');
    fs.mkdirSync(this.dataDir, { mode: 0o700 });
    this.threads = threads;
    this.extraArgs = extraArgs;
    this.kbDir = kbDir;
    this.env = env;
    this.webDir = webDir;
    this.proc = null;
    this.port = null;
    this.starts = 0;
    this.stderr = '';
  }

  command(port) {
    return [SERVER_BINARY, '--host', '127.0.0.1', '--port', String(port), '--data-dir', this.dataDir,
      '--store', 'sqlite', '--web', this.webDir, '--kb', this.kbDir, '--threads', String(this.threads),
      ...this.extraArgs];
  }

  /** Start on `port` (0: a free one) and resolve once the listening line has been read. */
  start(port = 0) {
    if (this.alive()) throw new Error('start() while the server is running');
    const [bin, ...args] = this.command(port);
    this.starts += 1;
    this.stderr = '';
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    liveServers.add(this);
    this.exited.then(() => liveServers.delete(this));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-8000); });
    const lines = readline.createInterface({ input: proc.stdout });
    return new Promise((resolve, reject) => {
      const fail = (msg) => { clearTimeout(timer); this.kill(); reject(new Error(`${msg}\ncommand: ${[bin, ...args].join(' ')}\n${this.stderrTail()}`)); };
      const timer = setTimeout(() => fail(`no listening line within ${STARTUP_TIMEOUT} ms`), STARTUP_TIMEOUT);
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = LISTENING_RE.exec(line);
        if (!m) return fail(`first stdout line is ${JSON.stringify(line)}, expected 'listening on http://127.0.0.1:PORT'`);
        this.port = Number(m[1]);
        if (port && this.port !== port) return fail(`asked for port ${port}, listening on ${this.port}`);
        resolve(this);
      });
      this.exited.then(({ code, signal }) => fail(`server exited (code ${code}, signal ${signal}) before listening`));
    });
  }

  alive() { return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null; }

  get origin() { return `http://127.0.0.1:${this.port}`; }
  get host() { return `127.0.0.1:${this.port}`; }

  /** SIGTERM, then wait for the exit; throws unless it exits with status 0 within 5 s. */
  async stop() {
    if (!this.proc) throw new Error('stop() before start()');
    if (!this.alive()) {
      const { code, signal } = await this.exited;
      throw new Error(`server had already exited (code ${code}, signal ${signal})\n${this.stderrTail()}`);
    }
    const t0 = Date.now();
    this.proc.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), SHUTDOWN_TIMEOUT); });
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (result === null) {
      this.kill();
      throw new Error(`server did not exit within ${SHUTDOWN_TIMEOUT} ms of SIGTERM\n${this.stderrTail()}`);
    }
    if (result.code !== 0) {
      throw new Error(`server exit after SIGTERM: code ${result.code}, signal ${result.signal}; expected 0\n${this.stderrTail()}`);
    }
    return Date.now() - t0;
  }

  kill() {
    if (this.alive()) this.proc.kill('SIGKILL');
  }

  async cleanup() {
    if (this.alive()) { this.kill(); await this.exited; }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  stderrTail() {
    return this.stderr ? `--- server stderr (tail) ---\n${this.stderr}\n--- end ---` : '(no server stderr)';
  }
}

/**
 * A folder to serve with --web: a copy of web/ plus `extra` ({name: path of a file to copy}),
 * e.g. a host page from tests/browser/pages/. Removed by the caller (fs.rmSync).
 */
export function makeWebDir(extra = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backcheck-web-'));
  for (const f of fs.readdirSync(WEB_DIR)) {
    if (fs.statSync(path.join(WEB_DIR, f)).isFile()) fs.copyFileSync(path.join(WEB_DIR, f), path.join(dir, f));
  }
  for (const [name, from] of Object.entries(extra)) fs.copyFileSync(from, path.join(dir, name));
  return dir;
}

// ------------------------------------------------------------------------------------------
// An operator: a WebSocket client of /v1/operator (RFC 6455, text frames only), on node:http
// alone, because it must send `Authorization: Bearer` on the upgrade (no npm dependency).

export class OperatorSocket {
  /** Connect to `server`'s /v1/operator with `token`; resolves once upgraded. */
  static connect(server, token, { path: urlPath = '/v1/operator' } = {}) {
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    return new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: server.port, path: urlPath,
        headers: {
          Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key,
          Authorization: `Bearer ${token}`,
        },
      });
      const timer = setTimeout(() => { req.destroy(); reject(new Error(`no upgrade of ${urlPath} within ${TIMEOUT} ms`)); }, TIMEOUT);
      req.on('response', (res) => { clearTimeout(timer); res.resume(); reject(new Error(`${urlPath} answered HTTP ${res.statusCode}, not an upgrade`)); });
      req.on('error', (e) => { clearTimeout(timer); reject(e); });
      req.on('upgrade', (res, socket, head) => {
        clearTimeout(timer);
        if (res.headers['sec-websocket-accept'] !== accept) { socket.destroy(); reject(new Error('bad Sec-WebSocket-Accept')); return; }
        resolve(new OperatorSocket(socket, head));
      });
      req.end();
    });
  }

  constructor(socket, head) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.frames = [];      // every JSON frame received, in order
    this.waiters = [];
    this.closed = false;
    this.fragments = [];
    socket.on('data', (d) => this.onData(d));
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => {});
    if (head && head.length) this.onData(head);
  }

  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const fin = (this.buf[0] & 0x80) !== 0;
      const opcode = this.buf[0] & 0x0f;
      const masked = (this.buf[1] & 0x80) !== 0;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      const maskOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = this.buf.subarray(off, off + len);
      if (masked) payload = Buffer.from(payload.map((b, i) => b ^ this.buf[maskOff + (i % 4)]));
      this.buf = this.buf.subarray(off + len);
      if (opcode === 0x8) { this.socket.end(); this.closed = true; this.wake(); return; }
      if (opcode === 0x9) { this.writeFrame(0xa, payload); continue; }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 || opcode === 0x0) {
        this.fragments.push(payload);
        if (!fin) continue;
        const text = Buffer.concat(this.fragments).toString('utf8');
        this.fragments = [];
        try { this.frames.push(JSON.parse(text)); } catch { this.frames.push({ type: '(not json)', text }); }
        this.wake();
      }
    }
  }

  writeFrame(opcode, payload) {
    const mask = crypto.randomBytes(4);
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
      : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff])
        : (() => { const h = Buffer.alloc(10); h[0] = 0x80 | opcode; h[1] = 0x80 | 127; h.writeBigUInt64BE(BigInt(len), 2); return h; })();
    const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
    this.socket.write(Buffer.concat([header, mask, body]));
  }

  /** Send one JSON frame. */
  send(obj) { this.writeFrame(0x1, Buffer.from(JSON.stringify(obj), 'utf8')); }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  /** The first frame received (so far or later) for which `pred` is true. */
  async waitFor(pred, what = 'a frame', timeout = TIMEOUT) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.closed) throw new Error(`operator socket closed while waiting for ${what}; got ${JSON.stringify(this.frames)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeout} ms on /v1/operator; got ${JSON.stringify(this.frames)}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  close() {
    if (this.closed) return;
    try { this.writeFrame(0x8, Buffer.from([0x03, 0xe8])); } catch { /* gone */ }
    this.socket.end();
    this.closed = true;
  }
}

// ------------------------------------------------------------------------------------------
// The browser

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A fresh context (own localStorage) and page, with recorders: page errors, console errors,
 * every request and every WebSocket the page opens.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const rec = { pageErrors: [], consoleErrors: [], requests: [], websockets: [] };
  page.on('pageerror', (err) => rec.pageErrors.push(String(err && err.stack || err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') rec.consoleErrors.push(`${msg.text()} (${msg.location().url || 'no url'})`);
  });
  page.on('request', (req) => rec.requests.push(req.url()));
  page.on('websocket', (ws) => rec.websockets.push(ws.url()));
  return { context, page, rec };
}

/**
 * Throws if the page had an uncaught error, logged a console error (except those matching one
 * of `allowConsole`), or made a request to anything but `servers`' origins.
 */
export function assertClean(rec, servers, { allowConsole = [] } = {}) {
  const hosts = new Set((Array.isArray(servers) ? servers : [servers]).map((s) => s.host));
  const problems = [];
  for (const e of rec.pageErrors) problems.push(`uncaught page error: ${e}`);
  for (const e of rec.consoleErrors) {
    if (!allowConsole.some((re) => re.test(e))) problems.push(`console error: ${e}`);
  }
  for (const u of [...rec.requests, ...rec.websockets]) {
    const url = new URL(u);
    if (url.protocol === 'data:' || url.protocol === 'blob:') continue;
    if (!['http:', 'ws:'].includes(url.protocol) || !hosts.has(url.host)) problems.push(`request to another host: ${u}`);
  }
  if (problems.length) throw new Error(problems.join('\n'));
}

// ------------------------------------------------------------------------------------------
// The widget, through the contract's selectors only

export const S = {
  launcher: 'button.bc-launcher',
  panel: 'section.bc-panel',
  banner: '.bc-banner',
  bannerText: '.bc-banner .bc-banner-text',
  bannerIcon: '.bc-banner .bc-banner-icon',
  call: '.bc-banner a.bc-call',
  newChat: 'header.bc-header button.bc-new',
  title: 'header.bc-header .bc-title',
  pending: 'ol.bc-log li.bc-msg.bc-msg--user.bc-msg--pending',
  pendingMarker: 'ol.bc-log li.bc-msg--pending .bc-pending',
  notice: 'ol.bc-log li.bc-msg.bc-msg--notice',
  operator: 'ol.bc-log li.bc-msg.bc-msg--operator',
  handoff: 'ol.bc-log li.bc-msg.bc-msg--handoff',
  status: '.bc-status',
  log: 'ol.bc-log',
  msg: 'ol.bc-log li.bc-msg',
  user: 'ol.bc-log li.bc-msg.bc-msg--user',
  assistant: 'ol.bc-log li.bc-msg.bc-msg--assistant',
  welcome: 'ol.bc-log li.bc-msg.bc-msg--assistant.bc-msg--welcome',
  text: '.bc-text',
  sources: 'details.bc-sources',
  typing: '.bc-typing',
  quick: '.bc-quick button.bc-quick-reply',
  form: 'form.bc-form',
  input: 'form.bc-form textarea.bc-input',
  send: 'form.bc-form button.bc-send',
};

/** Load GET / and wait for the launcher. */
export async function gotoDemo(page, server) {
  const resp = await page.goto(server.origin + '/', { waitUntil: 'load' });
  if (!resp || resp.status() !== 200) throw new Error(`GET / answered ${resp && resp.status()}`);
  await page.locator(S.launcher).waitFor({ state: 'visible' });
}

/**
 * Open the panel with the launcher (unless it is open already) and wait until it shows and,
 * unless `connected` is false, until the widget has its conversation (status "connected": the
 * welcome or the restored history is in the log then).
 */
export async function openPanel(page, { connected = true } = {}) {
  const launcher = page.locator(S.launcher);
  if ((await launcher.getAttribute('aria-expanded')) !== 'true') await launcher.click();
  await page.waitForFunction((sel) => document.querySelector(sel)?.getAttribute('aria-expanded') === 'true', S.launcher);
  await page.locator(S.panel).waitFor({ state: 'visible' });
  await page.locator(S.input).waitFor({ state: 'visible' });
  if (connected) await waitForStatus(page, 'connected');
}

/**
 * Record every frame the server sends the page's widget (parsed JSON), in arrival order. Call
 * before the page connects.
 */
export function recordServerFrames(page) {
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    try { frames.push(JSON.parse(String(payload))); } catch { /* not JSON: not ours to check here */ }
  }));
  return frames;
}

/** Every message in the log, in order: [{role: 'user'|'assistant', text}]. */
export function readMessages(page) {
  return page.evaluate((S) => [...document.querySelectorAll(S.msg)].map((li) => ({
    role: li.classList.contains('bc-msg--user') ? 'user' : li.classList.contains('bc-msg--assistant') ? 'assistant' : 'other',
    text: (li.querySelector(S.text)?.textContent ?? '').trim(),
  })), S);
}

export function countOf(page, selector) {
  return page.evaluate((sel) => document.querySelectorAll(sel).length, selector);
}

/** Wait until the number of elements matching `selector` exceeds `n`. */
export async function waitForMoreThan(page, selector, n, timeout = TIMEOUT) {
  try {
    await page.waitForFunction(([sel, k]) => document.querySelectorAll(sel).length > k, [selector, n], { timeout });
  } catch (e) {
    throw new Error(`expected more than ${n} × ${selector} within ${timeout} ms; log now:\n` +
      JSON.stringify(await readMessages(page), null, 1));
  }
}

/**
 * Type `text` into the message box and press Enter (or click Send); wait for the user message,
 * then for the assistant's reply (a new assistant message) and the typing indicator to go.
 * Returns the locator of the reply.
 */
export async function sendMessage(page, text, { via = 'enter', timeout = TIMEOUT } = {}) {
  const before = await countOf(page, S.assistant);
  const input = page.locator(S.input);
  await input.fill(text);
  if (via === 'enter') await input.press('Enter');
  else await page.locator(S.send).click();
  await waitForUserMessage(page, text);
  await waitForMoreThan(page, S.assistant, before, timeout);
  await waitForAnswerAfterLastUser(page, timeout);
  await page.locator(S.typing).waitFor({ state: 'hidden' });
  return page.locator(S.assistant).last();
}

/**
 * Wait until an assistant message follows the last user message in the log (its answer; a
 * welcome that arrives meanwhile goes before the user's message, so it does not count).
 */
export async function waitForAnswerAfterLastUser(page, timeout = TIMEOUT) {
  try {
    await page.waitForFunction((S) => {
      const users = document.querySelectorAll(S.user);
      const last = users[users.length - 1];
      if (!last) return false;
      for (let n = last.nextElementSibling; n; n = n.nextElementSibling) {
        if (n.matches(S.assistant)) return true;
      }
      return false;
    }, S, { timeout });
  } catch (e) {
    throw new Error(`no assistant message after the last user message within ${timeout} ms; log now:\n` +
      JSON.stringify(await readMessages(page), null, 1));
  }
}

/** Wait until the last user message's text is exactly `text`. */
export async function waitForUserMessage(page, text, timeout = TIMEOUT) {
  try {
    await page.waitForFunction(([S, t]) => {
      const all = document.querySelectorAll(S.user);
      const last = all[all.length - 1];
      return !!last && last.querySelector(S.text)?.textContent === t;
    }, [S, text], { timeout });
  } catch (e) {
    throw new Error(`user message ${JSON.stringify(text)} not shown as the last one within ${timeout} ms; log now:\n` +
      JSON.stringify(await readMessages(page), null, 1));
  }
}

/** Wait until the log is exactly `expected` ([{role, text}]); on timeout, show both. */
export async function waitForMessages(page, expected, timeout = TIMEOUT) {
  try {
    await page.waitForFunction(([S, want]) => {
      const got = [...document.querySelectorAll(S.msg)].map((li) => ({
        role: li.classList.contains('bc-msg--user') ? 'user' : li.classList.contains('bc-msg--assistant') ? 'assistant' : 'other',
        text: (li.querySelector(S.text)?.textContent ?? '').trim(),
      }));
      return JSON.stringify(got) === want;
    }, [S, JSON.stringify(expected)], { timeout });
  } catch (e) {
    throw new Error(`log did not become the expected one within ${timeout} ms\nexpected:\n` +
      JSON.stringify(expected, null, 1) + '\nactual:\n' + JSON.stringify(await readMessages(page), null, 1));
  }
}

/** Wait until `.bc-status` has data-state `state`. */
export async function waitForStatus(page, state, timeout = TIMEOUT) {
  try {
    await page.waitForFunction(([sel, st]) => document.querySelector(sel)?.getAttribute('data-state') === st,
      [S.status, state], { timeout });
  } catch (e) {
    const now = await page.evaluate((sel) => document.querySelector(sel)?.getAttribute('data-state') ?? '(no .bc-status)', S.status);
    throw new Error(`.bc-status data-state did not become ${state} within ${timeout} ms (it is ${now})`);
  }
}

/** Wait until no finite CSS animation or transition is running (so colours are final for axe). */
export async function waitForAnimations(page) {
  await page.waitForFunction(() => document.getAnimations().every((a) => {
    const t = a.effect && a.effect.getComputedTiming();
    return a.playState !== 'running' || (t && t.iterations === Infinity);
  }));
}

/** Is a visible focus indicator drawn on the focused element (outline or box-shadow)? */
export function focusIndicator(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { ok: false, what: 'nothing focused' };
    const cs = getComputedStyle(el);
    const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
    const shadow = !!cs.boxShadow && cs.boxShadow !== 'none';
    return { ok: outline || shadow, what: `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`,
      outline: `${cs.outlineStyle} ${cs.outlineWidth} ${cs.outlineColor}`, boxShadow: cs.boxShadow,
      focusVisible: el.matches(':focus-visible') };
  });
}

export function screenshotPath(name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, name);
}

/**
 * Wait until every element matching `selector` (or only the last, with `last`) is shown by its
 * scrolling/clipping ancestors: wholly (`whole`), or at least partly (16 px of it, e.g. a new
 * reply taller than the log, whichever end the widget scrolls to). On timeout the error says
 * which ancestor hides what.
 */
export async function waitUnclipped(page, selector, { whole = true, last = false, timeout = TIMEOUT } = {}) {
  const check = ([sel, whole, last]) => {
    let els = [...document.querySelectorAll(sel)];
    if (last) els = els.slice(-1);
    if (!els.length) return `no element matches ${sel}`;
    for (const el of els) {
      const r = el.getBoundingClientRect();
      for (let a = el.parentElement; a; a = a.parentElement) {
        const cs = getComputedStyle(a);
        if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
        const b = a.getBoundingClientRect();
        const hidden = whole
          ? r.top < b.top - 1 || r.bottom > b.bottom + 1 || r.left < b.left - 1 || r.right > b.right + 1
          : Math.min(r.bottom, b.bottom) - Math.max(r.top, b.top) < Math.min(16, r.height) - 1 ||
            Math.min(r.right, b.right) - Math.max(r.left, b.left) < Math.min(16, r.width) - 1;
        if (hidden) {
          return `${sel} "${el.textContent.trim().slice(0, 40)}" at ${JSON.stringify({ top: Math.round(r.top), bottom: Math.round(r.bottom), left: Math.round(r.left), right: Math.round(r.right) })} ` +
            `is clipped by ${a.tagName.toLowerCase()}.${(a.getAttribute('class') || '').trim().split(/\s+/).join('.')} ` +
            `(overflow ${cs.overflowX}/${cs.overflowY}) at ${JSON.stringify({ top: Math.round(b.top), bottom: Math.round(b.bottom), left: Math.round(b.left), right: Math.round(b.right) })}` +
            `, scrollTop ${Math.round(a.scrollTop)}, clientHeight ${a.clientHeight}, scrollHeight ${a.scrollHeight}`;
        }
      }
    }
    return '';
  };
  try {
    // A string expression: Playwright evaluates it through the DevTools protocol (no page eval).
    await page.waitForFunction(`(${check.toString()})(${JSON.stringify([selector, whole, last])}) === ''`, undefined, { timeout });
  } catch (e) {
    const why = await page.evaluate(check, [selector, whole, last]);
    throw new Error(`not fully shown within ${timeout} ms: ${why || e.message}`);
  }
}

const AXE_SOURCE = path.join(REPO, 'node_modules', 'axe-core', 'axe.min.js');

/** axe-core on the page: logs every violation, fails on a serious or critical one. */
export async function runAxe(page, label) {
  await waitForAnimations(page);
  await page.addScriptTag({ content: fs.readFileSync(AXE_SOURCE, 'utf8') });
  const results = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
    }));
  });
  const bad = results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of results) {
    console.log(`# axe (${label}) ${v.impact} ${v.id}: ${v.help}`);
    for (const n of v.nodes) console.log(`#     ${n.target}: ${(n.summary || '').replace(/\n/g, ' / ')}`);
  }
  assert.deepEqual(bad.map((v) => `${v.impact} ${v.id} (${v.nodes.map((n) => n.target).join(', ')})`), [],
    `axe-core (${label}) serious/critical violations`);
}
