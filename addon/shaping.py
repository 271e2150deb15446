"""What a candidate's keys are made of, before any bpy: timing, "in place", trim, and the ground
area a motion sweeps (for placing candidates side by side). numpy only: tests call it directly.

Timing: with whole frames (the default), the motion is sampled at the scene's rate, one key per
scene frame (rotations slerped, the pelvis linearly interpolated), so keys sit on whole frames
at 24, 25, 29.97 or 60 fps alike; the keys span the motion's own length to within half a scene
frame. With source timing, the motion's own samples are keyed where they fall, at fractional
scene frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vendored import motion as shared_motion
from .vendored import rotations as rot


@dataclass(frozen=True)
class Shape:
    """How a generated motion becomes keys. trim: (first, last) second of the motion to keep."""

    whole_frames: bool = True
    in_place: bool = False
    trim: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        data = {"whole_frames": self.whole_frames, "in_place": self.in_place}
        if self.trim is not None:
            data["trim"] = [float(self.trim[0]), float(self.trim[1])]
        return data

    @classmethod
    def from_dict(cls, data) -> "Shape":
        data = data or {}
        trim = data.get("trim")
        return cls(bool(data.get("whole_frames", True)), bool(data.get("in_place", False)),
                   None if trim is None else (float(trim[0]), float(trim[1])))


def sample(rotations: np.ndarray, translation: np.ndarray, fps: float, times: np.ndarray):
    """(rotations (K, 22, 4), translation (K, 3)) at `times` seconds: slerp and linear
    interpolation between the motion's samples, held at both ends."""
    rotations = np.asarray(rotations, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    count = rotations.shape[0]
    src = np.clip(np.asarray(times, dtype=np.float64) * float(fps), 0.0, count - 1)
    snapped = np.round(src)
    src = np.where(np.abs(src - snapped) < 1e-6, snapped, src)
    i0 = np.minimum(np.floor(src).astype(np.int64), count - 1)
    i1 = np.minimum(i0 + 1, count - 1)
    alpha = src - i0
    q = rot.quat_slerp(rotations[i0], rotations[i1], np.broadcast_to(alpha[:, None], (len(src), rotations.shape[1])))
    t = (1.0 - alpha[:, None]) * translation[i0] + alpha[:, None] * translation[i1]
    return q, t


def key_times(num_frames: int, fps: float, scene_fps: float, shape: Shape):
    """(times, frame offsets): the motion seconds to key and each key's scene frame from the start."""
    span = (num_frames - 1) / float(fps)
    first, last = 0.0, span
    if shape.trim is not None:
        first = float(np.clip(shape.trim[0], 0.0, span))
        last = float(np.clip(shape.trim[1], first, span))
    if shape.whole_frames:
        count = int(round((last - first) * scene_fps)) + 1
        offsets = np.arange(count, dtype=np.float64)
        times = np.minimum(first + offsets / scene_fps, last)
    else:
        k0 = int(np.ceil(first * fps - 1e-6))
        k1 = int(np.floor(last * fps + 1e-6))
        times = np.arange(k0, max(k0, k1) + 1, dtype=np.float64) / fps
        offsets = (times - first) * scene_fps
    return times, offsets


def shape_motion(rotations, translation, fps: float, scene_fps: float, shape: Shape = Shape()):
    """(frame offsets (K,), rotations (K, 22, 4), translation (K, 3)) to key for one motion."""
    times, offsets = key_times(len(rotations), fps, scene_fps, shape)
    q, t = sample(rotations, translation, fps, times)
    if shape.in_place:
        t[:, [0, 2]] = t[:1, [0, 2]]  # no horizontal travel: the pelvis stays over its start, height kept
    return offsets, q, t


def ground_extent(rotations, translation, rest_joints=None) -> np.ndarray:
    """(..., 4) xmin, xmax, zmin, zmax of every joint over the whole motion, in the motion's Y-up
    space; rotations (..., T, 22, 4) and translation (..., T, 3): one motion or a stack of them."""
    p = shared_motion.forward_kinematics(rotations, translation, rest_joints)
    x, z = p[..., 0], p[..., 2]
    return np.stack([x.min(axis=(-2, -1)), x.max(axis=(-2, -1)), z.min(axis=(-2, -1)), z.max(axis=(-2, -1))], axis=-1)


def row_offsets(extents: np.ndarray, margin: float, gap: float) -> np.ndarray:
    """X offset of each candidate so their swept X ranges (plus `margin`) are `gap` apart, centred on 0."""
    extents = np.asarray(extents, dtype=np.float64).reshape(-1, 4)
    widths = extents[:, 1] - extents[:, 0] + 2.0 * margin
    total = widths.sum() + gap * (len(widths) - 1)
    left = -total / 2.0 + np.concatenate([[0.0], np.cumsum(widths[:-1] + gap)])
    return left + margin - extents[:, 0]
