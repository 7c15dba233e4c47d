// texts.json: the bridge's own fixed words, checked once at start-up.
import { readFileSync } from 'node:fs';

const STRING_KEYS = ['unavailable', 'rate_limited', 'text_too_long', 'empty_mention', 'chosen', 'notice_label', 'sources_label'];
const LEVELS = ['emergency', 'urgent', 'see_doctor'];

export function validateTexts(texts) {
  const problems = [];
  if (!texts || typeof texts !== 'object' || Array.isArray(texts)) return ['texts.json must hold one JSON object'];
  for (const key of STRING_KEYS) {
    if (typeof texts[key] !== 'string' || texts[key].trim() === '') problems.push(`"${key}" must be a non-empty string`);
  }
  if (typeof texts.chosen === 'string' && !texts.chosen.includes('{choice}')) problems.push('"chosen" must contain {choice}');
  if (!texts.levels || typeof texts.levels !== 'object') {
    problems.push('"levels" must be an object');
  } else {
    for (const level of LEVELS) {
      const entry = texts.levels[level];
      if (!entry || typeof entry !== 'object') {
        problems.push(`"levels.${level}" is missing`);
        continue;
      }
      if (typeof entry.header !== 'string' || entry.header.trim() === '') problems.push(`"levels.${level}.header" must be a non-empty string`);
      if (typeof entry.color !== 'string' || !/^#[0-9A-Fa-f]{6}$/.test(entry.color)) problems.push(`"levels.${level}.color" must be a colour like #B00020`);
    }
  }
  return problems;
}

export function loadTexts(path) {
  let texts;
  try {
    texts = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: ${error.message}`);
  }
  const problems = validateTexts(texts);
  if (problems.length > 0) throw new Error(`${path}: ${problems.join('; ')}`);
  return texts;
}
