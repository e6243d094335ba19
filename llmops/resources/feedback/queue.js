// Where items come from and answers go: a project's queue (claim / answer / skip / progress,
// with assignment and overlap on the server), or, without projects, the plain item API.
// Both return the same shapes, so the page does not care which one it talks to.
"use strict";

const DUPLICATES = new Set(["duplicate_rating", "duplicate_comparison", "duplicate_correction"]);
const sendable = (answer) => ({
  ratings: answer.ratings.map(({ response_id, score, critique }) => ({ response_id, score, critique })),
  comparison: answer.comparison,
  corrections: answer.corrections.map(({ response_id, text }) => ({ response_id, text })),
});

// A part refused as a duplicate was stored by an earlier try: it is not a failure.
function failuresOf(results) {
  const failed = new Map();
  for (const r of results) if (r.error && !DUPLICATES.has(r.error.code)) failed.set(r.kind + ":" + r.index, r.error);
  return failed;
}

function projectQueue(project) {
  const base = "/v1/projects/" + encodeURIComponent(project.name);
  return {
    project,
    questions: project.questions,
    async next() { return (await api("POST", base + "/next", undefined, newIdempotencyKey())).item; },
    async submit(item, answer) {
      const out = await api("POST", base + "/items/" + item.id + "/answer", sendable(answer), newIdempotencyKey());
      return { failures: failuresOf(out.results), complete: out.complete, missing: out.missing };
    },
    async skip(item) { await api("POST", base + "/items/" + item.id + "/skip", undefined, newIdempotencyKey()); },
    async progress() { return api("GET", base + "/progress"); },
  };
}

function itemQueue() {
  const skipped = new Set();
  async function firstAfter(after) {
    let cursor = null;
    do {
      const page = await api("GET", "/v1/items?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      const next = page.items.find((it) => it.id > after && !skipped.has(it.id));
      if (next) return next;
      cursor = page.next_cursor;
    } while (cursor);
    return null;
  }
  return {
    project: null,
    questions: LEGACY_QUESTIONS,
    async next() {
      const item = await api("GET", "/v1/items/next");
      return item && skipped.has(item.id) ? firstAfter(item.id) : item;
    },
    async submit(item, answer) {
      const body = sendable(answer);
      const results = [];
      if (body.ratings.length) {
        const out = await api("POST", "/v1/ratings/bulk", { ratings: body.ratings }, newIdempotencyKey());
        results.push(...out.results.map((r) => ({ ...r, kind: "rating" })));
      }
      const one = async (kind, index, path, payload) => {
        try { await api("POST", path, payload, newIdempotencyKey()); }
        catch (e) { if (e.status >= 500 || !e.code) throw e; results.push({ kind, index, error: { code: e.code, message: e.message } }); }
      };
      if (body.comparison) await one("comparison", 0, "/v1/comparisons", { item_id: item.id, ...body.comparison });
      for (const [j, c] of body.corrections.entries()) await one("correction", j, "/v1/corrections", c);
      const failures = failuresOf(results);
      const scored = item.responses.every((r) => form.scores[r.id] !== undefined);
      return { failures, complete: !failures.size && (scored || form.saved.has("comparison") || !!body.comparison), missing: [] };
    },
    async skip(item) { skipped.add(item.id); },  // this tab only: without a project skips are not stored
    async progress() { return null; },
  };
}
