// Layanify web UI: live updates over Server-Sent Events, and small conveniences htmx does not cover.
// No inline script anywhere (the Content-Security-Policy forbids it): everything is wired from here.
(function () {
  "use strict";

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  // Selects marked data-submit-on-change submit their htmx form.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-submit-on-change]") && target.form) {
      htmx.trigger(target.form, "submit");
    }
  });

  // Keep the conversation scrolled to the newest message after it is (re)loaded.
  function scrollMessages() {
    var pane = document.getElementById("messages");
    if (pane && pane.dataset.stick !== "no") { pane.scrollTop = pane.scrollHeight; }
  }
  document.addEventListener("htmx:afterSettle", scrollMessages);
  document.addEventListener("DOMContentLoaded", scrollMessages);

  // Enter sends, Shift+Enter adds a line.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Enter" && !event.shiftKey && target.matches && target.matches("textarea[data-enter-sends]")) {
      event.preventDefault();
      if (target.value.trim() && target.form) { htmx.trigger(target.form, "submit"); }
    }
  });

  // Tell the customer the agent is typing (the server decides whether the number shows it), at most
  // every 20 seconds.
  var lastTyping = 0;
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("textarea[data-typing-url]")) { return; }
    var now = Date.now();
    if (now - lastTyping < 20000 || !target.value.trim()) { return; }
    lastTyping = now;
    fetch(target.dataset.typingUrl, { method: "POST", headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" });
  });

  // Reply-to: a click on "Reply" fills the hidden field and shows what is quoted.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-reply-to]");
    if (button) {
      var form = document.getElementById("composer");
      if (!form) { return; }
      form.querySelector("[name=reply_to]").value = button.dataset.replyTo;
      var quote = form.querySelector(".quoting");
      quote.hidden = false;
      quote.querySelector(".quoting-text").textContent = button.dataset.replyText || "";
      form.querySelector("textarea") && form.querySelector("textarea").focus();
      return;
    }
    var cancel = event.target.closest && event.target.closest("[data-cancel-reply]");
    if (cancel) {
      var composer = document.getElementById("composer");
      composer.querySelector("[name=reply_to]").value = "";
      composer.querySelector(".quoting").hidden = true;
    }
    var emoji = event.target.closest && event.target.closest("[data-emoji]");
    if (emoji) {
      var box = document.querySelector("#composer textarea");
      if (box) {
        var at = box.selectionStart || box.value.length;
        box.value = box.value.slice(0, at) + emoji.dataset.emoji + box.value.slice(box.selectionEnd || at);
        box.focus();
        box.selectionStart = box.selectionEnd = at + emoji.dataset.emoji.length;
      }
      emoji.closest("details").open = false;
      return;
    }
    var copy = event.target.closest && event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          copy.classList.add("copied");
          setTimeout(function () { copy.classList.remove("copied"); }, 1500);
        });
      }
    }
  });

  // Live events. The browser's EventSource reconnects by itself and sends Last-Event-ID, so the server
  // replays what was missed; if it gives up, we reconnect with the last id we saw.
  var lastEventId = "";
  var source = null;
  function announce(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
  }
  function handle(type, event) {
    lastEventId = event.lastEventId || lastEventId;
    var data = {};
    try { data = JSON.parse(event.data || "{}"); } catch (e) { data = {}; }
    if (type === "resync") { announce("lay-inbox", data); announce("lay-resync", data); return; }
    announce("lay-inbox", data);
    if (data.conversation_id) {
      announce("lay-conversation-" + data.conversation_id, data);
      if (type === "message.created") { announce("lay-new-message-" + data.conversation_id, data); }
    }
  }
  function connect() {
    var url = document.body.dataset.events;
    if (!url || !window.EventSource) { return; }
    if (lastEventId) { url += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastEventId); }
    source = new EventSource(url, { withCredentials: true });
    var status = document.getElementById("live-status");
    source.onopen = function () { if (status) { status.hidden = true; } };
    source.onerror = function () {
      if (status) { status.hidden = false; }
      if (source.readyState === EventSource.CLOSED) { setTimeout(connect, 3000); }
    };
    ["message.created", "message.updated", "conversation.updated", "resync"].forEach(function (type) {
      source.addEventListener(type, function (event) { handle(type, event); });
    });
  }
  document.addEventListener("DOMContentLoaded", connect);
})();

// Error toasts go away on their own.
document.addEventListener("htmx:afterSwap", function (event) {
  if (event.target && event.target.id === "toasts") {
    var toasts = event.target.querySelectorAll(".toast");
    toasts.forEach(function (toast) { setTimeout(function () { toast.remove(); }, 6000); });
  }
});
