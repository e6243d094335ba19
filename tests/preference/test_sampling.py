"""RLOO's sampler: exact temperature sampling, keyed per row, ranks kept in step."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from llmops.preference.sampling import key_seed, sample_completions
from preference.helpers import tiny_llama


class FixedLogits(torch.nn.Module):
    """Every position predicts the same logits; counts its forwards."""

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = torch.tensor(logits)
        self.calls = 0

    def forward(self, input_ids, **kwargs):
        self.calls += 1
        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1), past_key_values=None)


def test_samples_follow_softmax_of_logits_over_temperature():
    logits, temp, n = [2.0, 0.5, 0.0, -1.0], 0.7, 6000
    model = FixedLogits(logits)
    prompt = torch.ones(n, 1, dtype=torch.long)
    seeds = [key_seed(0, "t", i) for i in range(n)]
    out = sample_completions(model, prompt, torch.ones_like(prompt), seeds, max_new_tokens=1, temperature=temp,
                             eos_token_id=99, pad_token_id=0)
    freq = torch.bincount(out[:, 0], minlength=4).double() / n
    expect = torch.softmax(torch.tensor(logits, dtype=torch.float64) / temp, -1)
    # 4 standard errors of a binomial proportion at n=6000
    assert torch.all((freq - expect).abs() <= 4 * (expect * (1 - expect) / n).sqrt()), (freq, expect)


def test_a_rows_sample_depends_on_its_key_not_on_its_batch_or_padding():
    model = tiny_llama(seed=3)
    a, b = [5, 9, 12], [7, 8, 20, 30, 31, 40]
    batch = torch.tensor([[0, 0, 0] + a, b])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1] * 6])
    kw = dict(max_new_tokens=8, temperature=1.0, eos_token_id=1, pad_token_id=0)
    together = sample_completions(model, batch, mask, [11, 12], **kw)
    alone = sample_completions(model, torch.tensor([a]), torch.ones(1, 3, dtype=torch.long), [11], **kw)
    n = alone.shape[1]
    assert torch.equal(together[0, :n], alone[0]) and bool((together[0, n:] == 0).all())
    other_key = sample_completions(model, torch.tensor([a]), torch.ones(1, 3, dtype=torch.long), [13], **kw)
    assert not torch.equal(other_key, alone)
    state = torch.get_rng_state()
    sample_completions(model, torch.tensor([a]), torch.ones(1, 3, dtype=torch.long), [11], **kw)
    assert torch.equal(torch.get_rng_state(), state)  # the training RNG is not consumed


def test_synced_sampling_runs_until_no_rank_is_unfinished():
    model = FixedLogits([0.0, 50.0, 0.0])  # token 1 (eos) almost surely: done after one step locally
    prompt = torch.ones(2, 1, dtype=torch.long)
    others = iter([True, True, True, False])  # another rank still samples for 3 more steps
    out = sample_completions(model, prompt, torch.ones_like(prompt), [1, 2], max_new_tokens=10, temperature=1.0,
                             eos_token_id=1, pad_token_id=0, others_unfinished=lambda local: next(others))
    assert model.calls == 4 and out.shape == (2, 4)
    assert out[:, 0].tolist() == [1, 1] and bool((out[:, 1:] == 0).all())
    alone = FixedLogits([0.0, 50.0, 0.0])
    sample_completions(alone, prompt, torch.ones_like(prompt), [1, 2], max_new_tokens=10, temperature=1.0,
                       eos_token_id=1, pad_token_id=0)
    assert alone.calls == 1
