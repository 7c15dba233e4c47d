// Unit tests of the Discord rendering, keys, custom ids, texts and settings (no network).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  LEVEL_COLORS,
  MESSAGE_LIMIT,
  buttonRows,
  channelIdFromKey,
  choiceContent,
  customIdFor,
  isAlert,
  keyFor,
  parseCustomId,
  renderReply,
  renderText,
  splitText,
  stripMentions,
} from '../src/render.js';
import { checkTexts, fill, loadTexts } from '../src/texts.js';
import { readConfig } from '../src/config.js';

const texts = loadTexts();

const screening = {
  type: 'reply',
  seq: 1,
  text: "I'm sorry your upper back hurts after training. First: does the pain spread down an arm, or do you have any numbness?",
  urgency: 'none',
  red_flags: [],
  possible_flags: [],
  escalated: false,
  quick_replies: ['Yes', 'No'],
  sources: [{ section: 'Why Does My Upper Back Hurt After Working Out?', quote: '...' }],
};

test('keys: a DM is one conversation, a guild channel or thread another; the channel comes back from the key', () => {
  assert.equal(keyFor({ guildId: null, channelId: '42' }), 'discord:dm:42');
  assert.equal(keyFor({ guildId: '7', channelId: '42' }), 'discord:7:42');
  assert.equal(channelIdFromKey('discord:dm:42'), '42');
  assert.equal(channelIdFromKey('discord:7:42'), '42');
  for (const bad of ['slack:T1:D2', 'discord:dm:', 'discord:x:1', 'discord:dm:1:2', '', null, 12]) {
    assert.equal(channelIdFromKey(bad), null, String(bad));
  }
});

test('custom ids carry the choice index and the key, and only well-formed ones parse', () => {
  const id = customIdFor(3, 'discord:7:42');
  assert.deepEqual(parseCustomId(id), { index: 3, key: 'discord:7:42' });
  for (const bad of ['bc||discord:7:42', 'bc|x|discord:7:42', 'bc|1|slack:T:D', 'other|1|discord:dm:1', 'bc|99|discord:dm:1', 'bc|1']) {
    assert.equal(parseCustomId(bad), null, bad);
  }
});

test('quick replies become rows of at most 5 buttons (25 in all), labels within 80 characters', () => {
  const many = Array.from({ length: 30 }, (_, i) => `choice ${i} ${'x'.repeat(i === 2 ? 100 : 0)}`);
  const rows = buttonRows(many, 'discord:dm:42');
  assert.equal(rows.length, 5);
  for (const row of rows) {
    assert.equal(row.type, 1);
    assert.ok(row.components.length <= 5);
    for (const button of row.components) {
      assert.equal(button.type, 2);
      assert.ok(button.label.length <= 80);
      assert.ok(button.custom_id.length <= 100);
      assert.ok(parseCustomId(button.custom_id));
    }
  }
  assert.deepEqual(buttonRows([], 'discord:dm:42'), []);
  assert.deepEqual(buttonRows(undefined, 'discord:dm:42'), []);
});

