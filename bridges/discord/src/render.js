// How a Backcheck reply looks on Discord: pure functions from the server's frames to Discord API
// message bodies (what POST /channels/:id/messages takes), plus the conversation keys and the
// buttons' custom ids. Nothing here talks to Discord or the server.

import { ActionRowBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, escapeMarkdown } from 'discord.js';
import { fill } from './texts.js';

export const MESSAGE_LIMIT = 2000; // Discord's limit on a message's content
export const EMBED_DESCRIPTION_LIMIT = 4096;
export const EMBED_TITLE_LIMIT = 256;
export const EMBED_FOOTER_LIMIT = 2048;
export const BUTTON_LABEL_LIMIT = 80;
export const CUSTOM_ID_LIMIT = 100;
export const MAX_BUTTONS = 25; // 5 rows of 5
// A chunk that carries buttons keeps room for the choice line that replaces them after a click.
export const CHOICE_RESERVE = 200;

export const LEVEL_COLORS = Object.freeze({
  emergency: 0xed4245, // red
  urgent: 0xe67e22, // orange
  see_doctor: 0xfee75c, // yellow
});

const ALERT_SIGN = '\u26a0\ufe0f'; // warning sign

// Allowed mentions for everything the bridge posts: no @everyone, role or user pings from text.
export const NO_PINGS = Object.freeze({ parse: [] });

// ---- keys ----------------------------------------------------------------------------------

// A DM is one conversation; in a guild, one conversation per channel or thread.
export function keyFor({ guildId, channelId }) {
  return guildId ? `discord:${guildId}:${channelId}` : `discord:dm:${channelId}`;
}

const KEY_PATTERN = /^discord:(dm|\d{1,25}):(\d{1,25})$/;

// The channel a key's conversation lives in (the key holds it, so this works after a restart).
export function channelIdFromKey(key) {
  const match = typeof key === 'string' ? KEY_PATTERN.exec(key) : null;
  return match ? match[2] : null;
}

// ---- buttons -------------------------------------------------------------------------------

export function customIdFor(index, key) {
  return `bc|${index}|${key}`;
}

export function parseCustomId(customId) {
  if (typeof customId !== 'string' || !customId.startsWith('bc|')) return null;
  const second = customId.indexOf('|', 3);
  if (second < 0) return null;
  const digits = customId.slice(3, second);
  if (!/^\d{1,2}$/.test(digits)) return null;
  const index = Number(digits);
  const key = customId.slice(second + 1);
  if (!Number.isInteger(index) || index < 0 || index >= MAX_BUTTONS || channelIdFromKey(key) === null) return null;
  return { index, key };
}

function buttonLabel(text) {
  const label = String(text).trim();
  return label.length <= BUTTON_LABEL_LIMIT ? label : `${label.slice(0, BUTTON_LABEL_LIMIT - 1)}\u2026`;
}

// Quick replies as rows of buttons (at most 25); [] when there are none or the key is too long.
export function buttonRows(quickReplies, key) {
  const choices = (Array.isArray(quickReplies) ? quickReplies : [])
    .filter((choice) => typeof choice === 'string' && choice.trim() !== '')
    .slice(0, MAX_BUTTONS);
  if (choices.length === 0 || customIdFor(MAX_BUTTONS - 1, key).length > CUSTOM_ID_LIMIT) return [];
  const rows = [];
  for (let start = 0; start < choices.length; start += 5) {
    const row = new ActionRowBuilder();
    choices.slice(start, start + 5).forEach((choice, offset) => {
      row.addComponents(
        new ButtonBuilder()
          .setCustomId(customIdFor(start + offset, key))
          .setLabel(buttonLabel(choice))
          .setStyle(ButtonStyle.Secondary),
      );
    });
    rows.push(row.toJSON());
  }
  return rows;
}

// The content of a message whose buttons were clicked: what it said, then the choice.
export function choiceContent(previous, label, texts) {
  const line = `> **${fill(texts.choice, { choice: escapeMarkdown(label) })}**`;
  const before = typeof previous === 'string' ? previous : '';
  const joined = before === '' ? line : `${before}\n\n${line}`;
  if (joined.length <= MESSAGE_LIMIT) return joined;
  return before.length <= MESSAGE_LIMIT ? before : before.slice(0, MESSAGE_LIMIT);
}

// ---- text ----------------------------------------------------------------------------------

function hardCut(text, limit) {
  const out = [];
  let rest = text;
  while (rest.length > limit) {
    let cut = limit;
    const code = rest.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // keep a surrogate pair together
    // do not leave an escaping backslash at the end of a piece
    let slashes = 0;
    while (slashes < cut && rest[cut - 1 - slashes] === '\\') slashes += 1;
    if (slashes % 2 === 1) cut -= 1;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest !== '') out.push(rest);
  return out;
}

