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

Two additions of evaluation v2 (DESIGN.md section 6), on the same captions and motions:
- **hard pools** (`hard1`, `hard3`): R-precision among 32 test clips of one action family
  ("locomotion", "raise", "wave", ... from the clips' kinematic facts, `hard_negatives.py`)
  that differ in side, direction, speed or style; clips with the same hard key are equally
  right answers and are left out of each other's ranking.
- **held-out wording** (`wording="heldout"`): every test clip re-captioned from its kinematic
  facts by the held-out half of `server/data/paraphrase.py` (words never trained on).
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from server.data.corpus import Corpus
from server.data.kinematics import extract_facts
from server.data.paraphrase import captions_for_clip
from server.eval import hard_negatives as hn
from server.eval import metrics
from server.eval.evaluator import TextMotionModel
from shared.motion import forward_kinematics
from shared.skeleton import FPS

METRICS = ("top1", "top2", "top3", "hard1", "hard3", "fid", "mm_dist", "diversity", "multimodality")
WORDINGS = ("train", "heldout")
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
    families: np.ndarray | None = None  # (N,) action family per clip (hard pools); None: no hard pools
    keys: np.ndarray | None = None  # (N,) int hard-key id per clip: equal ids are equally right answers
    heldout: list[list[str]] | None = None  # per clip: captions in held-out wording (from its kinematic facts)
    pool_size: int = 32  # clips per hard pool

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = metrics.caption_groups(self.captions)

    def __len__(self) -> int:
        return len(self.motions)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(r) for r, _ in self.motions])

    def captions_for(self, wording: str = "train") -> list[list[str]]:
        """The clips' corpus captions ("train") or their held-out re-wordings ("heldout")."""
        if wording not in WORDINGS:
            raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")
        if wording == "heldout":
            if self.heldout is None:
                raise ValueError("this test set has no held-out captions (load_test_set(..., facts=True))")
            return self.heldout
        return self.captions

    def all_texts(self) -> list[str]:
        return [c for caps in self.captions + (self.heldout or []) for c in caps]

    def pool_families(self) -> dict[str, int]:
        """Action family -> clips, for the families with at least `pool_size` clips (the hard pools)."""
        if self.families is None:
            return {}
        names, counts = np.unique(self.families, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts) if c >= self.pool_size}


def _clip_rng(seed: int, clip_id: str) -> random.Random:
    return random.Random(int(seed) * 1_000_003 + zlib.crc32(clip_id.encode("utf-8")))


def load_test_set(corpus: Corpus, split: str = "test", min_frames: int = 16, max_clips: int | None = None,
                  seed: int = 0, r_batch: int = 32, facts: bool = True, heldout_captions: int = 5,
                  pool_size: int = 32) -> TestSet:
    """The split's captioned clips; with `facts` also their action families and hard keys (hard pools) and
    `heldout_captions` held-out-wording captions each (kinematic captions of their facts, deterministic per clip)."""
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions and corpus.clips[i].frames >= min_frames]
    if max_clips is not None and len(idx) > max_clips:
        idx = sorted(np.random.default_rng(seed).choice(idx, max_clips, replace=False).tolist())
    motions = []
    for i in idx:
        m = corpus.motion(i)
        motions.append((m.rotations, m.translation))
    test = TestSet(motions, [[c.text for c in corpus.clips[i].captions] for i in idx],
                   [corpus.clips[i].id for i in idx], r_batch=r_batch, pool_size=pool_size)
    if facts and idx:
        fams, keys, held = [], [], []
        for i, (r, t) in zip(idx, motions):
            clip = corpus.clips[i]
            label = hn.bandai_label(clip)
            style = label[1] if label else ""
            f = extract_facts(forward_kinematics(r, t), corpus.fps)
            fams.append(hn.action_family(f))
            keys.append(hn.hard_key(f, style))
            held.append(captions_for_clip(f, [], _clip_rng(0, clip.id), n=heldout_captions, half="heldout",
                                          style=style or None) if heldout_captions else [])
        table: dict[tuple, int] = {}
        test.families = np.array(fams)
        test.keys = np.array([table.setdefault(k, len(table)) for k in keys], dtype=np.int64)
        test.heldout = [h if h else caps for h, caps in zip(held, test.captions)]
    return test


