"""The recipe schema: every key a recipe may set, its default and why it exists.

A recipe is YAML validated by `Recipe`. Every model forbids unknown keys so that a
typo is an error (with a did-you-mean suggestion from `llmops.config.loader`), never
a silently ignored setting. `llmops validate RECIPE` prints the resolved result.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """Base of every recipe section: strict keys, validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ModelSection(Section):
    base: str = Field(
        "builtin:tiny",
        description="Model reference: builtin:NAME, a HF hub id, a local directory, or registry:NAME@ALIAS / registry:NAME/VERSION.",
    )
    adapter: str | None = Field(
        None,
        description="Start from this LoRA adapter (directory or reference). DPO uses it as the frozen reference too.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for hub ids.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded in; mixed precision is train.mixed_precision."
    )
    trust_remote_code: bool = Field(False, description="Allow custom modelling code from the hub.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"] | None = Field(
        None,
        description="Attention kernel; unset: sdpa where the architecture supports it, else eager (e.g. Gemma 2). "
        "flash_attention_2 needs the flash-attn package and a CUDA GPU.",
    )
    load_in_4bit: bool = Field(
        False, description="QLoRA: base weights in 4-bit NF4 (bitsandbytes, CUDA only); needs lora.enabled."
    )


class LoraSection(Section):
    enabled: bool = Field(False, description="Train a LoRA adapter instead of all weights.")
    r: int = Field(8, gt=0, description="LoRA rank.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names to adapt, or 'all-linear' (every Linear/Conv1D layer but the output head: "
        "works for any architecture, e.g. GPT-2's fused Conv1D `c_attn`, Phi-3's `qkv_proj`).",
    )
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")


class DataSection(Section):
    train: str | None = Field(
        None,
        description="Training data: JSONL, CSV, Parquet, a `datasets` directory saved to disk, or builtin:NAME.",
    )
    validation: str | None = Field(None, description="Held-out data; if absent, validation_split of train is held out.")
    validation_split: float = Field(0.05, ge=0, lt=1, description="Fraction of train held out when no validation file.")
    format: Literal["auto", "prompt_completion", "chat", "preference", "text"] = Field(
        "auto", description="Record format; auto detects from the columns."
    )
    max_length: int = Field(512, gt=0, description="Token budget per sample; longer samples are truncated.")
    packing: bool = Field(False, description="Pack several samples per row (no attention across samples).")
    chat_template: bool = Field(True, description="Render prompts with the tokenizer's chat template.")
    shuffle: bool = Field(True, description="Shuffle training samples each epoch (seeded).")
    limit: int | None = Field(None, gt=0, description="Use at most this many training records (debugging).")
    contamination_suites: list[str] = Field(
        default_factory=list,
        description="Evaluation suites (YAML) checked for n-gram overlap with the training data; the result goes "
        "into the run manifest (`llmops train` runs the check).",
    )
    contamination_ngram: int = Field(8, gt=0, description="Word n-gram length of the contamination check.")


class EarlyStoppingSection(Section):
    patience: int = Field(3, ge=1, description="Stop after this many validations without improving `select_best`.")
    min_delta: float = Field(0.0, ge=0, description="An improvement must exceed this to reset the patience.")


class GenerationEvalSection(Section):
    """Greedy generations on held-out prompts, scored by an evaluation suite's metrics at each validation."""

    suite: str = Field(..., description="Evaluation suite YAML (task: generate) whose prompts, references and "
                       "metrics are used, e.g. eval/docstring_summary.yaml.")
    split: str | None = Field("validation", description="Dataset split of the suite to generate on (never the "
                              "split you report on); null: the suite's own split.")
    limit: int | None = Field(64, gt=0, description="First N prompts of that split.")
    max_new_tokens: int | None = Field(None, gt=0, description="Tokens per answer; unset: the suite's.")


