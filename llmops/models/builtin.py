"""Built-in base models: small Llama models built locally, with no download.

``builtin:tiny`` (~1.3M parameters) is the embedded default of every recipe;
``builtin:tiny-teacher`` is larger with the same tokenizer, for distillation (tiny
deepened with identity blocks, then trained further, so it ends better than tiny). Each is
built from a seed: a byte-level BPE tokenizer trained on Python standard-library
docstrings (read at run time), then a brief causal-LM pretraining on the same text plus
a few summarisation examples in the chat format — a real base model, not noise.

``materialize(name)`` builds once into ``$LLMOPS_HOME/models/<name>-<spec-hash>/``: in a
temporary directory, under a file lock (several DDP ranks may ask at once), then an
atomic rename, so a reader never sees a half-written model. The spec hash covers every
build input (spec, build format, Python minor version — the docstrings differ between
Python versions), so changing any of them builds a new directory instead of reusing a
stale one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import ModelRefError
from llmops.models.pretrain import BUILD_THREADS
from llmops.settings import llmops_home

log = logging.getLogger(__name__)

BUILD_FORMAT = 2  # bump when the build procedure changes in a way the spec does not capture
SIDECAR = "llmops_model.json"


@dataclass(frozen=True)
class BuiltinSpec:
    """Everything that determines a built-in model's weights."""

    name: str
    description: str
    # architecture (LlamaConfig)
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position_embeddings: int = 1024
    # tokenizer (shared by all built-ins: same vocabulary, so distillation works)
    vocab_size: int = 4096
    # pretraining
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 300
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    seed: int = 1234
    # start from this built-in, deepened with identity blocks (see llmops.models.grow)
    init_from: str | None = None

    def spec_hash(self) -> str:
        payload = {
            "spec": dataclasses.asdict(self),
            "init_from": get_spec(self.init_from).spec_hash() if self.init_from else None,
            "build_format": BUILD_FORMAT,
            "build_threads": BUILD_THREADS,  # float reductions, hence weights, depend on it
            "python": f"{platform.python_implementation()}-{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}",
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def dir_name(self) -> str:
        return f"{self.name}-{self.spec_hash()[:12]}"


BUILTINS: dict[str, BuiltinSpec] = {
    spec.name: spec
    for spec in (
        BuiltinSpec(
            name="tiny",
            description="Llama, 4 layers, hidden 128, GQA 4/2 heads, tied embeddings (~1.3M params): the embedded default",
            hidden_size=128,
            intermediate_size=384,
            num_layers=4,
            num_heads=4,
            num_kv_heads=2,
            batch_size=8,  # measured: at equal tokens, 2x the steps at half the batch ends lower
            steps=300,
        ),
        BuiltinSpec(
            name="tiny-teacher",
            description="Llama, 8 layers, hidden 128, GQA 4/2 heads (~2.1M params), same tokenizer: builtin:tiny "
            "deepened with identity blocks and trained further, a distillation teacher that is better than tiny",
            hidden_size=128,
            intermediate_size=384,
            num_layers=8,
            num_heads=4,
            num_kv_heads=2,
            batch_size=8,
            steps=200,
            lr=2e-3,
            warmup_steps=10,
            init_from="tiny",
        ),
    )
}


def models_dir() -> Path:
    path = llmops_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_spec(name: str) -> BuiltinSpec:
    if name not in BUILTINS:
        known = ", ".join(f"builtin:{n}" for n in BUILTINS)
        raise ModelRefError(f"unknown built-in model `builtin:{name}` (known: {known})")
    return BUILTINS[name]


def cached_path(name: str) -> Path | None:
    """The directory of a built model if it is already in the cache, else None (never builds)."""
    path = models_dir() / get_spec(name).dir_name
    return path if (path / SIDECAR).exists() else None


def materialize(name: str) -> Path:
    """Return the local directory of built-in model `name`, building it on first use."""
    spec = get_spec(name)
    target = models_dir() / spec.dir_name
    if (target / SIDECAR).exists():
        return target
    from filelock import FileLock

    with FileLock(str(models_dir() / f".{spec.dir_name}.lock")):
        if (target / SIDECAR).exists():  # another process built it while we waited
            return target
        for leftover in models_dir().glob(f".build-{spec.dir_name}-*"):  # a builder killed mid-way (we hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{spec.dir_name}-", dir=models_dir()))
        try:
            log.info("building builtin:%s into %s (one-time, under a minute)", name, target)
            build(spec, tmp)
            _chmod_like_umask(tmp)  # mkdtemp makes it 0700; a shared cache must be readable
            if target.exists():  # a stale partial directory from an older, non-atomic layout
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _chmod_like_umask(path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for p in [path, *path.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def build(spec: BuiltinSpec, out_dir: str | Path, progress: bool = True) -> dict:
    """Build `spec` into `out_dir` (HF format + sidecar); returns the sidecar dict.

    Deterministic: the same spec on the same machine and Python gives identical files.
    """
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    from llmops.data import corpus
    from llmops.models.pretrain import PretrainConfig, deterministic_torch, make_blocks, mean_loss, pretrain
    from llmops.models.tokenizer_build import ASSISTANT, EOS, USER, save_portable, train_bpe, wrap_hf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    docs = corpus.pretrain_docstrings()
    texts = [d.text for d in docs]
    # A few summarisation examples in the chat format, so the role tokens mean something.
    chats = [
        f"{USER}\n{row['prompt']}{EOS}{ASSISTANT}\n{row['completion']}{EOS}"
        for row in corpus.summarisation_pairs(docs)
    ]
    raw_tok = train_bpe(texts, spec.vocab_size)
    tokenizer = wrap_hf(raw_tok, model_max_length=spec.max_position_embeddings)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    pad_id = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)

    def stream(items: list[str]) -> list[int]:
        return [i for enc in raw_tok.encode_batch(items, add_special_tokens=False) for i in enc.ids]

    train_ids = stream([t + EOS for t in texts] + chats)
    heldout_ids = stream([d.text + EOS for d in corpus.task_docstrings()])
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    cfg = PretrainConfig(
        seq_len=spec.seq_len,
        batch_size=spec.batch_size,
        steps=spec.steps,
        lr=spec.lr,
        warmup_steps=spec.warmup_steps,
        weight_decay=spec.weight_decay,
        seed=spec.seed,
    )
    with deterministic_torch():
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
        if spec.init_from:
            from llmops.models.grow import deepen

            parent_dir = materialize(spec.init_from)
            deepen(LlamaForCausalLM.from_pretrained(str(parent_dir), dtype=torch.float32), model)
        blocks = make_blocks(train_ids, spec.seq_len)
        heldout = make_blocks(heldout_ids, spec.seq_len)[:32]
        init_loss = mean_loss(model, heldout)
        losses = pretrain(model, blocks, cfg, progress=progress)
        heldout_loss = mean_loss(model, heldout)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    model.save_pretrained(str(out))
    save_portable(tokenizer, out)
    n_params = sum(p.numel() for p in model.parameters())
    tail = losses[-20:]
    sidecar = {
        "kind": "builtin",
        "ref": f"builtin:{spec.name}",
        "spec": dataclasses.asdict(spec),
        "spec_hash": spec.spec_hash(),
        "build_format": BUILD_FORMAT,
        "build_seed": spec.seed,
        "init_from": (
            {"ref": f"builtin:{spec.init_from}", "spec_hash": get_spec(spec.init_from).spec_hash()}
            if spec.init_from
            else None
        ),
        "corpus": {
            "source": "CPython standard-library docstrings (llmops.data.corpus.PRETRAIN_MODULES)",
            "sha256": corpus.corpus_sha256(docs),
            "n_docstrings": len(docs),
            "n_chat_examples": len(chats),
            "train_tokens": len(train_ids),
        },
        "param_count": n_params,
        "pretrain": {
            "tokens_seen": spec.steps * spec.batch_size * spec.seq_len,
            "final_train_loss": round(sum(tail) / len(tail), 4),
            "heldout_loss_init": round(init_loss, 4),
            "heldout_loss": round(heldout_loss, 4),
            "heldout": "task-module docstrings (llmops.data.corpus.TASK_MODULES), never trained on",
        },
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    log.info(
        "built builtin:%s (%d params) in %.1fs: held-out loss %.3f -> %.3f",
        spec.name,
        n_params,
        time.perf_counter() - t0,
        init_loss,
        heldout_loss,
    )
    return sidecar


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
