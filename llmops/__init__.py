"""llmops: fine-tune, evaluate and improve language models from human feedback."""

__version__ = "0.1.0"
