"""A tiny procedural corpus for tests: valid SMPL-22 motions whose captions say what they do.

Not real motion: hips/knees/shoulders swing sinusoidally while the pelvis travels and turns,
with a few kinds (walk, run, turn, jump, wave) so that text and motion are related.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from server.data.corpus import Caption, Clip, write_corpus
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import FPS, NUM_JOINTS

KINDS = {
    "walk": ["a person walks forward", "someone walks straight ahead"],
    "run": ["a person runs forward", "someone jogs quickly"],
    "turn_left": ["a person turns to the left", "someone walks and turns left"],
    "jump": ["a person jumps in place", "someone hops up and down"],
    "wave": ["a person waves with the right hand", "someone waves their right arm"],
}


def _axis_quat(axis: int, angle: np.ndarray) -> np.ndarray:
    aa = np.zeros(np.shape(angle) + (3,))
    aa[..., axis] = angle
    return rot.axis_angle_to_quat(aa)


def synthetic_motion(kind: str, frames: int, rng: np.random.Generator) -> Motion:
    t = np.arange(frames) / FPS
    freq = {"run": 2.6, "walk": 1.8}.get(kind, 1.5) * rng.uniform(0.9, 1.1)
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    amp = {"run": 0.7, "walk": 0.4, "turn_left": 0.35}.get(kind, 0.05)
    q = np.tile(rot.quat_identity(), (frames, NUM_JOINTS, 1))
    q[:, 1] = _axis_quat(0, amp * np.sin(phase))  # hips swing about X
    q[:, 2] = _axis_quat(0, -amp * np.sin(phase))
    q[:, 4] = _axis_quat(0, amp * np.maximum(0, np.sin(phase + 1.0)))  # knees
    q[:, 5] = _axis_quat(0, amp * np.maximum(0, -np.sin(phase + 1.0)))
    q[:, 16] = _axis_quat(2, np.full(frames, -1.2) + 0.1 * np.sin(phase))  # arms down-ish
    q[:, 17] = _axis_quat(2, np.full(frames, 1.2) + 0.1 * np.sin(phase))
    if kind == "wave":
        q[:, 17] = _axis_quat(2, np.full(frames, -1.0))  # right arm up
        q[:, 19] = _axis_quat(1, 0.8 * np.sin(2 * np.pi * 2.0 * t))
    speed = {"walk": 1.3, "run": 3.0, "turn_left": 1.0}.get(kind, 0.0) * rng.uniform(0.9, 1.1)
    yaw_rate = {"turn_left": 1.2}.get(kind, 0.0) + rng.normal(0, 0.05)
    yaw = rng.uniform(-np.pi, np.pi) + yaw_rate * t
    q[:, 0] = _axis_quat(1, yaw)
    pos = np.zeros((frames, 3))
    heading = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], -1)
    pos[1:] = np.cumsum(heading[1:] * speed / FPS, axis=0)
    pos[:, 0] += rng.uniform(-2, 2)
    pos[:, 2] += rng.uniform(-2, 2)
    pos[:, 1] = 0.92 + 0.02 * np.sin(2 * phase)
    if kind == "jump":
        pos[:, 1] += 0.3 * np.maximum(0, np.sin(2 * np.pi * 1.2 * t))
    return Motion(rot.quat_fix_continuity(q, axis=0), pos, FPS)


def make_synthetic_corpus(path: str | Path, clips_per_kind: int = 4, seed: int = 0,
                          min_frames: int = 30, max_frames: int = 90) -> Path:
    """Write a corpus with `clips_per_kind` clips per kind; the last clip of each kind is val."""
    rng = np.random.default_rng(seed)
    clips, motions = [], []
    for kind, captions in KINDS.items():
        for i in range(clips_per_kind):
            frames = int(rng.integers(min_frames, max_frames + 1))
            motion = synthetic_motion(kind, frames, rng)
            split = "val" if i == clips_per_kind - 1 else ("test" if i == clips_per_kind - 2 and clips_per_kind > 3 else "train")
            clips.append(Clip(id=f"synthetic/{kind}_{i}", source="synthetic", skeleton="smpl22", subject=f"s{i}",
                              take=f"{kind}_{i}", split=split, licence="CC0" if i % 2 else "CMU",
                              commercial_ok=True, frames=frames,
                              captions=[Caption(c, "synthetic") for c in captions]))
            motions.append(motion)
    return write_corpus(path, clips, motions)
