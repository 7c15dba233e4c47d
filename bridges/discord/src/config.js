// The bridge's settings from environment variables (the list is in index.js and ../README.md).

const DEFAULT_URL = 'ws://127.0.0.1:8080/v1/chat';

export function readConfig(env) {
  const problems = [];
  const discordToken = (env.DISCORD_TOKEN ?? '').trim();
  const bridgeToken = (env.BACKCHECK_BRIDGE_TOKEN ?? '').trim();
  const backcheckUrl = (env.BACKCHECK_URL ?? '').trim() || DEFAULT_URL;
  const restApi = (env.DISCORD_API_URL ?? '').trim() || null;
  const timeoutText = (env.BACKCHECK_REQUEST_TIMEOUT_MS ?? '').trim();
  const requestTimeoutMs = timeoutText === '' ? 30000 : Number(timeoutText);
  if (discordToken === '') problems.push('DISCORD_TOKEN is not set (the bot token from the Discord developer portal)');
  if (bridgeToken === '') problems.push('BACKCHECK_BRIDGE_TOKEN is not set (the token of a line of the server\'s --bridge-tokens file)');
  if (!/^wss?:\/\/[^/]+\/.*/.test(backcheckUrl)) problems.push('BACKCHECK_URL must be a ws:// or wss:// URL such as ws://127.0.0.1:8080/v1/chat');
  if (restApi !== null && !/^https?:\/\/[^/]+/.test(restApi)) problems.push('DISCORD_API_URL must be an http:// or https:// URL');
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 100 || requestTimeoutMs > 600000) {
    problems.push('BACKCHECK_REQUEST_TIMEOUT_MS must be a whole number of milliseconds from 100 to 600000');
  }
  return { problems, config: { discordToken, bridgeToken, backcheckUrl, restApi, requestTimeoutMs } };
}
