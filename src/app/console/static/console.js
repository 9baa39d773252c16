// faxgate console: small progressive enhancements; every page works without this file.
"use strict";

// The send page (`/send`): post the form to the API as multipart with the page's CSRF token,
// show the API's error sentence, open the new job on success.
(function () {
  const form = document.getElementById("send-form");
  if (!form) return;
  const csrf = (document.querySelector('meta[name="csrf"]') || {}).content || "";
  const status = document.getElementById("send-status");
  const error = document.getElementById("send-error");
  const button = document.getElementById("send");

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
    status.textContent = "";
    button.disabled = false;
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    error.hidden = true;
    const numbers = document.getElementById("to").value
      .split(/[\s,;]+/).map(function (s) { return s.trim(); })
      .filter(function (s) { return s.length > 0; });
    const files = document.getElementById("file").files;
    if (numbers.length === 0) { showError("Enter at least one fax number."); return; }
    if (files.length === 0) { showError("Choose at least one document."); return; }
    const body = new FormData();
    numbers.forEach(function (n) { body.append("to", n); });
    for (let i = 0; i < files.length; i++) body.append("file", files[i], files[i].name);
    const cover = document.getElementById("cover").value;
    if (cover.trim() !== "") body.append("cover", cover);
    body.append("resolution", document.getElementById("resolution").value);
    const notify = document.getElementById("notify").value.trim();
    if (notify !== "") body.append("notify", notify);

    button.disabled = true;
    status.textContent = "Sending…";
    let res;
    try {
      res = await fetch("/api/v1/faxes", {
        method: "POST",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
        body: body,
        credentials: "same-origin",
      });
    } catch (e) {
      showError("The gateway could not be reached: " + e);
      return;
    }
    let json = null;
    try { json = await res.json(); } catch (e) { json = null; }
    if (res.status === 201 && json && json.id) {
      status.textContent = "Queued as " + json.id + ".";
      window.location.assign("/jobs/" + encodeURIComponent(json.id));
      return;
    }
    const msg = json && json.error && json.error.message
      ? json.error.message
      : "The fax was not accepted (HTTP " + res.status + ").";
    showError(msg);
  });
})();

// Dashboard: the lines, the queue counts and the failures follow the daemon's event stream
// (/events, Server-Sent Events: one JSON document per change). Cells are found by their data
// attributes and changed in place; the page is never reloaded.
(function () {
  var lines = document.getElementById("lines-table");
  if (!lines || !window.EventSource) {
    return;
  }
  var status = document.getElementById("live-status");
  function setText(el, text) {
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }
  function rowsBy(table, attr) {
    var m = {};
    var rows = table ? table.querySelectorAll("tbody tr[" + attr + "]") : [];
    for (var i = 0; i < rows.length; i++) {
      m[rows[i].getAttribute(attr)] = rows[i];
    }
    return m;
  }
  function cell(row, field) {
    return row.querySelector('[data-field="' + field + '"]');
  }
  function applyLines(list) {
    var rows = rowsBy(lines, "data-line");
    list.forEach(function (l) {
      var r = rows[l.name];
      if (!r) {
        return;
      }
      var st = cell(r, "state");
      setText(st, l.state);
      st.className = "state state-" + l.state;
      setText(cell(r, "call"), l.call_text || "\u2014");
      setText(cell(r, "last-call"), l.last_call || "\u2014");
      setText(cell(r, "last-error"), l.last_error);
      r.setAttribute("data-phase", l.call ? l.call.phase : "");
      r.setAttribute("data-page", l.call && l.call.page ? String(l.call.page) : "");
    });
  }
  function applyQueue(queue) {
    var rows = rowsBy(document.getElementById("queue-table"), "data-kind");
    Object.keys(queue).forEach(function (k) {
      var r = rows[k];
      if (r) {
        setText(cell(r, "queued"), String(queue[k].queued));
        setText(cell(r, "running"), String(queue[k].running));
      }
    });
  }
  // Rebuilds the rows of tbody `id` from `list` when it changed: one cell per field, the
  // job id in <code>, the state coloured; text only (never HTML from the daemon).
  function fillRows(id, list, fields) {
    var body = document.getElementById(id);
    if (!body) {
      return;
    }
    var key = JSON.stringify(list);
    if (body.getAttribute("data-shown") === key) {
      return;
    }
    body.setAttribute("data-shown", key);
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    list.forEach(function (j) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-job", j.id);
      fields.forEach(function (f) {
        var td = document.createElement("td");
        if (f === "id") {
          var code = document.createElement("code");
          code.textContent = j.id;
          td.appendChild(code);
        } else {
          td.textContent = j[f];
          if (f === "state") {
            td.className = j.state === "done" ? "ok" : "bad";
          }
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function applyFailures(f) {
    setText(document.getElementById("failures-count"), f.count + (f.more ? "+" : ""));
    fillRows("failures-list", f.latest, ["finished", "kind", "id", "detail"]);
  }
  var events = new EventSource("/events");
  events.onopen = function () {
    setText(status, "Live: updated as it happens.");
    status.setAttribute("data-live", "on");
  };
  events.onmessage = function (e) {
    var doc;
    try {
      doc = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    applyLines(doc.lines || []);
    applyQueue(doc.queue || {});
    if (doc.failures) {
      applyFailures(doc.failures);
    }
    if (doc.recent) {
      fillRows("recent-list", doc.recent, ["finished", "kind", "state", "id", "detail"]);
    }
  };
  events.onerror = function () {
    setText(status, "Connection to faxgate lost: retrying\u2026");
    status.setAttribute("data-live", "off");
  };
})();
