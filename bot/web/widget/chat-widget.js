/*
 * Chat widget for a practice's website: one script (this file) and one stylesheet (chat-widget.css).
 *
 *   <link rel="stylesheet" href="https://assistant.example/widget/chat-widget.css">
 *   <script src="https://assistant.example/widget/chat-widget.js" data-server="https://rasa.example" defer></script>
 *
 * data-server (the Rasa server URL) is the only required setting; see README "Website chat" for the rest.
 * It speaks socket.io to Rasa's socketio channel (session_persistence: true). The socket.io client is
 * loaded from vendor/ next to this file, i.e. from the same server, never from a CDN.
 *
 * Safety rules kept throughout: user and bot text only ever reach the page as text nodes or through
 * element properties (textContent, href checked against a protocol allow-list), never as HTML; the
 * crisis line is built before any network activity, so it is there when the server is down.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__harborChatLoaded) { return; }
  window.__harborChatLoaded = true;

  var STORAGE_KEY = "harbor-chat:v1";
  var MAX_STORED_MESSAGES = 200;

  function setting(name, fallback) {
    var value = script.getAttribute("data-" + name);
    return value === null || value === "" ? fallback : value;
  }

  function telHref(number) {
    return "tel:" + String(number).replace(/[^\d+]/g, "");
  }

  var config = {
    server: setting("server", ""),
    socketPath: setting("socket-path", "/socket.io/"),
    socketSrc: setting("socketio-src", new URL("vendor/socket.io.min.js", script.src).href),
    title: setting("title", "Chat with our assistant"),
    practiceName: setting("practice-name", ""),
    phone: setting("phone", ""),
    phoneHref: setting("phone-href", ""),
    emergency: setting("emergency-number", "911"),
    lifeline: setting("lifeline-number", "988"),
    initPayload: setting("init-payload", ""),
    storage: setting("storage", "session") === "local" ? "localStorage" : "sessionStorage",
    connectTimeoutMs: Number(setting("connect-timeout", "6000")),
    replyTimeoutMs: Number(setting("reply-timeout", "15000"))
  };
  if (config.phone && !config.phoneHref) { config.phoneHref = telHref(config.phone); }

  // ---------------------------------------------------------------- storage (this browser only)

  function store() {
    try { return window[config.storage]; } catch (error) { return null; }
  }

  function newSessionId() {
    // 128 random bits from the browser's CSPRNG: the session id is the only key to a conversation.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function loadState() {
    var raw = null;
    try { raw = store() && store().getItem(STORAGE_KEY); } catch (error) { raw = null; }
    if (raw) {
      try {
        var saved = JSON.parse(raw);
        if (saved && /^[0-9a-f]{32}$/.test(saved.sessionId) && Array.isArray(saved.messages)) { return saved; }
      } catch (error) { /* a damaged entry starts a fresh conversation */ }
    }
    return { sessionId: newSessionId(), messages: [], open: false, greeted: false };
  }

  function saveState() {
    state.messages = state.messages.slice(-MAX_STORED_MESSAGES);
    try { if (store()) { store().setItem(STORAGE_KEY, JSON.stringify(state)); } } catch (error) { /* full or blocked */ }
  }

  var state = loadState();

  // ---------------------------------------------------------------- building elements safely

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function button(className, text) {
    var node = el("button", className, text);
    node.type = "button";
    return node;
  }

  function link(href, text) {
    var node = el("a", "hlc-link", text);
    node.href = href;
    return node;
  }

  function hidden(text) {
    return el("span", "hlc-visually-hidden", text);
  }

  var uid = 0;
  function newId(prefix) { uid += 1; return "hlc-" + prefix + "-" + uid; }

  // Turns bot text into text nodes and links. Only http(s), mailto and tel links are made, each from
  // a match in the text; everything else stays plain text.
  var LINK_PATTERN = /(https?:\/\/[^\s<>"']+)|([\w.+-]+@[\w-]+(?:\.[\w-]+)+)|(\+?1?[\s.-]?\(?\d{3}\)?[\s.-]\d{3}-\d{4})/g;

  function linkified(text) {
    var fragment = document.createDocumentFragment();
    var last = 0;
    var match;
    LINK_PATTERN.lastIndex = 0;
    while ((match = LINK_PATTERN.exec(text)) !== null) {
      var found = match[0];
      var trailing = /[.,;:!?)]+$/.exec(found);
      if (trailing && match[1]) { found = found.slice(0, -trailing[0].length); }
      var href = null;
      if (match[1]) {
        try {
          var url = new URL(found);
          if (url.protocol === "http:" || url.protocol === "https:") { href = url.href; }
        } catch (error) { href = null; }
      } else if (match[2]) {
        href = "mailto:" + found;
      } else if (match[3]) {
        found = found.replace(/^\s+/, "");
        href = telHref(found);
      }
      var start = match.index + match[0].indexOf(found);
      if (!href) { continue; }
      fragment.appendChild(document.createTextNode(text.slice(last, start)));
      var anchor = link(href, found);
      if (match[1]) {
        anchor.target = "_blank";
        anchor.rel = "noopener noreferrer";
        anchor.appendChild(hidden(" (opens in a new tab)"));
      }
      fragment.appendChild(anchor);
      last = start + found.length;
      LINK_PATTERN.lastIndex = last;
    }
    fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  function crisisLine(className) {
    var line = el("p", className);
    line.appendChild(el("strong", null, "In danger now? "));
    line.appendChild(document.createTextNode("Call "));
    line.appendChild(link(telHref(config.emergency), config.emergency));
    line.appendChild(document.createTextNode(". Call or text "));
    line.appendChild(link(telHref(config.lifeline), config.lifeline));
    line.appendChild(document.createTextNode("."));
    return line;
  }

  function phoneSentence(before) {
    var fragment = document.createDocumentFragment();
    fragment.appendChild(document.createTextNode(before));
    if (config.phone) {
      fragment.appendChild(document.createTextNode(" Please call " + (config.practiceName ? config.practiceName + " at " : "us at ")));
      fragment.appendChild(link(config.phoneHref, config.phone));
      fragment.appendChild(document.createTextNode("."));
    }
    fragment.appendChild(document.createTextNode(" If you are in danger, call " + config.emergency +
      " or call or text " + config.lifeline + "."));
    return fragment;
  }

  // ---------------------------------------------------------------- the widget's elements

  var root = el("div", "hlc-chat");
  var launcher = button("hlc-launcher");
  var launcherLabel = el("span", "hlc-launcher-label", config.title);
  var unreadDot = el("span", "hlc-unread");
  unreadDot.hidden = true;
  unreadDot.appendChild(hidden(" (new message)"));
  launcher.appendChild(el("span", "hlc-launcher-icon"));
  launcher.appendChild(launcherLabel);
  launcher.appendChild(unreadDot);

  var panel = el("section", "hlc-panel");
  panel.id = newId("panel");
  var titleId = newId("title");
  panel.setAttribute("aria-labelledby", titleId);
  panel.hidden = true;
  launcher.setAttribute("aria-controls", panel.id);
  launcher.setAttribute("aria-expanded", "false");

  var header = el("div", "hlc-header");
  var headings = el("div", "hlc-headings");
  var title = el("h2", "hlc-title", config.title);
  title.id = titleId;
  headings.appendChild(title);
  headings.appendChild(el("p", "hlc-subtitle", "Automated assistant · not a person or a therapist"));
  var closeButton = button("hlc-close");
  closeButton.appendChild(el("span", "hlc-close-icon"));
  closeButton.appendChild(hidden("Minimize chat"));
  closeButton.setAttribute("aria-controls", panel.id);
  header.appendChild(headings);
  header.appendChild(closeButton);

  var crisis = crisisLine("hlc-crisis");

  var notice = el("p", "hlc-notice",
    "You are chatting with an automated assistant. It is not a person and not a therapist. It can " +
    "answer questions about therapy and getting started. Please don't share details you'd rather keep private.");

  var connection = el("div", "hlc-connection");
  connection.setAttribute("role", "status");

  // The live region wraps the list (a role on the <ol> itself would orphan its items).
  var logBox = el("div", "hlc-log");
  logBox.setAttribute("role", "log");
  logBox.setAttribute("aria-live", "polite");
  logBox.setAttribute("aria-relevant", "additions");
  logBox.setAttribute("aria-label", "Messages");
  var log = el("ol", "hlc-log-list");
  logBox.appendChild(log);

  var typing = el("div", "hlc-typing");
  typing.setAttribute("role", "status");
  var typingDots = el("span", "hlc-typing-dots");
  typingDots.setAttribute("aria-hidden", "true");
  typingDots.appendChild(el("span"));
  typingDots.appendChild(el("span"));
  typingDots.appendChild(el("span"));
  var typingText = el("span", "hlc-typing-text");
  typing.appendChild(typingDots);
  typing.appendChild(typingText);
  typing.hidden = true;

  var form = el("form", "hlc-composer");
  form.noValidate = true;
  var inputId = newId("input");
  var label = el("label", "hlc-label", "Your message");
  label.htmlFor = inputId;
  var input = el("input", "hlc-input");
  input.id = inputId;
  input.type = "text";
  input.autocomplete = "off";
  input.maxLength = 1000;
  input.setAttribute("enterkeyhint", "send");
  var sendButton = el("button", "hlc-send", "Send");
  sendButton.type = "submit";
  form.appendChild(label);
  var row = el("div", "hlc-composer-row");
  row.appendChild(input);
  row.appendChild(sendButton);
  form.appendChild(row);

  var actions = el("div", "hlc-actions");
  var humanButton = button("hlc-action hlc-human", "Talk to a person");
  var clearButton = button("hlc-action hlc-clear", "End and clear conversation");
  actions.appendChild(humanButton);
  actions.appendChild(clearButton);

  var privacy = el("p", "hlc-privacy", config.storage === "localStorage"
    ? "This conversation is kept in this browser until you clear it."
    : "This conversation is kept in this browser tab until you clear it or close the tab.");

  // Title and crisis line stay in view together, also when a short screen makes the panel scroll.
  var top = el("div", "hlc-top");
  top.appendChild(header);
  top.appendChild(crisis);
  panel.appendChild(top);
  // The scrolling area: focusable so that keyboard users can scroll it with the arrow keys.
  var body = el("div", "hlc-body");
  body.tabIndex = 0;
  body.setAttribute("role", "region");
  body.setAttribute("aria-label", "Conversation");
  body.appendChild(notice);
  body.appendChild(logBox);
  panel.appendChild(body);
  panel.appendChild(connection);
  panel.appendChild(typing);
  panel.appendChild(form);
  panel.appendChild(actions);
  panel.appendChild(privacy);
  root.appendChild(panel);
  root.appendChild(launcher);

  // ---------------------------------------------------------------- messages

  function clock(iso) {
    var when = new Date(iso);
    return isNaN(when.getTime()) ? "" : when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }

  function removeQuickReplies() {
    var groups = log.querySelectorAll(".hlc-replies");
    Array.prototype.forEach.call(groups, function (group) { group.parentNode.removeChild(group); });
  }

  function renderMessage(message, isLatest) {
    var item = el("li", "hlc-message hlc-from-" + (message.from === "user" ? "user" : "bot"));
    var meta = el("p", "hlc-meta");
    meta.appendChild(el("span", "hlc-who", message.from === "user" ? "You" : "Assistant"));
    meta.appendChild(document.createTextNode(" "));
    var time = el("time", "hlc-time", clock(message.at));
    time.dateTime = message.at;
    meta.appendChild(time);
    var bubble = el("p", "hlc-bubble");
    if (message.from === "user") {
      bubble.textContent = message.text;
    } else {
      bubble.appendChild(linkified(message.text));
    }
    item.appendChild(meta);
    item.appendChild(bubble);
    if (isLatest && message.replies && message.replies.length) {
      var group = el("div", "hlc-replies");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Suggested replies");
      message.replies.forEach(function (reply) {
        var choice = button("hlc-reply", reply.title);
        choice.addEventListener("click", function () {
          sendMessage(reply.payload, reply.title);
          input.focus();
        });
        group.appendChild(choice);
      });
      item.appendChild(group);
    }
    return item;
  }

  function scrollToEnd() {
    body.scrollTop = body.scrollHeight;
    // On short screens the whole panel scrolls (see the stylesheet): bring the newest message into view.
    if (panel.scrollHeight > panel.clientHeight && log.lastElementChild) {
      log.lastElementChild.scrollIntoView({ block: "nearest" });
    }
  }

  function addMessage(message) {
    state.messages.push(message);
    saveState();
    removeQuickReplies();
    log.appendChild(renderMessage(message, true));
    scrollToEnd();
  }

  function renderHistory() {
    while (log.firstChild) { log.removeChild(log.firstChild); }
    state.messages.forEach(function (message, index) {
      log.appendChild(renderMessage(message, index === state.messages.length - 1));
    });
  }

  // ---------------------------------------------------------------- status: connection and typing

  var status = "idle"; // idle | connecting | online | offline
  var shownKind = ""; // what the connection line shows now
  var replyTimer = null;
  var connectTimer = null;

  function showConnection(kind, content) {
    shownKind = content ? kind : "";
    connection.className = "hlc-connection" + (kind ? " hlc-connection-" + kind : "");
    while (connection.firstChild) { connection.removeChild(connection.firstChild); }
    if (content) { connection.appendChild(content); }
    scrollToEnd(); // the notice takes room from the conversation: keep its end in view
  }

  function setTyping(on) {
    typing.hidden = !on;
    typingText.textContent = on ? "The assistant is typing…" : "";
  }

  function goOffline(reason) {
    window.clearTimeout(connectTimer);
    window.clearTimeout(replyTimer);
    setTyping(false);
    status = "offline";
    root.setAttribute("data-status", "offline");
    showConnection("offline", phoneSentence(reason || "The assistant can't be reached right now."));
  }

  function goOnline() {
    window.clearTimeout(connectTimer);
    status = "online";
    root.setAttribute("data-status", "online");
    if (shownKind !== "cleared") { showConnection("", null); }
  }

  // ---------------------------------------------------------------- socket.io

  var socket = null;
  var clientLoading = null;

  function loadClient() {
    if (window.io) { return Promise.resolve(window.io); }
    if (clientLoading) { return clientLoading; }
    clientLoading = new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = config.socketSrc;
      tag.async = true;
      tag.onload = function () { return window.io ? resolve(window.io) : reject(new Error("no io")); };
      tag.onerror = function () { clientLoading = null; reject(new Error("socket.io client did not load")); };
      document.head.appendChild(tag);
    });
    return clientLoading;
  }

  function connect() {
    if (socket || status === "connecting") { return; }
    if (!config.server) { goOffline("The chat is not set up on this page."); return; }
    status = "connecting";
    root.setAttribute("data-status", "connecting");
    showConnection("connecting", document.createTextNode("Connecting to the assistant…"));
    // A bounded wait: after this the visitor sees the phone number, whatever the network does.
    connectTimer = window.setTimeout(function () {
      if (status !== "online") { goOffline(); }
    }, config.connectTimeoutMs);
    loadClient().then(function (io) {
      socket = io(config.server, {
        path: config.socketPath,
        transports: ["websocket", "polling"],
        tryAllTransports: true,
        timeout: config.connectTimeoutMs,
        reconnectionDelay: 2000,
        reconnectionDelayMax: 15000
      });
      socket.on("connect", function () {
        socket.emit("session_request", { session_id: state.sessionId });
      });
      socket.on("session_confirm", function () {
        goOnline();
        if (config.initPayload && !state.greeted) {
          state.greeted = true;
          saveState();
          emit(config.initPayload);
        }
      });
      socket.on("bot_uttered", receive);
      // Retries fail quietly once the visitor has been told (a live region must not repeat itself).
      socket.on("connect_error", function () { if (status !== "offline") { goOffline(); } });
      socket.on("disconnect", function (reason) {
        if (reason !== "io client disconnect" && status !== "offline") { goOffline(); }
      });
    }, function () {
      goOffline();
    });
  }

  function emit(message) {
    setTyping(true);
    window.clearTimeout(replyTimer);
    replyTimer = window.setTimeout(function () {
      setTyping(false);
      showConnection("offline", phoneSentence("The assistant hasn't answered."));
    }, config.replyTimeoutMs);
    socket.emit("user_uttered", { message: message, session_id: state.sessionId });
  }

  function receive(data) {
    if (!data || typeof data.text !== "string" || !data.text) { return; }
    window.clearTimeout(replyTimer);
    setTyping(false);
    if (status === "online" && shownKind !== "cleared") { showConnection("", null); }
    var replies = Array.isArray(data.quick_replies) ? data.quick_replies : (Array.isArray(data.buttons) ? data.buttons : []);
    addMessage({
      from: "bot",
      text: data.text,
      at: new Date().toISOString(),
      replies: replies.filter(function (reply) {
        return reply && typeof reply.title === "string" && typeof reply.payload === "string";
      }).map(function (reply) { return { title: reply.title, payload: reply.payload }; })
    });
    if (panel.hidden) { unreadDot.hidden = false; }
  }

  function sendMessage(message, shown) {
    if (status !== "online" || !socket || !socket.connected) {
      goOffline("Your message was not sent: the assistant can't be reached right now.");
      return false;
    }
    if (shownKind === "cleared" || shownKind === "offline") { showConnection("", null); }
    addMessage({ from: "user", text: shown || message, at: new Date().toISOString(), replies: [] });
    emit(message);
    return true;
  }

  // ---------------------------------------------------------------- opening, closing, clearing

  function openPanel(focusInput) {
    panel.hidden = false;
    root.setAttribute("data-open", "true");
    launcher.setAttribute("aria-expanded", "true");
    unreadDot.hidden = true;
    state.open = true;
    saveState();
    scrollToEnd();
    connect();
    if (focusInput !== false) { input.focus(); }
  }

  function closePanel() {
    panel.hidden = true;
    root.setAttribute("data-open", "false");
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    saveState();
    launcher.focus();
  }

  function clearConversation() {
    try { if (store()) { store().removeItem(STORAGE_KEY); } } catch (error) { /* nothing stored */ }
    window.clearTimeout(replyTimer);
    setTyping(false);
    state = { sessionId: newSessionId(), messages: [], open: true, greeted: false };
    saveState();
    renderHistory();
    if (socket) {
      // The old session's room is left by dropping the connection; the new id gets a fresh one.
      socket.off();
      socket.disconnect();
      socket = null;
    }
    status = "idle";
    connect();
    showConnection("cleared", document.createTextNode(
      "The conversation was cleared from this browser. A new conversation has started."));
    input.value = "";
    input.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) { openPanel(); } else { closePanel(); }
  });
  closeButton.addEventListener("click", closePanel);
  // Where the panel covers the whole screen (see the stylesheet) it behaves like a modal dialog: Tab
  // cycles inside it, so keyboard focus never lands on page content hidden behind it.
  var fullScreen = window.matchMedia("(max-width: 30rem), (max-height: 34rem)");
  function focusables() {
    return Array.prototype.filter.call(
      panel.querySelectorAll("a[href], button, input, [tabindex='0']"),
      function (node) { return !node.disabled && node.getClientRects().length > 0; }
    );
  }
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); closePanel(); return; }
    if (event.key !== "Tab" || !fullScreen.matches) { return; }
    var nodes = focusables();
    if (!nodes.length) { return; }
    var first = nodes[0];
    var last = nodes[nodes.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { input.focus(); return; }
    if (sendMessage(text)) { input.value = ""; }
    input.focus();
  });
  humanButton.addEventListener("click", function () {
    sendMessage("/request_human", "Talk to a person");
    input.focus();
  });
  clearButton.addEventListener("click", clearConversation);

  // Any element on the host page with data-chat-open opens the chat (e.g. an "Ask our assistant" button).
  document.addEventListener("click", function (event) {
    var target = event.target;
    var opener = target && target.closest ? target.closest("[data-chat-open]") : null;
    if (opener) { event.preventDefault(); openPanel(); }
  });

  function mount() {
    renderHistory(); // before the log is in the page, so restored history is not read out again
    document.body.appendChild(root);
    if (state.open) { openPanel(false); }
  }

  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
