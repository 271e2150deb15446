"""Building blocks shared by the denoisers and the VAE."""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) float positions/timesteps -> (B, dim) sin/cos features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def positional_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed sinusoidal position encodings."""
    return sinusoidal(torch.arange(length, dtype=torch.float32), dim)


class ScalarEmbedding(nn.Module):
    """A scalar (diffusion timestep, motion length) -> d_model through sin/cos features and an MLP."""

    def __init__(self, d_model: int):
        super().__init__()
        self.d_model = d_model
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.SiLU(), nn.Linear(d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(x, self.d_model))


class TextConditioning(nn.Module):
    """Pooled text -> a vector added to the conditioning token; token embeddings -> cross-attention memory.

    Rows with `drop` True get a learned "no text" vector and a one-token null memory, the
    unconditional branch of classifier-free guidance.
    """

    def __init__(self, text_dim: int, d_model: int, use_tokens: bool):
        super().__init__()
        self.use_tokens = use_tokens
        self.pooled = nn.Linear(text_dim, d_model)
        self.tokens = nn.Linear(text_dim, d_model) if use_tokens else None
        self.null_vector = nn.Parameter(torch.zeros(d_model))
        self.null_memory = nn.Parameter(torch.randn(d_model) * 0.02)

    def forward(self, pooled: torch.Tensor, tokens: torch.Tensor | None, token_mask: torch.Tensor | None,
                drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> cond vector (B, d), memory (B, 1 + L, d), memory padding mask (B, 1 + L) True = ignore."""
        B = pooled.shape[0]
        keep = ~drop[:, None]
        vec = torch.where(keep, self.pooled(pooled), self.null_vector.expand(B, -1))
        first = torch.where(keep, vec, self.null_memory.expand(B, -1))[:, None]
        if self.tokens is not None and tokens is not None and tokens.shape[1] > 0:
            mem = torch.cat([first, self.tokens(tokens)], dim=1)
            valid = torch.cat([torch.ones_like(keep), token_mask & keep], dim=1)
        else:
            mem = first
            valid = torch.ones(B, 1, dtype=torch.bool, device=pooled.device)
        return vec, mem, ~valid


class CrossTransformer(nn.Module):
    """Pre-norm transformer: self-attention over a sequence, cross-attention to text memory."""

    def __init__(self, d_model: int, heads: int, ff: int, layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.TransformerDecoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x, padding_mask, memory, memory_padding_mask):
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask=padding_mask, memory_key_padding_mask=memory_padding_mask)
        return self.norm(x)


class SelfTransformer(nn.Module):
    """Pre-norm transformer encoder (the VAE's encoder and decoder)."""

    def __init__(self, d_model: int, heads: int, ff: int, layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x, padding_mask):
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding_mask)
        return self.norm(x)


def patchify(x: torch.Tensor, frame_mask: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, D) frames -> (B, ceil(T / patch), patch * D) patches and their mask (any real frame)."""
    B, T, D = x.shape
    pad = (-T) % patch
    if pad:
        x = nn.functional.pad(x, (0, 0, 0, pad))
        frame_mask = nn.functional.pad(frame_mask, (0, pad))
    x = x * frame_mask[..., None]
    n = (T + pad) // patch
    return x.reshape(B, n, patch * D), frame_mask.reshape(B, n, patch).any(-1)


def unpatchify(h: torch.Tensor, frames: int, patch: int) -> torch.Tensor:
    """(B, n, patch * D) -> (B, frames, D)."""
    B, n, PD = h.shape
    return h.reshape(B, n * patch, PD // patch)[:, :frames]


def patch_mask(frame_mask: torch.Tensor, patch: int) -> torch.Tensor:
    pad = (-frame_mask.shape[1]) % patch
    if pad:
        frame_mask = nn.functional.pad(frame_mask, (0, pad))
    return frame_mask.reshape(frame_mask.shape[0], -1, patch).any(-1)


class TemporalSmoothing(nn.Module):
    """y + conv1d(y) over time (kernel 3), zero at start; padded frames are zeroed first."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, y: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        y = y * frame_mask[..., None]
        return y + self.conv(y.transpose(1, 2)).transpose(1, 2)
