#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<target>/ from tests/ and knowledge/data.

Run from the repository root (`python3 fuzz/make_corpus.py`); it rewrites the seeds it makes
and leaves any other file there alone (regression inputs added by hand stay). The seeds are
committed; rerun it when the test data it draws on changes a lot.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    (d / name).write_bytes(data)


def slug(text, n=40):
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:n] or "x"


# -- what the tests say ---------------------------------------------------------------------
dev = [json.loads(l) for l in (ROOT / "tests/eval/dev.jsonl").read_text().splitlines() if l.strip()]
convos = sorted((ROOT / "tests/conversations").rglob("*.convo"))
messages = []
for c in convos:
    for line in c.read_text().splitlines():
        if line.startswith("> "):
            messages.append(line[2:].strip())
for d in dev:
    for t in d.get("turns", [d]):
        messages.append(t["text"])
seen, unique = set(), []
for m in messages:
    if m not in seen:
        seen.add(m)
        unique.append(m)
messages = unique

# The frames of tests/unit/server_protocol_test.cpp (R"(...)" literals).
proto = (ROOT / "tests/unit/server_protocol_test.cpp").read_text()
frames = re.findall(r'R"\((.*?)\)"', proto)

# -- fuzz_client_frame ------------------------------------------------------------------------
for i, f in enumerate(frames):
    write("fuzz_client_frame", f"unit_{i:02d}", f)
for i, m in enumerate(messages[::40]):
    frame = {"type": "message", "text": m, "conversation": "fVSlLTq3oV4zEe7WJvm5zw", "ref": f"r{i}"}
    write("fuzz_client_frame", f"message_{slug(m, 30)}", json.dumps(frame, ensure_ascii=False))
write("fuzz_client_frame", "message_escapes", '{"type":"message","text":"caf\\u00e9 \\"ok\\"\\n\\ud83d\\ude00 tab\\t"}')
write("fuzz_client_frame", "message_utf8", '{"type":"message","text":"douleur au dos après le squat — ça pique 😣","ref":"é"}')
write("fuzz_client_frame", "start_resume", '{"type":"start","resume":"fVSlLTq3oV4zEe7WJvm5zw","ref":"1"}')
write("fuzz_client_frame", "unknown_type_utf8", '{"type":"bonjour é","ref":"q"}')

# -- fuzz_operator_frame ----------------------------------------------------------------------
for name, f in {
    "ack": '{"type":"ack","id":7}',
    "ack_big": '{"type":"ack","id":9223372036854775807}',
    "ack_unsigned": '{"type":"ack","id":18446744073709551615}',
    "ack_negative": '{"id":-1,"type":"ack"}',
    "ack_float": '{"type":"ack","id":7.0}',
    "ack_string_id": '{"type":"ack","id":"7"}',
    "ack_no_id": '{"type":"ack"}',
    "unknown_type": '{"type":"nack","id":7}',
    "type_number": '{"type":3}',
    "array": '[{"type":"ack","id":7}]',
    "not_json": "ack 7",
    "nested": '{"type":"ack","id":7,"extra":{"a":[1,2,{"b":null}]}}',
    "utf8": '{"type":"ack\\u00e9","id":1}',
}.items():
    write("fuzz_operator_frame", name, f)

# -- fuzz_static_path -------------------------------------------------------------------------
targets = ["/", "/widget.js?v=3", "/a/b.css", "//etc/passwd", "/docs/", "/index.html#top", "/widget.css",
           "/../README.md", "/%2e%2e/README.md", "/%2E%2E%2FREADME.md", "/..%2f..%2fetc/passwd",
           "/web/../../etc/passwd", "/a/..", "/%00", "/a%5c..%5cb", "/%zz", "/%2", "relative",
           "/./././widget.js", "/a/./b/../c", "/%2e/%2e%2e", "/...", "/.%2e/x", "/a//b///c/"]
for i, t in enumerate(targets):
    write("fuzz_static_path", f"target_{i:02d}", t)

# -- fuzz_request_checks (origin, host, key, content type, X-Forwarded-For, trusted, peer, allowed)
for name, fields in {
    "same_origin": ["http://127.0.0.1:8080", "127.0.0.1:8080", "dGhlIHNhbXBsZSBub25jZQ==", "application/json",
                    "", "", "127.0.0.1", ""],
    "cross_origin": ["https://a.example", "chat.example.org", "x3JJHMbDL1EzLkh9GBhXDw==",
                     "application/json; charset=utf-8", "", "", "203.0.113.7", "https://a.example,https://b.example"],
    "proxied": ["", "chat.example.org", "AQIDBAUGBwgJCgsMDQ4PEC==", "Application/JSON", "198.51.100.1, 10.0.0.2",
                "10.0.0.2,127.0.0.1", "127.0.0.1", ""],
    "proxied_v6": ["null", "[::1]:8080", "bad key", "text/plain", "2001:db8::1,  ::ffff:192.0.2.1 ,",
                   " 127.0.0.1 , ::1", "::1", "*"],
    "garbage": ["http://", "", "========================", ";application/json", ",,,", ",", "", ",,"],
}.items():
    write("fuzz_request_checks", name, "\n".join(fields))

# -- fuzz_convo -------------------------------------------------------------------------------
picked = [c for i, c in enumerate(convos) if i % 5 == 0]
for c in picked:
    write("fuzz_convo", f"{c.parent.name}_{c.stem}.convo", c.read_bytes())
for f in sorted((ROOT / "tests/fixtures").glob("*.convo")):
    write("fuzz_convo", f"fixture_{f.stem}.convo", f.read_bytes())
