"""MLD-style latent denoiser: a small transformer over the VAE's few latent tokens.

Sequence = [conditioning token (timestep + motion length + pooled text), latent tokens];
each layer cross-attends to the caption's token embeddings. Predicts the clean latent z0.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import CrossTransformer, ScalarEmbedding, TextConditioning


class LatentDenoiser(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model
        self.input = nn.Linear(cfg.latent_dim, d)
        self.token_pos = nn.Parameter(torch.randn(cfg.latent_tokens + 1, d) * 0.02)
        self.time = ScalarEmbedding(d)
        self.length = ScalarEmbedding(d)
        self.text = TextConditioning(cfg.text_dim, d, cfg.text_tokens > 0)
        self.transformer = CrossTransformer(d, cfg.heads, cfg.ff, cfg.layers, cfg.dropout)
        self.output = nn.Linear(d, cfg.latent_dim)

    def forward(self, z: torch.Tensor, t: torch.Tensor, text_pooled: torch.Tensor, text_tokens: torch.Tensor | None,
                text_mask: torch.Tensor | None, drop: torch.Tensor, frame_mask: torch.Tensor | None,
                lengths: torch.Tensor) -> torch.Tensor:
        """z (B, K, latent_dim) noisy latents, t (B,), lengths (B,) frames -> z0 (B, K, latent_dim)."""
        vec, memory, memory_pad = self.text(text_pooled, text_tokens, text_mask, drop)
        cond = (self.time(t) + self.length(lengths.float()) + vec)[:, None]
        seq = torch.cat([cond, self.input(z)], dim=1) + self.token_pos
        h = self.transformer(seq, None, memory, memory_pad)
        return self.output(h[:, 1:])
