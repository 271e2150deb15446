"""Features <-> wire format: exact inverse (numpy and torch), scipy 6D convention, normalisation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from server.model.features import (FeatureLayout, canonicalize, feature_stats, features_to_motion_np, features_to_wire,
                             matrix_to_6d_torch, matrix_to_quat_torch, motion_to_features, sixd_to_matrix_torch,
                             start_pose)
from shared import rotations as rot
from shared.motion import Motion
from synthetic_corpus import KINDS, synthetic_motion


def _random_motion(rng, frames=90, kind="turn_left") -> Motion:
    """A synthetic motion with every joint additionally rotated at random (all 3 axes)."""
    m = synthetic_motion(kind, frames, rng)
    q = m.rotations.astype(np.float64)
    jitter = rot.quat_normalize(np.concatenate([np.full((frames, 22, 1), 2.0), rng.normal(size=(frames, 22, 3))], -1))
    q = rot.quat_multiply(q, jitter)
    return Motion(rot.quat_fix_continuity(q, 0), m.translation + rng.normal(0, 0.01, (frames, 3)), 20.0)


def _rot_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    b = np.where(np.sum(a * b, -1, keepdims=True) < 0, -b, b)
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("redundant", [True, False])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_numpy_and_torch(kind, redundant):
    rng = np.random.default_rng(abs(hash(kind)) % 1000)
    layout = FeatureLayout(redundant=redundant)
    m = _random_motion(rng, kind=kind)
    f = motion_to_features(m, layout)
    assert f.shape == (m.num_frames, layout.dim) and f.dtype == np.float32
    yaw, xz = start_pose(m)
    back = features_to_motion_np(f, layout, start_yaw=yaw, start_xz=xz)
    assert _rot_err(back.rotations, m.rotations) < 1e-5
    assert np.abs(back.translation - m.translation).max() < 1e-4
    r, p = features_to_wire(torch.from_numpy(f)[None], layout, torch.tensor([yaw]), torch.tensor(xz)[None])
    assert r.dtype == torch.float32 and r.shape == (1, m.num_frames, 22, 4)
    assert _rot_err(r[0].numpy(), m.rotations) < 1e-5
    assert np.abs(p[0].numpy() - m.translation).max() < 1e-4


def test_round_trip_through_normalisation_and_canonical_start():
    rng = np.random.default_rng(1)
    layout = FeatureLayout()
    motions = [_random_motion(rng, frames=int(rng.integers(30, 120)), kind=k) for k in sorted(KINDS)]
    feats = [motion_to_features(m, layout) for m in motions]
    mean, std = feature_stats(feats, layout)
    assert mean.shape == std.shape == (layout.dim,) and (std >= 1e-2).all()
    m = motions[2]
    x = torch.from_numpy((feats[2] - mean) / std)[None].float()
    r, p = features_to_wire(x * torch.from_numpy(std) + torch.from_numpy(mean), layout)
    c = canonicalize(m)
    assert np.abs(c.translation[0, [0, 2]]).max() < 1e-6
    assert _rot_err(r[0].numpy(), c.rotations) < 1e-5
    assert np.abs(p[0].numpy() - c.translation).max() < 1e-4
    # the canonical motion has the same features (start position and facing do not matter)
    assert np.abs(motion_to_features(c, layout) - feats[2]).max() < 1e-4


def test_batched_inverse_with_padding_matches_single():
    rng = np.random.default_rng(2)
    layout = FeatureLayout()
    a, b = _random_motion(rng, 50, "walk"), _random_motion(rng, 80, "jump")
    fa, fb = motion_to_features(a, layout), motion_to_features(b, layout)
    batch = torch.zeros(2, 80, layout.dim)
    batch[0, :50] = torch.from_numpy(fa)
    batch[1] = torch.from_numpy(fb)
    r, p = features_to_wire(batch, layout)
    assert torch.isfinite(r).all() and torch.isfinite(p).all()  # padded frames too
    r1, p1 = features_to_wire(torch.from_numpy(fa)[None], layout)
    assert torch.allclose(r[0, :50], r1[0], atol=1e-6) and torch.allclose(p[0, :50], p1[0], atol=1e-6)
    # sign continuity over time
    assert ((r[1, 1:] * r[1, :-1]).sum(-1) >= 0).all()


def test_crop_of_features_is_features_of_crop():
    """Random crops are taken from precomputed features; what the inverse reads must agree."""
    rng = np.random.default_rng(3)
    layout = FeatureLayout()
    m = _random_motion(rng, 100, "run")
    f = motion_to_features(m, layout)
    crop = motion_to_features(m.slice(30, 80), layout)
    same = np.ones(layout.dim, bool)
    same[layout.root_yaw_vel] = same[layout.root_vel] = same[layout.velocities] = False
    assert np.abs(f[30:80][:, same] - crop[:, same]).max() < 1e-5
    assert np.abs(f[31:80] - crop[1:]).max() < 1e-5  # velocities agree after the first frame


def test_6d_convention_matches_team_numpy_and_scipy():
    R = Rotation.random(64, random_state=0).as_matrix()
    d6 = rot.matrix_to_6d(R)
    assert np.allclose(d6[:, :3], R[:, :, 0]) and np.allclose(d6[:, 3:], R[:, :, 1])  # columns, not rows
    Rt = torch.from_numpy(R)
    assert np.allclose(matrix_to_6d_torch(Rt).numpy(), d6)
    assert np.allclose(sixd_to_matrix_torch(torch.from_numpy(d6)).numpy(), R, atol=1e-12)
    assert np.allclose(sixd_to_matrix_torch(torch.from_numpy(d6 * 3.0)).numpy(), rot.sixd_to_matrix(d6 * 3.0))
    q = matrix_to_quat_torch(Rt).numpy()
    q_scipy = Rotation.from_matrix(R).as_quat()[:, [3, 0, 1, 2]]  # scipy is xyzw
    assert _rot_err(q, q_scipy) < 1e-10
    assert np.allclose(q, rot.matrix_to_quat(R), atol=1e-10)


def test_heading_and_velocities_mean_what_they_say():
    """A motion walking along +Z facing +Z has positive forward velocity and no turning."""
    n = 40
    q = np.tile(rot.quat_identity(), (n, 22, 1))
    p = np.stack([np.zeros(n), np.full(n, 0.9), np.arange(n) * 0.05], -1)
    layout = FeatureLayout()
    f = motion_to_features(Motion(q, p, 20.0), layout)
    assert np.allclose(f[1:, layout.root_vel], [[0.0, 0.05]] * (n - 1), atol=1e-6)
    assert np.allclose(f[:, layout.root_yaw_vel], 0.0)
    # turning left (counter-clockwise seen from above, +Y rotation) gives a positive yaw velocity
    yaw = np.linspace(0, 1.0, n)
    q[:, 0] = rot.axis_angle_to_quat(np.stack([np.zeros(n), yaw, np.zeros(n)], -1))
    f = motion_to_features(Motion(q, p, 20.0), layout)
    assert np.allclose(f[1:, layout.root_yaw_vel], 1.0 / (n - 1), atol=1e-6)
    assert (f[:, layout.contacts] == 0).all()  # feet slide along at 1 m/s with the pelvis: no contact
    still = motion_to_features(Motion(q[:1].repeat(n, 0), p[:1].repeat(n, 0), 20.0), layout)
    assert (still[:, layout.contacts] == 1).all()
