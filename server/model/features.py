"""The generator's motion features: HumanML3D-style, with an exact inverse to the wire format.

Per frame t of a clip (T frames), in this order (`FeatureLayout` gives the slices):

    root_yaw_vel   1        heading change yaw[t] - yaw[t-1], wrapped to (-pi, pi]; 0 at t = 0
    root_vel       2        pelvis XZ displacement p[t] - p[t-1] in the heading frame of t-1; 0 at t = 0
    root_height    1        pelvis Y (metres)
    rot6d          22 x 6   local joint rotations as 6D (first two matrix COLUMNS, the team
                            convention of `shared.rotations`); the root's is relative to the
                            heading, Ry(-yaw[t]) R_root[t]
  redundant (optional; the inverse ignores them):
    positions      21 x 3   joints 1..21 relative to the pelvis in XZ, rotated into the heading
                            frame of t; Y is the joint's absolute height
    velocities     22 x 3   P[t] - P[t-1] of every joint, rotated into the heading frame of t-1
    contacts       4        ankle/foot speed below `CONTACT_SPEED` (0/1), FOOT_JOINTS order

The heading is the yaw of the pelvis' X axis (the body's left): yaw = atan2(-x_z, x_x), so
Ry(yaw) turns +Z (the rest facing) into the current facing. Because the root rotation is
stored relative to the heading and the trajectory as heading-frame velocities, the features
do not see where a motion starts or which way it first faces; the inverse starts at
`start_yaw` / `start_xz` (default: facing +Z at the origin, a "canonical" motion).

The first frame's velocities are ignored by the inverse, so a crop of a clip's features is
exactly the features of the cropped clip for everything the inverse reads.

numpy (float64 inside) is used for data preparation; `features_to_wire` is the batched torch
inverse used at sampling time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared import rotations as rot
from shared.motion import Motion, forward_kinematics
from shared.skeleton import FOOT_JOINTS, NUM_JOINTS

CONTACT_SPEED = 0.045  # metres per frame at 20 fps (0.9 m/s), HumanML3D's threshold sqrt(0.002)
STD_FLOOR = 1e-2  # normalisation: no feature's std is taken below this (constant features)


@dataclass(frozen=True)
class FeatureLayout:
    """Where each feature group sits in the feature vector."""

    redundant: bool = True

    @property
    def dim(self) -> int:
        return 4 + NUM_JOINTS * 6 + ((NUM_JOINTS - 1) * 3 + NUM_JOINTS * 3 + len(FOOT_JOINTS) if self.redundant else 0)

    root_yaw_vel = slice(0, 1)
    root_vel = slice(1, 3)
    root_height = slice(3, 4)
    rot6d = slice(4, 4 + NUM_JOINTS * 6)

    @property
    def positions(self) -> slice:
        return slice(self.rot6d.stop, self.rot6d.stop + (NUM_JOINTS - 1) * 3 if self.redundant else self.rot6d.stop)

    @property
    def velocities(self) -> slice:
        a = self.positions.stop
        return slice(a, a + NUM_JOINTS * 3 if self.redundant else a)

    @property
    def contacts(self) -> slice:
        a = self.velocities.stop
        return slice(a, a + len(FOOT_JOINTS) if self.redundant else a)

    def groups(self) -> dict[str, slice]:
        names = ["root_yaw_vel", "root_vel", "root_height", "rot6d"]
        if self.redundant:
            names += ["positions", "velocities", "contacts"]
        return {n: getattr(self, n) for n in names}


# --- numpy: wire -> features --------------------------------------------------------------

def _ry(yaw: np.ndarray) -> np.ndarray:
    """(...,) yaw -> (..., 3, 3) rotation about +Y."""
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.zeros(np.shape(yaw) + (3, 3))
    R[..., 0, 0] = c
    R[..., 0, 2] = s
    R[..., 1, 1] = 1.0
    R[..., 2, 0] = -s
    R[..., 2, 2] = c
    return R


def heading_yaw(root_matrices: np.ndarray) -> np.ndarray:
    """(..., 3, 3) pelvis world rotations -> (...,) heading yaw from the pelvis' X axis."""
    x_axis = root_matrices[..., :, 0]
    return np.arctan2(-x_axis[..., 2], x_axis[..., 0])


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def motion_to_features(motion: Motion, layout: FeatureLayout = FeatureLayout()) -> np.ndarray:
    """One `Motion` -> (T, layout.dim) float32 features (unnormalised)."""
    q = motion.rotations.astype(np.float64)
    p = motion.translation.astype(np.float64)
    T = q.shape[0]
    R = rot.quat_to_matrix(q)  # (T, 22, 3, 3)
    yaw = heading_yaw(R[:, 0])  # (T,)
    inv_heading = _ry(-yaw)  # (T, 3, 3)

    out = np.zeros((T, layout.dim), dtype=np.float64)
    out[1:, layout.root_yaw_vel] = _wrap(yaw[1:] - yaw[:-1])[:, None]
    step = p[1:] - p[:-1]
    out[1:, layout.root_vel] = np.einsum("tij,tj->ti", inv_heading[:-1], step)[:, [0, 2]]
    out[:, layout.root_height] = p[:, 1:2]
    R_local = R.copy()
    R_local[:, 0] = inv_heading @ R[:, 0]
    out[:, layout.rot6d] = rot.matrix_to_6d(R_local).reshape(T, -1)

    if layout.redundant:
        P = forward_kinematics(q, p)  # (T, 22, 3)
        rel = P[:, 1:] - P[:, :1] * np.array([1.0, 0.0, 1.0])
        out[:, layout.positions] = np.einsum("tij,tkj->tki", inv_heading, rel).reshape(T, -1)
        vel = np.zeros_like(P)
        vel[1:] = np.einsum("tij,tkj->tki", inv_heading[:-1], P[1:] - P[:-1])
        out[:, layout.velocities] = vel.reshape(T, -1)
        speed = np.linalg.norm(vel[:, list(FOOT_JOINTS)], axis=-1)  # (T, 4)
        if T > 1:
            speed[0] = speed[1]
        out[:, layout.contacts] = (speed < CONTACT_SPEED).astype(np.float64)
    return out.astype(np.float32)


