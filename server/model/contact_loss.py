"""Foot-contact loss for training: feet must not move in frames the ground-truth contact labels mark as in contact.

HumanML3D/MDM-style geometric loss, computed from the feature channels the inverse reads (root yaw
velocity, root velocity, root height and the 6D rotations of the leg chains), not from the redundant
velocity channels, so that it ties the root's velocity to the legs: a foot in contact moves with
velocity = root velocity + the leg's own motion, and the loss is that velocity squared.

For frame t >= 1, with Q_t the joints relative to the pelvis in the heading frame of t (leg FK from
the 6D rotations), the foot joint's displacement in the heading frame of t-1 is

    v_t = (root_vel_x[t], height[t] - height[t-1], root_vel_z[t]) + Ry(dyaw[t]) Q_t - Q_{t-1}

(the same quantity as the feature's `velocities` channels, which the inverse ignores). The loss is
mean over (clip, frame pair, foot joint) samples in contact of |v_t * fps|^2, in (m/s)^2 ("still", MDM's);
or, with target "real", of |(v_t - v_t^real) * fps|^2: the foot moves as the real one does while in contact
(contact labels allow up to 0.9 m/s, so "still" also damps the real small foot motion).

Alone, either can be met by slowing the whole body down (a motion that barely moves does not slide; on
normalised features the root velocity is 2 of 269 channels of the reconstruction MSE, cheap to give up):
measured, a decoder trained with "still" at weight 1 walked at 38% of the real pelvis speed. Target
"still+match" adds `foot_velocity_match`, |(v_t - v_t^real) * fps|^2 over all frames (MDM's geometric
velocity loss, on the feet), so that the feet (and, through them, the root) keep their real speed while
the feet in contact stay still.
"""
from __future__ import annotations

import numpy as np
import torch

from shared.skeleton import FOOT_JOINTS, NUM_JOINTS, PARENTS, rest_offsets

from .features import FeatureLayout, _ry_torch, sixd_to_matrix_torch

LEG_JOINTS = (1, 4, 7, 10, 2, 5, 8, 11)  # hips, knees, ankles, feet: parents before children


def leg_positions(features: torch.Tensor, layout: FeatureLayout) -> torch.Tensor:
    """(B, T, D) unnormalised features -> (B, T, 22, 3) joints relative to the pelvis in the heading frame.

    Only the pelvis and the leg joints are computed (the others are zero)."""
    B, T, _ = features.shape
    R = sixd_to_matrix_torch(features[..., layout.rot6d].reshape(B, T, NUM_JOINTS, 6))  # (B, T, 22, 3, 3)
    offsets = torch.as_tensor(rest_offsets(), dtype=features.dtype, device=features.device)  # (22, 3)
    world = {0: R[:, :, 0]}
    pos = {0: features.new_zeros(B, T, 3)}
    for j in LEG_JOINTS:
        p = int(PARENTS[j])
        pos[j] = pos[p] + (world[p] @ offsets[j])
        world[j] = world[p] @ R[:, :, j]
    out = features.new_zeros(B, T, NUM_JOINTS, 3)
    index = torch.tensor([0, *LEG_JOINTS], device=features.device)
    return out.index_copy(2, index, torch.stack([pos[j] for j in (0, *LEG_JOINTS)], dim=2))


def foot_velocities(features: torch.Tensor, layout: FeatureLayout) -> torch.Tensor:
    """(B, T, D) unnormalised features -> (B, T, 4, 3) foot-joint displacement per frame (metres, heading frame
    of t-1; FOOT_JOINTS order; row 0 is zero), read from the root channels and the leg rotations only."""
    Q = leg_positions(features, layout)[:, :, list(FOOT_JOINTS)]  # (B, T, 4, 3)
    dyaw = features[:, 1:, layout.root_yaw_vel.start]  # (B, T-1)
    turned = (_ry_torch(dyaw)[:, :, None] @ Q[:, 1:, :, :, None])[..., 0]  # (B, T-1, 4, 3)
    root = torch.stack([features[:, 1:, layout.root_vel.start],
                        features[:, 1:, layout.root_height.start] - features[:, :-1, layout.root_height.start],
                        features[:, 1:, layout.root_vel.start + 1]], dim=-1)  # (B, T-1, 3)
    v = root[:, :, None] + turned - Q[:, :-1]
    return torch.cat([torch.zeros_like(v[:, :1]), v], dim=1)


def foot_contact_loss(pred: torch.Tensor, contacts: torch.Tensor, frame_mask: torch.Tensor | None,
                      layout: FeatureLayout, fps: float, target: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |foot velocity|^2 in (m/s)^2 over in-contact samples (with `target`: |velocity - target's|^2).

    pred (B, T, D) unnormalised features; contacts (B, T, 4) ground-truth labels (> 0.5 = in contact at t, i.e.
    between t-1 and t); frame_mask (B, T) True = real frame (None: all); target (B, T, D) unnormalised features
    of the real motion or None. Zero when no sample is in contact."""
    v = foot_velocities(pred.float(), layout) * fps  # (B, T, 4, 3)
    if target is not None:
        v = v - foot_velocities(target.float(), layout).detach() * fps
    m = contacts[:, 1:].float() > 0.5  # (B, T-1, 4)
    if frame_mask is not None:
        m = m & (frame_mask[:, 1:] & frame_mask[:, :-1])[..., None]
    m = m.float()
    return (v[:, 1:].pow(2).sum(-1) * m).sum() / m.sum().clamp_min(1.0)


def foot_velocity_match(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor | None,
                        layout: FeatureLayout, fps: float) -> torch.Tensor:
    """Mean |foot velocity - target's|^2 in (m/s)^2 over all (clip, frame pair, foot joint) samples.

    pred, target (B, T, D) unnormalised features; frame_mask (B, T) True = real frame (None: all)."""
    v = (foot_velocities(pred.float(), layout) - foot_velocities(target.float(), layout).detach()) * fps
    err = v[:, 1:].pow(2).sum(-1).mean(-1)  # (B, T-1)
    if frame_mask is None:
        return err.mean()
    m = (frame_mask[:, 1:] & frame_mask[:, :-1]).float()
    return (err * m).sum() / m.sum().clamp_min(1.0)


FOOT_TARGETS = ("still", "real", "still+match")


class FootContactLoss:
    """`foot_contact_loss` on normalised features: `loss(pred_norm, target_norm, frame_mask)`, contacts from the
    target's contact channels; `foot_target` "still" (feet in contact do not move), "real" (they move as the
    target's do) or "still+match" ("still" plus `foot_velocity_match`). Holds the feature statistics the features
    are normalised with."""

    def __init__(self, layout: FeatureLayout, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor,
                 fps: float, device=None, foot_target: str = "still"):
        if not layout.redundant:
            raise ValueError("the foot-contact loss needs the redundant features (their contact labels)")
        if foot_target not in FOOT_TARGETS:
            raise ValueError(f"foot target must be one of {FOOT_TARGETS}, got {foot_target!r}")
        self.layout, self.fps, self.target = layout, float(fps), foot_target
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)

    def contacts(self, target: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised target -> (B, T, 4) contact labels."""
        c = self.layout.contacts
        return target[..., c].float() * self.std[c] + self.mean[c]

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        feats = pred.float() * self.std + self.mean
        real = target.float() * self.std + self.mean
        loss = foot_contact_loss(feats, self.contacts(target), frame_mask, self.layout, self.fps,
                                 real if self.target == "real" else None)
        if self.target == "still+match":
            loss = loss + foot_velocity_match(feats, real, frame_mask, self.layout, self.fps)
        return loss
