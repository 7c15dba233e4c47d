// Configuration from environment variables, checked at start-up (a problem stops the bridge with
// a message naming the variable; no value of a secret is ever printed).
import { fileURLToPath } from 'node:url';

export const DEFAULT_TEXTS = fileURLToPath(new URL('../texts.json', import.meta.url));

export function readConfig(env = process.env) {
  const problems = [];
  const mode = (env.SLACK_MODE || 'socket').toLowerCase();
  if (mode !== 'socket' && mode !== 'http') problems.push('SLACK_MODE must be "socket" (default) or "http"');

  const botToken = env.SLACK_BOT_TOKEN || '';
  if (!botToken) problems.push('SLACK_BOT_TOKEN is required (the Bot User OAuth Token, xoxb-...)');
  else if (!botToken.startsWith('xoxb-')) problems.push('SLACK_BOT_TOKEN must be a bot token (xoxb-...)');

  const appToken = env.SLACK_APP_TOKEN || '';
  const signingSecret = env.SLACK_SIGNING_SECRET || '';
  if (mode === 'socket') {
    if (!appToken) problems.push('SLACK_APP_TOKEN is required in Socket Mode (an app-level token with connections:write, xapp-...)');
    else if (!appToken.startsWith('xapp-')) problems.push('SLACK_APP_TOKEN must be an app-level token (xapp-...)');
  } else if (!signingSecret) {
    problems.push('SLACK_SIGNING_SECRET is required in HTTP mode (Basic Information > App Credentials)');
  }

  const portText = env.SLACK_PORT || env.PORT || '3000';
  const port = Number(portText);
  if (mode === 'http' && (!Number.isInteger(port) || port < 0 || port > 65535)) problems.push('SLACK_PORT must be a port number (0-65535)');

  let slackApiUrl;
  if (env.SLACK_API_URL) {
    slackApiUrl = env.SLACK_API_URL.endsWith('/') ? env.SLACK_API_URL : `${env.SLACK_API_URL}/`;
    if (!/^https?:\/\//.test(slackApiUrl)) problems.push('SLACK_API_URL must be an http(s) URL such as https://slack.com/api/');
  }

  const backcheckUrl = env.BACKCHECK_URL || 'ws://127.0.0.1:8080/v1/chat';
  if (!/^wss?:\/\//.test(backcheckUrl)) problems.push('BACKCHECK_URL must be a ws:// or wss:// URL such as ws://127.0.0.1:8080/v1/chat');
  const bridgeToken = env.BACKCHECK_BRIDGE_TOKEN || '';
  if (!bridgeToken) problems.push('BACKCHECK_BRIDGE_TOKEN is required (this bridge\'s token from the server\'s --bridge-tokens file)');

  const intervalText = env.SLACK_POST_INTERVAL_MS || '1000';
  const postIntervalMs = Number(intervalText);
  if (!Number.isInteger(postIntervalMs) || postIntervalMs < 0) problems.push('SLACK_POST_INTERVAL_MS must be a whole number of milliseconds');

  const timeoutText = env.BACKCHECK_REQUEST_TIMEOUT_MS || '30000';
  const requestTimeoutMs = Number(timeoutText);
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 100) problems.push('BACKCHECK_REQUEST_TIMEOUT_MS must be a whole number of milliseconds (at least 100)');

  const logLevel = (env.LOG_LEVEL || 'info').toLowerCase();
  // Bolt's debug level logs event payloads, i.e. what people write: not offered.
  if (!['info', 'warn', 'error'].includes(logLevel)) problems.push('LOG_LEVEL must be info, warn or error');

  if (problems.length > 0) {
    const error = new Error(problems.join('\n'));
    error.problems = problems;
    throw error;
  }
  return {
    mode,
    botToken,
    appToken,
    signingSecret,
    port,
    host: env.SLACK_HOST || undefined,
    slackApiUrl,
    backcheckUrl,
    bridgeToken,
    postIntervalMs,
    requestTimeoutMs,
    logLevel,
    textsPath: env.BACKCHECK_SLACK_TEXTS || DEFAULT_TEXTS,
  };
}
