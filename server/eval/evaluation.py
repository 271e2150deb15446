"""Guo et al.'s evaluation protocol on the test split (DESIGN.md section 6), as library code.

`evaluate_real`, `evaluate_generator` and `evaluate_degraded` each return a row:
{"name", "metrics": {metric: [value per repeat]}, "summary": {metric: [mean, 95% half-width]}}.
`markdown_table(rows)` renders them. A generator enters as a plain function
`generate(prompts, seconds, n, seeds) -> list of (rotations (n, T, 22, 4), translation (n, T, 3))`;
`generator_fn(MotionGenerator)` adapts the inference module's generator to it.

Per repeat, as in Guo et al.: one random caption per test clip; a generated motion per
clip at the clip's length; R-precision over batches of 32 distinct captions; MM-Dist;
FID of generated vs real test-motion embeddings; Diversity over 300 random pairs;
MultiModality over `mm_captions` captions x `mm_generations` generations x 10 pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from server.eval import metrics
from server.data.corpus import Corpus
from server.eval.evaluator import TextMotionModel
from shared.skeleton import FPS

METRICS = ("top1", "top2", "top3", "fid", "mm_dist", "diversity", "multimodality")
GenerateFn = Callable[[list[str], list[float], int, list[int]], list[tuple[np.ndarray, np.ndarray]]]


@dataclass
class TestSet:
    """Test clips as (rotations, translation) with their captions, and the real-motion embeddings."""
    motions: list[tuple[np.ndarray, np.ndarray]]
    captions: list[list[str]]
    clip_ids: list[str]
    real_emb: np.ndarray | None = None
    groups: np.ndarray | None = None  # caption group per clip (metrics.caption_groups): one per R-precision batch
    r_batch: int = 32  # R-precision batch size (32 in Guo et al.; smaller only for tiny test sets)

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = metrics.caption_groups(self.captions)

    def __len__(self) -> int:
        return len(self.motions)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(r) for r, _ in self.motions])


def load_test_set(corpus: Corpus, split: str = "test", min_frames: int = 16, max_clips: int | None = None,
                  seed: int = 0, r_batch: int = 32) -> TestSet:
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions and corpus.clips[i].frames >= min_frames]
    if max_clips is not None and len(idx) > max_clips:
        idx = sorted(np.random.default_rng(seed).choice(idx, max_clips, replace=False).tolist())
    motions = []
    for i in idx:
        m = corpus.motion(i)
        motions.append((m.rotations, m.translation))
    return TestSet(motions, [[c.text for c in corpus.clips[i].captions] for i in idx], [corpus.clips[i].id for i in idx],
                   r_batch=r_batch)


class _TextEmbedder:
    """Evaluator text embeddings, computed once per distinct text."""

    def __init__(self, evaluator: TextMotionModel, texts: Sequence[str], cache=None, encoder=None):
        self.texts = sorted(set(texts))
        self.index = {t: i for i, t in enumerate(self.texts)}
        self.emb = evaluator.embed_texts(self.texts, cache=cache, encoder=encoder)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.emb[[self.index[t] for t in texts]]


def _row(name: str, per_repeat: dict[str, list[float]], **extra) -> dict:
    summary = {k: list(metrics.mean_and_interval(v)) for k, v in per_repeat.items() if len(v)}
    return {"name": name, "metrics": per_repeat, "summary": summary, **extra}


def _score(motion_emb: np.ndarray, text_emb: np.ndarray, ids: np.ndarray, real_emb: np.ndarray | None,
           rng: np.random.Generator, out: dict[str, list[float]], batch_size: int) -> int:
    rp, used = metrics.r_precision_batched(text_emb, motion_emb, ids, rng, batch_size=batch_size)
    for k, v in zip(("top1", "top2", "top3"), rp):
        out[k].append(float(v))
    out["mm_dist"].append(metrics.matching_score(text_emb, motion_emb))
    out["fid"].append(metrics.fid(motion_emb, real_emb) if real_emb is not None else 0.0)
    out["diversity"].append(metrics.diversity(motion_emb, rng, 300))
    return used


def _pick_captions(test: TestSet, rng: np.random.Generator) -> list[str]:
    return [caps[int(rng.integers(len(caps)))] for caps in test.captions]


def _empty() -> dict[str, list[float]]:
    return {k: [] for k in METRICS}


def evaluate_real(evaluator: TextMotionModel, test: TestSet, repeats: int, seed: int = 0, texts=None,
                  progress=None) -> dict:
    """The Real row: test motions against their own captions; FID(real, real) = 0 by construction."""
    rng = np.random.default_rng(seed)
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = texts or _TextEmbedder(evaluator, [c for caps in test.captions for c in caps])
    out, used = _empty(), 0
    floor = []
    for _ in _iter(range(repeats), progress, "Real"):
        pick = _pick_captions(test, rng)
        used = _score(test.real_emb, texts(pick), test.groups, None, rng, out, test.r_batch)
        half = rng.permutation(len(test))
        floor.append(metrics.fid(test.real_emb[half[: len(half) // 2]], test.real_emb[half[len(half) // 2:]]))
    out.pop("multimodality")
    return _row("Real", out, items_per_repeat=used, fid_floor_two_halves=list(metrics.mean_and_interval(floor)))


def degrade(motions: list[tuple[np.ndarray, np.ndarray]], kind: str, rng: np.random.Generator,
            noise_rad: float = 0.05, noise_m: float = 0.02) -> list[tuple[np.ndarray, np.ndarray]]:
    """'noise': per-frame joint-rotation jitter (noise_rad) and pelvis jitter (noise_m); 'reverse': time reversal."""
    from shared.rotations import axis_angle_to_quat, quat_multiply

    out = []
    for r, t in motions:
        if kind == "reverse":
            out.append((r[::-1].copy(), t[::-1].copy()))
        elif kind == "noise":
            jitter = axis_angle_to_quat(rng.normal(0.0, noise_rad, r.shape[:-1] + (3,)))
            out.append((quat_multiply(r, jitter).astype(np.float32), (t + rng.normal(0, noise_m, t.shape)).astype(np.float32)))
        else:
            raise ValueError(f"unknown degradation {kind!r}")
    return out


def evaluate_degraded(evaluator: TextMotionModel, test: TestSet, repeats: int, seed: int = 0, texts=None,
                      progress=None, noise_rad: float = 0.05, noise_m: float = 0.02) -> list[dict]:
    """Real test motions degraded on purpose: noise, time reversal, shuffled texts. FID is against clean real."""
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = texts or _TextEmbedder(evaluator, [c for caps in test.captions for c in caps])
    rows = []
    for kind, name in (("noise", f"Real + noise ({noise_rad} rad, {noise_m} m)"), ("reverse", "Real, time-reversed"),
                       ("shuffle", "Real, shuffled texts")):
        rng = np.random.default_rng(seed)
        out, used = _empty(), 0
        emb = None
        if kind == "reverse":
            emb = evaluator.embed_motions(degrade(test.motions, kind, rng))
        for _ in _iter(range(repeats), progress, name):
            if kind == "noise":
                emb = evaluator.embed_motions(degrade(test.motions, kind, rng, noise_rad, noise_m))
            pick = _pick_captions(test, rng)
            motion_emb = test.real_emb if kind == "shuffle" else emb
            if kind == "shuffle":
                pick = [pick[i] for i in rng.permutation(len(pick))]
            used = _score(motion_emb, texts(pick), test.groups, test.real_emb, rng, out, test.r_batch)
        out.pop("multimodality")
        rows.append(_row(name, out, items_per_repeat=used))
    return rows


def evaluate_generator(name: str, evaluator: TextMotionModel, generate: GenerateFn, test: TestSet, repeats: int,
                       seed: int = 0, mm_repeats: int | None = None, mm_captions: int = 100, mm_generations: int = 30,
                       mm_pairs: int = 10, texts=None, progress=None) -> dict:
    """One generator's row: per repeat, one generation per test clip at its length, then the metrics."""
    rng = np.random.default_rng(seed)
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = texts or _TextEmbedder(evaluator, [c for caps in test.captions for c in caps])
    seconds = [len(r) / FPS for r, _ in test.motions]
    out, used = _empty(), 0
    mm_repeats = repeats if mm_repeats is None else mm_repeats
    for k in _iter(range(repeats), progress, name):
        pick = _pick_captions(test, rng)
        seeds = rng.integers(0, 2**31 - 1, len(pick)).tolist()
        generated = generate(pick, seconds, 1, seeds)
        motions = [(r[0], t[0]) for r, t in generated]
        emb = evaluator.embed_motions(motions)
        used = _score(emb, texts(pick), test.groups, test.real_emb, rng, out, test.r_batch)
        if k < mm_repeats and mm_captions > 0:
            chosen = rng.choice(len(test), min(mm_captions, len(test)), replace=False)
            prompts = [pick[i] for i in chosen]
            gens = generate(prompts, [seconds[i] for i in chosen], mm_generations,
                            rng.integers(0, 2**31 - 1, len(chosen)).tolist())
            mm_emb = np.stack([evaluator.embed_motions(list(zip(r, t))) for r, t in gens])
            out["multimodality"].append(metrics.multimodality(mm_emb, rng, mm_pairs))
    return _row(name, out, items_per_repeat=used)


