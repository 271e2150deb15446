"""`TextToMotion`: one family's networks plus the feature statistics they were trained with.

MDM family: `denoiser` works on normalised frame features (B, T, D).
MLD family: `vae` maps normalised features to latents and back; `denoiser` works on latents
divided by `latent_scale` (so they have unit spread, as the noise schedule assumes).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..features import FeatureLayout
from .mdm import MDMDenoiser
from .mld import LatentDenoiser
from .vae import MotionVAE


class TextToMotion(nn.Module):
    def __init__(self, cfg: ModelConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 latent_scale: float = 1.0):
        super().__init__()
        self.cfg = cfg.validate()
        self.layout = FeatureLayout(redundant=cfg.redundant_features)
        D = self.layout.dim
        mean = np.zeros(D, np.float32) if mean is None else np.asarray(mean, np.float32)
        std = np.ones(D, np.float32) if std is None else np.asarray(std, np.float32)
        if mean.shape != (D,) or std.shape != (D,):
            raise ValueError(f"feature stats must have shape ({D},), got {mean.shape} and {std.shape}")
        self.register_buffer("feature_mean", torch.from_numpy(mean.copy()), persistent=False)
        self.register_buffer("feature_std", torch.from_numpy(std.copy()), persistent=False)
        self.latent_scale = float(latent_scale)
        if cfg.family == "mld":
            self.vae = MotionVAE(cfg, D)
            self.denoiser = LatentDenoiser(cfg)
        else:
            self.vae = None
            self.denoiser = MDMDenoiser(cfg, D)

    @property
    def feature_dim(self) -> int:
        return self.layout.dim

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean) / self.feature_std

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.feature_std + self.feature_mean

    def diffusion_shape(self, batch: int, frames: int) -> tuple[int, int, int]:
        """Shape of the diffused tensor for `batch` motions of up to `frames` frames."""
        if self.cfg.family == "mld":
            return (batch, self.cfg.latent_tokens, self.cfg.latent_dim)
        return (batch, frames, self.feature_dim)

    def to_diffusion_space(self, x: torch.Tensor, frame_mask: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Normalised features -> what the denoiser diffuses (the features themselves, or scaled latents)."""
        if self.vae is None:
            return x * frame_mask[..., None]
        mean, logvar = self.vae.encode(x, frame_mask)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if sample else mean
        return z / self.latent_scale

    def from_diffusion_space(self, x0: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """The denoiser's clean output -> normalised features (B, T, D)."""
        if self.vae is None:
            return x0
        return self.vae.decode(x0 * self.latent_scale, frame_mask)

    def parameter_counts(self) -> dict[str, int]:
        counts = {"denoiser": sum(p.numel() for p in self.denoiser.parameters())}
        if self.vae is not None:
            counts["vae"] = sum(p.numel() for p in self.vae.parameters())
        counts["total"] = sum(counts.values())
        return counts


def build_model(cfg: ModelConfig, mean=None, std=None, latent_scale: float = 1.0) -> TextToMotion:
    return TextToMotion(cfg, mean, std, latent_scale)
