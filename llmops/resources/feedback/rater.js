// Rater page: no framework, no build step, no network beyond this server's API (api.js).
// Pick a project (its guidelines and questions shape the form), answer, and the page moves on as
// soon as the answer is complete; failures are shown where they belong and nothing is re-sent twice.
"use strict";

const PROJECT_STORE = "llmops.feedback.project";
const page = { queue: null, item: null, busy: false };

function show(section) {
  for (const id of ["login", "rate", "empty"]) $(id).hidden = id !== section;
  $("keys-help").hidden = section !== "rate";
  $("logout").hidden = section === "login";
  if (section === "login") { $("guidelines").hidden = true; $("progress-bar").hidden = true; $("project-pick").hidden = true; }
}

async function start() {
  whoami();
  let projects = [];
  try { projects = await api("GET", "/v1/projects"); }
  catch (e) {
    if (e.status === 401) return loggedOut(e);
    if (e.status !== 404 && e.status !== 403) return status(e.message, "error");
  }
  const pick = $("project");
  pick.replaceChildren(...projects.map((p) => Object.assign(document.createElement("option"), { value: p.name, textContent: p.name })));
  $("project-pick").hidden = !projects.length;
  const wanted = new URLSearchParams(location.search).get("project") || sessionStorage.getItem(PROJECT_STORE);
  const chosen = projects.find((p) => p.name === wanted) || projects[0];
  if (chosen) pick.value = chosen.name;
  await useProject(chosen || null);
}

async function useProject(project) {
  page.queue = project ? projectQueue(project) : itemQueue();
  if (project) sessionStorage.setItem(PROJECT_STORE, project.name);
  $("guidelines").hidden = true;
  if (project && project.guidelines) {
    try {
      const g = await api("GET", "/v1/projects/" + encodeURIComponent(project.name) + "/guidelines");
      $("guidelines-body").innerHTML = g.html;  // rendered server-side from Markdown; raw HTML escaped there
      $("guidelines").hidden = false;
      $("guidelines").open = !matchMedia("(max-width: 600px)").matches;  // folded on a phone: the item comes first
    } catch (e) { status("Guidelines not loaded: " + e.message, "error"); }
  }
  await loadNext();
}

async function showProgress() {
  const p = await page.queue.progress().catch(() => null);
  $("progress-bar").hidden = !p;
  if (!p) return;
  const project = `project: ${p.n_complete}/${p.n_items} complete (${p.overlap_k} raters each)`;
  $("progress").max = Math.max(p.n_items, 1);
  if (p.raters.length !== 1) {  // an admin or service key sees every rater's row: show the project's totals
    $("progress").value = p.n_complete;
    $("progress-text").textContent = project;
    return;
  }
  const me = p.raters[0];  // a rater sees only their own row
  $("progress").value = me.answered + me.skipped;
  $("progress-text").textContent = `You: ${me.answered} answered, ${me.skipped} skipped of ${p.n_items} items · ${project}`;
}

async function loadNext(done = "") {
  status("Loading…");
  try {
    const item = await page.queue.next();
    page.item = item;
    showProgress();
    if (!item) { show("empty"); status(done, "ok"); return; }
    renderForm(item, page.queue.questions);
    show("rate");
    // Keys go to the item at once: the login field (now hidden) or the last item's text box
    // would otherwise keep the focus until the browser gets round to dropping it.
    const first = document.querySelector(".response");
    if (first) first.focus();
    status(done, done ? "ok" : "");
  } catch (e) {
    if (e.status === 401) return loggedOut(e);
    status(e.message, "error");
  }
}

async function submit() {
  const item = page.item;
  if (!item || page.busy) return;
  const answer = collect();
  if (typeof answer === "string") { status(answer, "error"); return; }
  page.busy = true; $("submit").disabled = true;
  try {
    // Each write carries its own Idempotency-Key, so a double click or a retry stores nothing twice.
    const result = await page.queue.submit(item, answer);
    markResults(answer, result.failures);
    const n = answer.ratings.length + answer.corrections.length + (answer.comparison ? 1 : 0);
    if (result.failures.size) {
      status(`Not saved: ${result.failures.size} of ${n} answers failed (shown below); Enter retries them.`, "error");
    } else if (!result.complete) {
      status(sentence("Saved; still to answer: " + (result.missing.map(questionText).join("; ") || "the rest")), "error");
      showProgress();
    } else {
      await loadNext("Saved item #" + item.id + ".");
    }
  } catch (e) {
    if (e.status === 401) return loggedOut(e);
    status("Not saved: " + e.message, "error");
  } finally {
    page.busy = false; $("submit").disabled = false;
  }
}

async function skip() {
  const item = page.item;
  if (!item || page.busy) return;
  page.busy = true;
  try {
    await page.queue.skip(item);
    await loadNext("Skipped item #" + item.id + ".");
  } catch (e) { status("Not skipped: " + e.message, "error"); }
  finally { page.busy = false; }
}

function onKey(ev) {
  if ($("rate").hidden) return;
  const typing = ev.target.tagName === "TEXTAREA";
  if (ev.key === "Enter" && (!typing || ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(); return; }
  if (typing) { if (ev.key === "Escape") ev.target.blur(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.tagName === "SELECT" || ev.target.tagName === "INPUT") return;
  const k = ev.key.toLowerCase();
  const n = page.item ? page.item.responses.length : 0;
  const focus = (box) => { if (box && !box.hidden) box.focus(); };
  if (/^[0-9]$/.test(ev.key)) {
    const s = Number(ev.key);
    if (page.item && s >= page.item.scale_min && s <= page.item.scale_max) setScore(form.selected, s);
  } else if (k === "j" || ev.key === "ArrowRight") { select((form.selected + 1) % n); }
  else if (k === "k" || ev.key === "ArrowLeft") { select((form.selected - 1 + n) % n); }
  else if (k === "a" || k === "b" || k === "t") {
    const r = document.querySelector(`input[name=pref][value="${k === "a" ? "0" : k === "b" ? "1" : "tie"}"]`);
    if (r && !$("compare").hidden && !r.parentElement.hidden && !r.disabled) { r.checked = true; status(""); }
  } else if (k === "c") { focus(card(form.selected).querySelector(".critique")); }
  else if (k === "x") { focus($("compare").hidden ? null : $("compare-critique")); }
  else if (k === "e") { if (card(form.selected).querySelector(".correction")) toggleCorrection(form.selected); }
  else if (k === "g") { $("guidelines").open = !$("guidelines").open; }
  else if (k === "s") { skip(); }
  else { return; }
  ev.preventDefault();
}

function questionText(name) { const q = page.queue.questions.find((x) => x.name === name); return (q && q.text) || name; }
function whoami() { $("who").textContent = "key " + (key() || "").split("_")[1]; }
function loggedOut(e) { setKey(null); show("login"); status(e ? e.message : "", e ? "error" : ""); }

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setKey($("key").value.trim());
  $("key").value = "";
  start();
});
$("logout").addEventListener("click", () => { $("who").textContent = ""; loggedOut(null); });
$("project").addEventListener("change", async () => {
  const projects = await api("GET", "/v1/projects");
  await useProject(projects.find((p) => p.name === $("project").value) || null);
});
$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", skip);
document.addEventListener("keydown", onKey);

if (key()) start(); else show("login");
