"""Model registry: monotonic versions, immutable artifacts with lineage, aliases with an
append-only audit log, and promotion gates. Start with `llmops.registry.api`."""
