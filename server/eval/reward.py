"""The reward model SoPo fine-tuning ranks its online samples with (DESIGN.md section 5).

A second text-motion model, trained separately from the evaluator (another seed, the
TMR-like transformer architecture instead of Guo et al.'s conv+GRU, a fixed temperature
and TMR's filtering of near-duplicate texts out of the negatives), so fine-tuning
against it cannot simply game the metrics. Version 2 also trains with hard negatives
(`hard_negatives.py`: the left/right mirror, time reversal, x0.5 and x2 speed, another
style of the same action, wherever they change what the caption says), so that it can
rank a motion that nearly follows its caption below one that does;
`python server/evaluate.py --reward-auc` reports how well.

    rm = RewardModel.load()                       # server/checkpoints/reward
    r = rm.reward(motions, texts)                 # (N,) in [0, 1]: cos(motion, text) / 2 + 0.5
    s = rm.similarity(motions_a, motions_b)       # (N,) in [0, 1]: cos(motion, motion) / 2 + 0.5

`motions` is a list of `Motion`, a list of (rotations, translation) pairs, or a batch
`(rotations (N, T, 22, 4), translation (N, T, 3))` optionally with `lengths (N,)`.
`texts` is a list of N strings, one string for all, or (N, 384) sentence embeddings.
Inside a training loop use the torch path (no numpy round trip, stays on the device):
`reward_torch(rotations, translation, lengths, texts)` and `similarity_torch(...)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from server.eval.evaluator import DEFAULT_REWARD_DIR, TextMotionModel
from server.model.text_embeddings import open_cache, sentence_embeddings
from server.model.text_encoder import TextCache


def _to_unit(cos):
    return cos * 0.5 + 0.5


class RewardModel:
    """r(x, c) and sim(x, x') in [0, 1] from a trained TextMotionModel (no gradients)."""

    def __init__(self, model: TextMotionModel, text_cache: TextCache | None = None, encoder=None):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.text_cache = text_cache if text_cache is not None else open_cache(None, model.cfg.text_encoder)
        self._encoder = encoder

    @classmethod
    def load(cls, path: str | Path = DEFAULT_REWARD_DIR, device: str | torch.device | None = None,
             text_cache: str | Path | TextCache | None = None) -> "RewardModel":
        """Load a checkpoint folder. Texts are looked up in `text_cache` (a `TextCache` or its file;
        default: the encoder's default cache file) and encoded with MiniLM only when missing."""
        model = TextMotionModel.load(path, device)
        return cls(model, open_cache(text_cache, model.cfg.text_encoder))

    @property
    def device(self) -> torch.device:
        return self.model.device

    # --- embeddings ---------------------------------------------------------------------
    def _sentence_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        sent = sentence_embeddings(texts, self.text_cache, self._encoder, self.model.cfg.text_encoder)
        return torch.as_tensor(sent, device=self.device)

    @torch.no_grad()
    def embed_texts(self, texts, n: int | None = None) -> torch.Tensor:
        """str | list[str] | (N, text_dim) array/tensor -> (N, E) unit vectors on the model's device."""
        if isinstance(texts, str):
            texts = [texts] * (n or 1)
        if isinstance(texts, (np.ndarray, torch.Tensor)):
            sent = torch.as_tensor(texts, dtype=torch.float32, device=self.device)
        else:
            sent = self._sentence_embeddings(list(texts))
        return self.model.encode_text_embeddings(sent)

    @torch.no_grad()
    def embed_motions_torch(self, rotations: torch.Tensor, translation: torch.Tensor,
                            lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 22, 4), (B, T, 3), lengths (B,) -> (B, E) unit vectors on the model's device."""
        return self.model.encode_wire(rotations, translation, lengths)

    def _embed_motions(self, motions) -> torch.Tensor:
        if isinstance(motions, tuple) and len(motions) in (2, 3) and np.ndim(motions[0]) == 4:
            rot, trans = (torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x) for x in motions[:2])
            lengths = motions[2] if len(motions) == 3 else None
            out = []
            for s in range(0, rot.shape[0], 256):
                ln = None if lengths is None else torch.as_tensor(lengths)[s: s + 256]
                out.append(self.embed_motions_torch(rot[s: s + 256], trans[s: s + 256], ln))
            return torch.cat(out)
        return torch.as_tensor(self.model.embed_motions(motions), device=self.device)

    # --- scores -------------------------------------------------------------------------
    @torch.no_grad()
    def reward_torch(self, rotations: torch.Tensor, translation: torch.Tensor, lengths: torch.Tensor | None,
                     texts) -> torch.Tensor:
        """Batched r(x, c) on the model's device: (B,) in [0, 1]."""
        m = self.embed_motions_torch(rotations, translation, lengths)
        t = self.embed_texts(texts, n=m.shape[0])
        return _to_unit((m * t).sum(-1)).clamp(0.0, 1.0)

    @torch.no_grad()
    def similarity_torch(self, rotations_a, translation_a, lengths_a, rotations_b, translation_b,
                         lengths_b) -> torch.Tensor:
        """Batched sim(x_a, x_b) for aligned pairs (broadcasts a batch of 1): (B,) in [0, 1]."""
        a = self.embed_motions_torch(rotations_a, translation_a, lengths_a)
        b = self.embed_motions_torch(rotations_b, translation_b, lengths_b)
        return _to_unit((a * b).sum(-1)).clamp(0.0, 1.0)

    def reward(self, motions, texts) -> np.ndarray:
        """(N,) float32 in [0, 1]: cos(e_motion, e_text) / 2 + 0.5 for each motion and its text."""
        m = self._embed_motions(motions)
        t = self.embed_texts(texts, n=m.shape[0])
        if t.shape[0] != m.shape[0]:
            raise ValueError(f"{m.shape[0]} motions but {t.shape[0]} texts")
        return _to_unit((m * t).sum(-1)).clamp(0.0, 1.0).float().cpu().numpy()

    def similarity(self, motions_a, motions_b) -> np.ndarray:
        """(N,) float32 in [0, 1]: cos(e_a, e_b) / 2 + 0.5 for aligned pairs (a side of 1 broadcasts)."""
        a, b = self._embed_motions(motions_a), self._embed_motions(motions_b)
        if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
            raise ValueError(f"{a.shape[0]} vs {b.shape[0]} motions")
        return _to_unit((a * b).sum(-1)).clamp(0.0, 1.0).float().cpu().numpy()

    def similarity_matrix(self, motions_a, motions_b) -> np.ndarray:
        """(N, M) float32 in [0, 1]: every motion of a against every motion of b."""
        a, b = self._embed_motions(motions_a), self._embed_motions(motions_b)
        return _to_unit(a @ b.T).clamp(0.0, 1.0).float().cpu().numpy()
