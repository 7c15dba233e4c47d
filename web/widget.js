/* Backcheck chat widget: protocol v1 over WebSocket (see web/WIDGET_CONTRACT.md).
 * Embed: <script src="https://SERVER/widget.js" data-server="https://SERVER" defer></script>
 * Plain ES2020, no dependencies, no build step. Everything the person or the server writes is
 * rendered with textContent, never innerHTML. */
(() => {
  "use strict";
  // Embedded twice by mistake? One launcher and one connection are enough.
  if (window.__backcheckWidget) return;
  window.__backcheckWidget = true;
  // currentScript is only set while this file is first evaluated, so read it now.
  const script = document.currentScript;
  const SERVER = ((script && script.dataset.server) || (script ? new URL(script.src).origin : location.origin))
    .replace(/\/+$/, "");
  const WS_URL = SERVER.replace(/^http/i, "ws") + "/v1/chat"; // http -> ws, https -> wss
  const STORE_KEY = "backcheck.conversation";
  const WELCOME_KEY = "backcheck.welcome"; // the server's welcome for the stored conversation
  const LEVELS = ["none", "see_doctor", "urgent", "emergency"];
  // What the assistant says (the welcome, the banner per level) comes from the server's
  // `started` frame, so every client shows the knowledge base's words; the texts below are
  // only the widget's own chrome (connection and delivery problems).
  const ERROR_TEXT = {
    rate_limited: "You're sending messages a little fast. Please wait a moment and try again.",
    text_too_long: "That message is too long for the chat. Please shorten it and send it again.",
    too_many_conversations: "Too many conversations are open from this page. Please reload and try again.",
    store_unavailable: "The chat can't save messages right now, so that one wasn't kept. Please try again in a moment.",
  };
  const GENERIC_ERROR = "Sorry, something went wrong with that message. Please try again.";

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

  // `{text, quick_replies}` with a non-empty text, or null.
  function validWelcome(w) {
    if (!w || typeof w !== "object" || typeof w.text !== "string" || !w.text) return null;
    const replies = Array.isArray(w.quick_replies) ? w.quick_replies.filter((q) => typeof q === "string" && q) : [];
    return { text: w.text, quick_replies: replies };
  }

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
  let welcomeShown = null;  // the conversation whose welcome is in the log
  let refCounter = 0;
  // Messages typed but not yet answered, in order: {text, ref, li, sent, tried}. They are shown at once
  // and survive disconnects; each leaves the queue when its reply (or an error for it) arrives.
  const pending = [];

  // ---- DOM ----
  const uid = "bc-" + Math.random().toString(36).slice(2, 8);
  const launcher = el("button", {
    type: "button", class: "bc-launcher", "aria-expanded": "false", "aria-controls": uid + "-panel",
    "aria-label": "Open chat",
  });
  launcher.innerHTML = // static markup only (icon); no content ever goes through innerHTML
    '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="22" height="22">' +
    '<path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
  const launcherLabel = el("span", { class: "bc-launcher-label", "aria-hidden": "true", text: "Chat" });
  launcher.append(launcherLabel);

  const status = el("p", { class: "bc-status", "data-state": "connecting", role: "status", text: "Connecting…" });
  const header = el("header", { class: "bc-header" },
    el("h2", { class: "bc-title", id: uid + "-title", text: "Backcheck" }), status);
  // tabindex=0: keyboard users can focus the log to scroll it with the arrow keys.
  const log = el("ol", { class: "bc-log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: 0 });
  const quick = el("div", { class: "bc-quick", role: "group", "aria-label": "Suggested replies" });
  const input = el("textarea", {
    class: "bc-input", id: uid + "-input", name: "message", rows: 2, maxlength: 2000,
    placeholder: "Describe your back pain…", autocomplete: "off",
  });
  const send = el("button", { type: "submit", class: "bc-send", text: "Send" });
  const form = el("form", { class: "bc-form" },
    el("label", { class: "bc-visually-hidden", for: uid + "-input", text: "Message" }), input, send);
  const panel = el("section", {
    class: "bc-panel", id: uid + "-panel", role: "dialog", "aria-label": "Backcheck chat", hidden: true,
  }, header, log, quick, form);
  let banner = null;  // created once, when urgency first rises
  let typing = null;  // present only while a reply is awaited

  // ---- rendering ----
  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function messageItem(role, text) {
    // role=none: the contract's <ol role="log"> is no longer a list, so its items must not claim
    // to be list items (axe "listitem"); the log region still announces what is added.
    return el("li", { class: "bc-msg bc-msg--" + role, role: "none" }, el("p", { class: "bc-text", text }));
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
    for (const s of sources || []) {
      if (!s || typeof s.quote !== "string") continue;
      const key = String(s.section || "");
      if (!bySection.has(key)) bySection.set(key, []);
      bySection.get(key).push(s.quote);
    }
    for (const [section, quotes] of bySection) {
      const details = el("details", { class: "bc-sources" },
        el("summary", { text: "From the article: " + section }));
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
    for (const text of list || []) {
      if (typeof text !== "string" || !text) continue;
      const b = el("button", { type: "button", class: "bc-quick-reply", text });
      b.addEventListener("click", () => submit(text));
      quick.append(b);
    }
    quick.hidden = !quick.childElementCount;
  }

  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…" }[state];
  }

  // Urgency never goes down; the banner is inserted once (so role=alert announces it) and only
  // its text and level change if the level rises later. Its words are the server's `banners`.
  function raiseUrgency(level) {
    if (LEVELS.indexOf(level) <= LEVELS.indexOf(urgency)) return;
    urgency = level;
    if (!banner) {
      banner = el("div", { class: "bc-banner", role: "alert" });
      header.after(banner);
    }
    banner.dataset.level = level;
    renderBanner();
  }

  function renderBanner() {
    if (!banner) return;
    const text = typeof banners[urgency] === "string" ? banners[urgency] : "";
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = !text; // a server that sends no line for this level: no empty alert box
  }

  function setBanners(b) {
    if (!b || typeof b !== "object" || Array.isArray(b)) return; // keep what we had
    banners = {};
    for (const level of LEVELS) if (typeof b[level] === "string") banners[level] = b[level];
    renderBanner();
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
    const waiting = ready && pending.some((p) => p.sent);
    if (waiting && !typing) {
      typing = el("div", { class: "bc-typing" },
        el("span", { class: "bc-dot", "aria-hidden": "true" }), el("span", { class: "bc-dot", "aria-hidden": "true" }),
        el("span", { class: "bc-dot", "aria-hidden": "true" }),
        el("span", { class: "bc-visually-hidden", text: "Backcheck is typing" }));
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
    updateTyping();
  }

  function onStarted(f) {
    if (f.conversation !== conversation) lastSeq = 0; // a new conversation: nothing rendered yet
    conversation = f.conversation;
    store.set(conversation);
    ready = true;
    attempt = 0;
    setStatus("connected");
    setBanners(f.banners);
    raiseUrgency(f.urgency);
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
        const history = Array.isArray(f.history) ? f.history : [];
        showWelcome(welcome, history.length === 0);
      }
    }
    // Render only the turns we have not shown yet. A user turn the server already has may be one
    // of our in-flight messages (the socket dropped before its reply arrived): adopt its <li>
    // instead of duplicating it, and do not send it again.
    let maxSeq = lastSeq;
    for (const turn of Array.isArray(f.history) ? f.history : []) {
      if (!turn || typeof turn.seq !== "number" || turn.seq <= lastSeq) continue;
      maxSeq = Math.max(maxSeq, turn.seq);
      if (turn.role === "user" && pending.length && pending[0].tried && pending[0].text === turn.text) {
        const p = pending.shift();
        p.li.classList.remove("bc-msg--pending");
        continue;
      }
      if (turn.role === "user" || turn.role === "assistant") insertTurn(messageItem(turn.role, String(turn.text)));
    }
    lastSeq = maxSeq;
    flush();
  }

  function onReply(f) {
    if (f.conversation && f.conversation !== conversation) return;
    const i = pending.findIndex((p) => p.ref === f.ref);
    if (i >= 0) pending.splice(i, 1)[0].li.classList.remove("bc-msg--pending");
    if (typeof f.seq === "number") lastSeq = Math.max(lastSeq, f.seq);
    const li = messageItem("assistant", String(f.text || ""));
    renderSources(li, f.sources);
    insertTurn(li);
    setQuickReplies(f.quick_replies);
    raiseUrgency(f.urgency);
    updateTyping();
    // The quick replies and banner just took space from the log: scroll again. A reply taller
    // than the log is shown from its first line, so it can be read top to bottom.
    if (li.offsetHeight > log.clientHeight) log.scrollTop = li.offsetTop - log.offsetTop - 8;
    else scrollToEnd();
  }

  function onError(f) {
    if (f.code === "unknown_conversation") {
      // Expired or purged: forget it and start a fresh conversation; queued messages go there.
      store.clear();
      const hadHistory = lastSeq > 0;
      conversation = null;
      lastSeq = 0;
      ready = false;
      for (const p of pending) p.sent = false;
      if (hadHistory) notice("That earlier conversation has expired, so we're starting a new one.");
      transmit({ type: "start" });
      updateTyping();
      return;
    }
    // An error about one of our messages: it will not be answered, so stop waiting for it.
    const i = f.ref ? pending.findIndex((p) => p.ref === f.ref) : -1;
    if (i >= 0) {
      const p = pending.splice(i, 1)[0];
      p.li.classList.remove("bc-msg--pending");
      p.li.classList.add("bc-msg--failed");
    }
    // The message reported a red flag but could not be answered (the server could not store it,
    // or a limit): the server sends the safety guidance anyway, and it is shown like a reply.
    const g = f.guidance;
    if (g && typeof g.text === "string" && g.text) {
      const li = messageItem("assistant", g.text);
      li.classList.add("bc-msg--guidance");
      insertTurn(li);
      raiseUrgency(g.urgency);
    }
    notice(ERROR_TEXT[f.code] || GENERIC_ERROR); // never echo content to the console
    updateTyping();
  }

  function handle(f) {
    if (f.type === "started") onStarted(f);
    else if (f.type === "reply") onReply(f);
    else if (f.type === "error") onError(f);
  }

  // ---- user actions ----
  function submit(raw) {
    const text = String(raw).replace(/^\s+|\s+$/g, "");
    if (!text) return;
    const ref = "w" + Date.now().toString(36) + "-" + (++refCounter) + "-" + Math.random().toString(36).slice(2, 6);
    const li = messageItem("user", text);
    li.classList.add("bc-msg--pending");
    log.append(li); // shown at once, whatever the connection is doing
    scrollToEnd();
    pending.push({ text, ref, li, sent: false, tried: false });
    setQuickReplies([]); // they belonged to the previous reply
    startRequested = true;
    if (!ws && !retryTimer) connect();
    if (ready) flush();
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? "Close chat" : "Open chat");
    launcherLabel.textContent = open ? "Close" : "Chat";
    if (open) {
      // A new visitor gets a conversation the first time the panel opens.
      if (!startRequested) { startRequested = true; if (!ws && !retryTimer) connect(); }
      scrollToEnd();
      input.focus();
    }
  }

  launcher.addEventListener("click", () => setOpen(panel.hidden));
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