dev_lines = [l for l in (ROOT / "tests/eval/dev.jsonl").read_text().splitlines() if l.strip()]
write("fuzz_convo", "dev_head.jsonl", "\n".join(dev_lines[:6]) + "\n")
write("fuzz_convo", "dev_turns.jsonl", "\n".join([l for l in dev_lines if '"turns"' in l][:4]) + "\n")
write("fuzz_convo", "dev_facts.jsonl", "\n".join([l for l in dev_lines if '"facts"' in l][:3]) + "\n")
write("fuzz_convo", "every_key.convo", """# every expectation kind
name: every key
> my upper back hurts after rows yesterday and my fingers tingle
  intent: describe_pain
  state: escalated
  urgency: urgent
  escalated: yes
  red flags: tingling
  red flags include: tingling
  text contains: today
  text does not contain: emergency
  text matches: (?i)get medical care (today|now)
  quick replies: Yes, No
  quick replies include: Yes
  sources include: Why Does
""")

# -- fuzz_kb_* --------------------------------------------------------------------------------
def strip_comments(text):
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1]); i += 2; continue
            if c == '"':
                in_str = False
            i += 1
        elif c == '"':
            in_str = True; out.append(c); i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        else:
            out.append(c); i += 1
    return "".join(out)


def first_list(doc):
    """The first top-level array of objects (intents, topics, flags, states...)."""
    for k, v in doc.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            return k, v
    return None, None


for name in ["topics", "intents", "red_flags", "flow", "language"]:
    target = f"fuzz_kb_{name}"
    raw = (ROOT / "knowledge/data" / f"{name}.jsonc").read_text()
    write(target, f"{name}.jsonc", raw)
    doc = json.loads(strip_comments(raw))
    write(target, f"{name}_compact.json", json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    key, items = first_list(doc)
    if key:
        bad = json.loads(json.dumps(doc))
        bad[key][0].pop("id", None)
        write(target, f"{name}_missing_id.json", json.dumps(bad, ensure_ascii=False, indent=1))
        bad = json.loads(json.dumps(doc))
        bad[key].append(json.loads(json.dumps(bad[key][0])))
        write(target, f"{name}_duplicate.json", json.dumps(bad, ensure_ascii=False, indent=1))
        bad = json.loads(json.dumps(doc))
        for k, v in bad[key][0].items():
            if isinstance(v, list) and v and isinstance(v[0], str):
                v[0] = "(unclosed"
            elif isinstance(v, int) and not isinstance(v, bool):
                bad[key][0][k] = 1e300
        write(target, f"{name}_bad_values.json", json.dumps(bad, ensure_ascii=False, indent=1))
    write(target, "empty_object.json", "{}")
    write(target, "comment_only.jsonc", "// nothing\n/* at all */\n")
write("fuzz_kb_article", "article.txt", (ROOT / "knowledge/article.txt").read_bytes())
art = (ROOT / "knowledge/article.txt").read_text()
write("fuzz_kb_article", "article_first_half.txt", art[: len(art) // 2])
write("fuzz_kb_article", "article_no_blank_lines.txt", art.replace("\n\n", "\n"))
write("fuzz_kb_article", "article_crlf.txt", art.replace("\n", "\r\n"))

# -- fuzz_state_json --------------------------------------------------------------------------
base = {"state": "welcome", "urgency": "none", "flags": [], "screening_step": 0, "screened": False,
        "asked_training": False, "pending_flags": [], "turns": 0, "slots": {}}
states = {
    "welcome": base,
    "screening": dict(base, state="screening", screening_step=2, turns=3, asked_training=True),
    "escalated": dict(base, state="escalated", urgency="emergency", flags=["shortness_of_breath", "chest_pain"], turns=4),
    "pending": dict(base, state="advising", pending_flags=["tingling"], screened=True, turns=5),
    "slots": dict(base, state="advising", urgency="see_doctor", flags=["fever"], turns=7,
                  slots={"hours": 48, "exercise": "rows", "exercise_category": "pull", "quality": "ache"}),
    "ended": dict(base, state="ended", urgency="urgent", flags=["numbness"], turns=9, slots={"hours": 0}),
    "unicode": dict(base, state="advising", slots={"exercise": "développé couché 🏋️"}, turns=1),
    "bad_urgency": dict(base, urgency="apocalyptic"),
    "missing_flags": {k: v for k, v in base.items() if k != "flags"},
    "turns_string": dict(base, turns="seven"),
    "hours_float": dict(base, slots={"hours": 2.5}),
    "negative_step": dict(base, screening_step=-1),
}
for name, s in states.items():
    write("fuzz_state_json", name, json.dumps(s, ensure_ascii=False))

# -- fuzz_turn --------------------------------------------------------------------------------
for m in messages[::12]:
    write("fuzz_turn", f"msg_{slug(m)}", m)
for m in ["é", "   ", "ça fait mal au dos après les tractions 😣", "MY ARM IS NUMB!!!", "no fever but my arm is numb",
          "what if I get tingling?", "my friend can't breathe", "I had numbness last year"]:
    write("fuzz_turn", f"extra_{slug(m) if slug(m) != 'x' else str(len(m))}", m)
for c in convos[::15]:
    lines = [l[2:].strip() for l in c.read_text().splitlines() if l.startswith("> ")]
    write("fuzz_turn", f"conversation_{c.stem}", "\n".join(lines))

print("seeds:", {d.name: len(list(d.iterdir())) for d in sorted(CORPUS.iterdir())}, file=sys.stderr)