function splitOn(text, limit, separators) {
  if (text.length <= limit) return [text];
  const [separator, ...finer] = separators;
  if (separator === undefined) return hardCut(text, limit);
  const out = [];
  let current = null;
  for (const part of text.split(separator)) {
    if (part.length > limit) {
      if (current !== null) out.push(current);
      current = null;
      out.push(...splitOn(part, limit, finer));
      continue;
    }
    if (current === null) current = part;
    else if (current.length + separator.length + part.length <= limit) current += separator + part;
    else {
      out.push(current);
      current = part;
    }
  }
  if (current !== null) out.push(current);
  return out;
}

// Splits text into pieces of at most `limit` characters: on paragraph boundaries where it can,
// then on line breaks, then on spaces, and only then anywhere.
export function splitText(text, limit = MESSAGE_LIMIT) {
  if (typeof text !== 'string' || text.trim() === '') return [];
  const normalized = text.replace(/\r\n/g, '\n').replace(/\n{3,}/g, '\n\n');
  return splitOn(normalized, limit, ['\n\n', '\n', ' '])
    .map((piece) => piece.replace(/^\n+|\n+$/g, ''))
    .filter((piece) => piece.trim() !== '');
}

// The sections a reply drew on, once each, in order.
function sourceSections(sources) {
  const seen = new Set();
  for (const source of Array.isArray(sources) ? sources : []) {
    const section = source && typeof source.section === 'string' ? source.section.trim() : '';
    if (section !== '') seen.add(section);
  }
  return [...seen];
}

// ---- replies -------------------------------------------------------------------------------

// A reply is shown as an alert (the coloured embed, guidance first) when its level is above
// "none" and this message raised it or affirmed a red flag.
export function isAlert(reply) {
  const level = reply && reply.urgency;
  if (!level || level === 'none' || !(level in LEVEL_COLORS)) return false;
  return reply.escalated === true || (Array.isArray(reply.red_flags) && reply.red_flags.length > 0);
}

function alertTitle(level, banners, texts) {
  const banner = banners && typeof banners[level] === 'string' && banners[level].trim() !== ''
    ? banners[level]
    : texts[`level_${level}`];
  const title = `${ALERT_SIGN} ${banner}`;
  return title.length <= EMBED_TITLE_LIMIT ? title : `${title.slice(0, EMBED_TITLE_LIMIT - 1)}\u2026`;
}

// Discord message bodies for one reply, in posting order. `reply` has the reply frame's fields
// (text, urgency, escalated, red_flags, quick_replies, sources); `banners` are the server's
// one-line banners by level (from a `started` frame), if known.
export function renderReply(reply, { key, texts, banners = null }) {
  const text = escapeMarkdown(typeof reply.text === 'string' ? reply.text : '');
  const rows = buttonRows(reply.quick_replies, key);
  const sections = sourceSections(reply.sources);
  const bodies = [];

  if (isAlert(reply)) {
    const [first = '', ...rest] = splitText(text, EMBED_DESCRIPTION_LIMIT);
    const embed = new EmbedBuilder().setColor(LEVEL_COLORS[reply.urgency]).setTitle(alertTitle(reply.urgency, banners, texts));
    if (first !== '') embed.setDescription(first);
    const more = rest.flatMap((piece) => splitText(piece, MESSAGE_LIMIT - CHOICE_RESERVE));
    if (sections.length > 0) {
      const footer = `${texts.sources}: ${sections.join(' \u00b7 ')}`;
      embed.setFooter({ text: footer.length <= EMBED_FOOTER_LIMIT ? footer : `${footer.slice(0, EMBED_FOOTER_LIMIT - 1)}\u2026` });
    }
    bodies.push({ embeds: [embed.toJSON()] });
    for (const piece of more) bodies.push({ content: piece });
  } else {
    for (const piece of splitText(text, MESSAGE_LIMIT - CHOICE_RESERVE)) bodies.push({ content: piece });
    if (sections.length > 0) {
      const line = `-# ${escapeMarkdown(texts.sources)}: ${sections.map((s) => escapeMarkdown(s)).join(' \u00b7 ')}`;
      const last = bodies[bodies.length - 1];
      if (line.length <= MESSAGE_LIMIT - CHOICE_RESERVE) {
        if (last && last.content.length + 1 + line.length <= MESSAGE_LIMIT - CHOICE_RESERVE) last.content += `\n${line}`;
        else bodies.push({ content: line });
      }
    }
  }
  if (bodies.length === 0) return [];
  if (rows.length > 0) bodies[bodies.length - 1].components = rows;
  return bodies.map((body) => ({ ...body, allowed_mentions: NO_PINGS }));
}

// Plain service text (the welcome, a notice, the bridge's own words): escaped and split.
export function renderText(text) {
  return splitText(escapeMarkdown(String(text ?? '')), MESSAGE_LIMIT).map((content) => ({ content, allowed_mentions: NO_PINGS }));
}

// Text that is already Discord markdown (the bridge's texts filled with escaped values).
export function renderMarkdown(markdown) {
  return splitText(String(markdown ?? ''), MESSAGE_LIMIT).map((content) => ({ content, allowed_mentions: NO_PINGS }));
}

// The person's words from a guild message that mentions the bot: the bot's mentions removed.
export function stripMentions(content, botId) {
  if (typeof content !== 'string') return '';
  return content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ').replace(/[ \t]{2,}/g, ' ').trim();
}
