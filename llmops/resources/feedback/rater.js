// Rater page: no framework, no build step, no network beyond this server's API.
// The API key is asked once and kept in sessionStorage (this tab only).
"use strict";

const KEY_STORE = "llmops.feedback.key";
const $ = (id) => document.getElementById(id);
const state = { item: null, scores: {}, selected: 0 };

function key() { return sessionStorage.getItem(KEY_STORE); }

function status(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = kind;
}

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

function show(section) {
  for (const id of ["login", "rate", "empty"]) $(id).hidden = id !== section;
  $("logout").hidden = section === "login";
}

function renderItem(item) {
  state.item = item; state.scores = {}; state.selected = 0;
  $("item-id").textContent = "#" + item.id;
  $("prompt").textContent = item.prompt;
  $("context").hidden = !item.context;
  $("context").textContent = item.context || "";
  $("critique").value = "";
  for (const r of document.querySelectorAll("input[name=pref]")) r.checked = false;
  $("compare").hidden = item.responses.length !== 2;
  const box = $("responses");
  box.replaceChildren();
  item.responses.forEach((resp, i) => {
    const card = document.createElement("div");
    card.className = "response";
    card.tabIndex = 0;
    card.dataset.index = i;
    card.dataset.responseId = resp.id;
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = "Response " + String.fromCharCode(65 + i);
    const text = document.createElement("pre");
    text.textContent = resp.text;  // textContent: model output is never parsed as HTML
    const scores = document.createElement("div");
    scores.className = "scores";
    for (let s = item.scale_min; s <= item.scale_max; s++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = s;
      b.dataset.score = s;
      b.setAttribute("aria-pressed", "false");
      b.setAttribute("aria-label", "score " + s + " for response " + String.fromCharCode(65 + i));
      b.addEventListener("click", () => setScore(i, s));
      scores.append(b);
    }
    card.append(label, text, scores);
    card.addEventListener("focus", () => select(i));
    box.append(card);
  });
  select(0);
  show("rate");
}

function select(i) {
  state.selected = i;
  document.querySelectorAll(".response").forEach((c, j) => c.classList.toggle("selected", j === i));
}

function setScore(i, s) {
  const resp = state.item.responses[i];
  state.scores[resp.id] = s;
  document.querySelectorAll(`.response[data-index="${i}"] .scores button`).forEach((b) => {
    b.setAttribute("aria-pressed", String(Number(b.dataset.score) === s));
  });
  status("");
}

async function loadNext(done = "") {
  status("Loading…");
  try {
    const item = await api("GET", "/v1/items/next");
    if (!item) { show("empty"); status(done, "ok"); return; }
    renderItem(item);
    status(done, done ? "ok" : "");
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem(KEY_STORE); show("login"); }
    status(e.message, "error");
  }
}

async function submit() {
  const item = state.item;
  if (!item) return;
  const rated = item.responses.filter((r) => state.scores[r.id] !== undefined);
  const pref = document.querySelector("input[name=pref]:checked");
  if (!rated.length && !pref) { status("Score at least one response (keys 1–9) or pick the better one.", "error"); return; }
  const critique = $("critique").value.trim() || null;
  $("submit").disabled = true;
  try {
    // Each write carries its own Idempotency-Key, so a double click or a retry stores nothing twice.
    if (rated.length) {
      await api("POST", "/v1/ratings/bulk", {
        ratings: rated.map((r) => ({ response_id: r.id, score: state.scores[r.id], critique })),
      }, newIdempotencyKey());
    }
    if (pref) {
      const [a, b] = item.responses.map((r) => r.id);
      const body = pref.value === "tie" ? { item_id: item.id, tie: [a, b] }
        : pref.value === "0" ? { item_id: item.id, chosen: a, rejected: b }
        : { item_id: item.id, chosen: b, rejected: a };
      await api("POST", "/v1/comparisons", body, newIdempotencyKey()).catch((e) => { if (e.status !== 409) throw e; });
    }
    await loadNext("Saved item #" + item.id + ".");
  } catch (e) {
    status("Not saved: " + e.message, "error");
  } finally {
    $("submit").disabled = false;
  }
}

function onKey(ev) {
  if ($("rate").hidden) return;
  const typing = ev.target === $("critique");
  if (ev.key === "Enter" && (!typing || ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(); return; }
  if (typing) { if (ev.key === "Escape") ev.target.blur(); return; }
  const k = ev.key.toLowerCase();
  const n = state.item ? state.item.responses.length : 0;
  if (/^[0-9]$/.test(ev.key)) {
    const s = Number(ev.key);
    if (state.item && s >= state.item.scale_min && s <= state.item.scale_max) setScore(state.selected, s);
  } else if (k === "j" || ev.key === "ArrowRight") { select((state.selected + 1) % n); }
  else if (k === "k" || ev.key === "ArrowLeft") { select((state.selected - 1 + n) % n); }
  else if (k === "a" || k === "b" || k === "t") {
    const v = k === "a" ? "0" : k === "b" ? "1" : "tie";
    const r = document.querySelector(`input[name=pref][value="${v}"]`);
    if (r && !$("compare").hidden) r.checked = true;
  } else if (k === "c") { ev.preventDefault(); $("critique").focus(); }
  else if (k === "s") { skip(); }
  else { return; }
  ev.preventDefault();
}

async function skip() {
  // "next" serves the oldest unrated item; skipping pages past it for this session.
  status("Skipped.");
  try {
    const page = await api("GET", "/v1/items?limit=50");
    const next = page.items.find((it) => it.id > state.item.id);
    if (next) renderItem(next); else show("empty");
  } catch (e) { status(e.message, "error"); }
}

async function whoami() {
  $("who").textContent = "key " + (key() || "").split("_")[1];
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_STORE, $("key").value.trim());
  $("key").value = "";
  whoami();
  loadNext();
});
$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY_STORE); $("who").textContent = ""; show("login"); });
$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", skip);
document.addEventListener("keydown", onKey);

if (key()) { whoami(); loadNext(); } else { show("login"); }
