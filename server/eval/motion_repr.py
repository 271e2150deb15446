"""The evaluator's and reward model's own motion representation, computed from the wire format.

Deliberately independent of the generator's features (no 6D rotations, no foot contacts,
no shared normalisation): metrics should not inherit the generator's biases. Everything is
derived from forward-kinematics joint positions:

per frame t (0 <= t < T - 1), in the body's heading frame at t (yaw removed, facing +Z):
    local joint positions  21 x 3  joints 1..21 relative to the pelvis (x, z) and to the
                                   clip's floor (y)
    pelvis height          1       above the clip's floor (lowest foot joint over the clip)
    joint velocities       22 x 3  (P[t+1] - P[t]) * fps, rotated into the heading frame at t
    heading velocity       1       yaw rate (rad/s), wrapped to (-pi, pi] per frame
                           -----
                           131 = FEATURE_DIM

This is invariant to where the motion starts and which way it initially faces, and sees
global trajectory only through velocities (so "walk in a circle" and "walk forward" differ).
All functions are torch, batched over clips with a `lengths` tensor; padded frames repeat
the last valid frame (see `pad_positions`) so they add nothing to velocities or the floor.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from shared.skeleton import FPS, NUM_JOINTS, PARENTS, rest_offsets

FEATURE_DIM = 21 * 3 + 1 + 22 * 3 + 1
MIN_FRAMES = 8  # shortest motion the encoders accept (the conv encoder downsamples by 4)

_L_HIP, _R_HIP, _L_SHOULDER, _R_SHOULDER = 1, 2, 16, 17
_FOOT_JOINTS = [7, 8, 10, 11]


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz quaternions (normalised here) -> (..., 3, 3) rotation matrices."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def forward_kinematics(rotations: torch.Tensor, translation: torch.Tensor,
                       rest_joints: np.ndarray | None = None) -> torch.Tensor:
    """Batched torch FK: rotations (..., 22, 4) wxyz local, translation (..., 3) -> (..., 22, 3).

    Same convention as `shared.motion.forward_kinematics`: P_i = P_parent + G_parent (J_i - J_parent),
    the root at `translation`.
    """
    offsets = torch.as_tensor(rest_offsets(rest_joints), dtype=rotations.dtype, device=rotations.device)
    local = quat_to_matrix(rotations)
    glob: list[torch.Tensor] = [local[..., 0, :, :]]
    pos: list[torch.Tensor] = [translation]
    for j in range(1, NUM_JOINTS):
        p = int(PARENTS[j])
        pos.append(pos[p] + (glob[p] @ offsets[j].unsqueeze(-1)).squeeze(-1))
        glob.append(glob[p] @ local[..., j, :, :])
    return torch.stack(pos, dim=-2)


def pad_positions(clips: list[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i, 22, 3) clips into (B, T_max, 22, 3) float32, padding by repeating each clip's last frame."""
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    out = np.empty((len(clips), int(lengths.max()), NUM_JOINTS, 3), dtype=np.float32)
    for k, c in enumerate(clips):
        c = c.detach().cpu().numpy() if torch.is_tensor(c) else np.asarray(c)
        out[k, : len(c)] = c
        out[k, len(c):] = c[-1]
    return torch.from_numpy(out), torch.from_numpy(lengths)


def heading_angle(positions: torch.Tensor) -> torch.Tensor:
    """(..., 22, 3) -> (...,) yaw of the body's forward direction (0 when facing +Z)."""
    across = (positions[..., _R_HIP, :] - positions[..., _L_HIP, :]) + \
             (positions[..., _R_SHOULDER, :] - positions[..., _L_SHOULDER, :])
    # forward = up x across; with across = (ax, ay, az): (az, 0, -ax)  -> facing +Z when left is +x
    fx, fz = across[..., 2], -across[..., 0]
    return torch.atan2(fx, fz)


def _rotate_y(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate (..., K, 3) vectors by -angle (shape (...,)) about +Y: undoes the heading."""
    c, s = torch.cos(angle).unsqueeze(-1), torch.sin(angle).unsqueeze(-1)
    x, y, z = v.unbind(-1)
    return torch.stack([c * x - s * z, y, s * x + c * z], dim=-1)


def features_from_positions(positions: torch.Tensor, lengths: torch.Tensor | None = None,
                            fps: float = FPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 22, 3) joint positions (padded by repeating the last frame) -> ((B, T-1, 131), lengths - 1)."""
    if positions.dim() != 4 or positions.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"positions must be (B, T, 22, 3), got {tuple(positions.shape)}")
    b, t = positions.shape[:2]
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long)
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=positions.device)
    if t < 2 or int(lengths.min()) < 2:
        raise ValueError("motions need at least 2 frames")
    floor = positions[..., _FOOT_JOINTS, 1].amin(dim=(1, 2))  # padding repeats frames: no effect
    heading = heading_angle(positions)  # (B, T)
    root = positions[..., 0:1, :]
    rel = positions[..., 1:, :] - root
    rel = torch.cat([rel[..., 0:1], positions[..., 1:, 1:2] - floor[:, None, None, None], rel[..., 2:3]], dim=-1)
    local = _rotate_y(rel, heading)  # (B, T, 21, 3)
    height = positions[..., 0, 1] - floor[:, None]
    vel = _rotate_y((positions[:, 1:] - positions[:, :-1]) * fps, heading[:, :-1])  # (B, T-1, 22, 3)
    dh = heading[:, 1:] - heading[:, :-1]
    dh = torch.remainder(dh + math.pi, 2 * math.pi) - math.pi
    feats = torch.cat([
        local[:, :-1].flatten(2), height[:, :-1, None], vel.flatten(2), (dh * fps)[..., None],
    ], dim=-1)
    # frames past a clip's end: zero (their velocities are already ~0 from the edge padding)
    valid = torch.arange(t - 1, device=positions.device)[None, :] < (lengths - 1)[:, None]
    return feats * valid[..., None], lengths - 1


def features(rotations: torch.Tensor, translation: torch.Tensor, lengths: torch.Tensor | None = None,
             fps: float = FPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Wire format (B, T, 22, 4) + (B, T, 3), padded (any padding), -> ((B, T-1, 131), lengths - 1)."""
    positions = forward_kinematics(rotations, translation)
    b, t = positions.shape[:2]
    if lengths is not None:
        lengths = torch.as_tensor(lengths, dtype=torch.long, device=positions.device)
        idx = torch.minimum(torch.arange(t, device=positions.device)[None, :], (lengths - 1)[:, None])
        positions = torch.gather(positions, 1, idx[:, :, None, None].expand(b, t, NUM_JOINTS, 3))
    return features_from_positions(positions, lengths, fps)


def crop_window(length: int, max_frames: int) -> tuple[int, int]:
    """The deterministic evaluation window of a clip: the centred `max_frames` (or all of it)."""
    if length <= max_frames:
        return 0, length
    start = (length - max_frames) // 2
    return start, start + max_frames
