// Conversation keys: a DM is one conversation, "slack:<team>:<channel>"; a mention in a channel
// starts one per thread, "slack:<team>:<channel>:<thread_ts>". The key holds where to answer, so
// the bridge needs no database: after a restart a pushed notice's key still names its place.

export function dmKey(team, channel) {
  return `slack:${team}:${channel}`;
}

export function threadKey(team, channel, threadTs) {
  return `slack:${team}:${channel}:${threadTs}`;
}

// -> { team, channel, threadTs? } or null for a key this bridge did not make.
export function placeOfKey(key) {
  if (typeof key !== 'string') return null;
  const parts = key.split(':');
  if (parts[0] !== 'slack' || (parts.length !== 3 && parts.length !== 4)) return null;
  const [, team, channel, threadTs] = parts;
  if (!team || !channel) return null;
  if (parts.length === 4) {
    if (!/^\d+\.\d+$/.test(threadTs)) return null;
    return { team, channel, threadTs };
  }
  return { team, channel };
}
