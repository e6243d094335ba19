"""The reward is read at the last real token: pad == eos, left and right padding."""

from __future__ import annotations

import torch

from llmops.preference.data import collate_sequences
from llmops.preference.reward_model import last_token_index, sequence_scores

from .helpers import tiny_llama

EOS = 1


def _rows():
    # Every row ends with eos, and eos is also the pad token: the classic trap.
    return [[5, 9, 12, EOS], [7, 3, 30, 44, 8, 2, EOS], [50, EOS]]


def _alone(model, ids):
    t = torch.tensor([ids])
    with torch.no_grad():
        out = model.model(input_ids=t).last_hidden_state  # unpadded: last position is the real last token
        return model.score(out)[0, -1, 0].item()


def test_last_token_index_both_sides():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4]
    assert last_token_index(left).tolist() == [4, 4]


def test_scores_read_at_last_real_token_with_pad_equal_eos():
    model = tiny_llama(seed=0, num_labels=1)
    model.config.pad_token_id = EOS  # pad == eos
    rows = _rows()
    expected = torch.tensor([_alone(model, r) for r in rows])
    seqs = [{"input_ids": r, "completion_mask": [1] * len(r)} for r in rows]
    for side in ("right", "left"):
        batch = collate_sequences(seqs, pad_token_id=EOS, padding_side=side)
        with torch.no_grad():
            got = sequence_scores(model, batch["input_ids"], batch["attention_mask"])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # transformers' pad-id pooling reads the token *before* the final eos here: a different score.
    batch = collate_sequences(seqs, pad_token_id=EOS, padding_side="right")
    with torch.no_grad():
        hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    assert (hf - expected).abs().max().item() > 1e-3


def test_scores_are_differentiable():
    model = tiny_llama(seed=0, num_labels=1).train()
    batch = collate_sequences([{"input_ids": r, "completion_mask": [1] * len(r)} for r in _rows()], EOS, "left")
    sequence_scores(model, batch["input_ids"], batch["attention_mask"]).sum().backward()
    assert model.score.weight.grad is not None and model.score.weight.grad.abs().sum() > 0


def test_lora_reward_model_saves_merged_with_its_trained_head(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from llmops.preference.reward_model import save_reward_model

    from .helpers import word_tokenizer

    tok = word_tokenizer()
    model = tiny_llama(seed=0, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    lora = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS", modules_to_save=["score"])
    )
    with torch.no_grad():  # pretend training moved both the adapter and the head
        for name, p in lora.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)
    batch = collate_sequences([{"input_ids": r, "completion_mask": [1] * len(r)} for r in _rows()], 0, "right")
    with torch.no_grad():
        before = sequence_scores(lora.eval(), batch["input_ids"], batch["attention_mask"])
    save_reward_model(lora, tok, tmp_path / "final", {"trained_from": "test"})
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "final").eval()
    with torch.no_grad():
        after = sequence_scores(reloaded, batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
