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