class TrainSection(Section):
    max_steps: int = Field(100, gt=0, description="Optimizer steps (replaced by the length of `epochs` when that is set).")
    epochs: float | None = Field(
        None, gt=0, description="Train this many passes over the data; sets max_steps from the data size (logged)."
    )
    select_best: str | None = Field(
        None,
        description="Keep the checkpoint with the best value of this validation metric (e.g. eval_loss, "
        "eval_accuracy, eval_reward_accuracy) and save it as final/. Needs eval_every > 0 and validation data.",
    )
    select_mode: Literal["auto", "min", "max"] = Field(
        "auto", description="Direction for select_best; auto: min for names containing `loss`, else max."
    )
    early_stopping: EarlyStoppingSection | None = Field(
        None, description="Stop when `select_best` has not improved for `patience` validations (needs select_best)."
    )
    generation_eval: GenerationEvalSection | None = Field(
        None, description="Also score greedy generations on held-out prompts at every validation (logged as "
        "eval_gen_<metric>, e.g. eval_gen_rougeL, usable by select_best); the caller of llmops.train.run passes "
        "the evaluation harness (`llmops train` and the loop do).",
    )
    batch_size: int = Field(8, gt=0, description="Micro-batch size per process.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    lr: float = Field(2e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warmup.")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip gradients to this norm; null disables.")
    seed: int = Field(42, description="Seed for weights init, data order and dropout.")
    mixed_precision: Literal["no", "bf16", "fp16"] | None = Field(
        None, description="Autocast precision via accelerate; unset: the launcher's (accelerate launch), else no."
    )
    log_every: int = Field(10, gt=0, description="Write metrics.jsonl every N steps.")
    eval_every: int = Field(0, ge=0, description="Validation loss every N steps (0: only at the end).")
    checkpoint_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: never).")
    keep_last: int = Field(2, gt=0, description="Checkpoints kept on disk.")
    optimizer_impl: Literal["auto", "fused", "foreach", "for_loop"] = Field(
        "auto", description="AdamW kernel: auto is fused on CUDA, torch's default elsewhere (same maths)."
    )
    compile: bool = Field(False, description="torch.compile the trainable model (pays off on GPUs, long runs).")

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `no` as False; users mean the string.
        return "no" if value is False else value

    @model_validator(mode="after")
    def _selection_needs_validation(self) -> "TrainSection":
        if self.select_best is not None and not self.select_best.startswith("eval_"):
            raise ValueError(f"select_best: `{self.select_best}` is not a validation metric (they start with eval_, "
                             "e.g. eval_loss, eval_accuracy, eval_reward_accuracy)")
        if self.select_best is not None and self.eval_every == 0:
            raise ValueError("select_best needs eval_every > 0 (a validation to choose from every N steps)")
        if self.select_best is not None and self.select_best.startswith("eval_gen_") and self.generation_eval is None:
            raise ValueError(f"select_best: `{self.select_best}` is a generation metric: set train.generation_eval "
                             "(suite, split) to compute it")
        if self.early_stopping is not None and self.select_best is None:
            raise ValueError("early_stopping needs select_best: the validation metric it watches")
        return self


class OutputSection(Section):
    dir: str = Field("runs/default", description="Run directory: manifest, metrics, checkpoints, final/.")
    save_merged: bool = Field(False, description="Also save LoRA merged into the base weights in final/merged.")
    register_as: str | None = Field(None, description="Register final/ in the model registry under this name.")
    log_with: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list, description="Extra trackers through accelerate."
    )
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None, description="dtype of the weights written to final/ (default: as trained)."
    )
    project: str | None = Field(
        None, description="W&B project / MLflow experiment (default llmops); the run id names the tracker run."
    )


class CardSection(Section):
    """What the registry's model card says a model is for (Hugging Face model-card fields)."""

    intended_use: str = Field("", description="What the model is for and who should use it.")
    limitations: str = Field("", description="Known limitations, risks and out-of-scope uses.")
    license: str | None = Field(None, description="SPDX-style license id for the card metadata (e.g. apache-2.0).")
    tags: list[str] = Field(default_factory=list, description="Extra model-card tags.")


