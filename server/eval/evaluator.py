"""Text-motion embedding models for metrics (the evaluator) and for SoPo (the reward model).

Two architectures, both mapping into one L2-normalised space of `embed_dim`:
- "convgru" (the evaluator, after Guo et al. 2022): a strided 1D-conv movement encoder
  (time / 4) feeding a bidirectional GRU; text: an MLP on frozen sentence embeddings.
- "transformer" (the reward model, after TMR): a transformer encoder over frame pairs
  with a learned summary token; text: a residual MLP on frozen sentence embeddings.

Both train contrastively (`contrastive.py`) on train-half wording only; the reward model also
with hard negatives (`hard_negatives.py`). Motions enter in the wire format and go through `motion_repr` (FK joint positions,
heading-normalised), then a per-dimension normalisation whose statistics are saved with the
model. A checkpoint is a folder with `model.safetensors` (weights + normalisation) and
`config.json` (`TextMotionConfig` plus training metadata). Never pickle.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from server.eval import motion_repr
from server.model.text_embeddings import DEFAULT_DIM, DEFAULT_ENCODER, sentence_embeddings
from shared.skeleton import FPS

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EVALUATOR_DIR = REPO_ROOT / "server" / "checkpoints" / "evaluator"
DEFAULT_REWARD_DIR = REPO_ROOT / "server" / "checkpoints" / "reward"


@dataclass
class TextMotionConfig:
    arch: str = "convgru"  # "convgru" | "transformer"
    embed_dim: int = 256
    hidden: int = 256  # conv/GRU width, or transformer width
    layers: int = 4  # transformer layers (convgru: GRU layers = 1)
    heads: int = 4
    patch: int = 4  # transformer: frames per token
    dropout: float = 0.1
    max_frames: int = 200  # longer motions are cropped (training: random, evaluation: centred)
    text_dim: int = DEFAULT_DIM
    text_encoder: str = DEFAULT_ENCODER  # id in server.model.text_encoder; its pooled embeddings
    feature_dim: int = motion_repr.FEATURE_DIM
    # training objective
    temperature: float = 0.07  # initial temperature (learnable when learn_temperature)
    learn_temperature: bool = True
    negative_filter: float | None = None  # mask negatives whose text cos-similarity exceeds this (TMR)

    @staticmethod
    def from_dict(obj: dict) -> "TextMotionConfig":
        known = {f for f in TextMotionConfig.__dataclass_fields__}
        unknown = set(obj) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return TextMotionConfig(**obj)


# Small on purpose: ~4 h of distinct motion (DESIGN.md section 7), and CPU training must stay possible.
EVALUATOR_CONFIG = TextMotionConfig(arch="convgru", hidden=128, embed_dim=128, temperature=0.07,
                                    learn_temperature=True, negative_filter=None)
REWARD_CONFIG = TextMotionConfig(arch="transformer", hidden=128, layers=3, heads=4, patch=4, embed_dim=128,
                                 temperature=0.1, learn_temperature=False, negative_filter=0.9)


# --- motion encoders -------------------------------------------------------------------

class ConvGRUMotionEncoder(nn.Module):
    """Guo et al.'s movement encoder (two stride-2 convs) + bidirectional GRU co-embedding."""

    def __init__(self, cfg: TextMotionConfig):
        super().__init__()
        h = cfg.hidden
        self.conv1 = nn.Sequential(nn.Conv1d(cfg.feature_dim, h, 4, 2, 1), nn.Dropout(cfg.dropout), nn.LeakyReLU(0.2))
        self.conv2 = nn.Sequential(nn.Conv1d(h, h, 4, 2, 1), nn.Dropout(cfg.dropout), nn.LeakyReLU(0.2))
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * h, h), nn.LayerNorm(h), nn.LeakyReLU(0.2), nn.Linear(h, cfg.embed_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # each stride-2 conv keeps floor(L / 2) valid steps; zeroing the rest makes padding invisible
        half = torch.div(lengths, 2, rounding_mode="floor")
        y = self.conv1(x.transpose(1, 2))
        y = y * (torch.arange(y.shape[-1], device=y.device)[None, :] < half[:, None])[:, None, :]
        y = self.conv2(y).transpose(1, 2)  # (B, T', h)
        short = torch.div(half, 2, rounding_mode="floor").clamp(1, y.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(y, short.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.gru(packed)  # (2, B, h)
        return self.out(torch.cat([hidden[0], hidden[1]], dim=-1))


class TransformerMotionEncoder(nn.Module):
    """TMR-style: groups of `patch` frames -> tokens, a learned summary token, pre-norm transformer encoder."""

    def __init__(self, cfg: TextMotionConfig):
        super().__init__()
        d = cfg.hidden
        self.patch = cfg.patch
        self.inp = nn.Linear(cfg.patch * cfg.feature_dim, d)
        self.summary = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, cfg.max_frames // cfg.patch + 2, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.embed_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        p = self.patch
        if t % p:  # zero frames (as the padding) up to a whole token
            x = torch.cat([x, torch.zeros(b, p - t % p, c, dtype=x.dtype, device=x.device)], dim=1)
        tokens = self.inp(x.reshape(b, -1, p * c))  # (B, ceil(T / p), d)
        n = tokens.shape[1]
        tokens = torch.cat([self.summary.expand(b, 1, -1), tokens], dim=1) + self.pos[:, : n + 1]
        valid = torch.arange(n, device=x.device)[None, :] < torch.div(lengths + p - 1, p, rounding_mode="floor")[:, None]
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), ~valid], dim=1)
        y = self.encoder(tokens, src_key_padding_mask=pad)
        return self.out(self.norm(y[:, 0]))


