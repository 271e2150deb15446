"""Held-out comparisons of a fine-tuned model against its base: same prompts, same noise, paired statistics.

    base = held_out_motions(base_gen, prompts, seconds, seeds=(0,), n=4)     # {(seed, prompt): (rot, trans)}
    tuned = held_out_motions(tuned_gen, prompts, seconds, seeds=(0,), n=4)   # the same noise (suite.prompt_seed)
    rate, low, high = win_rate(taste_matrix(tuned, ...), taste_matrix(base, ...))
    result = score_suite(replay(tuned), suite, seeds=(0,), n=4)              # suite pass rate from the same motions

A pair is (fine-tuned, base) motions of one prompt, seed and candidate index: both start from the
same noise, so a difference between them is the fine-tuning's doing. The artist "prefers" the
fine-tuned one when its taste score is higher (a tie, |difference| <= `tie`, counts as half). Win
rates and paired differences come with a 95% percentile bootstrap interval over prompts (the pairs
of one prompt are not independent), as the suite's pass rates do.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from server.align.artist import taste_scores
from server.eval.physics import bootstrap_interval
from server.eval.suite import GeneratorFn, SuiteResult, prompt_seed

Motions = dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]


def held_out_motions(generator, prompts: Sequence[str], seconds: Sequence[float], seeds: Sequence[int], n: int,
                     batch_size: int = 32) -> Motions:
    """(seed, prompt) -> (rotations (n, T, 22, 4), translation (n, T, 3)) from a `MotionGenerator`, each prompt's
    noise from `suite.prompt_seed(seed, prompt)`: two models given the same arguments start from the same noise."""
    from server.model.inference import GenerationRequest

    out: Motions = {}
    for seed in seeds:
        for s in range(0, len(prompts), batch_size):
            chunk = list(zip(prompts[s:s + batch_size], seconds[s:s + batch_size]))
            reqs = [GenerationRequest(p, n=n, seconds=min(float(sec), generator.max_seconds),
                                      seed=prompt_seed(seed, p)) for p, sec in chunk]
            for (p, _), (rot, trans) in zip(chunk, generator.generate(reqs)):
                out[(int(seed), p)] = (np.asarray(rot), np.asarray(trans))
    return out


def replay(motions: Motions) -> GeneratorFn:
    """A suite generator that returns already generated motions (`score_suite` then checks the same motions)."""

    def generate(prompts: list[str], seconds: list[float], seed: int, n: int):
        out = []
        for p in prompts:
            rot, trans = motions[(int(seed), p)]
            if len(rot) < n:
                raise ValueError(f"{len(rot)} stored candidates for {p!r}, {n} asked")
            out.append((rot[:n], trans[:n]))
        return out

    return generate


def taste_matrix(motions: Motions, prompts: Sequence[str], seeds: Sequence[int], fps: float,
                 score: Callable[[np.ndarray, np.ndarray, float], np.ndarray] = taste_scores) -> np.ndarray:
    """(P, S n) taste scores: row = prompt, columns = seeds x candidates in order ((0, 0) without prompts)."""
    if not len(prompts):
        return np.zeros((0, 0))
    return np.array([np.concatenate([score(*motions[(int(s), p)], fps) for s in seeds]) for p in prompts])


def win_rate(tuned: np.ndarray, base: np.ndarray, tie: float = 1e-9, resamples: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
    """(rate, low, high): the share of pairs where `tuned` (P, M) scores above `base` (P, M) (ties half), with a
    95% bootstrap interval over the P prompts."""
    tuned, base = np.asarray(tuned, np.float64), np.asarray(base, np.float64)
    if tuned.shape != base.shape or tuned.ndim != 2:
        raise ValueError(f"paired scores must share a (prompts, pairs) shape, got {tuned.shape} and {base.shape}")
    d = tuned - base
    wins = np.where(np.abs(d) <= tie, 0.5, (d > 0).astype(np.float64))  # (P, M)
    groups = np.repeat(np.arange(len(wins)), wins.shape[1])
    return bootstrap_interval(wins.ravel(), groups, resamples, seed)


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of a - b over paired units (e.g. per-prompt pass rates), 95% bootstrap over units."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return bootstrap_interval(d, None, resamples, seed)


def prompt_pass_rates(result: SuiteResult, prompt_ids: Sequence[str]) -> np.ndarray:
    """(P,) the share of seeds x candidates passing, per suite prompt id (in the order given)."""
    return np.array([float(np.mean(result.passes[pid])) for pid in prompt_ids])


def suite_difference(tuned: SuiteResult, base: SuiteResult, prompt_ids: Sequence[str]) -> tuple[float, float, float]:
    """Paired difference of suite pass rates (tuned - base) over `prompt_ids`, 95% bootstrap over prompts."""
    return paired_difference(prompt_pass_rates(tuned, prompt_ids), prompt_pass_rates(base, prompt_ids))


def fmt_interval(t: Sequence[float], scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """'m [lo, hi]' of a (mean, low, high) triple, times `scale`."""
    m, lo, hi = (scale * x for x in t)
    sign = "+" if signed else ""
    return f"{m:{sign}.{digits}f} [{lo:{sign}.{digits}f}, {hi:{sign}.{digits}f}]"
