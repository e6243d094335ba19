"""Model registry: monotonic versions, read-only artifacts owned by one registry (local or object
storage), lineage and model cards, aliases guarded by stored policies and statistically sound gates,
API-key principals and append-only audit logs, an HTTP service. Start with `llmops.registry.api`."""
