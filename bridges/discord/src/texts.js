// The bridge's own fixed words (texts.json beside src/): loaded and checked once at start-up, so a
// missing or empty text is a start-up error naming the key, not a blank message to a person later.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TEXTS_PATH = fileURLToPath(new URL('../texts.json', import.meta.url));

// Each key and the placeholders its text must hold.
const REQUIRED = {
  unavailable: [],
  rate_limited: [],
  text_too_long: [],
  empty_mention: [],
  choice: ['choice'],
  sources: [],
  level_emergency: [],
  level_urgent: [],
  level_see_doctor: [],
  operator_message: ['operator', 'text'],
  handoff_joined: ['operator'],
  handoff_left: ['operator'],
};

export function checkTexts(texts) {
  const problems = [];
  if (!texts || typeof texts !== 'object' || Array.isArray(texts)) return ['texts must be a JSON object'];
  for (const [key, placeholders] of Object.entries(REQUIRED)) {
    const value = texts[key];
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`"${key}" must be a non-empty string`);
      continue;
    }
    for (const name of placeholders) {
      if (!value.includes(`{${name}}`)) problems.push(`"${key}" must contain {${name}}`);
    }
    if (value.length > 1500) problems.push(`"${key}" is longer than 1500 characters`);
  }
  for (const key of Object.keys(texts)) {
    if (!(key in REQUIRED) && !key.startsWith('_')) problems.push(`unknown key "${key}"`);
  }
  return problems;
}

export function loadTexts(path = TEXTS_PATH) {
  let texts;
  try {
    texts = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: ${error.message}`);
  }
  const problems = checkTexts(texts);
  if (problems.length > 0) throw new Error(`${path}: ${problems.join('; ')}`);
  return Object.freeze({ ...texts });
}

// Fills {name} placeholders; values are inserted as given (escape them first where needed).
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
