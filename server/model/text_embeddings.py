"""Sentence embeddings for the evaluator and the reward model, via the shared text encoder.

The evaluator and the reward model read frozen pooled sentence embeddings (all-MiniLM-L6-v2,
384-d) from `server.model.text_encoder` and learn their own text heads on top. Lookups go through
its `TextCache` (one safetensors file per encoder, default `data/cache/text/<id>.safetensors`),
so a machine without the MiniLM weights (the GPU box) trains and scores from a cache file made
where they are installed:

    python server/model/text_encoder.py --corpus data/corpus
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from server.model.text_encoder import DEFAULT_ENCODER, TextCache

DEFAULT_DIM = 384


def open_cache(path: str | Path | TextCache | None = None, encoder_id: str = DEFAULT_ENCODER) -> TextCache:
    """A `TextCache` object as is, or the cache file at `path` (default: the encoder's default file)."""
    if isinstance(path, TextCache):
        return path
    return TextCache(encoder_id, path)


def sentence_embeddings(texts: Sequence[str], cache: TextCache | None = None, encoder=None,
                        encoder_id: str = DEFAULT_ENCODER, chunk: int = 1024) -> np.ndarray:
    """(N, D) float32 pooled embeddings: cached rows, the rest encoded (the encoder loads on demand)."""
    texts = list(texts)
    cache = cache if cache is not None else open_cache(None, encoder_id)
    cache.ensure(texts, encoder)
    if not texts:
        return np.zeros((0, DEFAULT_DIM), np.float32)
    return np.concatenate([cache.lookup(texts[s: s + chunk], max_tokens=1).pooled.numpy()
                           for s in range(0, len(texts), chunk)]).astype(np.float32)
