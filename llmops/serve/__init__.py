"""Model serving: an OpenAI-compatible endpoint whose every answer is a feedback item.

- `llmops.serve.app.create_app(model_ref, db_url, backend, max_batch_size, max_wait_ms, poll_interval_s)`;
- `llmops.serve.server.ServerThread(app, host, port)` — run it in-process for a bounded time;
- ``llmops serve --model REF`` — the command line (`llmops.cli.serve`).

Importing this package is cheap; FastAPI, torch and transformers load with the app.
"""
