"""A tiny synthetic corpus whose captions determine the motion, for evaluator/reward tests.

Caption k moves one joint (a different one per caption) sinusoidally about an axis at a
caption-specific frequency, and drifts the pelvis at a caption-specific velocity; phase,
amplitude, length and heading are random. Sentence embeddings are fixed random unit
vectors per caption (no MiniLM needed), written as a text cache (`server.model.text_encoder`)
at `path/text_cache.safetensors`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from server.data.corpus import Caption, Clip, write_corpus
import torch

from server.model.text_encoder import TextCache, TextEmbeddings
from shared.motion import Motion
from shared.rotations import axis_angle_to_quat, quat_multiply

CAPTIONS = ["wave the left arm", "wave the right arm", "kick with the left leg", "kick with the right leg",
            "walk forward", "walk backward", "turn in place", "bend forward"]
_JOINTS = [16, 17, 1, 2, 4, 5, 3, 6]
_AXES = np.eye(3)[[2, 2, 0, 0, 0, 0, 1, 0]]
_VEL = [(0, 0), (0, 0), (0, 0), (0, 0), (0, 1.0), (0, -1.0), (0, 0), (0, 0)]
_FREQ = [1.0, 1.5, 0.8, 1.2, 2.0, 2.0, 0.5, 0.7]


def synthetic_motion(k: int, rng: np.random.Generator, frames: int) -> Motion:
    t = np.arange(frames) / 20.0
    rot = np.zeros((frames, 22, 4))
    rot[..., 0] = 1.0
    angle = (0.8 + 0.3 * rng.random()) * np.sin(2 * np.pi * _FREQ[k] * t + rng.uniform(0, 2 * np.pi))
    rot[:, _JOINTS[k]] = axis_angle_to_quat(angle[:, None] * _AXES[k])
    yaw0 = rng.uniform(-np.pi, np.pi)
    yaw = yaw0 + (1.5 * t if k == 6 else 0.0 * t)
    root = axis_angle_to_quat(np.stack([np.zeros_like(t), yaw, np.zeros_like(t)], -1))
    rot[:, 0] = quat_multiply(root, rot[:, 0])
    vx, vz = _VEL[k]
    fwd = np.array([np.sin(yaw0) * vz, 0.0, np.cos(yaw0) * vz])
    trans = np.array([0.0, 0.95, 0.0]) + fwd * t[:, None] + rng.normal(0, 0.005, (frames, 3))
    rot += rng.normal(0, 0.01, rot.shape)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    return Motion(rot.astype(np.float32), trans.astype(np.float32), 20.0)


def make_corpus(path: Path, per_caption: dict[str, int] | None = None, seed: int = 0,
                frames: tuple[int, int] = (30, 60)) -> Path:
    """Write the corpus and its text cache (`path/text_cache.safetensors`)."""
    per_caption = per_caption or {"train": 10, "val": 5, "test": 5}
    rng = np.random.default_rng(seed)
    clips, motions = [], []
    for split, n in per_caption.items():
        for k, text in enumerate(CAPTIONS):
            for j in range(n):
                m = synthetic_motion(k, rng, int(rng.integers(frames[0], frames[1] + 1)))
                clips.append(Clip(id=f"syn/{split}_{k}_{j}", source="synthetic", skeleton="smpl22",
                                  subject=f"{split}{j}", take=f"{k}_{j}", split=split, licence="CC0",
                                  commercial_ok=True, frames=m.num_frames, captions=[Caption(text, "synthetic")]))
                motions.append(m)
    write_corpus(path, clips, motions)
    emb = np.random.default_rng(99).normal(size=(len(CAPTIONS), 384))
    pooled = torch.as_tensor(emb / np.linalg.norm(emb, axis=1, keepdims=True), dtype=torch.float32)
    cache = TextCache(path=path / "text_cache.safetensors")
    cache.add(CAPTIONS, TextEmbeddings(pooled, pooled[:, None], torch.ones(len(CAPTIONS), dtype=torch.int64)))
    cache.save()
    return path
