// faxgate console: small progressive enhancements; every page works without this file.
"use strict";

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
