// Pure functions: a Backcheck reply (or notice, or error guidance) -> Slack chat.postMessage
// arguments (Block Kit). No I/O here, so the layout is tested without Slack.

export const LIMITS = {
  sectionChars: 3000, // a section block's text
  messageChars: 12000, // text per posted message (Slack allows 40,000; long walls are split earlier)
  blocksPerMessage: 45, // Slack allows 50
  headerChars: 150, // a header block's plain_text
  buttonChars: 75, // a button's text
  buttonsPerBlock: 25,
  buttonValueChars: 2000,
  contextElements: 10,
  blockIdChars: 255,
};

export const ACTION_PREFIX = 'qr_';
export const ACTIONS_BLOCK_PREFIX = 'bc|'; // block_id of a quick-reply block: "bc|" + conversation key

// Slack mrkdwn: &, <, > are control characters (links, mentions); everything the server writes is
// shown as text.
export function escapeMrkdwn(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function truncate(text, max) {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

// Splits text into pieces of at most `max` characters, on paragraph boundaries when possible,
// then lines, then words, and only then mid-word.
export function splitText(text, max) {
  const pieces = [];
  const push = (piece) => {
    if (piece.trim().length > 0) pieces.push(piece.trim());
  };
  const separators = ['\n\n', '\n', ' '];
  const split = (chunk, level) => {
    if (chunk.length <= max) return push(chunk);
    if (level >= separators.length) {
      for (let i = 0; i < chunk.length; i += max) push(chunk.slice(i, i + max));
      return;
    }
    const sep = separators[level];
    const parts = chunk.split(sep);
    let current = '';
    for (const part of parts) {
      const candidate = current === '' ? part : current + sep + part;
      if (candidate.length <= max) {
        current = candidate;
        continue;
      }
      if (current !== '') push(current);
      if (part.length > max) {
        split(part, level + 1);
        current = '';
      } else {
        current = part;
      }
    }
    if (current !== '') push(current);
  };
  split(String(text).replace(/\r\n/g, '\n'), 0);
  return pieces;
}

export function isUrgentLayout(reply) {
  const level = reply.urgency;
  if (!level || level === 'none') return false;
  return reply.escalated === true || (Array.isArray(reply.red_flags) && reply.red_flags.length > 0);
}

function sectionBlocks(text) {
  // Escaping can lengthen the text (& -> &amp;), so split the escaped text.
  return splitText(escapeMrkdwn(text), LIMITS.sectionChars).map((piece) => ({
    type: 'section',
    text: { type: 'mrkdwn', text: piece },
  }));
}

function actionsBlock(key, quickReplies) {
  const elements = quickReplies.slice(0, LIMITS.buttonsPerBlock).map((choice, i) => ({
    type: 'button',
    action_id: `${ACTION_PREFIX}${i}`,
    text: { type: 'plain_text', text: truncate(choice, LIMITS.buttonChars), emoji: true },
    value: truncate(choice, LIMITS.buttonValueChars),
  }));
  return { type: 'actions', block_id: `${ACTIONS_BLOCK_PREFIX}${key}`.slice(0, LIMITS.blockIdChars), elements };
}

function sourcesBlock(sources, texts) {
  const elements = sources.slice(0, LIMITS.contextElements).map((source, i) => ({
    type: 'mrkdwn',
    text: truncate(`${i === 0 ? `${escapeMrkdwn(texts.sources_label)} ` : ''}_${escapeMrkdwn(source.section || '')}_`, 3000),
  }));
  return { type: 'context', elements };
}

// Groups blocks into messages under the per-message limits (text and block count).
function groupIntoMessages(blocks) {
  const messages = [];
  let current = [];
  let chars = 0;
  for (const block of blocks) {
    const size = block.text?.text?.length ?? 0;
    if (current.length > 0 && (current.length >= LIMITS.blocksPerMessage || chars + size > LIMITS.messageChars)) {
      messages.push(current);
      current = [];
      chars = 0;
    }
    current.push(block);
    chars += size;
  }
  if (current.length > 0) messages.push(current);
  return messages;
}

function fallbackText(blocks) {
  return truncate(
    blocks
      .filter((b) => b.type === 'section' || b.type === 'header')
      .map((b) => b.text.text)
      .join('\n\n'),
    3000,
  );
}

// A reply -> an array of postMessage payloads (without channel/thread_ts), in posting order.
// `banners`: level -> banner line from the server's `started` frame (or null: texts.json's).
export function renderReply(reply, { key, texts, banners }) {
  const quickReplies = Array.isArray(reply.quick_replies) ? reply.quick_replies.filter((q) => typeof q === 'string' && q) : [];
  const sources = Array.isArray(reply.sources) ? reply.sources.filter((s) => s && typeof s === 'object') : [];
  const body = sectionBlocks(reply.text || '');
  if (quickReplies.length > 0 && key) body.push(actionsBlock(key, quickReplies));
  if (sources.length > 0) body.push(sourcesBlock(sources, texts));
  const groups = groupIntoMessages(body);
  if (groups.length === 0) groups.push([]);

  if (!isUrgentLayout(reply)) {
    return groups.map((blocks) => ({ text: fallbackText(blocks) || ' ', blocks }));
  }
  // Urgent: a header with a warning sign first, then the guidance inside an attachment coloured
  // by level (every part of a long guidance keeps the colour).
  const level = texts.levels[reply.urgency] || texts.levels.urgent;
  const banner = (banners && typeof banners[reply.urgency] === 'string' && banners[reply.urgency]) || level.header;
  const header = { type: 'header', text: { type: 'plain_text', text: truncate(`⚠️ ${banner}`, LIMITS.headerChars), emoji: true } };
  return groups.map((blocks, i) => {
    const top = i === 0 ? [header] : [];
    return {
      text: truncate(`⚠️ ${banner}\n\n${fallbackText(blocks)}`, 3000),
      blocks: top,
      attachments: [{ color: level.color, fallback: truncate(fallbackText(blocks) || banner, 3000), blocks }],
    };
  });
}

// An error's safety guidance ({text, urgency, red_flags, possible_flags}) is shown like a reply.
export function renderGuidance(guidance, { texts, banners }) {
  const redFlags = Array.isArray(guidance.red_flags) ? guidance.red_flags : [];
  return renderReply(
    { text: guidance.text, urgency: guidance.urgency, red_flags: redFlags, escalated: redFlags.length > 0, quick_replies: [], sources: [] },
    { key: null, texts, banners },
  );
}

// A pushed notice (e.g. the care team has seen the escalation).
export function renderNotice(frame, { texts }) {
  const blocks = [...sectionBlocks(frame.text || ''), { type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(texts.notice_label) }] }];
  return groupIntoMessages(blocks).map((group) => ({ text: fallbackText(group) || ' ', blocks: group }));
}

// One of the bridge's own texts as a plain message.
export function renderPlain(text) {
  return [{ text: escapeMrkdwn(text), blocks: sectionBlocks(text) }];
}

// After a click: the clicked message's blocks and attachments with its quick-reply block replaced
// by a context line naming the choice.
export function replaceButtons(message, choice, texts) {
  const chosen = { type: 'context', elements: [{ type: 'mrkdwn', text: texts.chosen.replace('{choice}', escapeMrkdwn(choice)) }] };
  const swap = (blocks) =>
    (blocks || []).map((block) =>
      block.type === 'actions' && typeof block.block_id === 'string' && block.block_id.startsWith(ACTIONS_BLOCK_PREFIX)
        ? { ...chosen, block_id: block.block_id.replace(ACTIONS_BLOCK_PREFIX, 'chosen|').slice(0, LIMITS.blockIdChars) }
        : block,
    );
  const update = { text: message.text || ' ', blocks: swap(message.blocks) };
  if (Array.isArray(message.attachments) && message.attachments.length > 0) {
    update.attachments = message.attachments.map((a) => (a.blocks ? { ...a, blocks: swap(a.blocks) } : a));
  }
  return update;
}
