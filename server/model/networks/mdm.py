"""MDM-style denoiser: a transformer over motion frames that predicts the clean features x0.

Sequence = [conditioning token (timestep + pooled text), frame tokens]; every layer also
cross-attends to the caption's token embeddings. Padded frames are masked out as keys.
With `patch_frames` > 1, consecutive frames share one token (faster, coarser).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import CrossTransformer, ScalarEmbedding, TextConditioning, patchify, positional_table, unpatchify


class MDMDenoiser(nn.Module):
    def __init__(self, cfg: ModelConfig, feature_dim: int):
        super().__init__()
        d, p = cfg.d_model, cfg.patch_frames
        self.patch = p
        self.input = nn.Linear(feature_dim * p, d)
        self.register_buffer("positions", positional_table(-(-cfg.max_frames // p) + 1, d), persistent=False)
        self.time = ScalarEmbedding(d)
        self.text = TextConditioning(cfg.text_dim, d, cfg.text_tokens > 0)
        self.transformer = CrossTransformer(d, cfg.heads, cfg.ff, cfg.layers, cfg.dropout)
        self.output = nn.Linear(d, feature_dim * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text_pooled: torch.Tensor, text_tokens: torch.Tensor | None,
                text_mask: torch.Tensor | None, drop: torch.Tensor, frame_mask: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) noisy features, t (B,), frame_mask (B, T) True = real frame -> x0 (B, T, D)."""
        B, T, _ = x.shape
        vec, memory, memory_pad = self.text(text_pooled, text_tokens, text_mask, drop)
        cond = (self.time(t) + vec)[:, None]
        patches, pmask = patchify(x, frame_mask, self.patch)
        n = patches.shape[1]
        seq = torch.cat([cond + self.positions[:1], self.input(patches) + self.positions[1:n + 1]], dim=1)
        pad = torch.cat([torch.zeros(B, 1, dtype=torch.bool, device=x.device), ~pmask], dim=1)
        h = self.transformer(seq, pad, memory, memory_pad)
        return unpatchify(self.output(h[:, 1:]), T, self.patch)
