"""MLD-style motion VAE: a variable-length motion <-> a few latent tokens.

Frames are grouped in patches of `patch_frames` (4 = 0.2 s), so both transformers run over
T / 4 tokens (the decoder is most of the sampling cost on a CPU).
Encoder: [K distribution query tokens, patch tokens] through a transformer; the query
outputs give mean and log-variance of K latent tokens. Decoder: [K latent tokens (+ the
motion length), patch queries (sinusoidal positions)] through a transformer; each patch
output gives its frames' features, then a residual temporal convolution smooths the seams.
Padded frames/patches are masked out as keys in both.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .layers import (ScalarEmbedding, SelfTransformer, TemporalSmoothing, patch_mask, patchify, positional_table,
                     unpatchify)


class MotionVAE(nn.Module):
    def __init__(self, cfg: ModelConfig, feature_dim: int):
        super().__init__()
        d, K, p = cfg.vae_d_model, cfg.latent_tokens, cfg.patch_frames
        self.latent_tokens, self.latent_dim, self.patch = K, cfg.latent_dim, p
        self.register_buffer("positions", positional_table(-(-cfg.max_frames // p), d), persistent=False)
        # encoder
        self.enc_input = nn.Linear(feature_dim * p, d)
        self.queries = nn.Parameter(torch.randn(K, d) * 0.02)
        self.encoder = SelfTransformer(d, cfg.vae_heads, cfg.vae_ff, cfg.vae_layers, cfg.vae_dropout)
        self.to_dist = nn.Linear(d, 2 * cfg.latent_dim)
        # decoder
        self.from_latent = nn.Linear(cfg.latent_dim, d)
        self.latent_pos = nn.Parameter(torch.randn(K, d) * 0.02)
        self.length = ScalarEmbedding(d)
        self.frame_query = nn.Parameter(torch.zeros(d))
        self.decoder = SelfTransformer(d, cfg.vae_heads, cfg.vae_ff, cfg.vae_layers, cfg.vae_dropout)
        self.dec_output = nn.Linear(d, feature_dim * p)
        self.smooth = TemporalSmoothing(feature_dim)

    def encode(self, x: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D) normalised features -> mean, logvar (B, K, latent_dim)."""
        B = x.shape[0]
        K = self.latent_tokens
        patches, pmask = patchify(x, frame_mask, self.patch)
        n = patches.shape[1]
        seq = torch.cat([self.queries.expand(B, -1, -1), self.enc_input(patches) + self.positions[:n]], dim=1)
        pad = torch.cat([torch.zeros(B, K, dtype=torch.bool, device=x.device), ~pmask], dim=1)
        h = self.encoder(seq, pad)[:, :K]
        mean, logvar = self.to_dist(h).chunk(2, dim=-1)
        return mean, logvar.clamp(-20.0, 10.0)

    def decode(self, z: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """z (B, K, latent_dim), frame_mask (B, T) -> (B, T, D) normalised features."""
        B, T = frame_mask.shape
        K = self.latent_tokens
        pmask = patch_mask(frame_mask, self.patch)
        n = pmask.shape[1]
        lengths = frame_mask.sum(-1).float()
        lat = self.from_latent(z) + self.latent_pos + self.length(lengths)[:, None]
        queries = (self.frame_query + self.positions[:n]).expand(B, -1, -1)
        pad = torch.cat([torch.zeros(B, K, dtype=torch.bool, device=z.device), ~pmask], dim=1)
        h = self.decoder(torch.cat([lat, queries], dim=1), pad)
        y = unpatchify(self.dec_output(h[:, K:]), T, self.patch)
        return self.smooth(y, frame_mask)

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor, sample: bool = True):
        """-> reconstruction (B, T, D), mean, logvar."""
        mean, logvar = self.encode(x, frame_mask)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        return self.decode(z, frame_mask), mean, logvar
