/* Backcheck chat widget: protocol v1 over WebSocket (see web/WIDGET_CONTRACT.md).
 * Embed: <script src="https://SERVER/widget.js" data-server="https://SERVER" defer></script>
 * Optional: data-position="bottom-left", data-title="...", data-emergency-number="112"; colours
 * through CSS custom properties (--bc-accent, --bc-bg, ...; see the contract).
 * Plain ES2020, no dependencies, no build step. Everything the person, an operator or the server
 * writes is rendered with textContent, never innerHTML. */
(() => {
  "use strict";

  // ---- the widget's own words (chrome only) ----
  // What the assistant says (the welcome, the banner per level, notices, replies) comes from the
  // server, so every client shows the knowledge base's words. The texts below are only the
  // widget's chrome: labels, connection and delivery states, and the handoff lines. {name},
  // {title} and {number} are filled in.
  const TEXTS = {
    title: "Backcheck",                       // the panel's heading unless the page sets data-title
    panelLabel: "{title} chat",
    openChat: "Open chat",
    closeChat: "Close chat",
    launcherOpen: "Chat",
    launcherClose: "Close",
    status: { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…" },
    logLabel: "Conversation",
    quickLabel: "Suggested replies",
    messageLabel: "Message",
    placeholder: "Describe your back pain…",
    send: "Send",
    typing: "{title} is typing",
    sources: "From the article: ",
    newChat: "New chat",                      // visible text of the new-conversation button
    newChatLabel: "Start a new chat",         // its accessible name (contains the visible text)
    queued: "Waiting for connection…",        // a message typed while disconnected
    sending: "Sending…",                      // sent, its reply not here yet
    call: "Call {number}",                    // the emergency banner's tel: link
    operatorRole: "care team",                // shown after an operator's name
    someone: "Someone",                       // an operator frame without a name
    handoffJoined: "{name} from the care team joined",
    handoffLeft: "{name} from the care team left; the assistant is back",
    expired: "That earlier conversation has expired, so we're starting a new one.",
    errors: {
      rate_limited: "You're sending messages a little fast. Please wait a moment and try again.",
      text_too_long: "That message is too long for the chat. Please shorten it and send it again.",
      too_many_conversations: "Too many conversations are open from this page. Please reload and try again.",
      store_unavailable: "The chat can't save messages right now, so that one wasn't kept. Please try again in a moment.",
    },
    genericError: "Sorry, something went wrong with that message. Please try again.",
  };
  const fill = (s, vars) => s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));

  // Embedded twice by mistake? One launcher and one connection are enough.
  if (window.__backcheckWidget) return;
  window.__backcheckWidget = true;
  // currentScript is only set while this file is first evaluated, so read it now.
  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const SERVER = (data.server || (script ? new URL(script.src).origin : location.origin)).replace(/\/+$/, "");
  const WS_URL = SERVER.replace(/^http/i, "ws") + "/v1/chat"; // http -> ws, https -> wss
  const POSITIONS = ["bottom-right", "bottom-left"];
  const POSITION = POSITIONS.includes(data.position) ? data.position : "bottom-right";
  const TITLE = (data.title || "").trim() || TEXTS.title;
  const STORE_KEY = "backcheck.conversation";
  const WELCOME_KEY = "backcheck.welcome"; // the server's welcome for the stored conversation
  const LEVELS = ["none", "see_doctor", "urgent", "emergency"];
  // Levels whose guidance says to call the emergency number now: their banner gets a tel: link
  // when a number is known (the page's data-emergency-number, else `started.emergency_number`).
  const CALL_LEVELS = ["emergency"];

  // localStorage can throw (privacy modes, blocked storage); the widget must still work.
  const store = {
    get() { try { return localStorage.getItem(STORE_KEY); } catch (_) { return null; } },
    set(v) { try { localStorage.setItem(STORE_KEY, v); } catch (_) { /* session-only */ } },
    clear() {
      try { localStorage.removeItem(STORE_KEY); localStorage.removeItem(WELCOME_KEY); } catch (_) { /* ignore */ }
    },
    // A resumed conversation's `started` has its history but no welcome (the welcome is not a
    // turn): the one the server sent when it began is kept here, so a reload shows it again.
    getWelcome(id) {
      try {
        const w = JSON.parse(localStorage.getItem(WELCOME_KEY) || "null");
        return w && w.conversation === id ? validWelcome(w) : null;
      } catch (_) { return null; }
    },
    setWelcome(id, w) {
      try { localStorage.setItem(WELCOME_KEY, JSON.stringify({ conversation: id, ...w })); } catch (_) { /* session-only */ }
    },
  };

  // Non-empty strings of a list (quick replies), or [].
  const strings = (list) => (Array.isArray(list) ? list.filter((q) => typeof q === "string" && q) : []);

  // `{text, quick_replies}` with a non-empty text, or null.
  function validWelcome(w) {
    if (!w || typeof w !== "object" || typeof w.text !== "string" || !w.text) return null;
    return { text: w.text, quick_replies: strings(w.quick_replies) };
  }

  // A phone number as {shown, dial} ("112", "+44 20 7946 0000"), or null when it is not one.
  function phoneNumber(v) {
    if (typeof v !== "string") return null;
    const shown = v.trim();
    const dial = shown.replace(/[\s().-]/g, "");
    return /^\+?[0-9*#]{2,20}$/.test(dial) && /[0-9]/.test(dial) ? { shown, dial } : null;
  }
  const PAGE_NUMBER = phoneNumber(data.emergencyNumber);

  // Small DOM helper: el("div", {class: "x"}, child, "text"). Strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (v === true) node.setAttribute(k, "");
      else if (v !== false && v != null) node.setAttribute(k, String(v));
    }
    for (const c of children) node.append(c); // append() turns strings into text nodes
    return node;
  }

  // Static icons (no content ever goes through innerHTML): decorative, hidden from assistive tech.
  const svg = (w, body) => '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="' + w +
    '" height="' + w + '">' + body + "</svg>";
  const ICONS = {
    chat: svg(22, '<path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/>'),
    warning: svg(22, '<path fill="currentColor" d="M12 2 1 21h22L12 2zm1 15h-2v2h2v-2zm0-8h-2v6h2V9z"/>'),
    info: svg(22, '<path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-6h2v6zm0-8h-2V7h2v2z"/>'),
    phone: svg(18, '<path fill="currentColor" d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1l-2.22 2.23z"/>'),
    clock: svg(14, '<path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm.5-13H11v6l5.2 3.1.8-1.2-4.5-2.7V7z"/>'),
    plus: svg(16, '<path fill="currentColor" d="M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6v2z"/>'),
  };
  const BANNER_ICON = { emergency: "warning", urgent: "warning", see_doctor: "info" };
  function icon(name, cls) {
    const span = el("span", { class: cls || "bc-icon", "aria-hidden": "true" });
    span.innerHTML = ICONS[name]; // static markup from ICONS only
    return span;
  }

  // ---- state ----
  let conversation = store.get(); // id, or null for a new visitor
  let lastSeq = 0;          // highest seq rendered for this conversation (user+reply share a seq)
  let ws = null;
  let ready = false;        // `started` received on the current socket: messages may be sent
  let startRequested = false; // a new visitor asked for a conversation (panel opened / message typed)
  let attempt = 0;          // reconnect attempts since the last successful start
  let retryTimer = null;
  let urgency = "none";
  let banners = {};         // level -> banner line, from the latest `started`
  let serverNumber = null;  // `started.emergency_number`, when the server sends one
  let welcomeShown = null;  // the conversation whose welcome is in the log
  let operatorWith = null;  // the name of the operator who has joined, while one has
  let refCounter = 0;
  const operatorSeqs = new Set(); // operator messages shown (a live frame and the history may repeat one)
  const ended = new Set();  // conversations this page ended ("New chat"): their frames are ignored
  const endQueue = [];      // `end`s to send once connected
  // Messages typed but not yet answered, in order: {text, ref, li, sent, tried}. They are shown at once
  // and survive disconnects; each leaves the queue when its reply (or an error for it) arrives.
  const pending = [];

  // ---- DOM ----
  const uid = "bc-" + Math.random().toString(36).slice(2, 8);
  const launcher = el("button", {
    type: "button", class: "bc-launcher", "aria-expanded": "false", "aria-controls": uid + "-panel",
    "aria-label": TEXTS.openChat, "data-position": POSITION,
  });
  launcher.append(icon("chat"));
  const launcherLabel = el("span", { class: "bc-launcher-label", "aria-hidden": "true", text: TEXTS.launcherOpen });
  launcher.append(launcherLabel);

  const status = el("p", { class: "bc-status", "data-state": "connecting", role: "status", text: TEXTS.status.connecting });
  const newChat = el("button", { type: "button", class: "bc-new", "aria-label": TEXTS.newChatLabel },
    icon("plus"), el("span", { text: TEXTS.newChat }));
  const header = el("header", { class: "bc-header" },
    el("div", { class: "bc-heading" }, el("h2", { class: "bc-title", id: uid + "-title", text: TITLE }), status),
    newChat);
  // tabindex=0: keyboard users can focus the log to scroll it with the arrow keys.
  const log = el("ol", { class: "bc-log", role: "log", "aria-live": "polite", "aria-label": TEXTS.logLabel, tabindex: 0 });
  const quick = el("div", { class: "bc-quick", role: "group", "aria-label": TEXTS.quickLabel });
  const input = el("textarea", {
    class: "bc-input", id: uid + "-input", name: "message", rows: 1, maxlength: 2000,
    placeholder: TEXTS.placeholder, autocomplete: "off",
  });
  const send = el("button", { type: "submit", class: "bc-send", text: TEXTS.send });
  const form = el("form", { class: "bc-form" },
    el("label", { class: "bc-visually-hidden", for: uid + "-input", text: TEXTS.messageLabel }), input, send);
  const panel = el("section", {
    class: "bc-panel", id: uid + "-panel", role: "dialog", "aria-label": fill(TEXTS.panelLabel, { title: TITLE }),
    "data-position": POSITION, hidden: true,
  }, header, log, quick, form);
  let banner = null;  // created once per conversation, when urgency first rises
  let typing = null;  // present only while a reply is awaited

  // ---- rendering ----
  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function messageItem(role, text) {
    // role=none: the contract's <ol role="log"> is no longer a list, so its items must not claim
    // to be list items (axe "listitem"); the log region still announces what is added.
    return el("li", { class: "bc-msg bc-msg--" + role, role: "none" }, el("p", { class: "bc-text", text }));
  }

  // A message from a named person of the care team: who is writing comes first.
  function operatorItem(name, text) {
    const who = (typeof name === "string" && name.trim()) || TEXTS.someone;
    const li = el("li", { class: "bc-msg bc-msg--operator", role: "none" },
      el("p", { class: "bc-author" }, el("span", { class: "bc-author-name", text: who }),
        el("span", { class: "bc-author-role", text: " · " + TEXTS.operatorRole })),
      el("p", { class: "bc-text", text }));
    return li;
  }

  // A one-line event in the conversation (an operator joined or left).
  function eventItem(cls, text) {
    return el("li", { class: "bc-msg " + cls, role: "none" }, el("p", { class: "bc-text", text }));
  }

  // Confirmed turns go before the first still-pending user message, so a queued message keeps
  // its place at the end of the log until it is actually answered.
  function insertTurn(li) {
    const firstPending = pending.length ? pending[0].li : null;
    log.insertBefore(li, firstPending && firstPending.parentNode === log ? firstPending : null);
    scrollToEnd();
  }

  function renderSources(li, sources) {
    // One <details> per article section, quotes in order; sections keep first-seen order.
    const bySection = new Map();
    for (const s of Array.isArray(sources) ? sources : []) {
      if (!s || typeof s.quote !== "string") continue;
      const key = String(s.section || "");
      if (!bySection.has(key)) bySection.set(key, []);
      bySection.get(key).push(s.quote);
    }
    for (const [section, quotes] of bySection) {
      const details = el("details", { class: "bc-sources" },
        el("summary", { text: TEXTS.sources + section }));
      for (const q of quotes) details.append(el("blockquote", { class: "bc-quote", text: q }));
      li.append(details);
    }
  }

  function notice(text) {
    // Several errors in a row (e.g. rate limiting) get one notice, not a wall of them.
    const last = log.lastElementChild;
    if (last && last.classList.contains("bc-msg--system") && last.textContent === text) return;
    log.append(el("li", { class: "bc-msg bc-msg--system", role: "none" }, el("p", { class: "bc-text", text })));
    scrollToEnd();
  }

  function setQuickReplies(list) {
    quick.replaceChildren();
    for (const text of strings(list)) {
      const b = el("button", { type: "button", class: "bc-quick-reply", text });
      b.addEventListener("click", () => submit(text));
      quick.append(b);
    }
    quick.hidden = !quick.childElementCount;
  }

  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = TEXTS.status[state];
  }

  // A pending message says whether it waits for the connection or for its reply.
  function markPending(p) {
    const state = p.sent ? "sending" : "queued";
    let marker = p.li.querySelector(".bc-pending");
    if (!marker) {
      marker = el("p", { class: "bc-pending" }, icon("clock"), el("span", { class: "bc-pending-text" }));
      p.li.append(marker);
    }
    if (marker.dataset.state !== state) {
      marker.dataset.state = state;
      marker.lastChild.textContent = p.sent ? TEXTS.sending : TEXTS.queued;
    }
  }
  function unmarkPending(p, failed) {
    p.li.classList.remove("bc-msg--pending");
    if (failed) p.li.classList.add("bc-msg--failed");
    const marker = p.li.querySelector(".bc-pending");
    if (marker) marker.remove();
  }
  function markAllPending() { for (const p of pending) markPending(p); }

  // Urgency never goes down within a conversation; the banner is inserted once (so role=alert
  // announces it) and only its content and level change if the level rises later. Its words are
  // the server's `banners`.
  function raiseUrgency(level) {
    if (LEVELS.indexOf(level) <= LEVELS.indexOf(urgency)) return;
    urgency = level;
    if (!banner) {
      banner = el("div", { class: "bc-banner", role: "alert" });
      header.after(banner);
    }
    renderBanner();
  }

  function renderBanner() {
    if (!banner) return;
    const text = typeof banners[urgency] === "string" ? banners[urgency] : "";
    const number = PAGE_NUMBER || serverNumber;
    const call = number && CALL_LEVELS.includes(urgency) ? number : null;
    const key = JSON.stringify([urgency, text, call && call.dial]);
    if (banner.dataset.key === key) return;
    banner.dataset.key = key;
    banner.dataset.level = urgency;
    const body = el("div", { class: "bc-banner-body" }, el("p", { class: "bc-banner-text", text }));
    if (call) {
      body.append(el("a", { class: "bc-call", href: "tel:" + call.dial },
        icon("phone"), el("span", { text: fill(TEXTS.call, { number: call.shown }) })));
    }
    banner.replaceChildren(icon(BANNER_ICON[urgency] || "warning", "bc-banner-icon"), body);
    banner.hidden = !text; // a server that sends no line for this level: no empty alert box
  }

  function setBanners(b) {
    if (!b || typeof b !== "object" || Array.isArray(b)) return; // keep what we had
    banners = {};
    for (const level of LEVELS) if (typeof b[level] === "string") banners[level] = b[level];
  }

  // The welcome is the conversation's first assistant message, with its quick replies while
  // nothing else has been said.
  function showWelcome(w, withQuickReplies) {
    const li = messageItem("assistant", w.text);
    li.classList.add("bc-msg--welcome");
    insertTurn(li);
    if (withQuickReplies && !pending.length) setQuickReplies(w.quick_replies);
  }

  function updateTyping() {
    // While a person of the care team has joined, the assistant does not answer: no "typing".
    const waiting = ready && !operatorWith && pending.some((p) => p.sent);
    if (waiting && !typing) {
      typing = el("div", { class: "bc-typing" },
        el("span", { class: "bc-dot", "aria-hidden": "true" }), el("span", { class: "bc-dot", "aria-hidden": "true" }),
        el("span", { class: "bc-dot", "aria-hidden": "true" }),
        el("span", { class: "bc-visually-hidden", text: fill(TEXTS.typing, { title: TITLE }) }));
      log.after(typing);
      scrollToEnd();
    } else if (!waiting && typing) {
      typing.remove();
      typing = null;
    }
  }

  // ---- connection ----
  function transmit(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(obj)); return true; }
    return false;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) return;
    ready = false;
    if (status.dataset.state !== "reconnecting") setStatus("connecting");
    let sock;
    try { sock = new WebSocket(WS_URL); } catch (_) { scheduleReconnect(); return; }
    ws = sock;
    sock.addEventListener("open", () => {
      while (endQueue.length) transmit({ type: "end", conversation: endQueue.shift() });
      transmit(conversation ? { type: "start", resume: conversation } : { type: "start" });
    });
    sock.addEventListener("message", (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (_) { return; }
      if (frame && typeof frame === "object") handle(frame);
    });
    sock.addEventListener("close", () => {
      if (ws !== sock) return;
      ws = null;
      ready = false;
      // Whatever was in flight will be re-sent (or found in the history) after the resume.
      for (const p of pending) p.sent = false;
      markAllPending();
      updateTyping();
      scheduleReconnect();
    });
    // "error" is always followed by "close"; nothing to do here.
  }

  function scheduleReconnect() {
    setStatus("reconnecting");
    // Exponential back-off, 0.5 s doubling to 10 s, with +/-25 % jitter so that many widgets
    // dropped by one server restart do not all come back in the same instant.
    const base = Math.min(10000, 500 * 2 ** attempt);
    attempt += 1;
    retryTimer = setTimeout(connect, base * (0.75 + Math.random() * 0.5));
  }

  function flush() {
    for (const p of pending) {
      if (p.sent) continue;
      if (!transmit({ type: "message", text: p.text, conversation, ref: p.ref })) break;
      p.sent = true;
      p.tried = true; // may reach the server even if the socket drops before the reply
    }
    markAllPending();
    updateTyping();
  }

  // Is a frame about another conversation than the one shown (e.g. one ended with "New chat")?
  const foreign = (f) => typeof f.conversation === "string" && f.conversation !== conversation;

  function onStarted(f) {
    if (ended.has(f.conversation)) return; // a resume answered after "New chat" ended it
    if (f.conversation !== conversation) { lastSeq = 0; operatorSeqs.clear(); } // a new conversation: nothing rendered yet
    conversation = f.conversation;
    store.set(conversation);
    ready = true;
    attempt = 0;
    setStatus("connected");
    setBanners(f.banners);
    serverNumber = phoneNumber(f.emergency_number);
    // An operator who has joined the conversation (asked of the server: `started.operator`, their
    // name, while one has; absent otherwise): the assistant is not typing then.
    operatorWith = typeof f.operator === "string" && f.operator.trim() ? f.operator.trim() : null;
    renderBanner();
    raiseUrgency(f.urgency);
    const history = Array.isArray(f.history) ? f.history : [];
    if (welcomeShown !== conversation) {
      // New: the welcome the server sent. Resumed: the one kept when it began, if any.
      let welcome = null;
      if (!f.resumed) {
        welcome = validWelcome(f.welcome);
        if (welcome) store.setWelcome(conversation, welcome);
      } else if (lastSeq === 0) {
        welcome = store.getWelcome(conversation);
      }
      if (welcome) {
        welcomeShown = conversation;
        showWelcome(welcome, history.length === 0);
      }
    }
    // Render only the turns we have not shown yet. A user turn the server already has may be one
    // of our in-flight messages (the socket dropped before its reply arrived): adopt its <li>
    // instead of duplicating it, and do not send it again.
    let maxSeq = lastSeq;
    let lastShown = null; // the last turn rendered now: its quick replies are the current ones
    for (const turn of history) {
      if (!turn || typeof turn.seq !== "number" || turn.seq <= lastSeq) continue;
      maxSeq = Math.max(maxSeq, turn.seq);
      if (turn.role === "user" && pending.length && pending[0].tried && pending[0].text === turn.text) {
        unmarkPending(pending.shift());
        lastShown = turn;
        continue;
      }
      if (turn.role === "user") {
        insertTurn(messageItem("user", String(turn.text)));
      } else if (turn.role === "assistant") {
        const li = messageItem("assistant", String(turn.text));
        renderSources(li, turn.sources);
        insertTurn(li);
      } else if (turn.role === "operator") {
        operatorSeqs.add(turn.seq);
        insertTurn(operatorItem(turn.operator, String(turn.text)));
      } else {
        continue;
      }
      lastShown = turn;
    }
    lastSeq = maxSeq;
    // A restored reply's quick replies are offered again, as after a live reply; the history's
    // `quick_replies` (when the server sends them) belong to its last turn only.
    if (lastShown && !pending.length) {
      setQuickReplies(lastShown.role === "assistant" ? lastShown.quick_replies : []);
    }
    flush();
  }

  function onReply(f) {
    if (foreign(f)) return;
    const i = pending.findIndex((p) => p.ref === f.ref);
    if (i >= 0) unmarkPending(pending.splice(i, 1)[0]);
    if (typeof f.seq === "number") lastSeq = Math.max(lastSeq, f.seq);
    const text = typeof f.text === "string" ? f.text : "";
    let li = null;
    if (text || (Array.isArray(f.sources) && f.sources.length)) { // no empty bubble for a reply without words
      li = messageItem("assistant", text);
      renderSources(li, f.sources);
      insertTurn(li);
    }
    setQuickReplies(f.quick_replies);
    raiseUrgency(f.urgency);
    updateTyping();
    // The quick replies and banner just took space from the log: scroll again. A reply taller
    // than the log is shown from its first line, so it can be read top to bottom.
    if (li && li.offsetHeight > log.clientHeight) log.scrollTop = li.offsetTop - log.offsetTop - 8;
    else scrollToEnd();
  }

  function onError(f) {
    if (foreign(f)) return;
    if (f.code === "unknown_conversation") {
      // Expired or purged: forget it and start a fresh conversation; queued messages go there.
      store.clear();
      const hadHistory = lastSeq > 0;
      conversation = null;
      lastSeq = 0;
      ready = false;
      for (const p of pending) p.sent = false;
      markAllPending();
      if (hadHistory) notice(TEXTS.expired);
      transmit({ type: "start" });
      updateTyping();
      return;
    }
    // An error about one of our messages: it will not be answered, so stop waiting for it.
    const i = f.ref ? pending.findIndex((p) => p.ref === f.ref) : -1;
    if (i >= 0) unmarkPending(pending.splice(i, 1)[0], true);
    // The message reported a red flag but could not be answered (the server could not store it,
    // or a limit): the server sends the safety guidance anyway, and it is shown like a reply.
    const g = f.guidance;
    if (g && typeof g.text === "string" && g.text) {
      const li = messageItem("assistant", g.text);
      li.classList.add("bc-msg--guidance");
      insertTurn(li);
      raiseUrgency(g.urgency);
    }
    notice(TEXTS.errors[f.code] || TEXTS.genericError); // never echo content to the console
    updateTyping();
  }

  // A message taken without an answer from the assistant (an operator has joined): asked of the
  // server as `{type: "received", conversation, ref, seq}`. It is no longer pending.
  function onReceived(f) {
    if (foreign(f)) return;
    const i = pending.findIndex((p) => p.ref === f.ref);
    if (i >= 0) unmarkPending(pending.splice(i, 1)[0]);
    if (typeof f.seq === "number") lastSeq = Math.max(lastSeq, f.seq);
    updateTyping();
  }

  // The service tells the person something (e.g. the care team has seen their message).
  function onNotice(f) {
    if (foreign(f) || typeof f.text !== "string" || !f.text) return;
    const li = eventItem("bc-msg--notice", f.text);
    if (typeof f.notice === "string") li.dataset.notice = f.notice;
    insertTurn(li);
  }

  // A person of the care team writes.
  function onOperatorMessage(f) {
    if (foreign(f) || typeof f.text !== "string" || !f.text) return;
    if (typeof f.seq === "number") {
      if (operatorSeqs.has(f.seq)) return; // already shown (from the history)
      operatorSeqs.add(f.seq);
      lastSeq = Math.max(lastSeq, f.seq);
    }
    insertTurn(operatorItem(f.operator, f.text));
    setQuickReplies([]); // they answered the assistant's question, not the person's
  }

  // An operator took the conversation over, or handed it back to the assistant.
  function onHandoff(f) {
    if (foreign(f) || (f.event !== "joined" && f.event !== "left")) return;
    const name = (typeof f.operator === "string" && f.operator.trim()) || TEXTS.someone;
    operatorWith = f.event === "joined" ? name : null;
    const li = eventItem("bc-msg--handoff", fill(f.event === "joined" ? TEXTS.handoffJoined : TEXTS.handoffLeft, { name }));
    li.dataset.event = f.event;
    insertTurn(li);
    if (f.event === "joined") setQuickReplies([]);
    updateTyping();
  }

  function handle(f) {
    if (f.type === "started") onStarted(f);
    else if (f.type === "reply") onReply(f);
    else if (f.type === "error") onError(f);
    else if (f.type === "received") onReceived(f);
    else if (f.type === "notice") onNotice(f);
    else if (f.type === "operator_message") onOperatorMessage(f);
    else if (f.type === "handoff") onHandoff(f);
    // Anything else (`ended`, frames of a later protocol) is ignored.
  }

  // ---- user actions ----
  function submit(raw) {
    const text = String(raw).replace(/^\s+|\s+$/g, "");
    if (!text) return;
    const ref = "w" + Date.now().toString(36) + "-" + (++refCounter) + "-" + Math.random().toString(36).slice(2, 6);
    const li = messageItem("user", text);
    li.classList.add("bc-msg--pending");
    log.append(li); // shown at once, whatever the connection is doing
    const p = { text, ref, li, sent: false, tried: false };
    pending.push(p);
    markPending(p);
    scrollToEnd();
    setQuickReplies([]); // they belonged to the previous reply
    startRequested = true;
    if (!ws && !retryTimer) connect();
    if (ready) flush();
  }

  // "New chat": end the conversation on the server, forget it here, and start a fresh one.
  function startNewConversation() {
    if (conversation) {
      ended.add(conversation);
      if (!transmit({ type: "end", conversation })) endQueue.push(conversation);
    }
    store.clear();
    conversation = null;
    lastSeq = 0;
    welcomeShown = null;
    operatorWith = null;
    operatorSeqs.clear();
    pending.length = 0; // what was still queued belonged to the old conversation
    urgency = "none";
    if (banner) { banner.remove(); banner = null; }
    log.replaceChildren();
    setQuickReplies([]);
    startRequested = true;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ready = false;
      transmit({ type: "start" });
    } else if (!ws && !retryTimer) {
      connect();
    } // connecting, or waiting to reconnect: that connection starts a new one (no id is kept)
    updateTyping();
    input.focus();
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? TEXTS.closeChat : TEXTS.openChat);
    launcherLabel.textContent = open ? TEXTS.launcherClose : TEXTS.launcherOpen;
    if (open) {
      // A new visitor gets a conversation the first time the panel opens.
      if (!startRequested) { startRequested = true; if (!ws && !retryTimer) connect(); }
      scrollToEnd();
      input.focus();
    }
  }

  launcher.addEventListener("click", () => setOpen(panel.hidden));
  newChat.addEventListener("click", startNewConversation);
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    submit(text);
    input.value = "";
    autosize();
    input.focus();
  });
  input.addEventListener("keydown", (e) => {
    // Enter sends, Shift+Enter is a newline; never interrupt an IME composition.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 140) + "px";
  }
  input.addEventListener("input", autosize);
  // Back online: skip the rest of the back-off wait.
  window.addEventListener("online", () => { if (!ws && startRequested) connect(); });

  // ---- mount ----
  function mount() {
    const link = el("link", { rel: "stylesheet", href: SERVER + "/widget.css" });
    document.head.append(link);
    setQuickReplies([]);
    document.body.append(launcher, panel);
    // A returning visitor is resumed at once, so the history and any banner are ready when the
    // panel opens; a new visitor connects only when they open the panel or send a message.
    if (conversation) { startRequested = true; connect(); }
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
