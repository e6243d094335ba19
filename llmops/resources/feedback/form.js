// The answer form of one item, shaped by the project's questions: a score per response (with the
// scale's labels), a preference between two responses, critiques (per response and/or on the
// comparison) and a corrected-response editor. Model output and question texts are text, never HTML.
"use strict";

// Without projects the page asks what it always asked: scores, the better one, critiques.
const LEGACY_QUESTIONS = [
  { name: "score", type: "rating", required: false, labels: {} },
  { name: "preference", type: "preference", required: false, allow_tie: true },
  { name: "critique", type: "critique", target: "response", required: false },
  { name: "why", type: "critique", target: "comparison", required: false },
];

const form = { item: null, questions: [], scores: {}, saved: new Set(), selected: 0 };
const sentence = (text) => (/[.?!]$/.test(text) ? text : text + ".");
const letter = (i) => String.fromCharCode(65 + i);
const ask = (type, target) => form.questions.find((q) => q.type === type && (!target || (q.target || "response") === target));
const card = (i) => document.querySelector(`.response[data-index="${i}"]`);

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function renderScores(item, i, q) {
  const scores = el("div", { className: "scores" });
  for (let s = item.scale_min; s <= item.scale_max; s++) {
    const b = el("button", { type: "button", textContent: s, title: (q.labels || {})[s] || "" });
    b.dataset.score = s;
    b.setAttribute("aria-pressed", "false");
    b.setAttribute("aria-label", "score " + s + ((q.labels || {})[s] ? " (" + q.labels[s] + ")" : "") + " for response " + letter(i));
    b.addEventListener("click", () => setScore(i, s));
    scores.append(b);
  }
  const labels = Object.entries(q.labels || {}).sort((a, b) => a[0] - b[0]);
  if (!labels.length) return [scores];
  const legend = el("div", { className: "scale-labels" });
  legend.append(...labels.map(([s, text]) => el("span", { textContent: s + " " + text })));
  return [scores, legend];
}

function toggleCorrection(i) {
  const box = card(i).querySelector(".correction");
  box.hidden = !box.hidden;
  if (!box.hidden) box.focus();
}

function renderResponse(item, resp, i) {
  const box = el("div", { className: "response", tabIndex: 0 });
  box.dataset.index = i;
  box.dataset.responseId = resp.id;
  box.append(el("div", { className: "label", textContent: "Response " + letter(i) + (resp.model ? " · " + resp.model : "") }));
  box.append(el("pre", { className: "text", textContent: resp.text }));  // textContent: never parsed as HTML
  const rating = ask("rating");
  if (rating) box.append(...renderScores(item, i, rating));
  if (ask("critique", "response")) {
    const critique = el("textarea", { className: "critique", rows: 2, maxLength: 10000,
                                      placeholder: "Critique of " + letter(i) + " (C)" });
    critique.setAttribute("aria-label", "critique of response " + letter(i));
    box.append(critique);
  }
  if (ask("correction")) {
    const toggle = el("button", { type: "button", className: "correction-toggle", textContent: "Write a better answer (E)" });
    toggle.addEventListener("click", () => toggleCorrection(i));
    const editor = el("textarea", { className: "correction", rows: 5, maxLength: 100000, value: resp.text, hidden: true });
    editor.setAttribute("aria-label", "corrected response " + letter(i));
    box.append(toggle, editor);
  }
  box.append(el("p", { className: "error", role: "alert" }));
  box.addEventListener("focusin", () => select(i));
  return box;
}

function renderQuestions(questions) {
  const list = $("questions");
  const texts = questions.filter((q) => q.text).map((q) => el("li", { textContent: q.text + (q.required === false ? " (optional)" : "") }));
  list.replaceChildren(...texts);
  list.hidden = !texts.length;
}

function renderForm(item, questions) {
  Object.assign(form, { item, questions, scores: {}, saved: new Set(), selected: 0 });
  $("item-id").textContent = "#" + item.id;
  $("prompt").textContent = item.prompt;
  $("context").hidden = !item.context;
  $("context").textContent = item.context || "";
  renderQuestions(questions);
  const pref = ask("preference");
  for (const r of document.querySelectorAll("input[name=pref]")) { r.checked = false; r.disabled = false; }
  $("compare").hidden = !pref || item.responses.length < 2;  // with more than two: A against B (a pair of them)
  document.querySelector('input[name=pref][value="tie"]').parentElement.hidden = pref && pref.allow_tie === false;
  $("compare-legend").textContent = ((pref && pref.text) || "Which is better?") + (item.responses.length > 2 ? " (A or B)" : "");
  $("compare-critique").hidden = !ask("critique", "comparison");
  $("compare-critique").value = "";
  $("compare-critique").readOnly = false;
  $("compare-error").textContent = "";
  $("responses").replaceChildren(...item.responses.map((resp, i) => renderResponse(item, resp, i)));
  select(0);
}

