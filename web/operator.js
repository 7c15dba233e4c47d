/* Backcheck care team console, served at GET /operator (web/operator.html); docs/console.md.
 * Signs in with an operator's token (POST /v1/operator/session: an HttpOnly cookie), then holds
 * the operator WebSocket /v1/operator: a live queue of open escalations, a conversation's
 * transcript (GET /v1/operator/conversations/ID), claim / join / say / leave / ack.
 * Plain ES2020, no dependencies, no build step. Everything a person, an operator or the server
 * writes is rendered with textContent, never innerHTML. */
(() => {
  "use strict";

  // ---- the console's own words (chrome only) ----
  // {name}, {level}, {flags}, {n} are filled in.
  const TEXTS = {
    title: "Care team console",
    brand: "Backcheck",
    status: { connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…", offline: "Signed out" },
    signInHeading: "Sign in",
    signInIntro: "Sign in with the operator token you were given. It is kept only as a session cookie in this browser.",
    tokenLabel: "Operator token",
    signIn: "Sign in",
    signingIn: "Signing in…",
    wrongToken: "That token was not accepted. Check it and try again.",
    signInFailed: "Signing in did not work (the server answered {n}). Try again in a moment.",
    networkError: "The server cannot be reached. Check the connection and try again.",
    sessionEnded: "Your sign-in has ended (it expired, or the server restarted). Please sign in again.",
    signedInAs: "Signed in as ",
    signOut: "Sign out",
    queueHeading: "Open escalations",
    queueCount: "{n} open",
    queueEmpty: "No open escalations. New ones appear here as they happen.",
    levels: { emergency: "Emergency", urgent: "Urgent", see_doctor: "See a doctor", none: "No red flag" },
    flagsNone: "no flag named",
    claimedBy: "Claimed by {name}",
    joinedBy: "{name} has joined",
    unclaimed: "Not claimed",
    you: "{name} (you)",
    ago: { now: "just now", s: "{n} s ago", m: "{n} min ago", h: "{n} h ago", d: "{n} d ago" },
    detailHeading: "Conversation",
    detailEmpty: "Select an escalation in the queue to see its conversation.",
    conversationLabel: "Conversation {n}",
    factsUrgency: "Urgency",
    factsFlags: "Red flags",
    factsClaimed: "Claimed",
    factsJoined: "Writing to the person",
    nobody: "Nobody (the assistant answers)",
    actionsLabel: "Conversation actions",
    claim: "Claim",
    join: "Join",
    leave: "Leave",
    ackHeading: "Acknowledge",
    ackNote: "Note (optional)",
    ack: "Acknowledge",
    ackWhich: "Acknowledges the {level} escalation of {at}.",
    ackNone: "This conversation has no open escalation.",
    transcriptLabel: "Transcript",
    transcriptEmpty: "Nothing has been said yet.",
    loading: "Loading the transcript…",
    loadFailed: "The transcript could not be loaded ({n}).",
    person: "Person",
    assistant: "Assistant",
    operatorRole: "care team",
    someone: "Someone",
    escalatedHere: "Red flag: escalated",
    // The audit: what operators did, shown in the transcript after the turn it followed.
    audit: {
      claim: "{name} claimed the escalation",
      join: "{name} joined: the assistant is quiet",
      leave: "{name} left: the assistant answers again",
      ack: "{name} acknowledged the escalation",
    },
    auditNote: "Note: {note}",
    sayLabel: "Message to the person",
    sayHint: "Join the conversation to write to the person.",
    sayPlaceholder: "Write to the person…",
    send: "Send",
    sending: "Sending…",
    newEscalation: "New {level} escalation: {flags}",
    errorPrefix: "The server refused that: ",
    // An error that names the action it answers (by the action's ref) says which it was.
    refused: {
      claim: "Claiming was refused: ",
      join: "Joining was refused: ",
      say: "Your message was not sent: ",
      leave: "Leaving was refused: ",
      ack: "Acknowledging was refused: ",
    },
    refusedIn: "Conversation {n}: ",
  };
  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));

  const WS_URL = location.origin.replace(/^http/i, "ws") + "/v1/operator";
  const API = "/v1/operator";
  const RANK = { emergency: 3, urgent: 2, see_doctor: 1, none: 0 };
  const MAX_PAGES = 25;        // transcript pages of 200 turns fetched back (5,000 turns)
  const AGE_TICK_MS = 15000;   // how often ages are redrawn
  const BACKGROUND_FETCHES = 4; // transcripts fetched at once for the queue's "claimed by"

  // ---- DOM helpers ----
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (v === true) node.setAttribute(k, "");
      else if (v !== false && v != null) node.setAttribute(k, String(v));
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }
  const str = (v) => (typeof v === "string" ? v : "");
  const levelName = (l) => TEXTS.levels[l] || String(l || "");
  const flagText = (flags) => {
    const list = Array.isArray(flags) ? flags.filter((f) => typeof f === "string" && f) : [];
    return list.length ? list.map((f) => f.replace(/_/g, " ")).join(", ") : TEXTS.flagsNone;
  };
  const shortId = (id) => str(id).slice(0, 8);
  function ageText(at, now) {
    const t = Date.parse(at);
    if (!Number.isFinite(t)) return "";
    const s = Math.max(0, Math.floor((now - t) / 1000));
    if (s < 10) return TEXTS.ago.now;
    if (s < 60) return fill(TEXTS.ago.s, { n: s });
    if (s < 3600) return fill(TEXTS.ago.m, { n: Math.floor(s / 60) });
    if (s < 86400) return fill(TEXTS.ago.h, { n: Math.floor(s / 3600) });
    return fill(TEXTS.ago.d, { n: Math.floor(s / 86400) });
  }
  const localTime = (at) => { const d = new Date(at); return Number.isFinite(d.getTime()) ? d.toLocaleString() : ""; };

  // ---- state ----
  let me = null;                 // the signed-in operator's name
  let ws = null;
  let attempt = 0;
  let retryTimer = null;
  let ageTimer = null;
  const escalations = new Map(); // id -> escalation frame (open ones only)
  const convs = new Map();       // conversation id -> {claimed_by, operator, urgency, red_flags, turns: Map, loaded, loading, error, pendingSays: []}
  let selected = null;           // {conversation, escalation (id or null)}
  let generation = 0;            // bumped on sign-out: answers to older requests are dropped
  const acked = new Set();       // ids acknowledged while we watched (a slow transcript must not bring them back)
  const inflight = new Map();    // ref -> an action sent, not yet confirmed: {type, conversation, id?, text?} (oldest first)
  let lastRef = 0;               // each action's frame carries a new ref; the server echoes it on its error or `said`

  function conv(id) {
    let c = convs.get(id);
    if (!c) {
      c = { claimed_by: "", operator: "", urgency: "none", red_flags: [], turns: new Map(), loaded: false,
        loading: null, error: "", pendingSays: [], fetchedOnce: false, actions: [] };
      convs.set(id, c);
    }
    return c;
  }

  // ---- the page ----
  const app = document.getElementById("op-app") || document.body.appendChild(el("div", { id: "op-app", class: "op-app" }));
  app.replaceChildren();

  const status = el("p", { class: "op-status", role: "status", "data-state": "offline", text: TEXTS.status.offline });
  const whoName = el("strong", { class: "op-who-name" });
  const signOutButton = el("button", { type: "button", class: "op-button op-signout", text: TEXTS.signOut });
  const who = el("div", { class: "op-who", hidden: true }, el("span", {}, TEXTS.signedInAs, whoName), signOutButton);
  const header = el("header", { class: "op-top" },
    el("div", { class: "op-brand" }, el("p", { class: "op-brand-name", text: TEXTS.brand }), el("h1", { class: "op-title", text: TEXTS.title })),
    el("div", { class: "op-top-end" }, status, who));

  // Sign-in
  const tokenInput = el("input", { type: "password", id: "op-token", name: "token", class: "op-input", autocomplete: "current-password",
    required: true, spellcheck: "false", "aria-describedby": "op-signin-intro" });
  const signInButton = el("button", { type: "submit", class: "op-button op-primary", text: TEXTS.signIn });
  const signInError = el("p", { class: "op-error", id: "op-signin-error", role: "alert" });
  const signInForm = el("form", { class: "op-signin-form", novalidate: true },
    el("label", { for: "op-token", class: "op-label", text: TEXTS.tokenLabel }), tokenInput, signInButton, signInError);
  const signIn = el("section", { class: "op-signin", "aria-labelledby": "op-signin-title", hidden: true },
    el("h2", { id: "op-signin-title", text: TEXTS.signInHeading }),
    el("p", { id: "op-signin-intro", class: "op-hint", text: TEXTS.signInIntro }), signInForm);

  // Queue
  const queueCount = el("span", { class: "op-count" });
  const queueList = el("ul", { class: "op-queue-list", "aria-labelledby": "op-queue-title" });
  const queueEmpty = el("p", { class: "op-empty", text: TEXTS.queueEmpty });
  const queue = el("section", { class: "op-queue", "aria-labelledby": "op-queue-title" },
    el("h2", { id: "op-queue-title", class: "op-section-title" }, TEXTS.queueHeading, " ", queueCount), queueEmpty, queueList);

  // Detail
  const detailTitle = el("h2", { id: "op-detail-title", class: "op-section-title", tabindex: "-1", text: TEXTS.detailHeading });
  const detailEmpty = el("p", { class: "op-empty", text: TEXTS.detailEmpty });
  const facts = el("dl", { class: "op-facts" });
  const claimButton = el("button", { type: "button", class: "op-button", "data-action": "claim", text: TEXTS.claim });
  const joinButton = el("button", { type: "button", class: "op-button", "data-action": "join", text: TEXTS.join });
  const leaveButton = el("button", { type: "button", class: "op-button", "data-action": "leave", text: TEXTS.leave });
  const actions = el("div", { class: "op-actions", role: "group", "aria-label": TEXTS.actionsLabel }, claimButton, joinButton, leaveButton);
  const noteInput = el("input", { type: "text", id: "op-note", name: "note", class: "op-input", maxlength: 2000, autocomplete: "off" });
  const ackButton = el("button", { type: "submit", class: "op-button op-primary", text: TEXTS.ack });
  const ackWhich = el("p", { class: "op-hint", id: "op-ack-which" });
  const ackForm = el("form", { class: "op-ack", "aria-labelledby": "op-ack-title" },
    el("h3", { id: "op-ack-title", class: "op-visually-hidden", text: TEXTS.ackHeading }),
    el("label", { for: "op-note", class: "op-label", text: TEXTS.ackNote }),
    el("div", { class: "op-row" }, noteInput, ackButton), ackWhich);
  ackButton.setAttribute("aria-describedby", "op-ack-which");
  const actionError = el("p", { class: "op-error", role: "alert" });
  const transcript = el("div", { class: "op-transcript", role: "log", "aria-live": "polite", "aria-label": TEXTS.transcriptLabel, tabindex: "0" });
  const transcriptNote = el("p", { class: "op-hint op-transcript-note" });
  const sayInput = el("textarea", { id: "op-say", name: "say", class: "op-input op-say-input", rows: 2, maxlength: 8000,
    placeholder: TEXTS.sayPlaceholder, "aria-describedby": "op-say-hint", disabled: true });
  const sayButton = el("button", { type: "submit", class: "op-button op-primary", text: TEXTS.send, disabled: true });
  const sayHint = el("p", { class: "op-hint", id: "op-say-hint", text: TEXTS.sayHint });
  const sayForm = el("form", { class: "op-say" },
    el("label", { for: "op-say", class: "op-label", text: TEXTS.sayLabel }), el("div", { class: "op-row" }, sayInput, sayButton), sayHint);
  const detailBody = el("div", { class: "op-detail-body", hidden: true },
    facts, actions, actionError, ackForm, transcriptNote, transcript, sayForm);
  const detail = el("section", { class: "op-detail", "aria-labelledby": "op-detail-title" }, detailTitle, detailEmpty, detailBody);

  const announcer = el("div", { class: "op-visually-hidden", role: "alert" });
  const consoleMain = el("div", { class: "op-console", hidden: true }, queue, detail);
  const main = el("main", { class: "op-main" }, signIn, consoleMain);
  app.append(header, main, announcer);

  // ---- rendering ----
  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = TEXTS.status[state];
  }

  function levelBadge(level) {
    return el("span", { class: "op-level", "data-level": level },
      el("span", { class: "op-level-mark", "aria-hidden": "true" }), el("span", { class: "op-level-text", text: levelName(level) }));
  }

  function sortedEscalations() {
    return [...escalations.values()].sort((a, b) =>
      (RANK[b.level] || 0) - (RANK[a.level] || 0) || (Date.parse(a.at) || 0) - (Date.parse(b.at) || 0) || a.id - b.id);
  }

  function claimText(c) {
    if (!c || !c.fetchedOnce && !c.claimed_by) return TEXTS.unclaimed;
    if (c.operator) return fill(TEXTS.joinedBy, { name: c.operator });
    return c.claimed_by ? fill(TEXTS.claimedBy, { name: c.claimed_by }) : TEXTS.unclaimed;
  }

  function renderQueue() {
    const now = Date.now();
    const list = sortedEscalations();
    queueCount.textContent = list.length ? "(" + fill(TEXTS.queueCount, { n: list.length }) + ")" : "";
    queueEmpty.hidden = list.length > 0;
    const hadFocus = queueList.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    queueList.replaceChildren();
    for (const e of list) {
      const c = convs.get(e.conversation);
      const isSelected = selected && selected.escalation === e.id;
      const claimed = c && (c.operator || c.claimed_by);
      const button = el("button", {
        type: "button", class: "op-item", "data-id": e.id, "data-conversation": e.conversation, "data-level": e.level,
        "aria-current": isSelected ? "true" : false,
      },
      el("span", { class: "op-item-top" }, levelBadge(e.level),
        el("time", { class: "op-age", datetime: e.at, title: localTime(e.at), text: ageText(e.at, now) })),
      el("span", { class: "op-item-flags", text: flagText(e.flags) }),
      el("span", { class: "op-item-text", text: "“" + str(e.text) + "”" }),
      el("span", { class: "op-item-claim", "data-claimed": claimed ? "true" : "false", text: claimText(c) }));
      button.addEventListener("click", () => select(e.conversation, e.id, true));
      queueList.append(el("li", { class: "op-queue-item" }, button));
    }
    if (hadFocus) {
      const again = queueList.querySelector(`button[data-id="${CSS.escape(hadFocus)}"]`);
      if (again) again.focus();
    }
  }

  function openOf(conversation) {
    return sortedEscalations().filter((e) => e.conversation === conversation);
  }

  function fact(term, value, attrs) {
    return [el("dt", { text: term }), el("dd", attrs || {}, value)];
  }

  function renderDetail() {
    if (!selected) {
      detailTitle.textContent = TEXTS.detailHeading;
      detailEmpty.hidden = false;
      detailBody.hidden = true;
      return;
    }
    const c = conv(selected.conversation);
    detailTitle.textContent = fill(TEXTS.conversationLabel, { n: shortId(selected.conversation) });
    detailTitle.title = selected.conversation;
    detailEmpty.hidden = true;
    detailBody.hidden = false;
    const open = openOf(selected.conversation);
    let urgency = c.urgency || "none";
    for (const e of open) if ((RANK[e.level] || 0) > (RANK[urgency] || 0)) urgency = e.level;
    const flags = new Set(c.red_flags || []);
    for (const e of open) for (const f of e.flags || []) flags.add(f);
    const you = (n) => (n && n === me ? fill(TEXTS.you, { name: n }) : n);
    facts.replaceChildren(
      ...fact(TEXTS.factsUrgency, levelBadge(urgency)),
      ...fact(TEXTS.factsFlags, flagText([...flags])),
      ...fact(TEXTS.factsClaimed, c.claimed_by ? you(c.claimed_by) : TEXTS.unclaimed, { class: "op-claimed-by" }),
      ...fact(TEXTS.factsJoined, c.operator ? you(c.operator) : TEXTS.nobody, { class: "op-joined-by" }));
    const pending = [...inflight.values()];
    const busy = (type) => pending.some((a) => a.type === type && a.conversation === selected.conversation);
    const joined = c.operator === me;
    claimButton.disabled = !isLive() || c.claimed_by === me || busy("claim");
    joinButton.disabled = !isLive() || joined || (!!c.operator && c.operator !== me) || busy("join");
    leaveButton.disabled = !isLive() || !joined || busy("leave");
    // The escalation the Acknowledge button is for: the selected one if still open, else the first open.
    if (!open.some((e) => e.id === selected.escalation)) selected.escalation = open.length ? open[0].id : null;
    const target = open.find((e) => e.id === selected.escalation);
    ackButton.disabled = !isLive() || !target || pending.some((a) => a.type === "ack" && target && a.id === target.id);
    noteInput.disabled = !target;
    ackWhich.textContent = target ? fill(TEXTS.ackWhich, { level: levelName(target.level).toLowerCase(), at: localTime(target.at) }) : TEXTS.ackNone;
    sayInput.disabled = !joined;
    sayButton.disabled = !joined || !isLive();
    sayHint.hidden = joined;
    renderTranscript(c);
  }

  function turnKey(t) { return t.seq + ":" + t.role + (t.role === "user" ? "" : ":" + (t.operator || "")); }

  function renderTranscript(c) {
    if (c.loading && !c.loaded) transcriptNote.textContent = TEXTS.loading;
    else if (c.error) transcriptNote.textContent = c.error;
    else transcriptNote.textContent = "";
    transcriptNote.hidden = !transcriptNote.textContent;
    // Audited actions follow the turn they came after (their seq); an operator's message is
    // already a turn, with its author.
    const shown = c.actions.filter((a) => TEXTS.audit[a.action]).map((a) => ({ ...a, role: "action" }));
    const turns = [...c.turns.values(), ...shown].sort((a, b) => a.seq - b.seq || order(a) - order(b) || (a.at || 0) - (b.at || 0));
    const atEnd = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    const items = turns.map((t) => (t.role === "action" ? actionItem(t) : turnItem(t)));
    for (const p of c.pendingSays) {
      const li = turnItem({ role: "operator", operator: me, text: p.text, seq: Infinity });
      li.classList.add("op-turn--pending");
      li.append(el("p", { class: "op-turn-pending", text: TEXTS.sending }));
      items.push(li);
    }
    if (!items.length && c.loaded) items.push(el("div", { class: "op-turn op-turn--empty" }, el("p", { class: "op-turn-text", text: TEXTS.transcriptEmpty })));
    // Only what changed is replaced, so a screen reader announces new lines, not the whole log.
    const old = [...transcript.children];
    const same = old.length <= items.length && old.every((li, i) => li.dataset.key === items[i].dataset.key && li.dataset.key);
    if (same) for (const li of items.slice(old.length)) transcript.append(li);
    else transcript.replaceChildren(...items);
    if (atEnd || !same) transcript.scrollTop = transcript.scrollHeight;
  }
  const order = (t) => (t.role === "user" ? 0 : t.role === "action" ? 2 : 1); // a user turn and its reply share a seq

  function actionItem(a) {
    const name = str(a.operator).trim() || TEXTS.someone;
    const at = typeof a.at === "number" ? new Date(a.at) : null;
    const li = el("div", { class: "op-turn op-turn--action", "data-role": "action", "data-action": a.action,
      "data-key": "action:" + a.at + ":" + a.action + ":" + a.operator },
      el("p", { class: "op-turn-text" }, el("span", { text: fill(TEXTS.audit[a.action], { name }) }),
        at ? el("time", { class: "op-turn-time", datetime: at.toISOString(), text: " · " + at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) }) : ""));
    if (str(a.note)) li.append(el("p", { class: "op-turn-note", text: fill(TEXTS.auditNote, { note: str(a.note) }) }));
    return li;
  }

  function turnItem(t) {
    let author;
    let role = t.role;
    if (role === "user") author = el("span", { class: "op-turn-name", text: TEXTS.person });
    else if (role === "assistant") author = el("span", { class: "op-turn-name", text: TEXTS.assistant });
    else {
      role = "operator";
      author = el("span", {}, el("span", { class: "op-turn-name", text: str(t.operator).trim() || TEXTS.someone }),
        el("span", { class: "op-turn-role", text: " · " + TEXTS.operatorRole }));
    }
    const li = el("div", { class: "op-turn op-turn--" + role, "data-role": role, "data-key": Number.isFinite(t.seq) ? turnKey(t) : "" },
      el("p", { class: "op-turn-author" }, author), el("p", { class: "op-turn-text", text: str(t.text) }));
    if (t.escalated) li.append(el("p", { class: "op-turn-flag", text: TEXTS.escalatedHere }));
    return li;
  }

  function render() { renderQueue(); renderDetail(); }

  function announce(text) {
    announcer.textContent = "";
    // A new text node in the alert region is announced even if the words repeat.
    requestAnimationFrame(() => { announcer.textContent = text; });
  }

  // ---- the transcript over HTTP ----
  async function fetchTranscript(id) {
    const c = conv(id);
    if (c.loading) { c.again = true; return c.loading; }
    // Escalations known before the fetch were committed before it: one of them missing from the
    // answer's `unacknowledged` has been acknowledged (e.g. while we were disconnected).
    const gen = generation;
    const knownBefore = new Set([...escalations.values()].filter((e) => e.conversation === id).map((e) => e.id));
    c.loading = (async () => {
      try {
        let before = null;
        const turns = [];
        let first = null;
        for (let page = 0; page < MAX_PAGES; page++) {
          const url = API + "/conversations/" + encodeURIComponent(id) + (before != null ? "?before=" + before : "");
          const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
          if (res.status === 401) { if (gen === generation) sessionEnded(); return; }
          if (!res.ok) { c.error = fill(TEXTS.loadFailed, { n: res.status }); return; }
          const body = await res.json();
          if (!first) first = body;
          const history = Array.isArray(body.history) ? body.history : [];
          turns.push(...history);
          if (!body.history_more || !history.length) break;
          before = Math.min(...history.map((t) => t.seq));
        }
        if (!first || gen !== generation) return; // signed out meanwhile
        c.error = "";
        c.claimed_by = str(first.claimed_by);
        c.operator = str(first.operator);
        c.urgency = str(first.urgency) || "none";
        c.red_flags = Array.isArray(first.red_flags) ? first.red_flags : [];
        c.fetchedOnce = true;
        c.actions = (Array.isArray(first.actions) ? first.actions : [])
          .filter((a) => a && typeof a.action === "string" && typeof a.seq === "number");
        for (const t of turns) {
          if (!t || typeof t.seq !== "number" || typeof t.text !== "string") continue;
          const old = c.turns.get(turnKey(t));
          c.turns.set(turnKey(t), { ...t, escalated: old ? old.escalated : false });
        }
        c.loaded = true;
        // What the server still holds open for this conversation is the truth: an ack made while
        // we were disconnected removes the escalation here too.
        const unacked = (Array.isArray(first.unacknowledged) ? first.unacknowledged : []).filter((e) => e && typeof e.id === "number");
        const open = new Set(unacked.map((e) => e.id));
        for (const eid of knownBefore) if (!open.has(eid)) escalations.delete(eid);
        for (const e of unacked) if (!escalations.has(e.id) && !acked.has(e.id)) escalations.set(e.id, { ...e, conversation: id });
      } catch (_) {
        c.error = TEXTS.networkError;
      } finally {
        c.loading = null;
        render();
        if (c.again) { c.again = false; fetchTranscript(id); }
      }
    })();
    return c.loading;
  }

  // Transcripts fetched only for claimed_by, at most BACKGROUND_FETCHES at a time, in order.
  const backgroundQueue = [];
  let backgroundRunning = 0;
  function background(id) {
    if (id != null && !backgroundQueue.includes(id)) backgroundQueue.push(id);
    while (backgroundRunning < BACKGROUND_FETCHES && backgroundQueue.length) {
      const next = backgroundQueue.shift();
      if (conv(next).fetchedOnce) continue;
      backgroundRunning += 1;
      Promise.resolve(fetchTranscript(next)).finally(() => { backgroundRunning -= 1; background(null); });
    }
  }

  // ---- selection (kept in the address's #, so a reload opens the same conversation) ----
  function select(conversation, escalation, focus) {
    selected = { conversation, escalation: escalation == null ? null : escalation };
    actionError.textContent = "";
    try { history.replaceState(null, "", "#conversation=" + encodeURIComponent(conversation)); } catch (_) { /* ignore */ }
    transcript.replaceChildren();
    const c = conv(conversation);
    render();
    fetchTranscript(conversation);
    if (focus) {
      detailTitle.focus();
      if (window.matchMedia && matchMedia("(max-width: 760px)").matches) detail.scrollIntoView({ block: "start" });
    }
    return c;
  }

  function selectedFromHash() {
    const m = /^#conversation=([A-Za-z0-9_-]{1,64})$/.exec(location.hash);
    return m ? m[1] : null;
  }

  // ---- the operator socket ----
  const isLive = () => !!ws && ws.readyState === WebSocket.OPEN;

  function transmit(obj) {
    if (!isLive()) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws || !me) return;
    if (status.dataset.state !== "reconnecting") setStatus("connecting");
    let sock;
    try { sock = new WebSocket(WS_URL); } catch (_) { scheduleReconnect(); return; }
    ws = sock;
    let opened = false;
    sock.addEventListener("open", () => {
      opened = true;
      attempt = 0;
      setStatus("connected");
      // The server sends every open escalation again (deduplicated by id below); the ones we show
      // are checked against the server's transcripts, so an ack made meanwhile takes them away.
      const known = new Set([...escalations.values()].map((e) => e.conversation));
      if (selected) known.add(selected.conversation);
      for (const id of known) fetchTranscript(id);
      render();
    });
    sock.addEventListener("message", (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch (_) { return; }
      if (f && typeof f === "object") handle(f);
    });
    sock.addEventListener("close", async () => {
      if (ws !== sock) return;
      ws = null;
      inflight.clear();
      for (const c of convs.values()) {
        // Unconfirmed messages go back to the box rather than being lost.
        if (c.pendingSays.length && selected && convs.get(selected.conversation) === c && !sayInput.value) {
          sayInput.value = c.pendingSays.map((p) => p.text).join("\n");
        }
        c.pendingSays = [];
      }
      if (!me) return;
      render();
      if (!opened) {
        // Refused before the upgrade: a 401 (the session ended) looks the same as a dropped
        // connection to a WebSocket, so ask.
        const who = await whoAmI();
        if (who === null) { sessionEnded(); return; }
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (!me) return;
    setStatus("reconnecting");
    // As the widget: 0.5 s doubling to 10 s, +/-25 % jitter.
    const base = Math.min(10000, 500 * 2 ** attempt);
    attempt += 1;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, base * (0.75 + Math.random() * 0.5));
  }

  // The oldest unconfirmed action `pred` accepts (a broadcast names no ref), taken off the list.
  function settle(pred) {
    for (const [ref, a] of inflight) if (pred(a)) return settleRef(ref);
    return null;
  }
  function settleRef(ref) {
    const a = typeof ref === "string" ? inflight.get(ref) : undefined;
    if (!a) return null;
    inflight.delete(ref);
    return { ...a, ref };
  }
  function dropPendingSay(ref) {
    for (const c of convs.values()) {
      const i = c.pendingSays.findIndex((p) => p.ref === ref);
      if (i >= 0) { c.pendingSays.splice(i, 1); return; }
    }
  }

  function handle(f) {
    const id = str(f.conversation);
    switch (f.type) {
      case "escalation": {
        if (typeof f.id !== "number" || !id) return;
        const c = conv(id);
        if (escalations.has(f.id) || acked.has(f.id)) return; // sent again on reconnect
        escalations.set(f.id, f);
        if ((RANK[f.level] || 0) > (RANK[c.urgency] || 0)) c.urgency = f.level;
        if (Date.now() - Date.parse(f.at) < 60000) announce(fill(TEXTS.newEscalation, { level: levelName(f.level).toLowerCase(), flags: flagText(f.flags) }));
        // Who has claimed it (a few at a time: a long backlog must not fire hundreds of requests),
        // and for the open conversation the reply that came with it.
        if (selected && selected.conversation === id) fetchTranscript(id);
        else if (!c.fetchedOnce) background(id);
        break;
      }
      case "acked": {
        escalations.delete(f.id);
        acked.add(f.id);
        settle((a) => a.type === "ack" && a.id === f.id);
        if (f.by === me && selected && selected.conversation === id) noteInput.value = "";
        if (selected && selected.conversation === id) fetchTranscript(id); // its audit entry
        break;
      }
      case "claimed":
      case "joined":
      case "left": {
        const c = conv(id);
        const name = str(f.operator);
        if (f.type === "claimed") c.claimed_by = name;
        if (f.type === "joined") { c.claimed_by = name; c.operator = name; }
        if (f.type === "left" && c.operator === name) c.operator = "";
        if (name === me) settle((a) => ({ claimed: "claim", joined: "join", left: "leave" })[f.type] === a.type && a.conversation === id);
        if (selected && selected.conversation === id) fetchTranscript(id); // its audit entry
        break;
      }
      case "said": {
        // The writer's own answer: its ref names the message, and it carries the text written.
        const c = conv(id);
        const a = settleRef(f.ref);
        if (a) dropPendingSay(a.ref);
        const text = typeof f.text === "string" ? f.text : a ? a.text : "";
        if (typeof f.seq === "number") {
          const t = { role: "operator", operator: str(f.operator) || me, text, seq: f.seq };
          c.turns.set(turnKey(t), t);
        }
        break;
      }
      case "user_message": {
        const c = conv(id);
        if (typeof f.seq === "number" && typeof f.text === "string") {
          const t = { role: "user", text: f.text, seq: f.seq, escalated: !!f.escalated };
          c.turns.set(turnKey(t), t);
        }
        if (typeof f.urgency === "string" && (RANK[f.urgency] || 0) > (RANK[c.urgency] || 0)) c.urgency = f.urgency;
        // The assistant still answers a red flag (or asks a safety question) at once, and no frame
        // brings that answer to the console, so the transcript is fetched again after each message
        // (the message itself is shown now, without waiting for that).
        fetchTranscript(id);
        break;
      }
      case "error": {
        // An error echoes the ref of the action it refuses. One without a ref answers a frame the
        // server could not read: the oldest unconfirmed action is the best guess for it.
        const a = typeof f.ref === "string" ? settleRef(f.ref) : settle(() => true);
        if (a && a.type === "say") {
          dropPendingSay(a.ref);
          if (selected && selected.conversation === a.conversation && !sayInput.value) sayInput.value = a.text;
        }
        const where = a && selected && a.conversation !== selected.conversation ? fill(TEXTS.refusedIn, { n: shortId(a.conversation) }) : "";
        actionError.textContent = where + (a ? TEXTS.refused[a.type] : TEXTS.errorPrefix) + (str(f.message) || str(f.code));
        break;
      }
      default:
        return; // a frame of a later protocol
    }
    render();
  }

  // Sends an action with a new ref; returns the ref, or null when it could not be sent.
  function act(type, extra) {
    if (!selected) return null;
    const ref = String(++lastRef);
    const frame = { type, conversation: selected.conversation, ...extra, ref };
    if (type === "ack") delete frame.conversation;
    if (!transmit(frame)) return null;
    inflight.set(ref, { type, conversation: selected.conversation, id: extra && extra.id, text: extra && extra.text });
    actionError.textContent = "";
    render();
    return ref;
  }

  claimButton.addEventListener("click", () => act("claim"));
  joinButton.addEventListener("click", () => act("join"));
  leaveButton.addEventListener("click", () => act("leave"));
  ackForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!selected || selected.escalation == null) return;
    const note = noteInput.value.trim();
    act("ack", note ? { id: selected.escalation, note } : { id: selected.escalation });
  });
  sayForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = sayInput.value.replace(/^\s+|\s+$/g, "");
    if (!text || !selected) return;
    const ref = act("say", { text });
    if (!ref) return;
    conv(selected.conversation).pendingSays.push({ ref, text });
    sayInput.value = "";
    render();
    sayInput.focus();
  });
  sayInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sayForm.requestSubmit();
    }
  });

  // ---- signing in and out ----
  async function whoAmI() {
    try {
      const res = await fetch(API + "/session", { credentials: "same-origin", cache: "no-store" });
      if (res.status !== 200) return null;
      const body = await res.json();
      return typeof body.operator === "string" ? body.operator : null;
    } catch (_) {
      return undefined; // unreachable: not known
    }
  }

  function showSignIn(message) {
    me = null;
    consoleMain.hidden = true;
    who.hidden = true;
    signIn.hidden = false;
    setStatus("offline");
    signInError.textContent = message || "";
    tokenInput.setAttribute("aria-invalid", message ? "true" : "false");
    tokenInput.focus();
  }

  function showConsole(name) {
    me = name;
    whoName.textContent = name;
    who.hidden = false;
    signIn.hidden = true;
    consoleMain.hidden = false;
    signInError.textContent = "";
    const fromHash = selectedFromHash();
    if (fromHash && !selected) select(fromHash, null, false);
    render();
    clearInterval(ageTimer);
    ageTimer = setInterval(renderQueue, AGE_TICK_MS);
    connect();
  }

  function reset() {
    clearTimeout(retryTimer);
    retryTimer = null;
    clearInterval(ageTimer);
    const sock = ws;
    ws = null;
    if (sock) sock.close();
    escalations.clear();
    acked.clear();
    convs.clear();
    inflight.clear();
    backgroundQueue.length = 0;
    generation += 1;
    selected = null;
    attempt = 0;
    transcript.replaceChildren();
    render();
  }

  function sessionEnded() {
    if (!me) return;
    reset();
    showSignIn(TEXTS.sessionEnded);
  }

  signInForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) { showSignIn(TEXTS.wrongToken); return; }
    signInButton.disabled = true;
    signInButton.textContent = TEXTS.signingIn;
    try {
      const res = await fetch(API + "/session", {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
      });
      if (res.status === 204) {
        tokenInput.value = "";
        const name = await whoAmI();
        if (name) { showConsole(name); detailTitle.focus(); return; }
        showSignIn(fill(TEXTS.signInFailed, { n: "?" }));
      } else if (res.status === 401) {
        showSignIn(TEXTS.wrongToken);
      } else {
        showSignIn(fill(TEXTS.signInFailed, { n: res.status }));
      }
    } catch (_) {
      showSignIn(TEXTS.networkError);
    } finally {
      signInButton.disabled = false;
      signInButton.textContent = TEXTS.signIn;
    }
  });

  signOutButton.addEventListener("click", async () => {
    reset();
    try { await fetch(API + "/session", { method: "DELETE", credentials: "same-origin" }); } catch (_) { /* the cookie stays; the server forgets it on restart */ }
    try { history.replaceState(null, "", location.pathname); } catch (_) { /* ignore */ }
    showSignIn("");
  });

  window.addEventListener("online", () => { if (me && !ws) connect(); });

  // ---- start: a reload keeps the sign-in (the cookie) ----
  (async () => {
    const name = await whoAmI();
    if (name) showConsole(name);
    else showSignIn(name === undefined ? TEXTS.networkError : "");
  })();
})();
