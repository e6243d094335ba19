"""Every export format trains one step of its TRL trainer (DPO, KTO, SFT, Reward) on the built-in
tiny model, loaded from each output kind (JSONL, Parquet, a `datasets` folder). CPU, no downloads."""

from __future__ import annotations

import math

import pytest

from llmops.feedback.exports import export
from llmops.feedback.store import FeedbackStore
from llmops.feedback.tables import Correction

COMMON = dict(max_steps=1, per_device_train_batch_size=2, report_to=[], logging_steps=1, save_strategy="no",
              use_cpu=True, dataloader_num_workers=0, seed=0)


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoTokenizer

    from llmops.models.builtin import materialize

    path = materialize("tiny")
    return path, AutoTokenizer.from_pretrained(path)


@pytest.fixture
def store_url(sqlite_url):
    """Four chats with a good and a bad answer, rated by two raters, one comparison and one correction each."""
    s = FeedbackStore(sqlite_url)
    alice, bob = s.rater("alice"), s.rater("bob")
    for i in range(4):
        chat = [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": f"Colour {i}?"}]
        made = s.create_item(f"Colour {i}?", [{"text": "Blue."}, {"text": f"I refuse {i}."}],
                             metadata={"messages": chat})
        good, bad = made.response_ids
        for rater, scores in ((alice, (5, 1)), (bob, (4, 2))):
            s.add_rating(good, scores[0], rater)
            s.add_rating(bad, scores[1], rater)
        with s.transaction() as session:
            session.add(Correction(item_id=made.item_id, response_id=bad, rater_id=alice, text=f"Red {i}."))
    return sqlite_url


def load(result, output):
    import datasets

    if output == "hf-dataset":
        return datasets.load_from_disk(str(result.path))
    kind = "json" if output == "jsonl" else "parquet"
    return datasets.load_dataset(kind, data_files=str(result.path), split="train",
                                 cache_dir=str(result.path.parent / "hf-cache"))


def finite_step(out):
    assert out.global_step == 1 and math.isfinite(out.training_loss)


@pytest.mark.parametrize(("fmt", "output"), [("trl-preference", "jsonl"), ("trl-conversational", "hf-dataset")])
def test_dpo_trainer_steps_on_preference_exports(store_url, tiny, tmp_path, fmt, output):
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import is_conversational

    path, tok = tiny
    ds = load(export(store_url, fmt, tmp_path / "prefs", output=output), output)
    assert ds.num_rows == 4 and is_conversational(ds[0]) == (fmt == "trl-conversational")
    args = DPOConfig(output_dir=str(tmp_path / "out"), max_length=64, **COMMON)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, train_dataset=ds,
                         processing_class=tok)
    finite_step(trainer.train())


def test_kto_trainer_steps_on_the_kto_export(store_url, tiny, tmp_path):
    from transformers import AutoModelForCausalLM
    from trl import KTOConfig, KTOTrainer

    path, tok = tiny
    ds = load(export(store_url, "kto", tmp_path / "kto.parquet"), "parquet")
    assert ds.num_rows == 8 and sorted(ds["label"]) == [False] * 4 + [True] * 4
    args = KTOConfig(output_dir=str(tmp_path / "out"), max_length=64, **COMMON)
    trainer = KTOTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, train_dataset=ds,
                         processing_class=tok)
    finite_step(trainer.train())


@pytest.mark.parametrize("style", ["messages", "prompt-completion"])
def test_sft_trainer_steps_on_corrected_responses(store_url, tiny, tmp_path, style):
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    path, tok = tiny
    ds = load(export(store_url, "sft", tmp_path / "sft.jsonl", sft_style=style), "jsonl")
    assert ds.num_rows == 4
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_length=64, **COMMON)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(path), args=args, train_dataset=ds,
                         processing_class=tok)
    finite_step(trainer.train())


def test_reward_trainer_steps_on_the_reward_export_with_its_margin(store_url, tiny, tmp_path):
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    path, tok = tiny
    ds = load(export(store_url, "reward", tmp_path / "reward", output="hf-dataset"), "hf-dataset")
    # 5,4 vs 1,2 on a 1-5 scale: (4.5 - 1.5) / 4 — the margin TRL's loss subtracts, on one (0, 1] scale.
    assert ds.num_rows == 4 and set(ds["margin"]) == {0.75}
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    args = RewardConfig(output_dir=str(tmp_path / "out"), max_length=64, **COMMON)
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    assert "margin" in trainer.train_dataset.column_names
    finite_step(trainer.train())
