"""Text-to-motion metrics of Guo et al. 2022 (as used by SoPo): pure numpy/scipy functions.

All functions take embeddings as arrays (N, D) and a `numpy.random.Generator` where they
sample; nothing here knows about models. Distances are Euclidean, as in Guo et al.'s code.

- `r_precision`: each text ranked against the motions of its batch (top-1/2/3 hit rates).
- `distinct_caption_batches`: batches whose captions are all different, so that a batch's
  "mismatches" never share the query's caption (our captions repeat: "walk");
  `caption_groups` gives the ids when clips carry several captions (paraphrases).
- `matching_score` (MM-Dist), `frechet_distance` / `fid`, `diversity`, `multimodality`.
- `auc`: area under the ROC curve (Mann-Whitney), for the reward model's hard-negative report.
- `mean_and_interval`: mean and 95% interval half-width over repeats (1.96 std / sqrt(n)).
"""
from __future__ import annotations

import re

import numpy as np
from scipy import linalg


def normalize_caption(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: 'Walk.' and 'walk' are one caption."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def caption_ids(texts: list[str]) -> np.ndarray:
    """Integer id per text; equal ids exactly when the normalised captions are equal."""
    table: dict[str, int] = {}
    return np.array([table.setdefault(normalize_caption(t), len(table)) for t in texts], dtype=np.int64)


def caption_groups(captions_per_item: list[list[str]]) -> np.ndarray:
    """Group id per item: items are grouped when they share any normalised caption (transitively).

    Clips carry several captions (paraphrases of one template), so two clips whose caption
    lists overlap describe the same thing; R-precision batches hold one item per group.
    """
    parent = list(range(len(captions_per_item)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[str, int] = {}
    for k, caps in enumerate(captions_per_item):
        for text in {normalize_caption(c) for c in caps}:
            if text in owner:
                parent[find(k)] = find(owner[text])
            else:
                owner[text] = k
    roots = [find(k) for k in range(len(captions_per_item))]
    table: dict[int, int] = {}
    return np.array([table.setdefault(r, len(table)) for r in roots], dtype=np.int64)


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (M, D) -> (N, M) Euclidean distances."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def r_precision(text_emb: np.ndarray, motion_emb: np.ndarray, top_k: int = 3,
                exclude: np.ndarray | None = None) -> np.ndarray:
    """One batch: text i's match is motion i. Returns (top_k,) fraction of texts whose match ranks <= k.

    Ties count against the match (a constant embedding scores chance or below, never 1).
    `exclude` (B, B) bool: motions j left out of text i's ranking (equally right answers); the diagonal is ignored.
    """
    dist = euclidean_distance_matrix(text_emb, motion_emb)
    own = np.diag(dist)[:, None]
    closer = (dist < own) | (dist == own)
    if exclude is not None:
        closer &= ~(np.asarray(exclude, dtype=bool) & ~np.eye(len(dist), dtype=bool))
    rank = closer.sum(1) - 1  # other motions at least as close
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)])


def distinct_caption_batches(ids: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split items into batches of `batch_size` with pairwise different caption ids.

    Each batch draws `batch_size` different captions, with probability proportional to how
    many of their items are left, and one random item of each. Stops when fewer than
    `batch_size` different captions have items left; the rest are unused.
    """
    ids = np.asarray(ids)
    pools: dict[int, list[int]] = {}
    for i in rng.permutation(len(ids)):
        pools.setdefault(int(ids[i]), []).append(int(i))
    batches = []
    while True:
        keys = [k for k, v in pools.items() if v]
        if len(keys) < batch_size:
            return batches
        counts = np.array([len(pools[k]) for k in keys], dtype=np.float64)
        chosen = rng.choice(len(keys), size=batch_size, replace=False, p=counts / counts.sum())
        batches.append(np.array([pools[keys[c]].pop() for c in chosen], dtype=np.int64))


def r_precision_batched(text_emb: np.ndarray, motion_emb: np.ndarray, ids: np.ndarray, rng: np.random.Generator,
                        batch_size: int = 32, top_k: int = 3) -> tuple[np.ndarray, int]:
    """Mean R-precision over distinct-caption batches; returns ((top_k,), number of items used)."""
    batches = distinct_caption_batches(ids, batch_size, rng)
    if not batches:
        raise ValueError(f"fewer than {batch_size} distinct captions: no R-precision batch can be built")
    scores = np.stack([r_precision(text_emb[b], motion_emb[b], top_k) for b in batches])
    return scores.mean(0), len(batches) * batch_size


def matching_score(text_emb: np.ndarray, motion_emb: np.ndarray) -> float:
    """MM-Dist: mean Euclidean distance between each text and its own motion."""
    diff = np.asarray(text_emb, np.float64) - np.asarray(motion_emb, np.float64)
    return float(np.linalg.norm(diff, axis=1).mean())


def activation_statistics(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(emb, dtype=np.float64)
    return emb.mean(0), np.cov(emb, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)), the matrix square root by scipy (as in Guo et al.)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets."""
    return max(0.0, frechet_distance(*activation_statistics(emb_a), *activation_statistics(emb_b)))


def diversity(emb: np.ndarray, rng: np.random.Generator, n_pairs: int = 300) -> float:
    """Mean distance between `n_pairs` random pairs (two independent draws, as in Guo et al.)."""
    emb = np.asarray(emb, dtype=np.float64)
    replace = len(emb) < n_pairs
    first = rng.choice(len(emb), n_pairs, replace=replace)
    second = rng.choice(len(emb), n_pairs, replace=replace)
    return float(np.linalg.norm(emb[first] - emb[second], axis=1).mean())


def multimodality(emb: np.ndarray, rng: np.random.Generator, n_pairs: int = 10) -> float:
    """(captions, generations, D): mean distance of `n_pairs` random pairs of one caption's generations."""
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 3:
        raise ValueError(f"multimodality needs (captions, generations, D), got {emb.shape}")
    n = emb.shape[1]
    replace = n < n_pairs
    first = np.stack([rng.choice(n, n_pairs, replace=replace) for _ in range(len(emb))])
    second = np.stack([rng.choice(n, n_pairs, replace=replace) for _ in range(len(emb))])
    rows = np.arange(len(emb))[:, None]
    return float(np.linalg.norm(emb[rows, first] - emb[rows, second], axis=-1).mean())


def auc(positive, negative) -> float:
    """Area under the ROC curve of scores: P(a positive scores above a negative), ties half (Mann-Whitney U)."""
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def mean_and_interval(values) -> tuple[float, float]:
    """Mean and 95% interval half-width over repeats: 1.96 * std / sqrt(n) (Guo et al.'s convention)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(1.96 * values.std() / np.sqrt(values.size))
