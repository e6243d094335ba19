"""Compression for inference cost: torchao quantization and pruning, saved so plain transformers loads it.

    llmops compress builtin:tiny --method int8-weight --out runs/tiny-int8 --register docs-int8 \
        --bench-suite eval/docstring_summary.yaml

`llmops.compress.api.compress` is the Python entry point; `llmops.compress.pipeline`
chains distillation → compression → evaluation → gated promotion from one YAML file.
Layer 6 (a peer of `serve` and `tune`): it uses `train`, `eval` and `registry`.
"""

from llmops.compress.methods import METHODS, Method

__all__ = ["METHODS", "Method"]