def canonicalize(motion: Motion) -> Motion:
    """The same motion moved to start at XZ = 0 facing +Z (what the inverse returns by default)."""
    R0 = rot.quat_to_matrix(motion.rotations[0, 0].astype(np.float64))
    yaw0 = float(heading_yaw(R0))
    turn = rot.matrix_to_quat(_ry(np.float64(-yaw0)))
    q = motion.rotations.astype(np.float64).copy()
    q[:, 0] = rot.quat_multiply(turn, q[:, 0])
    p = motion.translation.astype(np.float64) - motion.translation[0].astype(np.float64) * np.array([1.0, 0.0, 1.0])
    p = p @ _ry(np.float64(-yaw0)).T
    return Motion(q, p, motion.fps)


def start_pose(motion: Motion) -> tuple[float, np.ndarray]:
    """(start_yaw, start_xz) that make the inverse reproduce `motion` itself, not its canonical form."""
    R0 = rot.quat_to_matrix(motion.rotations[0, 0].astype(np.float64))
    return float(heading_yaw(R0)), motion.translation[0, [0, 2]].astype(np.float64)


def features_to_motion_np(features: np.ndarray, layout: FeatureLayout = FeatureLayout(), fps: float = 20.0,
                          start_yaw: float = 0.0, start_xz=(0.0, 0.0)) -> Motion:
    """numpy inverse for one clip (float64 inside), mainly as a reference for the torch one."""
    f = np.asarray(features, dtype=np.float64)
    T = f.shape[0]
    dyaw = f[:, layout.root_yaw_vel][:, 0].copy()
    dyaw[0] = 0.0
    yaw = start_yaw + np.cumsum(dyaw)
    heading = _ry(yaw)
    vel = np.zeros((T, 3))
    vel[1:, [0, 2]] = f[1:, layout.root_vel]
    step = np.einsum("tij,tj->ti", heading[:-1], vel[1:]) if T > 1 else np.zeros((0, 3))
    p = np.zeros((T, 3))
    p[:, [0, 2]] = np.asarray(start_xz, dtype=np.float64)
    p[1:] += np.cumsum(step, axis=0)
    p[:, 1] = f[:, layout.root_height][:, 0]
    R = rot.sixd_to_matrix(f[:, layout.rot6d].reshape(T, NUM_JOINTS, 6))
    R[:, 0] = heading @ R[:, 0]
    q = rot.quat_fix_continuity(rot.matrix_to_quat(R), axis=0)
    return Motion(q, p, fps)


