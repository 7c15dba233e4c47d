// Starts the Discord bridge from environment variables (see ../README.md):
//   DISCORD_TOKEN           the bot token (required)
//   BACKCHECK_BRIDGE_TOKEN  the bridge token the server's --bridge-tokens file holds (required)
//   BACKCHECK_URL           the server's chat endpoint (default ws://127.0.0.1:8080/v1/chat)
//   DISCORD_API_URL         another REST base than https://discord.com/api (tests: a fake Discord)
//   BACKCHECK_REQUEST_TIMEOUT_MS  how long a message waits for the server's answer (default 30000)
// Stops cleanly on SIGTERM and SIGINT (exit status 0).

import { DiscordBridge } from './bridge.js';
import { loadTexts } from './texts.js';
import { readConfig } from './config.js';

function log(line) {
  process.stderr.write(`discord-bridge: ${line}\n`);
}

async function main() {
  const { problems, config } = readConfig(process.env);
  let texts;
  try {
    texts = loadTexts();
  } catch (error) {
    problems.push(error.message);
  }
  if (problems.length > 0) {
    for (const problem of problems) log(problem);
    process.exit(2);
  }

  let stopping = false;
  const bridge = new DiscordBridge({
    ...config,
    texts,
    log,
    onFatal: () => {
      if (stopping) return;
      stopping = true;
      bridge.stop().catch(() => {}).finally(() => process.exit(1));
    },
  });
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    const force = setTimeout(() => {
      log('did not stop within 10 s; exiting');
      process.exit(1);
    }, 10000);
    force.unref();
    try {
      await bridge.stop();
    } catch (error) {
      log(`stop failed: ${error?.code ?? error?.name ?? 'error'}`);
    }
    log('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    await bridge.start();
  } catch (error) {
    if (stopping) return;
    stopping = true;
    // discord.js names the problem (TokenInvalid, DisallowedIntents, ...) without the token.
    log(`cannot start: ${error?.code ?? error?.name ?? 'error'}${error?.message ? ` (${error.message})` : ''}`);
    await bridge.stop().catch(() => {});
    process.exit(1);
  }
}

main();
