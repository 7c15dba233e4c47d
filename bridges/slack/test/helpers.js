// Test helpers: the real chat-server (BACKCHECK_SERVER, fallback ../../build/chat-server), the
// bridge as a child process (src/index.js), and a direct bridge-token client to look at what the
// server holds.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');

export const BRIDGE_DIR = fileURLToPath(new URL('..', import.meta.url));
export const REPO_DIR = resolve(BRIDGE_DIR, '../..');

export function serverBinary() {
  const candidates = [process.env.BACKCHECK_SERVER, join(REPO_DIR, 'build/chat-server'), join(REPO_DIR, 'build/server/chat-server')].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no chat-server binary: set BACKCHECK_SERVER (tried ${candidates.join(', ')})`);
  return found;
}

// Lines of a child's stream, with a waiter for the first line matching a regexp.
function lineReader(stream) {
  const lines = [];
  const waiters = [];
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    partial += chunk;
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        const m = w.regexp.exec(line);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  });
  return {
    lines,
    waitFor(regexp, { since = 0, timeoutMs = 20000, what = String(regexp) } = {}) {
      for (const line of lines.slice(since)) {
        const m = regexp.exec(line);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolvePromise, reject) => {
        const w = { regexp, resolve: resolvePromise };
        waiters.push(w);
        setTimeout(() => {
          const k = waiters.indexOf(w);
          if (k >= 0) {
            waiters.splice(k, 1);
            reject(new Error(`timed out waiting for ${what}; output so far:\n${lines.join('\n')}`));
          }
        }, timeoutMs).unref();
      });
    },
  };
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
}

// A chat-server with a bridge token file naming "slack"; restartable on the same port and data dir.
export async function startServer({ operatorToken } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'backcheck-slack-test-'));
  const dataDir = join(dir, 'data');
  const tokensFile = join(dir, 'bridges');
  const token = randomBytes(32).toString('hex');
  writeFileSync(tokensFile, `slack ${token}\n`, { mode: 0o600 });
  const server = { dir, dataDir, tokensFile, token, port: 0, operatorToken, proc: null };

  server.start = async () => {
    const args = ['--port', String(server.port), '--data-dir', dataDir, '--bridge-tokens', tokensFile, '--threads', '2'];
    const env = { ...process.env };
    if (operatorToken) env.CHAT_OPERATOR_TOKEN = operatorToken;
    const proc = spawn(serverBinary(), args, { cwd: REPO_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.proc = proc;
    server.stdout = lineReader(proc.stdout);
    server.stderr = lineReader(proc.stderr);
    const early = exited(proc).then(({ code }) => {
      throw new Error(`chat-server exited (${code}) before listening: ${server.stderr.lines.join('\n')}`);
    });
    const m = await Promise.race([server.stdout.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/, { what: 'chat-server listening' }), early]);
    early.catch(() => {});
    server.port = Number(m[1]);
    server.url = `ws://127.0.0.1:${server.port}/v1/chat`;
  };
  server.stop = async () => {
    if (!server.proc) return;
    const proc = server.proc;
    server.proc = null;
    proc.kill('SIGTERM');
    await exited(proc);
  };
  server.cleanup = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  await server.start();
  return server;
}

// The bridge as a child process, as ./start runs it (node src/index.js), against fake Slack.
export async function startBridge({ server, slack, mode = 'socket', extraEnv = {} }) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SLACK_MODE: mode,
    SLACK_BOT_TOKEN: 'xoxb-1111-2222-fake',
    SLACK_API_URL: slack.apiUrl,
    BACKCHECK_URL: server.url,
    BACKCHECK_BRIDGE_TOKEN: server.token,
    SLACK_POST_INTERVAL_MS: '150',
    ...extraEnv,
  };
  if (mode === 'socket') env.SLACK_APP_TOKEN = 'xapp-1-A0TEST01-3333-fake';
  const proc = spawn(process.execPath, ['src/index.js'], { cwd: BRIDGE_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const bridge = { proc, stdout: lineReader(proc.stdout), stderr: lineReader(proc.stderr) };
  bridge.exited = exited(proc);
  const early = bridge.exited.then(({ code }) => {
    throw new Error(`bridge exited (${code}) before it was ready:\n${bridge.stderr.lines.join('\n')}`);
  });
  await Promise.race([bridge.stderr.waitFor(/slack-bridge: ready/, { what: 'bridge ready' }), early]);
  early.catch(() => {});
  if (mode === 'http') {
    const m = await bridge.stderr.waitFor(/listening on port (\d+)/);
    bridge.port = Number(m[1]);
  }
  await bridge.stderr.waitFor(/server: connected/, { what: 'bridge connected to the chat-server' });
  bridge.stop = async (signal = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return bridge.exited;
  };
  return bridge;
}

// A direct connection with the bridge token: `start` with a key shows the conversation's history.
export async function historyOf(server, key) {
  const ws = new WebSocket(server.url, { headers: { Authorization: `Bearer ${server.token}` } });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const started = await new Promise((r, j) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'started') r(frame);
      if (frame.type === 'error') j(new Error(`start: ${frame.code}`));
    });
    ws.send(JSON.stringify({ type: 'start', key }));
  });
  ws.close();
  return started;
}

// An operator connection (/v1/operator): resolves escalations, sends acks.
export async function operator(server) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/operator`, { headers: { Authorization: `Bearer ${server.operatorToken}` } });
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    frames.push(frame);
    for (const w of [...waiters]) {
      if (w.predicate(frame)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(frame);
      }
    }
  });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  return {
    waitFor(predicate) {
      const found = frames.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((r) => waiters.push({ predicate, resolve: r }));
    },
    send(frame) {
      ws.send(JSON.stringify(frame));
    },
    close() {
      ws.close();
    },
  };
}
