// Minimal chat over Rasa's REST channel; user and bot text are inserted as text, never as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  var rasaUrl = script.getAttribute("data-rasa-url");
  var phone = script.getAttribute("data-phone");
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var status = document.getElementById("chat-status");
  var senderId = sessionStorage.getItem("chat-sender") || crypto.randomUUID();
  sessionStorage.setItem("chat-sender", senderId);

  function addMessage(who, text, buttons) {
    var item = document.createElement("li");
    item.className = who;
    item.textContent = text;
    (buttons || []).forEach(function (button) {
      var control = document.createElement("button");
      control.type = "button";
      control.textContent = button.title;
      control.addEventListener("click", function () { send(button.payload, button.title); });
      item.appendChild(document.createElement("br"));
      item.appendChild(control);
    });
    log.appendChild(item);
  }

  function send(message, shown) {
    addMessage("user", shown || message);
    status.textContent = "The assistant is typing…";
    fetch(rasaUrl + "/webhooks/rest/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: senderId, message: message })
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (replies) {
      status.textContent = "";
      replies.forEach(function (reply) { addMessage("bot", reply.text || "", reply.buttons); });
    }).catch(function () {
      status.textContent = "The assistant can't be reached right now. Please call " + phone + ".";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (text) { send(text); input.value = ""; }
  });
})();
