"""Human-feedback store: ratings, comparisons and critiques in; preference data out.

- `llmops.feedback.store` — write/read operations and the in-process `FeedbackStore`;
- `llmops.feedback.group_commit.GroupCommitter` — how the API's writes share one COMMIT;
- `llmops.feedback.api.create_app(db_url)` — the HTTP API and rater page;
- `llmops.feedback.export.export_preferences(db_url, out_path, strategy, min_margin)`;
- `llmops.feedback.queries.quality_by_model(db_url, since, until)` — for monitoring;
- projects and the rater workflow: `projects` (projects, routing, gold), `assignment` (claims
  with overlap k, skips, progress), `answers` (answers, corrections), `quality` (agreement,
  gold accuracy), `project_store.ProjectStore` (all of it in-process).

Importing this package is cheap (no FastAPI, no database connection).
"""
