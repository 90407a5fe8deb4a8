// Staff console: keeps the queue and an open transcript up to date by polling JSON.
// Visitor text is only ever inserted with textContent, never as HTML.
(function () {
  "use strict";

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function toLogin(response) {
    if (response.status === 401) { window.location.assign("/staff/login"); throw new Error("logged out"); }
    if (!response.ok) { throw new Error(String(response.status)); }
    return response.json();
  }

  var queue = document.getElementById("queue");
  if (queue) {
    var body = queue.querySelector("tbody");
    var refreshQueue = function () {
      fetch(queue.getAttribute("data-api"), { credentials: "same-origin" }).then(toLogin).then(function (data) {
        body.textContent = "";
        if (!data.tickets.length) {
          var empty = document.createElement("tr");
          empty.className = "empty";
          cell(empty, "Nobody is waiting.").colSpan = 6;
          body.appendChild(empty);
        }
        data.tickets.forEach(function (ticket) {
          var row = document.createElement("tr");
          row.className = "priority-" + ticket.priority;
          row.setAttribute("data-ticket", String(ticket.id));
          cell(row, ticket.priority);
          cell(row, ticket.reason);
          cell(row, ticket.waiting_minutes + " min");
          cell(row, ticket.status + (ticket.claimed_by ? " by " + ticket.claimed_by : "") +
            (ticket.handed_back ? " (handed back)" : ""));
          cell(row, ticket.visitor_wrote);
          var link = document.createElement("a");
          link.href = ticket.url;
          link.textContent = "Open #" + ticket.id;
          cell(row, "").appendChild(link);
          body.appendChild(row);
        });
      }).catch(function () { /* try again on the next tick */ });
    };
    window.setInterval(refreshQueue, 3000);
  }

  var transcript = document.getElementById("transcript");
  if (transcript) {
    var after = Number(transcript.getAttribute("data-after")) || 0;
    var labels = { visitor: "Visitor", bot: "Assistant", system: "System" };
    var refreshTranscript = function () {
      fetch(transcript.getAttribute("data-api") + "?after=" + after, { credentials: "same-origin" })
        .then(toLogin).then(function (data) {
          data.entries.forEach(function (entry) {
            var item = document.createElement("li");
            item.className = "entry " + entry.kind;
            item.setAttribute("data-event", String(entry.id));
            var meta = document.createElement("span");
            meta.className = "meta";
            meta.textContent = new Date(entry.at).toLocaleString() + " · " +
              (entry.kind === "staff" ? entry.author + " (staff)" : labels[entry.kind]) +
              (entry.intent ? " · intent " + entry.intent : "");
            var text = document.createElement("span");
            text.className = "text";
            text.textContent = entry.text;
            item.appendChild(meta);
            item.appendChild(text);
            if (entry.risk && Object.keys(entry.risk).length) {
              var risk = document.createElement("span");
              risk.className = "risk";
              risk.textContent = "Risk assessment: " + JSON.stringify(entry.risk);
              item.appendChild(risk);
            }
            transcript.appendChild(item);
            after = Math.max(after, entry.id);
          });
        }).catch(function () { /* try again on the next tick */ });
    };
    window.setInterval(refreshTranscript, 1000);
  }
})();
