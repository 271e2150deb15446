"""Helpers for the SoPo fine-tuning tests: a tiny reward model and evaluator, a picks DB written directly."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

TINY_TEXT_MOTION = {"hidden": 32, "embed_dim": 32, "layers": 1, "heads": 2, "max_frames": 48, "dropout": 0.0}


def text_cache_file(cache_dir: Path) -> Path:
    """The text cache the tiny checkpoint fixtures write (all tiny-corpus captions)."""
    from server.model.text_encoder import default_cache_path

    return default_cache_path("all-MiniLM-L6-v2", cache_dir)


def train_tiny_text_motion(corpus: Path, cache_dir: Path, out: Path, kind: str) -> Path:
    from server.eval.contrastive import TrainConfig, train
    from server.model.text_embeddings import open_cache

    cfg = TrainConfig(kind=kind, epochs=3, batch_size=8, lr=2e-3, warmup_steps=2, model=dict(TINY_TEXT_MOTION))
    train(corpus, out, cfg, text_cache=open_cache(text_cache_file(cache_dir)), device="cpu", progress=False,
          log=lambda s: None)
    return out


def store_result(store, prompt: str, motions: list, model_id: str = "tiny-mld", family: str | None = "mld") -> str:
    """Save n candidate Motions as one result, as the server would; returns the request id."""
    rid = uuid.uuid4().hex
    rot = np.stack([m.rotations for m in motions]).astype(np.float32)
    trans = np.stack([m.translation for m in motions]).astype(np.float32)
    params = {"n": len(motions), "seconds": len(rot[0]) / 20.0, "seed": 1, "guidance": 3.0, "steps": 4}
    if family:
        params["family"] = family
    store.save_result(rid, prompt, params, model_id, 1, rot, trans, 20.0)
    return rid