# --- normalisation ----------------------------------------------------------------------------

def feature_stats(features: list[np.ndarray], layout: FeatureLayout = FeatureLayout()) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over all frames of the given clips (the train split).

    Each group's std is floored at STD_FLOOR so constant dimensions (frame-0 zeros, a
    joint that never moves) do not blow up; contacts are left unnormalised (mean 0, std 1).
    """
    allf = np.concatenate([np.asarray(f, dtype=np.float64) for f in features], axis=0)
    mean = allf.mean(axis=0)
    std = np.maximum(allf.std(axis=0), STD_FLOOR)
    if layout.redundant:
        mean[layout.contacts] = 0.0
        std[layout.contacts] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


# --- torch: features -> wire (sampling time) ------------------------------------------------

def sixd_to_matrix_torch(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two COLUMNS (team convention)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_6d_torch(R: torch.Tensor) -> torch.Tensor:
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def matrix_to_quat_torch(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) wxyz with w >= 0 (Shepperd: the largest of four square roots)."""
    r00, r11, r22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    cands = torch.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22], -1)
    case = cands.argmax(-1, keepdim=True)
    s = cands.gather(-1, case).clamp_min(1e-12).sqrt()[..., 0] * 2.0  # 4 * the largest component
    d21, d02, d10 = R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]
    s01, s02, s12 = R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1]
    options = torch.stack([
        torch.stack([s * 0.25, d21 / s, d02 / s, d10 / s], -1),
        torch.stack([d21 / s, s * 0.25, s01 / s, s02 / s], -1),
        torch.stack([d02 / s, s01 / s, s * 0.25, s12 / s], -1),
        torch.stack([d10 / s, s02 / s, s12 / s, s * 0.25], -1),
    ], -2)  # (..., 4 cases, 4)
    q = options.gather(-2, case[..., None].expand(*case.shape[:-1], 1, 4))[..., 0, :]
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def _ry_torch(yaw: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(yaw), torch.sin(yaw)
    z, o = torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(yaw.shape + (3, 3))


def features_to_wire(features: torch.Tensor, layout: FeatureLayout = FeatureLayout(),
                     start_yaw: torch.Tensor | None = None,
                     start_xz: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched inverse: (B, T, D) unnormalised features -> rotations (B, T, 22, 4), translation (B, T, 3).

    Padded frames (beyond a clip's length) come out finite and are for the caller to cut.
    Quaternions are sign-continuous over time (consecutive dot products >= 0), w >= 0 at t = 0.
    Computed in float64 (tiny tensors), returned in float32.
    """
    f = features.double()
    B, T, _ = f.shape
    dyaw = f[..., layout.root_yaw_vel.start].clone()
    dyaw[:, 0] = 0.0
    yaw = torch.cumsum(dyaw, dim=1)
    if start_yaw is not None:
        yaw = yaw + start_yaw.double().reshape(B, 1)
    heading = _ry_torch(yaw)  # (B, T, 3, 3)

    vel = torch.zeros(B, T, 3, dtype=f.dtype, device=f.device)
    vel[:, 1:, 0] = f[:, 1:, layout.root_vel.start]
    vel[:, 1:, 2] = f[:, 1:, layout.root_vel.start + 1]
    step = torch.zeros_like(vel)
    step[:, 1:] = (heading[:, :-1] @ vel[:, 1:, :, None])[..., 0]
    p = torch.cumsum(step, dim=1)
    if start_xz is not None:
        p = p + torch.nn.functional.pad(start_xz.double().reshape(B, 1, 2), (0, 1))[..., [0, 2, 1]]
    p[..., 1] = f[..., layout.root_height.start]

    R = sixd_to_matrix_torch(f[..., layout.rot6d].reshape(B, T, NUM_JOINTS, 6))
    R = torch.cat([(heading @ R[:, :, 0])[:, :, None], R[:, :, 1:]], dim=2)
    q = matrix_to_quat_torch(R)
    # Sign continuity over time: flip where the running product of signs says so.
    if T > 1:
        neg = ((q[:, 1:] * q[:, :-1]).sum(-1) < 0).to(torch.int64)  # (B, T-1, 22)
        flips = torch.cumsum(neg, dim=1) % 2
        sign = torch.cat([torch.ones_like(flips[:, :1]), 1 - 2 * flips], dim=1).to(q.dtype)
        q = q * sign[..., None]
    return q.float(), p.float()