def hard_pools(families: np.ndarray, keys: np.ndarray, rng: np.random.Generator, size: int = 32) -> list[np.ndarray]:
    """Pools of `size` clips of one family each, as varied as the family allows: clips are dealt round-robin over
    its hard keys (in random order) and cut into consecutive pools; a family's last partial pool is dropped."""
    pools = []
    for fam in sorted(set(families.tolist())):
        members = np.nonzero(families == fam)[0]
        if len(members) < size:
            continue
        by_key: dict[int, list[int]] = {}
        for i in rng.permutation(members):
            by_key.setdefault(int(keys[i]), []).append(int(i))
        lists = [by_key[k] for k in rng.permutation(sorted(by_key)).tolist()]
        order = []
        while any(lists):
            order += [lst.pop() for lst in lists if lst]
        pools += [np.array(order[s: s + size]) for s in range(0, len(order) - size + 1, size)]
    return pools


def hard_pool_r_precision(text_emb: np.ndarray, motion_emb: np.ndarray, families: np.ndarray, keys: np.ndarray,
                          rng: np.random.Generator, size: int = 32, top_k: int = 3) -> tuple[np.ndarray, int]:
    """Mean R-precision over the hard pools (same-key clips excluded from each other's ranking); ((top_k,), clips)."""
    pools = hard_pools(families, keys, rng, size)
    if not pools:
        return np.full(top_k, np.nan), 0
    scores = [metrics.r_precision(text_emb[p], motion_emb[p], top_k, exclude=keys[p][:, None] == keys[p][None, :])
              for p in pools]
    return np.mean(scores, axis=0), len(pools) * size


class _TextEmbedder:
    """Evaluator text embeddings, computed once per distinct text."""

    def __init__(self, evaluator: TextMotionModel, texts: Sequence[str], cache=None, encoder=None):
        self.texts = sorted(set(texts))
        self.index = {t: i for i, t in enumerate(self.texts)}
        self.emb = evaluator.embed_texts(self.texts, cache=cache, encoder=encoder)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.emb[[self.index[t] for t in texts]]


TextEmbedder = _TextEmbedder


def text_embedder(evaluator: TextMotionModel, test: TestSet, cache=None, encoder=None) -> _TextEmbedder:
    """Evaluator embeddings of every caption of the test set, held-out re-wordings included."""
    return _TextEmbedder(evaluator, test.all_texts(), cache=cache, encoder=encoder)


def _row(name: str, per_repeat: dict[str, list[float]], **extra) -> dict:
    summary = {k: list(metrics.mean_and_interval(v)) for k, v in per_repeat.items() if len(v)}
    return {"name": name, "metrics": per_repeat, "summary": summary, **extra}


def _score(motion_emb: np.ndarray, text_emb: np.ndarray, ids: np.ndarray, real_emb: np.ndarray | None,
           rng: np.random.Generator, out: dict[str, list[float]], batch_size: int, test: TestSet | None = None,
           pool_rng: np.random.Generator | None = None) -> int:
    rp, used = metrics.r_precision_batched(text_emb, motion_emb, ids, rng, batch_size=batch_size)
    for k, v in zip(("top1", "top2", "top3"), rp):
        out[k].append(float(v))
    out["mm_dist"].append(metrics.matching_score(text_emb, motion_emb))
    out["fid"].append(metrics.fid(motion_emb, real_emb) if real_emb is not None else 0.0)
    out["diversity"].append(metrics.diversity(motion_emb, rng, 300))
    if test is not None and pool_rng is not None and test.pool_families():
        hp, _ = hard_pool_r_precision(text_emb, motion_emb, test.families, test.keys, pool_rng, test.pool_size)
        out["hard1"].append(float(hp[0]))
        out["hard3"].append(float(hp[min(2, len(hp) - 1)]))
    return used


def _pick_captions(test: TestSet, rng: np.random.Generator, wording: str = "train") -> list[str]:
    return [caps[int(rng.integers(len(caps)))] for caps in test.captions_for(wording)]


def _pool_rng(seed: int) -> np.random.Generator:
    """Hard pools draw from their own stream, so the standard metrics do not depend on whether pools exist."""
    return np.random.default_rng([int(seed), 0x9001])


