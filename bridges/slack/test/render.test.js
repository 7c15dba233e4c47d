// Unit tests of the pieces without I/O: rendering, keys, texts.json, the per-channel queue, config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeMrkdwn, splitText, renderReply, renderGuidance, renderNotice, replaceButtons, isUrgentLayout, LIMITS } from '../src/render.js';
import { dmKey, threadKey, placeOfKey } from '../src/keys.js';
import { loadTexts, validateTexts } from '../src/texts.js';
import { ChannelQueue } from '../src/channel-queue.js';
import { readConfig, DEFAULT_TEXTS } from '../src/config.js';

const texts = loadTexts(DEFAULT_TEXTS);

test('mrkdwn control characters are escaped', () => {
  assert.equal(escapeMrkdwn('a <@U1> & <!channel> > b'), 'a &lt;@U1&gt; &amp; &lt;!channel&gt; &gt; b');
  const [post] = renderReply({ text: 'see <https://evil.example|here> & <!here>', urgency: 'none', quick_replies: [], sources: [] }, { key: 'k', texts });
  assert.equal(post.blocks[0].text.text, 'see &lt;https://evil.example|here&gt; &amp; &lt;!here&gt;');
  assert.ok(!post.text.includes('<'));
});

test('long text is split on paragraph boundaries, under the section and message limits', () => {
  const paragraph = 'word '.repeat(300).trim(); // 1499 chars
  const text = Array.from({ length: 40 }, () => paragraph).join('\n\n');
  const pieces = splitText(text, LIMITS.sectionChars);
  assert.ok(pieces.every((p) => p.length <= LIMITS.sectionChars));
  assert.ok(pieces.every((p) => p.startsWith('word') && p.endsWith('word')));
  assert.equal(pieces.join(' ').split(/\s+/).length, 40 * 300);
  // Two paragraphs of 1499 chars fit one section: paragraphs are not cut.
  assert.equal(pieces[0], `${paragraph}\n\n${paragraph}`);
  const posts = renderReply({ text, urgency: 'none', quick_replies: ['Yes', 'No'], sources: [{ section: 'S', quote: 'q' }] }, { key: 'k', texts });
  assert.ok(posts.length > 1);
  for (const post of posts) {
    const chars = post.blocks.reduce((n, b) => n + (b.text?.text?.length ?? 0), 0);
    assert.ok(chars <= LIMITS.messageChars);
    assert.ok(post.blocks.length <= 50);
    assert.ok(post.text.length <= 40000);
  }
  // Buttons and sources come once, at the end.
  assert.equal(posts.flatMap((p) => p.blocks).filter((b) => b.type === 'actions').length, 1);
  assert.equal(posts.at(-1).blocks.at(-2).type, 'actions');
  assert.equal(posts.at(-1).blocks.at(-1).type, 'context');
  // A single word longer than a section is cut.
  assert.ok(splitText('x'.repeat(7000), 3000).every((p) => p.length <= 3000));
});

test('quick replies become buttons in an actions block naming the key; sources a context block', () => {
  const [post] = renderReply(
    { text: 'Does it spread down an arm?', urgency: 'none', red_flags: [], escalated: false, quick_replies: ['Yes', 'No'], sources: [{ section: 'Why <it> hurts', quote: 'x' }] },
    { key: 'slack:T1:D1', texts },
  );
  assert.deepEqual(post.blocks.map((b) => b.type), ['section', 'actions', 'context']);
  const actions = post.blocks[1];
  assert.equal(actions.block_id, 'bc|slack:T1:D1');
  assert.deepEqual(actions.elements.map((e) => [e.type, e.text.text, e.value, e.action_id]), [
    ['button', 'Yes', 'Yes', 'qr_0'],
    ['button', 'No', 'No', 'qr_1'],
  ]);
  assert.match(post.blocks[2].elements[0].text, /Source: _Why &lt;it&gt; hurts_/);
  assert.equal(post.attachments, undefined);
});

test('urgency: a header with a warning sign, the guidance first in an attachment coloured by level', () => {
  const reply = { text: 'Please get medical care today: ...', urgency: 'urgent', red_flags: ['numbness'], escalated: true, quick_replies: ['Yes'], sources: [{ section: 'Warning signs' }] };
  assert.ok(isUrgentLayout(reply));
  const [post] = renderReply(reply, { key: 'k', texts, banners: { urgent: 'Get medical care today.' } });
  assert.equal(post.blocks[0].type, 'header');
  assert.equal(post.blocks[0].text.text, '⚠️ Get medical care today.');
  assert.equal(post.attachments[0].color, texts.levels.urgent.color);
  assert.deepEqual(post.attachments[0].blocks.map((b) => b.type), ['section', 'actions', 'context']);
  assert.equal(post.attachments[0].blocks[0].text.text, 'Please get medical care today: ...');
  assert.match(post.text, /^⚠️ Get medical care today\./);
  // Without the server's banners, texts.json's header.
  const [emergency] = renderReply({ ...reply, urgency: 'emergency' }, { key: 'k', texts, banners: null });
  assert.equal(emergency.blocks[0].text.text, `⚠️ ${texts.levels.emergency.header}`);
  assert.equal(emergency.attachments[0].color, texts.levels.emergency.color);
  // An urgency carried over from earlier, without a flag in this message: the plain layout.
  assert.ok(!isUrgentLayout({ urgency: 'urgent', red_flags: [], escalated: false }));
  assert.ok(!isUrgentLayout({ urgency: 'none', red_flags: ['x'], escalated: true }));
});

