// Test helpers: the real chat-server and the bridge as child processes, each with its output
// collected line by line and waited on by pattern (no sleeps), and a direct bridge connection
// to the server for checking what it holds.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BRIDGE_DIR = path.resolve(HERE, '..');
export const SERVER_BINARY = process.env.BACKCHECK_SERVER || path.resolve(BRIDGE_DIR, '../../build/chat-server');

export function tempDir(prefix = 'backcheck-discord-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// A --bridge-tokens file (mode 600) with one line for the bridge named `name`; returns the token.
export function writeBridgeTokens(dir, name = 'discord') {
  const token = randomBytes(32).toString('hex');
  const file = path.join(dir, 'bridges');
  writeFileSync(file, `# test bridge tokens\n${name} ${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { file, token };
}

// Lines of a child's stream, with waiting for a line that matches.
class Lines {
  constructor(stream) {
    this.lines = [];
    this.waiters = new Set();
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      rest += chunk;
      let at;
      while ((at = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, at);
        rest = rest.slice(at + 1);
        this.lines.push(line);
        for (const waiter of [...this.waiters]) waiter(line, this.lines.length - 1);
      }
    });
  }

  // The first line from index `from` matching `pattern`; rejects after timeoutMs.
  waitFor(pattern, { from = 0, timeoutMs = 20000, what } = {}) {
    for (let i = from; i < this.lines.length; i++) {
      if (pattern.test(this.lines[i])) return Promise.resolve({ line: this.lines[i], index: i });
    }
    return new Promise((resolve, reject) => {
      const waiter = (line, index) => {
        if (index < from || !pattern.test(line)) return;
        this.waiters.delete(waiter);
        clearTimeout(timer);
        resolve({ line, index });
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what ?? pattern}; last lines:\n${this.lines.slice(-15).join('\n')}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  get count() {
    return this.lines.length;
  }
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

// The real chat-server: `--port 0` unless `port` is given (a restart on the same port).
export async function startServer({ dataDir, tokensFile, port = 0, extraArgs = [], env = {} }) {
  if (!existsSync(SERVER_BINARY)) throw new Error(`no chat-server at ${SERVER_BINARY} (set BACKCHECK_SERVER)`);
  // BACKCHECK_KB: another knowledge base folder than the one the binary was built with.
  const kb = process.env.BACKCHECK_KB ? ['--kb', process.env.BACKCHECK_KB] : [];
  const args = ['--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--bridge-tokens', tokensFile, ...kb, ...extraArgs];
  const child = spawn(SERVER_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  const early = exited(child).then(({ code, signal }) => {
    throw new Error(`chat-server exited (${code ?? signal}) before listening:\n${stderr.lines.join('\n')}`);
  });
  const { line } = await Promise.race([stdout.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, { timeoutMs: 20000 }), early]);
  early.catch(() => {});
  const listening = Number(/:(\d+)/.exec(line.slice(line.indexOf('127.0.0.1')))[1]);
  return {
    child,
    stdout,
    stderr,
    port: listening,
    url: `ws://127.0.0.1:${listening}/v1/chat`,
    async stop() {
      const done = exited(child);
      child.kill('SIGTERM');
      const result = await done;
      return result;
    },
  };
}

// The bridge, `node src/index.js`, pointed at the fake Discord and the server.
export function startBridge({ fake, serverUrl, bridgeToken, env = {} }) {
  const child = spawn(process.execPath, ['src/index.js'], {
    cwd: BRIDGE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? '/tmp',
      DISCORD_TOKEN: fake.token,
      DISCORD_API_URL: fake.apiUrl,
      BACKCHECK_URL: serverUrl,
      BACKCHECK_BRIDGE_TOKEN: bridgeToken,
      ...env,
    },
  });
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  const exit = exited(child);
  return {
    child,
    stdout,
    stderr,
    exit,
    // Every line the bridge wrote (both streams), for checking what it logs.
    output: () => [...stdout.lines, ...stderr.lines].join('\n'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}

// A bridge connection of the test's own (same bridge token, so the same keys): `start` with a key
// shows what the server holds for a conversation (its history), without sending a message.
export async function serverHistory(serverUrl, bridgeToken, key) {
  const ws = new WebSocket(serverUrl, { headers: { Authorization: `Bearer ${bridgeToken}` } });
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const frame = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to start ${key}`)), 10000);
      ws.on('message', (data) => {
        const parsed = JSON.parse(data.toString());
        if (parsed.type === 'started' || parsed.type === 'error') {
          clearTimeout(timer);
          resolve(parsed);
        }
      });
      ws.send(JSON.stringify({ type: 'start', key, ref: 'history' }));
    });
    if (frame.type === 'error') throw new Error(`start ${key}: ${frame.code} ${frame.message}`);
    return frame;
  } finally {
    ws.close();
  }
}

// An operator connection (/v1/operator): receives escalations, acknowledges them.
export async function connectOperator(port, token) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/operator`, { headers: { Authorization: `Bearer ${token}` } });
  const frames = [];
  const waiters = new Set();
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    frames.push(frame);
    for (const waiter of [...waiters]) waiter(frame);
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    frames,
    waitFor(predicate, timeoutMs = 20000) {
      const found = frames.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (frame) => {
          if (!predicate(frame)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(frame);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error('operator: timed out waiting for a frame'));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    send(frame) {
      ws.send(JSON.stringify(frame));
    },
    close() {
      ws.close();
    },
  };
}

// A bridge connection of the test's own that holds a conversation by key (its `start`), and so
// receives the frames the server pushes for it, as the bridge does.
export async function holdConversation(serverUrl, bridgeToken, key) {
  const ws = new WebSocket(serverUrl, { headers: { Authorization: `Bearer ${bridgeToken}` } });
  const frames = [];
  const waiters = new Set();
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    frames.push(frame);
    for (const waiter of [...waiters]) waiter(frame);
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const waitFor = (predicate, timeoutMs = 20000) => {
    const found = frames.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (frame) => {
        if (!predicate(frame)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        resolve(frame);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out waiting for a frame for ${key}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };
  ws.send(JSON.stringify({ type: 'start', key, ref: 'hold' }));
  const started = await waitFor((frame) => frame.type === 'started' || frame.type === 'error');
  if (started.type === 'error') throw new Error(`start ${key}: ${started.code}`);
  return { started, frames, waitFor, close: () => ws.close() };
}