# --- text heads --------------------------------------------------------------------------

class MLPTextHead(nn.Module):
    def __init__(self, cfg: TextMotionConfig):
        super().__init__()
        h = 2 * cfg.hidden
        self.net = nn.Sequential(nn.Linear(cfg.text_dim, h), nn.LayerNorm(h), nn.LeakyReLU(0.2), nn.Dropout(cfg.dropout),
                                 nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, cfg.embed_dim))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.net(e)


class ResidualTextHead(nn.Module):
    def __init__(self, cfg: TextMotionConfig):
        super().__init__()
        d = cfg.hidden
        self.inp = nn.Linear(cfg.text_dim, d)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(2 * d, d))
            for _ in range(2))
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.embed_dim))

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        h = self.inp(e)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


# --- the model -----------------------------------------------------------------------------

def _as_clip_list(motions) -> list[tuple[np.ndarray, np.ndarray]]:
    """list[Motion] | list[(rotations, translation)] -> list of (T, 22, 4), (T, 3) arrays (20 fps)."""
    out = []
    for m in motions:
        if hasattr(m, "rotations"):
            if abs(float(getattr(m, "fps", FPS)) - FPS) > 1e-6:
                raise ValueError(f"motions must be at {FPS} fps (resample first), got {m.fps}")
            out.append((np.asarray(m.rotations), np.asarray(m.translation)))
        else:
            r, t = m
            out.append((np.asarray(r), np.asarray(t)))
    return out


