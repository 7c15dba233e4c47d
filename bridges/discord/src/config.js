// The bridge's settings from environment variables (the list is in index.js and ../README.md).

const DEFAULT_URL = 'ws://127.0.0.1:8080/v1/chat';

export function readConfig(env) {
  const problems = [];
  const discordToken = (env.DISCORD_TOKEN ?? '').trim();
  const bridgeToken = (env.BACKCHECK_BRIDGE_TOKEN ?? '').trim();
  const backcheckUrl = (env.BACKCHECK_URL ?? '').trim() || DEFAULT_URL;
  const restApi = (env.DISCORD_API_URL ?? '').trim() || null;
  if (discordToken === '') problems.push('DISCORD_TOKEN is not set (the bot token from the Discord developer portal)');
  if (bridgeToken === '') problems.push('BACKCHECK_BRIDGE_TOKEN is not set (the token of a line of the server\'s --bridge-tokens file)');
  if (!/^wss?:\/\/[^/]+\/.*/.test(backcheckUrl)) problems.push('BACKCHECK_URL must be a ws:// or wss:// URL such as ws://127.0.0.1:8080/v1/chat');
  if (restApi !== null && !/^https?:\/\/[^/]+/.test(restApi)) problems.push('DISCORD_API_URL must be an http:// or https:// URL');
  return { problems, config: { discordToken, bridgeToken, backcheckUrl, restApi } };
}