test('a plain reply: escaped text, sources as a subtext line, buttons on the last message, no pings', () => {
  const [body, ...more] = renderReply({ ...screening, text: 'Try *gentle* rows_and_stretches @everyone' }, { key: 'discord:dm:42', texts });
  assert.equal(more.length, 0);
  assert.ok(body.content.startsWith('Try \\*gentle\\* rows\\_and\\_stretches @everyone'), body.content);
  assert.match(body.content, /\n-# Source: Why Does My Upper Back Hurt After Working Out\?$/);
  assert.deepEqual(body.components[0].components.map((b) => b.label), ['Yes', 'No']);
  assert.deepEqual(body.allowed_mentions, { parse: [] });
  assert.equal(body.embeds, undefined);
});

test('an alert: one embed coloured by level, the banner as title and the guidance first', () => {
  const urgent = {
    ...screening,
    text: 'Please get medical care today: contact your doctor for a same-day appointment.',
    urgency: 'urgent',
    red_flags: ['tingling'],
    escalated: true,
    quick_replies: ['What should I tell the doctor?'],
  };
  const banners = { urgent: 'Get medical care today.' };
  const [body, ...more] = renderReply(urgent, { key: 'discord:dm:42', texts, banners });
  assert.equal(more.length, 0);
  assert.equal(body.content, undefined, 'nothing before the guidance');
  assert.equal(body.embeds.length, 1);
  const [embed] = body.embeds;
  assert.equal(embed.color, LEVEL_COLORS.urgent);
  assert.equal(embed.title, '\u26a0\ufe0f Get medical care today.');
  assert.ok(embed.description.startsWith('Please get medical care today'));
  assert.match(embed.footer.text, /^Source: /);
  assert.equal(body.components[0].components[0].label, 'What should I tell the doctor?');

  assert.equal(renderReply({ ...urgent, urgency: 'emergency' }, { key: 'discord:dm:42', texts })[0].embeds[0].color, 0xed4245);
  const doctor = renderReply({ ...urgent, urgency: 'see_doctor' }, { key: 'discord:dm:42', texts })[0].embeds[0];
  assert.equal(doctor.color, 0xfee75c);
  assert.equal(doctor.title, `\u26a0\ufe0f ${texts.level_see_doctor}`, 'without banners: the bridge\'s own title');
});

test('alerts only when the level is raised or a red flag affirmed, not for every later reply', () => {
  assert.equal(isAlert({ urgency: 'urgent', escalated: true, red_flags: [] }), true);
  assert.equal(isAlert({ urgency: 'see_doctor', escalated: false, red_flags: ['fever'] }), true);
  assert.equal(isAlert({ urgency: 'urgent', escalated: false, red_flags: [] }), false);
  assert.equal(isAlert({ urgency: 'none', escalated: true, red_flags: ['x'] }), false);
  assert.equal(isAlert({ urgency: 'bogus', escalated: true }), false);
});

test('long text is split on paragraph boundaries under 2,000 characters', () => {
  const paragraph = (n) => `Paragraph ${n}. ${'word '.repeat(150).trim()}`;
  const text = Array.from({ length: 6 }, (_, i) => paragraph(i)).join('\n\n');
  const bodies = renderReply({ ...screening, text }, { key: 'discord:dm:42', texts });
  assert.ok(bodies.length >= 2);
  for (const body of bodies) assert.ok(body.content.length <= MESSAGE_LIMIT, `${body.content.length}`);
  for (const body of bodies) assert.match(body.content, /^Paragraph \d\./, 'each message starts at a paragraph');
  assert.ok(bodies.at(-1).components, 'buttons on the last message only');
  assert.ok(bodies.slice(0, -1).every((b) => !b.components));

  const pieces = splitText('x'.repeat(4500));
  assert.deepEqual(pieces.map((p) => p.length), [2000, 2000, 500]);
  const escaped = splitText(`${'a'.repeat(1999)}\\*b`);
  assert.ok(escaped.every((p) => !p.endsWith('\\') || p.endsWith('\\\\')), 'no escape cut in half');
  assert.deepEqual(splitText('   '), []);
});

test('the choice replaces the buttons, shown under what the message said', () => {
  assert.equal(choiceContent('Is it numb?', 'Yes', texts), 'Is it numb?\n\n> **You chose: Yes**');
  assert.equal(choiceContent('', 'No *way*', texts), '> **You chose: No \\*way\\***');
  const full = 'x'.repeat(1995);
  assert.equal(choiceContent(full, 'Yes', texts), full, 'never over the limit');
});

test('service text is escaped and split; mentions of the bot are removed from what is sent', () => {
  assert.deepEqual(renderText('Someone from the _care team_ has seen it.'), [{ content: 'Someone from the \\_care team\\_ has seen it.', allowed_mentions: { parse: [] } }]);
  assert.equal(stripMentions('<@123> my back <@!123> hurts', '123'), 'my back hurts');
  assert.equal(stripMentions('<@999> hi', '123'), '<@999> hi');
});

test('texts.json is checked: every key a non-empty string with its placeholders', () => {
  assert.deepEqual(checkTexts(texts), []);
  const broken = { ...texts, unavailable: ' ', choice: 'You chose', extra: 'x' };
  const problems = checkTexts(broken);
  assert.ok(problems.some((p) => p.includes('"unavailable"')));
  assert.ok(problems.some((p) => p.includes('{choice}')));
  assert.ok(problems.some((p) => p.includes('unknown key "extra"')));
  const dir = mkdtempSync(path.join(tmpdir(), 'texts-'));
  try {
    const file = path.join(dir, 'texts.json');
    writeFileSync(file, JSON.stringify({ ...texts, rate_limited: '' }));
    assert.throws(() => loadTexts(file), /"rate_limited" must be a non-empty string/);
    writeFileSync(file, '{ not json');
    assert.throws(() => loadTexts(file), /texts\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(fill('{a} and {b} and {c}', { a: 1, b: '{c}' }), '1 and {c} and {c}');
});

test('settings: the tokens are required, the URLs checked', () => {
  const good = readConfig({ DISCORD_TOKEN: 'bot', BACKCHECK_BRIDGE_TOKEN: 'b'.repeat(64) });
  assert.deepEqual(good.problems, []);
  assert.equal(good.config.backcheckUrl, 'ws://127.0.0.1:8080/v1/chat');
  assert.equal(good.config.restApi, null);
  assert.equal(good.config.requestTimeoutMs, 30000);
  const bad = readConfig({ BACKCHECK_URL: 'http://x/v1/chat', DISCORD_API_URL: 'ftp://x', BACKCHECK_REQUEST_TIMEOUT_MS: '5s' });
  assert.equal(bad.problems.length, 5, bad.problems.join('\n'));
});