def generator_fn(generator, batch_size: int = 32, guidance: float | None = None, steps: int | None = None,
                 max_motions: int = 256) -> GenerateFn:
    """Adapt `server.model.inference.MotionGenerator` to `GenerateFn`: `batch_size` requests per call, and
    at most `max_motions` motions per call (MultiModality asks for 30 per caption)."""
    from server.model.inference import GenerationRequest

    limit = float(getattr(generator, "max_seconds", float("inf")))

    def generate(prompts: list[str], seconds: list[float], n: int, seeds: list[int]):
        seconds = [min(sec, limit) for sec in seconds]  # the evaluator crops to 10 s anyway
        out = []
        per_call = max(1, min(batch_size, max_motions // n))
        for s in range(0, len(prompts), per_call):
            reqs = [GenerationRequest(prompt=p, n=n, seconds=sec, seed=int(sd), guidance=guidance, steps=steps)
                    for p, sec, sd in zip(prompts[s: s + per_call], seconds[s: s + per_call], seeds[s: s + per_call])]
            for (r, t), sec in zip(generator.generate(reqs), seconds[s: s + per_call]):
                frames = max(1, int(round(sec * FPS)))
                out.append((np.asarray(r)[:, :frames], np.asarray(t)[:, :frames]))
        return out

    return generate


def _iter(it, progress, desc):
    if progress is None:
        return it
    return progress(it, desc=desc)


def format_cell(mean_ci, digits: int = 3) -> str:
    if mean_ci is None:
        return "-"
    mean, ci = mean_ci
    return f"{mean:.{digits}f}±{ci:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    head = ["Method", "R-Precision Top-1 ↑", "Top-2 ↑", "Top-3 ↑", "FID ↓", "MM-Dist ↓", "Diversity →", "MultiModality ↑"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        s = row["summary"]
        lines.append("| " + " | ".join([row["name"]] + [format_cell(s.get(k)) for k in METRICS]) + " |")
    return "\n".join(lines)
