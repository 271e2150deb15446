"""Training batches: the corpus's features and caption embeddings held on the training device.

No DataLoader: every clip's features sit in one (frames, D) tensor (on the GPU when training
there), and a batch is random clips, random crops (variable length, padded, with a mask) and a
random caption per clip (paraphrase sampling), all drawn with tensor ops from a seeded
generator. Knows nothing of models.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from server.data.corpus import Corpus
from .features import FeatureLayout, motion_to_features
from .text_encoder import TextCache, TextEmbeddings


@dataclass
class Batch:
    x: torch.Tensor  # (B, T, D) normalised features, zero on padded frames
    frame_mask: torch.Tensor  # (B, T) bool, True = real frame
    lengths: torch.Tensor  # (B,) int64
    captions: torch.Tensor  # (B,) int64 rows of the TextTable


def _features_of(job) -> list[np.ndarray]:
    motions, layout = job
    return [motion_to_features(m, layout) for m in motions]


def corpus_features(corpus: Corpus, layout: FeatureLayout, cache_dir: Path | None = None,
                    log=print, workers: int = 1) -> list[np.ndarray]:
    """Features of every clip (unnormalised, float32), cached on disk by corpus fingerprint.

    `workers` > 1 computes them in that many processes (0 = one per CPU, at most 16).
    """
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{corpus.fingerprint}-{layout.dim}-{layout.redundant}-v1".encode()).hexdigest()[:16]
        path = Path(cache_dir) / "features" / f"{key}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                flat, offsets = data["features"], data["offsets"]
            if len(offsets) == len(corpus) + 1:
                return [flat[offsets[i]:offsets[i + 1]] for i in range(len(corpus))]
    workers = min(workers or os.cpu_count() or 1, 16, max(1, len(corpus) // 64))
    log(f"computing features of {len(corpus)} clips ({workers} processes) ...")
    if workers > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        chunks = np.array_split(np.arange(len(corpus)), workers * 4)
        jobs = [([corpus.motion(int(i)) for i in chunk], layout) for chunk in chunks]
        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            feats = [f for part in pool.map(_features_of, jobs) for f in part]
    else:
        feats = [motion_to_features(corpus.motion(i), layout) for i in range(len(corpus))]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in feats])]).astype(np.int64)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, features=np.concatenate(feats) if feats else np.zeros((0, layout.dim), np.float32),
                 offsets=offsets)
        tmp.replace(path)
    return feats


def clip_captions(corpus: Corpus, sources: str = "") -> list[list[str]]:
    """Caption texts per clip, optionally only those whose source is in the comma-separated list."""
    keep = {s.strip() for s in sources.split(",") if s.strip()}
    return [[c.text for c in clip.captions if not keep or c.source in keep] for clip in corpus.clips]


class TextTable:
    """All captions' embeddings as tensors on one device; rows are looked up by index."""

    def __init__(self, cache: TextCache, texts: list[str], max_tokens: int, device, dtype=torch.float16):
        self.texts = list(texts)
        self.row = {t: i for i, t in enumerate(self.texts)}
        emb = cache.lookup(self.texts, max_tokens)
        self.pooled = emb.pooled.to(device, torch.float32)
        self.tokens = emb.tokens.to(device, dtype)
        self.lengths = emb.lengths.to(device)

    def __call__(self, rows: torch.Tensor) -> TextEmbeddings:
        return TextEmbeddings(self.pooled[rows], self.tokens[rows].float(), self.lengths[rows])


class MotionBank:
    """Normalised features of a set of clips, concatenated on `device`, with their caption rows."""

    def __init__(self, features: list[np.ndarray], captions: list[list[int]], mean: np.ndarray, std: np.ndarray,
                 device, pin_memory: bool = False):
        keep = [i for i, c in enumerate(captions) if len(c) > 0 and len(features[i]) > 1]
        if not keep:
            raise ValueError("no clips with captions to train on")
        flat = np.concatenate([features[i] for i in keep]).astype(np.float32)
        flat = (flat - mean) / std
        t = torch.from_numpy(flat)
        if pin_memory and torch.cuda.is_available() and torch.device(device).type == "cpu":
            t = t.pin_memory()
        self.features = t.to(device)
        self.device = torch.device(device)
        lengths = np.array([len(features[i]) for i in keep], dtype=np.int64)
        self.clip_start = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]])).to(device)
        self.clip_len = torch.from_numpy(lengths).to(device)
        counts = np.array([len(captions[i]) for i in keep], dtype=np.int64)
        self.cap_start = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]])).to(device)
        self.cap_count = torch.from_numpy(counts).to(device)
        self.cap_rows = torch.tensor([r for i in keep for r in captions[i]], dtype=torch.int64, device=device)
        self.num_clips = len(keep)
        self.num_frames = int(lengths.sum())

    def sample(self, batch_size: int, max_frames: int, min_frames: int, crop_min_ratio: float,
               generator: torch.Generator, out_device=None) -> Batch:
        """Random clips, random crops of random length, a random caption each."""
        dev = self.device
        g = generator

        def uniform(n):
            return torch.rand(n, device=dev, generator=g)

        idx = torch.randint(0, self.num_clips, (batch_size,), device=dev, generator=g)
        L = self.clip_len[idx]
        hi = L.clamp(max=max_frames)
        lo = torch.maximum(torch.full_like(hi, min_frames), torch.ceil(L * crop_min_ratio).long()).minimum(hi)
        crop = (lo + (uniform(batch_size) * (hi - lo + 1)).long()).minimum(hi)
        offset = (uniform(batch_size) * (L - crop + 1)).long().minimum(L - crop)
        start = self.clip_start[idx] + offset
        T = int(crop.max())
        ar = torch.arange(T, device=dev)
        mask = ar[None] < crop[:, None]
        frames = torch.where(mask, start[:, None] + ar[None], start[:, None])
        x = self.features[frames] * mask[..., None]
        cap = self.cap_rows[self.cap_start[idx] + (uniform(batch_size) * self.cap_count[idx]).long().minimum(self.cap_count[idx] - 1)]
        batch = Batch(x, mask, crop, cap)
        if out_device is not None and torch.device(out_device) != dev:
            batch = Batch(*(v.to(out_device, non_blocking=True) for v in (batch.x, batch.frame_mask, batch.lengths, batch.captions)))
        return batch


def describe(corpus: Corpus) -> dict:
    """Training-data facts recorded in checkpoints."""
    train = [corpus.clips[i] for i in corpus.indices("train")]
    info = {}
    splits = corpus.path / "splits.json"
    if splits.is_file():
        info = json.loads(splits.read_text()).get("info", {}) or {}
    return {"fingerprint": corpus.fingerprint, "path": str(corpus.path),
            "source_fingerprint": info.get("source_fingerprint", corpus.fingerprint),
            "licences": sorted({c.licence for c in train}),
            "commercial_ok": all(c.commercial_ok for c in train),
            "train_clips": len(train),
            "train_frames": int(sum(c.frames for c in train))}