function select(i) {
  form.selected = i;
  document.querySelectorAll(".response").forEach((c, j) => c.classList.toggle("selected", j === i));
}

function setScore(i, s) {
  if (!ask("rating") || form.saved.has("rating:" + form.item.responses[i].id)) return;
  form.scores[form.item.responses[i].id] = s;
  card(i).querySelectorAll(".scores button").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.score) === s)));
  status("");
}

function comparisonOf(pref) {
  const [a, b] = form.item.responses.map((r) => r.id);
  const critique = $("compare-critique").hidden ? null : $("compare-critique").value.trim() || null;
  const body = pref.value === "tie" ? { tie: [a, b] } : pref.value === "0" ? { chosen: a, rejected: b } : { chosen: b, rejected: a };
  return { ...body, critique };
}

// What the rater entered and has not been stored yet; an error string when it cannot be sent as is.
function collect() {
  const item = form.item;
  const out = { ratings: [], comparison: null, corrections: [] };
  for (const [i, r] of item.responses.entries()) {
    card(i).querySelector(".error").textContent = "";
    const critiqueBox = card(i).querySelector(".critique");
    const critique = (critiqueBox && critiqueBox.value.trim()) || null;
    if (form.scores[r.id] === undefined) {
      if (critique) return "Response " + letter(i) + " has a critique but no score: score it too.";
    } else if (!form.saved.has("rating:" + r.id)) {
      out.ratings.push({ index: i, response_id: r.id, score: form.scores[r.id], critique });
    }
    const editor = card(i).querySelector(".correction");
    const text = editor && !editor.hidden ? editor.value.trim() : "";
    if (text && text !== r.text.trim() && !form.saved.has("correction:" + r.id)) out.corrections.push({ index: i, response_id: r.id, text });
  }
  $("compare-error").textContent = "";
  const pref = document.querySelector("input[name=pref]:checked");
  const critique = $("compare-critique").hidden ? "" : $("compare-critique").value.trim();
  if (pref && !form.saved.has("comparison")) out.comparison = comparisonOf(pref);
  else if (!pref && critique) return "The comparison has a critique but no choice: pick the better one (A/B/T).";
  const gaps = unanswered(out, pref);
  if (gaps.length) return sentence("Still to answer: " + gaps.join("; "));
  const answered = out.ratings.length + out.corrections.length + (out.comparison ? 1 : 0);
  if (!answered) return "Nothing new to save: score the responses (1–9), pick the better one or write a correction.";
  return out;
}

// Required questions the form does not answer yet (without projects: every score, or the better one).
function unanswered(out, pref) {
  const rs = form.item.responses;
  const allScored = rs.every((r) => form.scores[r.id] !== undefined);
  if (form.questions === LEGACY_QUESTIONS) return allScored || pref ? [] : ["score every response or pick the better one"];
  const critiqued = rs.every((r, i) => form.saved.has("rating:" + r.id) || (card(i).querySelector(".critique") || {}).value?.trim());
  const corrected = rs.some((r) => form.saved.has("correction:" + r.id)) || out.corrections.length > 0;
  const done = {
    rating: allScored,
    preference: !!pref || $("compare").hidden,
    correction: corrected,
    critique: (q) => (q.target || "response") === "comparison" ? !pref || !!out.comparison?.critique || form.saved.has("comparison") : critiqued,
  };
  return form.questions.filter((q) => q.required !== false)
    .filter((q) => !(typeof done[q.type] === "function" ? done[q.type](q) : done[q.type]))
    .map((q) => q.text || q.name);
}

// Mark what was stored (so a retry sends only the rest) and show each failure where it belongs.
// `failures` maps "kind:j" (j: the element's position in what was sent) to the error.
function markResults(answer, failures) {
  answer.ratings.forEach((r, j) => {
    const err = failures.get("rating:" + j);
    if (err) { card(r.index).querySelector(".error").textContent = "Rating not saved: " + err.message; return; }
    form.saved.add("rating:" + r.response_id);
    card(r.index).classList.add("done");  // stored: no longer editable
    card(r.index).querySelectorAll(".scores button").forEach((b) => { b.disabled = true; });
    const critique = card(r.index).querySelector(".critique");
    if (critique) critique.readOnly = true;
  });
  answer.corrections.forEach((c, j) => {
    const err = failures.get("correction:" + j);
    if (err) { card(c.index).querySelector(".error").textContent += " Correction not saved: " + err.message; return; }
    form.saved.add("correction:" + c.response_id);
    card(c.index).querySelector(".correction").readOnly = true;
  });
  if (answer.comparison) {
    const err = failures.get("comparison:0");
    if (err) { $("compare-error").textContent = "Preference not saved: " + err.message; return; }
    form.saved.add("comparison");
    $("compare-critique").readOnly = true;
    document.querySelectorAll("input[name=pref]").forEach((r) => { r.disabled = true; });
  }
}