class DistillSection(Section):
    teacher: str = Field("builtin:tiny-teacher", description="Frozen teacher reference (same vocabulary).")
    loss: Literal["forward_kl", "reverse_kl", "jsd"] = Field("forward_kl", description="Divergence to the teacher.")
    beta: float = Field(0.5, ge=0, le=1, description="Generalised JSD interpolation (jsd only).")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature T; the KD term is scaled by T^2.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the KD term; 1 - alpha weights label cross-entropy.")


class RewardSection(Section):
    margin_column: str | None = Field(None, description="Column with a per-pair margin for the Bradley-Terry loss.")
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Penalty on (r_chosen + r_rejected)^2 to centre rewards."
    )


class DPOSection(Section):
    loss: Literal["sigmoid", "ipo", "cdpo", "simpo"] = Field("sigmoid", description="Preference loss.")
    beta: float = Field(0.1, gt=0, description="Inverse temperature of the implicit reward.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="cDPO label-noise rate.")
    simpo_gamma: float = Field(0.5, ge=0, description="SimPO target reward margin.")
    rpo_alpha: float = Field(0.0, ge=0, description="Weight of the chosen completions' per-token NLL added to the "
                                                    "preference loss (RPO; TRL's rpo_alpha). 0 = plain DPO.")
    precompute_ref_logps: bool = Field(False, description="Compute reference log-probs once and drop the reference.")
    disable_dropout: bool = Field(True, description="Dropout off in policy and reference (as TRL): log-ratios stay exact.")


class RLOOSection(Section):
    reward_model: str | None = Field(None, description="Reward model reference used to score samples.")
    k: int = Field(4, ge=2, description="Samples per prompt (leave-one-out baseline needs >= 2).")
    kl_coef: float = Field(0.05, ge=0, description="KL penalty to the reference policy.")
    max_new_tokens: int = Field(32, gt=0, description="Tokens sampled per response.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature (log-probs use the same scaled logits).")
    disable_dropout: bool = Field(True, description="Dropout off in policy and reference (as TRL).")


class Recipe(Section):
    recipe: Literal["sft", "distill", "reward", "dpo", "rloo"] = Field(..., description="What to train.")
    description: str | None = Field(None, description="Free text shown in the run manifest.")
    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    output: OutputSection = Field(default_factory=OutputSection)
    card: CardSection = Field(default_factory=CardSection, description="Model-card text: intended use, limitations.")
    distill: DistillSection | None = Field(None, description="Required when recipe is distill.")
    reward: RewardSection | None = Field(None, description="Options of recipe reward.")
    dpo: DPOSection | None = Field(None, description="Options of recipe dpo.")
    rloo: RLOOSection | None = Field(None, description="Options of recipe rloo.")

    @model_validator(mode="after")
    def _sections_match_recipe(self) -> "Recipe":
        defaults = {"distill": DistillSection, "reward": RewardSection, "dpo": DPOSection, "rloo": RLOOSection}
        for name, cls in defaults.items():
            section = getattr(self, name)
            if name == self.recipe and section is None:
                object.__setattr__(self, name, cls())
            elif name != self.recipe and section is not None:
                raise ValueError(f"section `{name}` is only valid with recipe: {name} (this recipe is {self.recipe})")
        if self.model.load_in_4bit and not self.lora.enabled:
            raise ValueError("model.load_in_4bit: 4-bit base weights cannot be trained; set lora.enabled: true (QLoRA)")
        if self.recipe != "rloo" and self.data.train is None:
            raise ValueError("data.train: required (a dataset path or builtin:NAME)")
        if self.model.dtype == "float16" and self.train.mixed_precision == "fp16":
            # the fp16 GradScaler refuses to unscale fp16 gradients ("Attempting to unscale FP16
            # gradients") after the first backward; say so before any model is loaded
            raise ValueError(
                "model.dtype: float16 with train.mixed_precision: fp16 cannot train (fp16 mixed precision keeps "
                "fp32 master weights and scales fp16 gradients; float16 weights leave none to update). "
                "Load the weights in float32 (model.dtype: float32) and keep mixed_precision: fp16"
            )
        return self
