"""Prompt confidence: how near a prompt's text embedding is to the captions a checkpoint was trained on.

A checkpoint folder may hold `caption_embeddings.safetensors`: the pooled text embeddings of its
distinct training captions ((N, D) float16, unit rows; at most `MAX_ROWS`, else spherical k-means
centroids), the captions themselves and a calibration, all written by

    python -m server.model.confidence --checkpoint DIR --corpus data/corpus

The similarity of a prompt is its largest cosine to any row. Calibration compares two sets
that the model never trained on: held-out corpus captions (captions of val/test clips that no
train clip has: in the data, new wording) and `OUT_OF_DATA_PROMPTS` (activities the corpus does
not have). The threshold maximises the balanced accuracy of "similarity >= threshold means in
the data" over both sets (the middle of the best interval); confidence is piecewise linear in
the similarity: 0 at the out-of-data median, 0.5 at the threshold, 1 at the held-out median.
A prompt is low-confidence when its confidence is below 0.5. Checkpoints without the file load
as before and report no confidence.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

INDEX_FILE = "caption_embeddings.safetensors"
FORMAT = "sopo-caption-index-1"
MAX_ROWS = 4096  # 4096 x 384 float16 = 3.1 MB
MAX_CAPTION_CHARS = 300  # nearest_caption is cut to this (the protocol's limit)

# Activities the corpus has no clip of (checked against the corpus' captions when calibrating:
# a prompt whose words all appear in one training caption is dropped, see `_clearly_absent`).
OUT_OF_DATA_PROMPTS = (
    "a person sits down on a chair", "a person rides a bicycle", "a person swims", "a person plays the violin",
    "someone plays the guitar", "a person plays the piano", "a person types on a keyboard", "a person drives a car",
    "someone rows a boat", "a person skis down a slope", "a person ice skates", "someone surfs a wave",
    "a person brushes their teeth", "someone eats soup with a spoon", "a person drinks from a cup",
    "a person reads a book", "someone talks on the phone", "a person sleeps in bed", "a person juggles three balls",
    "someone shoots a bow and arrow", "a person swings a golf club", "a person rides a horse",
    "someone pushes a shopping cart", "a person mops the floor", "someone knits a scarf", "a person chops vegetables",
    "a person opens a door", "someone sweeps the floor with a broom", "a person washes the dishes",
    "a person paints a wall with a roller", "someone hammers a nail", "a person combs their hair",
    "someone puts on a jacket", "a person ties their shoelaces", "a person plays the drums",
    "someone lifts a barbell over the head", "a person rides a skateboard",
    "someone pours water into a glass", "a person writes on a whiteboard",
)


class ConfidenceError(ValueError):
    """A caption index file is unreadable or belongs to another text encoder; or calibration cannot run."""


@dataclass(frozen=True)
class PromptConfidence:
    confidence: float  # [0, 1]; below 0.5: the prompt is far from the training captions
    similarity: float  # the largest cosine to a training caption (or centroid)
    nearest_caption: str
    low: bool


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class CaptionIndex:
    """Training-caption embeddings of one checkpoint plus the calibration that maps similarity to confidence."""

    embeddings: np.ndarray  # (N, D) float32, unit rows
    captions: list[str]  # N: the caption of each row (a centroid's: its member nearest to it)
    encoder_id: str
    threshold: float  # similarity below this: low confidence (confidence 0.5 here)
    in_anchor: float  # similarity with confidence 1 (median of the held-out captions)
    out_anchor: float  # similarity with confidence 0 (median of the out-of-data prompts)
    calibration: dict = field(default_factory=dict)

    def similarity(self, pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) pooled prompt embeddings -> (B,) largest cosine, (B,) row index of it."""
        sims = _unit_rows(pooled) @ self.embeddings.T  # (B, N)
        best = sims.argmax(axis=1)
        return sims[np.arange(len(best)), best].astype(np.float64), best

    def confidence_of(self, similarity: np.ndarray) -> np.ndarray:
        """Piecewise linear: out_anchor -> 0, threshold -> 0.5, in_anchor -> 1, clipped to [0, 1]."""
        s = np.asarray(similarity, dtype=np.float64)
        lo = 0.5 * (s - self.out_anchor) / max(self.threshold - self.out_anchor, 1e-6)
        hi = 0.5 + 0.5 * (s - self.threshold) / max(self.in_anchor - self.threshold, 1e-6)
        return np.clip(np.where(s < self.threshold, lo, hi), 0.0, 1.0)

    def score(self, pooled: np.ndarray) -> list[PromptConfidence]:
        sims, rows = self.similarity(pooled)
        conf = self.confidence_of(sims)
        return [PromptConfidence(round(float(c), 4), round(float(s), 4), self.captions[r][:MAX_CAPTION_CHARS],
                                 bool(s < self.threshold)) for c, s, r in zip(conf, sims, rows)]

    # --- file ---------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(folder) / INDEX_FILE
        meta = {"format": FORMAT, "encoder": self.encoder_id, "captions": json.dumps(self.captions, ensure_ascii=False),
                "threshold": repr(float(self.threshold)), "in_anchor": repr(float(self.in_anchor)),
                "out_anchor": repr(float(self.out_anchor)), "calibration": json.dumps(self.calibration)}
        tmp = path.with_name(path.name + ".tmp")
        save_file({"embeddings": np.ascontiguousarray(self.embeddings, dtype=np.float16)}, str(tmp), metadata=meta)
        os.replace(tmp, path)
        os.chmod(path, 0o644)  # a bundled file: readable like the checkpoint's others
        return path

    @classmethod
    def load(cls, folder: str | Path, encoder_id: str | None = None) -> "CaptionIndex | None":
        """The folder's index, or None when it has none; ConfidenceError when it is unreadable or of another encoder."""
        path = Path(folder) / INDEX_FILE
        if not path.is_file():
            return None
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                emb = f.get_tensor("embeddings")
            if meta.get("format") != FORMAT:
                raise ConfidenceError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
            captions = json.loads(meta["captions"])
            index = cls(_unit_rows(emb), captions, meta["encoder"], float(meta["threshold"]),
                        float(meta["in_anchor"]), float(meta["out_anchor"]), json.loads(meta.get("calibration", "{}")))
        except (SafetensorError, OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            if isinstance(exc, ConfidenceError):
                raise
            raise ConfidenceError(f"{path}: unreadable caption index ({exc})") from None
        if emb.ndim != 2 or len(captions) != emb.shape[0]:
            raise ConfidenceError(f"{path}: {emb.shape} embeddings for {len(captions)} captions")
        if encoder_id is not None and index.encoder_id != encoder_id:
            raise ConfidenceError(f"{path}: embeddings of text encoder {index.encoder_id!r}, the checkpoint uses {encoder_id!r}")
        return index


# --- building and calibrating ----------------------------------------------------------------------

def spherical_kmeans(x: np.ndarray, k: int, iterations: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) unit rows -> (k, D) unit centroids, (N,) assignment (cosine k-means from a farthest-first start)."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    best = x @ centres[0]
    for _ in range(1, k):  # the row least similar to every centre so far
        centres.append(x[int(best.argmin())])
        best = np.maximum(best, x @ centres[-1])
    c = np.stack(centres)
    for _ in range(iterations):
        assign = (x @ c.T).argmax(axis=1)
        sums = np.zeros_like(c)
        np.add.at(sums, assign, x)
        empty = ~np.isin(np.arange(k), assign)
        sums[empty] = c[empty]
        c = _unit_rows(sums)
    return c, (x @ c.T).argmax(axis=1)


def compress(embeddings: np.ndarray, captions: list[str], max_rows: int) -> tuple[np.ndarray, list[str]]:
    """At most `max_rows` rows: the embeddings as they are, or k-means centroids named by their nearest member."""
    x = _unit_rows(embeddings)
    if len(x) <= max_rows:
        return x, list(captions)
    c, assign = spherical_kmeans(x, max_rows)
    names = []
    for j in range(len(c)):
        members = np.nonzero(assign == j)[0]
        members = members if len(members) else np.arange(len(x))
        names.append(captions[int(members[(x[members] @ c[j]).argmax()])])
    return c, names


def calibrate(in_sims: np.ndarray, out_sims: np.ndarray) -> tuple[float, float, float, dict]:
    """(threshold, in_anchor, out_anchor, report) from the similarities of in-data and out-of-data prompts."""
    a, b = np.asarray(in_sims, np.float64), np.asarray(out_sims, np.float64)
    if a.size == 0 or b.size == 0:
        raise ConfidenceError(f"calibration needs both sets: {a.size} held-out captions, {b.size} out-of-data prompts")
    threshold, score = _best_threshold(a, b)
    in_anchor, out_anchor = float(np.median(a)), float(np.median(b))
    if not out_anchor < threshold < in_anchor:
        raise ConfidenceError(f"held-out captions (median similarity {in_anchor:.3f}) and out-of-data prompts "
                              f"(median {out_anchor:.3f}) do not separate around threshold {threshold:.3f}")
    # 2-fold estimate of how the threshold does on prompts it was not chosen on
    folds = []
    for k in (0, 1):
        t, _ = _best_threshold(a[k::2], b[k::2])
        folds.append(0.5 * ((a[1 - k::2] >= t).mean() + (b[1 - k::2] < t).mean()))
    report = {
        "held_out_captions": int(a.size), "out_of_data_prompts": int(b.size),
        "held_out_percentiles_5_25_50": [round(float(v), 4) for v in np.percentile(a, [5, 25, 50])],
        "out_of_data_percentiles_50_75_95": [round(float(v), 4) for v in np.percentile(b, [50, 75, 95])],
        "held_out_flagged_low": round(float((a < threshold).mean()), 4),
        "out_of_data_passed": round(float((b >= threshold).mean()), 4),
        "balanced_accuracy": round(score, 4), "balanced_accuracy_2fold": round(float(np.mean(folds)), 4),
    }
    return threshold, in_anchor, out_anchor, report


def _best_threshold(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy): the middle of the widest run of best thresholds, tried between
    consecutive observed similarities."""
    cands = np.unique(np.concatenate([a, b]))
    mids = np.concatenate([[cands[0] - 1e-3], (cands[1:] + cands[:-1]) / 2, [cands[-1] + 1e-3]])
    acc = 0.5 * ((a[None, :] >= mids[:, None]).mean(1) + (b[None, :] < mids[:, None]).mean(1))
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    run = max(runs, key=lambda r: mids[r[-1]] - mids[r[0]])
    return float((mids[run[0]] + mids[run[-1]]) / 2), float(acc.max())


def _clearly_absent(prompt: str, train_words: list[set[str]]) -> bool:
    """False when some training caption contains every content word of the prompt."""
    stop = {"a", "an", "the", "person", "someone", "human", "their", "on", "in", "with", "into", "of", "over", "down",
            "up", "three"}
    words = {w for w in prompt.lower().replace(",", " ").split() if w not in stop}
    return not any(words <= caption for caption in train_words)


def encode_texts(texts: Sequence[str], encoder_id: str, encoder=None) -> np.ndarray:
    """(N, D) float32 pooled embeddings with the checkpoint's text encoder (loaded on demand)."""
    from .text_encoder import encode_batched, load_encoder

    if not texts:
        raise ConfidenceError("no texts to encode")
    enc = encoder if encoder is not None else load_encoder(encoder_id, "cpu")
    return encode_batched(enc, list(texts), batch_size=128, max_tokens=1).pooled.numpy().astype(np.float32)


def build_index(checkpoint: str | Path, corpus_path: str | Path, out_of_data: Sequence[str] = OUT_OF_DATA_PROMPTS,
                max_rows: int = MAX_ROWS, encoder=None, held_out: Sequence[str] | None = None,
                log=print) -> CaptionIndex:
    """Embed the distinct training captions of `corpus_path`, calibrate, and return the index (not saved).

    `held_out`: the in-data side of the calibration; default the corpus' held-out captions (those
    of val/test clips that no train clip has).
    """
    from server.data.corpus import Corpus

    from .checkpoint import read_config

    config = read_config(checkpoint)
    encoder_id = config.get("text_encoder") or config["model"]["text_encoder"]
    corpus = Corpus(corpus_path)
    train = sorted({c.text for clip in corpus.clips if clip.split == "train" for c in clip.captions})
    if not train:
        raise ConfidenceError(f"{corpus_path}: no training captions")
    if held_out is None:
        held_out = sorted({c.text for clip in corpus.clips if clip.split != "train" for c in clip.captions} - set(train))
    held_out = list(held_out)
    if not held_out:
        raise ConfidenceError(f"{corpus_path}: no held-out captions (every val/test caption is also a training one) "
                              "to calibrate the in-data side with")
    train_words = [set(t.lower().replace(",", " ").split()) for t in train]
    outside = [p for p in out_of_data if _clearly_absent(p, train_words)]
    log(f"{len(train)} training captions, {len(held_out)} held-out captions, "
        f"{len(outside)}/{len(out_of_data)} out-of-data prompts; encoding with {encoder_id} ...")
    emb = encode_texts(train + held_out + outside, encoder_id, encoder)
    rows, names = compress(emb[:len(train)], train, max_rows)
    index = CaptionIndex(rows, names, encoder_id, 0.0, 1.0, -1.0)
    in_sims, _ = index.similarity(emb[len(train):len(train) + len(held_out)])
    out_sims, _ = index.similarity(emb[len(train) + len(held_out):])
    threshold, in_anchor, out_anchor, report = calibrate(in_sims, out_sims)
    fingerprint = corpus.fingerprint
    index.threshold, index.in_anchor, index.out_anchor = threshold, in_anchor, out_anchor
    index.calibration = {**report, "training_captions": len(train), "rows": int(len(rows)),
                         "compressed": bool(len(rows) < len(train)), "corpus_fingerprint": fingerprint,
                         "checkpoint_corpus_fingerprint": (config.get("corpus") or {}).get("source_fingerprint")
                         or (config.get("corpus") or {}).get("fingerprint"),
                         "out_of_data_used": outside}
    return index


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a checkpoint's training-caption embeddings "
                                     f"({INDEX_FILE}) for the server's prompt confidence.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--corpus", default="data/corpus", help="the corpus the checkpoint was trained on")
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS, help="more captions than this are clustered")
    args = parser.parse_args(argv)
    from .checkpoint import CheckpointError

    try:
        import torch
        torch.set_num_threads(1)
        index = build_index(args.checkpoint, args.corpus, max_rows=args.max_rows,
                            log=lambda *a: print(*a, file=sys.stderr))
        path = index.save(args.checkpoint)
    except (CheckpointError, ConfidenceError, OSError, ValueError) as exc:
        print(f"confidence: {exc}", file=sys.stderr)
        return 2
    cal = index.calibration
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(index.captions)} rows)")
    print(f"threshold {index.threshold:.4f} (confidence 0.5); confidence 1 at {index.in_anchor:.4f} "
          f"(held-out median), 0 at {index.out_anchor:.4f} (out-of-data median)")
    print(json.dumps({k: v for k, v in cal.items() if k != "out_of_data_used"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
