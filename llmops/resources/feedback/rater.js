// Rater page: no framework, no build step, no network beyond this server's API (api.js).
// An item is answered when every response is scored or the better one is picked; each response
// keeps its own critique; a bulk submit marks the responses it could not store and stays put.
"use strict";

const state = { item: null, scores: {}, saved: new Set(), compared: false, selected: 0 };
const letter = (i) => String.fromCharCode(65 + i);

function show(section) {
  for (const id of ["login", "rate", "empty"]) $(id).hidden = id !== section;
  $("logout").hidden = section === "login";
}

function card(i) { return document.querySelector(`.response[data-index="${i}"]`); }

function renderResponse(item, resp, i) {
  const box = document.createElement("div");
  box.className = "response";
  box.tabIndex = 0;
  box.dataset.index = i;
  box.dataset.responseId = resp.id;
  const label = document.createElement("div");
  label.className = "label";
  label.textContent = "Response " + letter(i);
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
    b.setAttribute("aria-label", "score " + s + " for response " + letter(i));
    b.addEventListener("click", () => setScore(i, s));
    scores.append(b);
  }
  const critique = document.createElement("textarea");
  critique.className = "critique";
  critique.rows = 2;
  critique.maxLength = 10000;
  critique.placeholder = "Critique of " + letter(i) + " (optional, C)";
  critique.setAttribute("aria-label", "critique of response " + letter(i));
  const error = document.createElement("p");
  error.className = "error";
  error.setAttribute("role", "alert");
  box.append(label, text, scores, critique, error);
  box.addEventListener("focusin", () => select(i));
  return box;
}

function renderItem(item) {
  Object.assign(state, { item, scores: {}, saved: new Set(), compared: false, selected: 0 });
  $("item-id").textContent = "#" + item.id;
  $("prompt").textContent = item.prompt;
  $("context").hidden = !item.context;
  $("context").textContent = item.context || "";
  for (const r of document.querySelectorAll("input[name=pref]")) r.checked = false;
  $("compare").hidden = item.responses.length !== 2;
  $("responses").replaceChildren(...item.responses.map((resp, i) => renderResponse(item, resp, i)));
  select(0);
  show("rate");
}

function select(i) {
  state.selected = i;
  document.querySelectorAll(".response").forEach((c, j) => c.classList.toggle("selected", j === i));
}

function setScore(i, s) {
  state.scores[state.item.responses[i].id] = s;
  card(i).querySelectorAll(".scores button").forEach((b) => {
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
    if (e.status === 401) { setKey(null); show("login"); }
    status(e.message, "error");
  }
}

// What the rater entered, checked: null (with the reason shown) when it is not a complete answer.
function collect() {
  const item = state.item;
  const pref = document.querySelector("input[name=pref]:checked");
  const ratings = [];
  for (const [i, r] of item.responses.entries()) {
    const critique = card(i).querySelector(".critique").value.trim() || null;
    card(i).querySelector(".error").textContent = "";
    if (state.scores[r.id] === undefined) {
      if (critique) { status("Response " + letter(i) + " has a critique but no score: score it (1–9) too.", "error"); return null; }
    } else if (!state.saved.has(r.id)) {
      ratings.push({ index: i, body: { response_id: r.id, score: state.scores[r.id], critique } });
    }
  }
  const allScored = item.responses.every((r) => state.scores[r.id] !== undefined);
  if (!allScored && !pref) { status("Score every response (keys 1–9) or pick the better one.", "error"); return null; }
  return { ratings, pref };
}

async function saveRatings(ratings) {
  if (!ratings.length) return 0;
  // Each write carries its own Idempotency-Key, so a double click or a retry stores nothing twice.
  const out = await api("POST", "/v1/ratings/bulk", { ratings: ratings.map((r) => r.body) }, newIdempotencyKey());
  const failed = bulkFailures(out);
  ratings.forEach((r, j) => {
    const err = failed.get(j);
    if (err) card(r.index).querySelector(".error").textContent = "Not saved: " + err.message;
    else state.saved.add(r.body.response_id);
  });
  return failed.size;
}

async function saveComparison(pref) {
  if (!pref || state.compared) return;
  const item = state.item;
  const [a, b] = item.responses.map((r) => r.id);
  const body = pref.value === "tie" ? { item_id: item.id, tie: [a, b] }
    : pref.value === "0" ? { item_id: item.id, chosen: a, rejected: b }
    : { item_id: item.id, chosen: b, rejected: a };
  await api("POST", "/v1/comparisons", body, newIdempotencyKey()).catch((e) => { if (e.status !== 409) throw e; });
  state.compared = true;
}

async function submit() {
  const item = state.item;
  if (!item || $("submit").disabled) return;
  const answer = collect();
  if (!answer) return;
  $("submit").disabled = true;
  try {
    const nFailed = await saveRatings(answer.ratings);
    if (nFailed) {
      status(`Not saved: ${nFailed} of ${answer.ratings.length} ratings failed (marked below); Enter retries them.`, "error");
      return;
    }
    await saveComparison(answer.pref);
    await loadNext("Saved item #" + item.id + ".");
  } catch (e) {
    status("Not saved: " + e.message, "error");
  } finally {
    $("submit").disabled = false;
  }
}

function onKey(ev) {
  if ($("rate").hidden) return;
  const typing = ev.target.tagName === "TEXTAREA";
  if (ev.key === "Enter" && (!typing || ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(); return; }
  if (typing) { if (ev.key === "Escape") ev.target.blur(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
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
  } else if (k === "c") { card(state.selected).querySelector(".critique").focus(); }
  else if (k === "s") { skip(); }
  else { return; }
  ev.preventDefault();
}

async function skip() {
  // "next" serves the oldest unanswered item; skipping pages (all of them) past it for this session.
  const after = state.item.id;
  status("Skipping…");
  try {
    let cursor = null;
    do {
      const page = await api("GET", "/v1/items?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      const next = page.items.find((it) => it.id > after);
      if (next) { renderItem(next); status("Skipped #" + after + "."); return; }
      cursor = page.next_cursor;
    } while (cursor);
    show("empty"); status("Skipped #" + after + ".");
  } catch (e) { status(e.message, "error"); }
}

function whoami() { $("who").textContent = "key " + (key() || "").split("_")[1]; }

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setKey($("key").value.trim());
  $("key").value = "";
  whoami();
  loadNext();
});
$("logout").addEventListener("click", () => { setKey(null); $("who").textContent = ""; show("login"); });
$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", skip);
document.addEventListener("keydown", onKey);

if (key()) { whoami(); loadNext(); } else { show("login"); }
