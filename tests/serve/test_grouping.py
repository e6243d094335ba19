"""Which requests share a backend call (no model needed)."""

from __future__ import annotations

import random

from llmops.serve.generation import GenRequest, group


def req(temperature=0.0, seed=None, budget=8, prompt_tokens=4, stop=(), top_p=1.0, window=64) -> GenRequest:
    r = GenRequest(kind="completion", prompts=["p"], messages=None, n=1, max_tokens=budget,
                   temperature=temperature, top_p=top_p, stop=stop, seed=seed)
    r.budget, r.prompt_tokens, r.window = budget, [prompt_tokens], window
    return r


def test_greedy_requests_share_one_call_with_the_largest_budget():
    a, b = req(budget=4, stop=("x",)), req(budget=16)
    [(params, members)] = group([a, b], random.Random(0))
    assert members == [a, b] and params.max_new_tokens == 16 and params.greedy
    assert params.stop == ()  # different stop sets: each is applied per request afterwards


def test_common_stop_strings_go_to_the_backend():
    [(params, _)] = group([req(stop=("\n",)), req(stop=("\n",))], random.Random(0))
    assert params.stop == ("\n",)


def test_seeded_requests_run_alone_and_unseeded_share_by_temperature():
    s1, s2 = req(temperature=0.7, seed=1), req(temperature=0.7, seed=1)
    u1, u2, u3 = req(temperature=0.7), req(temperature=0.7), req(temperature=1.0)
    calls = group([s1, u1, s2, u2, u3], random.Random(0))
    by_members = {tuple(id(m) for m in members): params for params, members in calls}
    assert set(by_members) == {(id(s1),), (id(s2),), (id(u1), id(u2)), (id(u3),)}
    assert by_members[(id(s1),)].seed == 1 and s1.used_seed == 1
    assert u1.used_seed == u2.used_seed is not None  # drawn once for the shared call, recorded with both


def test_a_prompt_that_would_not_fit_beside_a_larger_budget_runs_alone():
    long_prompt = req(budget=4, prompt_tokens=58, window=64)  # 58 + 4 fits; 58 + 16 would not
    short = req(budget=16, prompt_tokens=4, window=64)
    calls = group([long_prompt, short], random.Random(0))
    assert [(p.max_new_tokens, [m is long_prompt for m in ms]) for p, ms in calls] == [(16, [False]), (4, [True])]