def _suffix(wording: str) -> str:
    return " (held-out wording)" if wording == "heldout" else ""


def _empty() -> dict[str, list[float]]:
    return {k: [] for k in METRICS}


def _texts(evaluator: TextMotionModel, test: TestSet, texts):
    return texts or text_embedder(evaluator, test)


def _groups(test: TestSet, wording: str) -> np.ndarray:
    return test.groups if wording == "train" else metrics.caption_groups(test.captions_for(wording))


def evaluate_real(evaluator: TextMotionModel, test: TestSet, repeats: int, seed: int = 0, texts=None,
                  progress=None, wording: str = "train", name: str = "Real") -> dict:
    """The Real row: test motions against their own captions; FID(real, real) = 0 by construction."""
    rng, pool_rng = np.random.default_rng(seed), _pool_rng(seed)
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = _texts(evaluator, test, texts)
    groups = _groups(test, wording)
    out, used = _empty(), 0
    floor = []
    name = name + _suffix(wording)
    for _ in _iter(range(repeats), progress, name):
        pick = _pick_captions(test, rng, wording)
        used = _score(test.real_emb, texts(pick), groups, None, rng, out, test.r_batch, test, pool_rng)
        half = rng.permutation(len(test))
        floor.append(metrics.fid(test.real_emb[half[: len(half) // 2]], test.real_emb[half[len(half) // 2:]]))
    out.pop("multimodality")
    return _row(name, out, items_per_repeat=used, fid_floor_two_halves=list(metrics.mean_and_interval(floor)))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], frames: int) -> np.ndarray:
    """Gaussian noise of `shape` (time first) smoothed by a moving average over `frames` frames applied twice (a
    triangular window), rescaled to unit std."""
    out = rng.normal(size=(shape[0] + 2 * (frames - 1),) + tuple(shape[1:]))
    for _ in range(2):
        c = np.concatenate([np.zeros((1,) + out.shape[1:]), np.cumsum(out, axis=0)])
        out = (c[frames:] - c[:-frames]) / frames
    return out / max(float(out.std()), 1e-12)


def degrade(motions: list[tuple[np.ndarray, np.ndarray]], kind: str, rng: np.random.Generator,
            noise_rad: float = 0.05, noise_m: float = 0.02, drift_s: float = 0.5) -> list[tuple[np.ndarray, np.ndarray]]:
    """'noise': independent per-frame jitter of every joint rotation (std noise_rad) and of the pelvis (noise_m);
    'drift': the same stds but smooth, averaged over `drift_s` seconds, so poses and the path wander (the content
    changes, not only the smoothness); 'reverse': time reversal."""
    from shared.rotations import axis_angle_to_quat, quat_multiply

    out = []
    for r, t in motions:
        if kind == "reverse":
            out.append((r[::-1].copy(), t[::-1].copy()))
        elif kind == "noise":
            jitter = axis_angle_to_quat(rng.normal(0.0, noise_rad, r.shape[:-1] + (3,)))
            out.append((quat_multiply(r, jitter).astype(np.float32), (t + rng.normal(0, noise_m, t.shape)).astype(np.float32)))
        elif kind == "drift":
            frames = max(1, int(round(drift_s * FPS)))
            turn = axis_angle_to_quat(noise_rad * smooth_noise(rng, r.shape[:-1] + (3,), frames))
            path = noise_m * smooth_noise(rng, t.shape, frames) * np.array([1.0, 0.0, 1.0])
            out.append((quat_multiply(r, turn).astype(np.float32), (t + path).astype(np.float32)))
        else:
            raise ValueError(f"unknown degradation {kind!r}")
    return out


def noise_name(noise_rad: float, noise_m: float, kind: str = "noise") -> str:
    if kind == "drift":
        return f"Real + drift noise ({noise_rad} rad, {noise_m} m, 0.5 s)"
    return f"Real + noise ({noise_rad} rad, {noise_m} m)"


def evaluate_degraded(evaluator: TextMotionModel, test: TestSet, repeats: int, seed: int = 0, texts=None,
                      progress=None, noise_rad: float = 0.05, noise_m: float = 0.02,
                      kinds: Sequence[str] = ("noise", "reverse", "shuffle")) -> list[dict]:
    """Real test motions degraded on purpose: noise or drift (fresh every repeat), time reversal, shuffled texts.
    FID is against clean real."""
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = _texts(evaluator, test, texts)
    names = {"noise": noise_name(noise_rad, noise_m), "drift": noise_name(noise_rad, noise_m, "drift"),
             "reverse": "Real, time-reversed", "shuffle": "Real, shuffled texts"}
    rows = []
    for kind in kinds:
        name = names[kind]
        rng, pool_rng = np.random.default_rng(seed), _pool_rng(seed)
        out, used = _empty(), 0
        emb = None
        if kind == "reverse":
            emb = evaluator.embed_motions(degrade(test.motions, kind, rng))
        for _ in _iter(range(repeats), progress, name):
            if kind in ("noise", "drift"):
                emb = evaluator.embed_motions(degrade(test.motions, kind, rng, noise_rad, noise_m))
            pick = _pick_captions(test, rng)
            motion_emb = test.real_emb if kind == "shuffle" else emb
            if kind == "shuffle":
                pick = [pick[i] for i in rng.permutation(len(pick))]
            used = _score(motion_emb, texts(pick), test.groups, test.real_emb, rng, out, test.r_batch, test, pool_rng)
        out.pop("multimodality")
        rows.append(_row(name, out, items_per_repeat=used))
    return rows


def evaluate_generator(name: str, evaluator: TextMotionModel, generate: GenerateFn, test: TestSet, repeats: int,
                       seed: int = 0, mm_repeats: int | None = None, mm_captions: int = 100, mm_generations: int = 30,
                       mm_pairs: int = 10, texts=None, progress=None, wording: str = "train") -> dict:
    """One generator's row: per repeat, one generation per test clip at its length, then the metrics.

    Every random draw (captions, sampling seeds, batches, MultiModality's captions, seeds and pairs) comes from
    `seed`; MultiModality has its own stream, so `mm_repeats` does not change the other metrics."""
    rng, pool_rng = np.random.default_rng(seed), _pool_rng(seed)
    mm_rng = np.random.default_rng([int(seed), 0x3333])
    if test.real_emb is None:
        test.real_emb = evaluator.embed_motions(test.motions)
    texts = _texts(evaluator, test, texts)
    groups = _groups(test, wording)
    seconds = [len(r) / FPS for r, _ in test.motions]
    out, used = _empty(), 0
    mm_repeats = repeats if mm_repeats is None else mm_repeats
    name = name + _suffix(wording)
    for k in _iter(range(repeats), progress, name):
        pick = _pick_captions(test, rng, wording)
        seeds = rng.integers(0, 2**31 - 1, len(pick)).tolist()
        generated = generate(pick, seconds, 1, seeds)
        motions = [(r[0], t[0]) for r, t in generated]
        emb = evaluator.embed_motions(motions)
        used = _score(emb, texts(pick), groups, test.real_emb, rng, out, test.r_batch, test, pool_rng)
        if k < mm_repeats and mm_captions > 0:
            chosen = mm_rng.choice(len(test), min(mm_captions, len(test)), replace=False)
            prompts = [pick[i] for i in chosen]
            gens = generate(prompts, [seconds[i] for i in chosen], mm_generations,
                            mm_rng.integers(0, 2**31 - 1, len(chosen)).tolist())
            mm_emb = np.stack([evaluator.embed_motions(list(zip(r, t))) for r, t in gens])
            out["multimodality"].append(metrics.multimodality(mm_emb, mm_rng, mm_pairs))
    if not out["multimodality"]:
        out.pop("multimodality")
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
    """One line per row; the hard-pool columns only when some row has them."""
    head = ["Method", "R-Precision Top-1 ↑", "Top-2 ↑", "Top-3 ↑", "Hard-pool Top-1 ↑", "Hard-pool Top-3 ↑", "FID ↓",
            "MM-Dist ↓", "Diversity →", "MultiModality ↑"]
    keys = list(METRICS)
    if not any("hard1" in row["summary"] for row in rows):
        head, keys = head[:4] + head[6:], [k for k in keys if not k.startswith("hard")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        s = row["summary"]
        lines.append("| " + " | ".join([row["name"]] + [format_cell(s.get(k)) for k in keys]) + " |")
    return "\n".join(lines)
