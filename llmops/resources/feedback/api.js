// The rater page's access to the feedback API: the key (kept in sessionStorage, this tab only),
// JSON calls with the server's error format turned into exceptions, idempotency keys for writes.
"use strict";

const KEY_STORE = "llmops.feedback.key";
const $ = (id) => document.getElementById(id);

function key() { return sessionStorage.getItem(KEY_STORE); }
function setKey(value) { if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE); }

function newIdempotencyKey() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
}

async function api(method, path, body, idemKey) {
  const headers = { "Authorization": "Bearer " + key() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idemKey) headers["Idempotency-Key"] = idemKey;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const err = (data && data.error) || { code: "http_" + res.status, message: res.statusText };
    const e = new Error(err.message + (err.field ? " (" + err.field + ")" : ""));
    e.status = res.status; e.code = err.code;
    throw e;
  }
  return data;
}

function status(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = kind;
}