class TextMotionModel(nn.Module):
    """Motion and text encoders into one unit-sphere embedding space, plus feature normalisation."""

    def __init__(self, cfg: TextMotionConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.arch == "convgru":
            self.motion_encoder: nn.Module = ConvGRUMotionEncoder(cfg)
            self.text_head: nn.Module = MLPTextHead(cfg)
        elif cfg.arch == "transformer":
            self.motion_encoder = TransformerMotionEncoder(cfg)
            self.text_head = ResidualTextHead(cfg)
        else:
            raise ValueError(f"unknown arch {cfg.arch!r} (expected 'convgru' or 'transformer')")
        self.log_inv_temperature = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)),
                                                requires_grad=cfg.learn_temperature)
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feature_std", torch.ones(cfg.feature_dim))
        self.meta: dict = {}  # training metadata, saved in config.json

    @property
    def device(self) -> torch.device:
        return self.feature_mean.device

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-2))

    # embeddings from prepared inputs ------------------------------------------------------
    def encode_features(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, 131) raw motion_repr features -> (B, E) unit vectors."""
        x = (feats - self.feature_mean) / self.feature_std
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        x = x * valid[..., None]
        return F.normalize(self.motion_encoder(x, lengths.to(x.device)), dim=-1)

    def encode_text_embeddings(self, text_emb: torch.Tensor) -> torch.Tensor:
        """(B, text_dim) sentence embeddings -> (B, E) unit vectors."""
        return F.normalize(self.text_head(text_emb.to(self.device, torch.float32)), dim=-1)

    def encode_wire(self, rotations: torch.Tensor, translation: torch.Tensor,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Batched torch path: (B, T, 22, 4), (B, T, 3) (+ lengths) -> (B, E). Crops to the centred max_frames."""
        b, t = rotations.shape[:2]
        lengths = torch.full((b,), t, dtype=torch.long) if lengths is None else torch.as_tensor(lengths).long().cpu()
        if int(lengths.min()) < motion_repr.MIN_FRAMES:
            raise ValueError(f"motions need at least {motion_repr.MIN_FRAMES} frames")
        if int(lengths.max()) > self.cfg.max_frames or t > self.cfg.max_frames:
            starts = torch.clamp((lengths - self.cfg.max_frames) // 2, min=0)
            idx = starts[:, None] + torch.arange(min(t, self.cfg.max_frames))[None, :]
            idx = torch.minimum(idx, (lengths - 1)[:, None]).to(rotations.device)
            rotations = torch.gather(rotations, 1, idx[:, :, None, None].expand(-1, -1, *rotations.shape[2:]))
            translation = torch.gather(translation, 1, idx[:, :, None].expand(-1, -1, 3))
            lengths = lengths.clamp(max=self.cfg.max_frames)
        dev = self.device
        feats, flen = motion_repr.features(rotations.to(dev, torch.float32), translation.to(dev, torch.float32),
                                           lengths.to(dev))
        return self.encode_features(feats, flen)

    # numpy conveniences --------------------------------------------------------------------
    @torch.no_grad()
    def embed_motions(self, motions, batch_size: int = 256) -> np.ndarray:
        """list[Motion] or list[(rotations, translation)] of any lengths -> (N, E) float32."""
        clips = _as_clip_list(motions)
        was_training = self.training
        self.eval()
        out = []
        order = np.argsort([len(r) for r, _ in clips])  # similar lengths together: less padding
        for s in range(0, len(clips), batch_size):
            chunk = [clips[i] for i in order[s: s + batch_size]]
            crops = [motion_repr.crop_window(len(r), self.cfg.max_frames) for r, _ in chunk]
            rots = [torch.as_tensor(r[a:b], dtype=torch.float32) for (r, _), (a, b) in zip(chunk, crops)]
            trans = [torch.as_tensor(t[a:b], dtype=torch.float32) for (_, t), (a, b) in zip(chunk, crops)]
            lengths = torch.tensor([len(r) for r in rots])
            rots = nn.utils.rnn.pad_sequence(rots, batch_first=True)
            trans = nn.utils.rnn.pad_sequence(trans, batch_first=True)
            out.append(self.encode_wire(rots, trans, lengths).float().cpu())
        self.train(was_training)
        emb = torch.cat(out).numpy() if out else np.zeros((0, self.cfg.embed_dim), np.float32)
        result = np.empty_like(emb)
        result[order] = emb
        return result

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str] | np.ndarray, cache=None, encoder=None) -> np.ndarray:
        """Texts (or (N, text_dim) sentence embeddings) -> (N, E) float32.

        `cache`: a `server.model.text_encoder.TextCache` (default: the encoder's default cache file);
        texts missing from it are encoded with the encoder, loaded on demand.
        """
        if isinstance(texts, np.ndarray) and texts.ndim == 2:
            sent = texts
        else:
            sent = sentence_embeddings(list(texts), cache, encoder, self.cfg.text_encoder)
        was_training = self.training
        self.eval()
        out = self.encode_text_embeddings(torch.as_tensor(sent)).cpu().numpy()
        self.train(was_training)
        return out

    # files ---------------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        self.meta = {**self.meta, **(meta or {})}
        (path / "config.json").write_text(json.dumps({"config": asdict(self.cfg), **self.meta}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "TextMotionModel":
        path = Path(path)
        for name in ("config.json", "model.safetensors"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: missing {name} (train it with server/train_evaluator.py)")
        obj = json.loads((path / "config.json").read_text())
        model = cls(TextMotionConfig.from_dict(obj.pop("config")))
        model.meta = obj
        model.load_state_dict(load_file(str(path / "model.safetensors")))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return model.to(device).eval()


class Evaluator(TextMotionModel):
    """The metrics model (DESIGN.md section 6). `Evaluator.load(path)`; `embed_motions`, `embed_texts`."""

    @classmethod
    def load(cls, path: str | Path = DEFAULT_EVALUATOR_DIR, device=None) -> "Evaluator":  # type: ignore[override]
        model = TextMotionModel.load(path, device)
        model.__class__ = cls
        return model