test('an error\'s guidance renders like a reply; a notice with its label', () => {
  const [post] = renderGuidance({ text: 'Call now.', urgency: 'emergency', red_flags: ['chest_pain'], possible_flags: [] }, { texts, banners: null });
  assert.equal(post.blocks[0].type, 'header');
  assert.equal(post.attachments[0].blocks[0].text.text, 'Call now.');
  const [question] = renderGuidance({ text: 'Is it both legs?', urgency: 'none', red_flags: [], possible_flags: ['cord_signs'] }, { texts, banners: null });
  assert.equal(question.blocks[0].text.text, 'Is it both legs?');
  const [notice] = renderNotice({ type: 'notice', text: 'Someone from the care team has seen this.' }, { texts });
  assert.equal(notice.blocks[0].text.text, 'Someone from the care team has seen this.');
  assert.equal(notice.blocks[1].elements[0].text, texts.notice_label);
});

test('a click replaces the buttons by the choice (in blocks or attachments)', () => {
  const [plain] = renderReply({ text: 'Q?', urgency: 'none', quick_replies: ['Yes', 'No'] }, { key: 'k', texts });
  const updated = replaceButtons(plain, 'No', texts);
  assert.deepEqual(updated.blocks.map((b) => b.type), ['section', 'context']);
  assert.equal(updated.blocks[1].elements[0].text, 'You chose: *No*');
  const [urgent] = renderReply({ text: 'G', urgency: 'urgent', escalated: true, red_flags: ['x'], quick_replies: ['Yes'] }, { key: 'k', texts });
  const u = replaceButtons(urgent, 'Yes', texts);
  assert.deepEqual(u.attachments[0].blocks.map((b) => b.type), ['section', 'context']);
  assert.equal(u.blocks[0].type, 'header');
});

test('keys name the place to answer', () => {
  assert.equal(dmKey('T1', 'D2'), 'slack:T1:D2');
  assert.equal(threadKey('T1', 'C3', '1765.0001'), 'slack:T1:C3:1765.0001');
  assert.deepEqual(placeOfKey('slack:T1:D2'), { team: 'T1', channel: 'D2' });
  assert.deepEqual(placeOfKey('slack:T1:C3:1765.0001'), { team: 'T1', channel: 'C3', threadTs: '1765.0001' });
  assert.equal(placeOfKey('discord:dm:1'), null);
  assert.equal(placeOfKey('slack:T1:C3:notats'), null);
});

test('texts.json is checked', () => {
  assert.deepEqual(validateTexts(texts), []);
  const broken = structuredClone(texts);
  delete broken.unavailable;
  broken.chosen = 'no placeholder';
  broken.levels.urgent.color = 'orange';
  const problems = validateTexts(broken);
  assert.equal(problems.length, 3);
  assert.ok(problems.some((p) => p.includes('"unavailable"')));
});

test('the per-channel queue spaces posts to one channel, not across channels', async () => {
  const queue = new ChannelQueue({ intervalMs: 80 });
  const times = { a: [], b: [] };
  const t0 = Date.now();
  await Promise.all([
    queue.run('a', async () => times.a.push(Date.now() - t0)),
    queue.run('a', async () => times.a.push(Date.now() - t0)),
    queue.run('a', async () => times.a.push(Date.now() - t0)),
    queue.run('b', async () => times.b.push(Date.now() - t0)),
  ]);
  assert.ok(times.a[1] - times.a[0] >= 75, `spacing ${times.a}`);
  assert.ok(times.a[2] - times.a[1] >= 75, `spacing ${times.a}`);
  assert.ok(times.b[0] < 60, `channel b waited for a: ${times.b}`);
  // A failing post does not stop the ones after it.
  const failed = queue.run('c', async () => {
    throw new Error('x');
  });
  await assert.rejects(failed);
  assert.equal(await queue.run('c', async () => 'next'), 'next');
});

test('configuration: required variables, modes, no debug logging', () => {
  const base = { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', BACKCHECK_BRIDGE_TOKEN: 't' };
  const c = readConfig(base);
  assert.equal(c.mode, 'socket');
  assert.equal(c.backcheckUrl, 'ws://127.0.0.1:8080/v1/chat');
  assert.equal(readConfig({ ...base, SLACK_API_URL: 'http://x/api' }).slackApiUrl, 'http://x/api/');
  assert.throws(() => readConfig({ ...base, SLACK_APP_TOKEN: '' }), /SLACK_APP_TOKEN/);
  assert.throws(() => readConfig({ ...base, SLACK_MODE: 'http' }), /SLACK_SIGNING_SECRET/);
  assert.equal(readConfig({ ...base, SLACK_APP_TOKEN: '', SLACK_MODE: 'http', SLACK_SIGNING_SECRET: 's', SLACK_PORT: '0' }).port, 0);
  assert.throws(() => readConfig({ ...base, BACKCHECK_BRIDGE_TOKEN: '' }), /BACKCHECK_BRIDGE_TOKEN/);
  assert.throws(() => readConfig({ ...base, LOG_LEVEL: 'debug' }), /LOG_LEVEL/);
  assert.throws(() => readConfig({ ...base, BACKCHECK_URL: 'http://x' }), /BACKCHECK_URL/);
});
