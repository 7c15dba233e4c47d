// Entry point: configuration from the environment, texts.json checked, then the bridge runs until
// SIGTERM or SIGINT (Bolt stopped, the server connection closed, exit 0).
import { readConfig } from './config.js';
import { loadTexts } from './texts.js';
import { SlackBridge } from './bridge.js';

function fail(message) {
  process.stderr.write(`slack-bridge: ${message}\n`);
  process.exit(2);
}

let config;
let texts;
try {
  config = readConfig();
  texts = loadTexts(config.textsPath);
} catch (error) {
  fail(`cannot start:\n${error.message}`);
}

const bridge = new SlackBridge(config, { texts });
let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`slack-bridge: ${signal}: stopping\n`);
  const force = setTimeout(() => process.exit(0), 5000);
  force.unref();
  await bridge.stop();
  process.stderr.write('slack-bridge: stopped\n');
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

try {
  await bridge.start();
  process.stderr.write(`slack-bridge: ready (${config.mode} mode)\n`);
} catch (error) {
  fail(`cannot connect to Slack: ${error?.data?.error || error?.code || error?.message}`);
}
