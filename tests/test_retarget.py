"""Retargeting onto SMPL-22: a synthetic SMPL source comes back exactly, real sources come out upright and right-handed."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from server.data.bvh import bvh_to_text, motion_to_bvh, parse_bvh, to_skeleton_motion
from server.data.retarget import JOINT_MAPS, RetargetError, detect_family, retarget
from server.data.skeleton_motion import drop_first_frame
from server.data.sources import iter_tar_texts
from shared import rotations as rot
from shared.motion import Motion

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _smpl_motion(T: int = 60, seed: int = 0) -> Motion:
    """A smooth random SMPL motion walking forward (+Z), joints bent within natural ranges."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, T)[:, None]
    aa = 0.35 * np.sin(t + rng.uniform(0, 6, (1, 22 * 3))) * rng.uniform(0.2, 1, (1, 22 * 3))
    aa = aa.reshape(T, 22, 3)
    aa[:, [4, 5], :] = 0.0
    aa[:, 4, 0] = aa[:, 5, 0] = 0.6 + 0.5 * np.sin(t[:, 0])  # knees bend about +x
    trans = np.stack([np.zeros(T), np.full(T, 0.95), np.linspace(0, 2, T)], axis=1)
    return Motion(rot.axis_angle_to_quat(aa).astype(np.float32), trans.astype(np.float32), 20.0)


def test_smpl_source_round_trip_reproduces_joint_positions():
    motion = _smpl_motion()
    source = to_skeleton_motion(parse_bvh(bvh_to_text(motion_to_bvh(motion))), include_end_sites=True)
    assert detect_family(source.names).family == "smpl-22"
    out, quality = retarget(source, JOINT_MAPS["smpl-22"])
    assert quality.bone_cos_mean > 0.995, quality
    a, b = motion.positions(), out.positions()
    # retargeting canonicalises placement (faces +Z at frame 0, pelvis over the origin, feet on y=0):
    # compare root-relative positions after the same heading turn
    a_rel, b_rel = a - a[:, :1], b - b[:, :1]
    fwd = lambda p: np.cross(p[0, 1] - p[0, 2] + p[0, 16] - p[0, 17], [0, 1, 0])  # noqa: E731
    ang = lambda v: np.arctan2(v[0], v[2])  # noqa: E731
    turn = rot.axis_angle_to_matrix(np.array([0.0, ang(fwd(a_rel)) - ang(fwd(b_rel)), 0.0]))
    err = np.linalg.norm(a_rel - b_rel @ turn.T, axis=-1)
    assert err.mean() < 0.02 and np.percentile(err, 99) < 0.06, (err.mean(), err.max())
    feet = b[:, [7, 8, 10, 11], 1].min(axis=1)
    assert abs(np.percentile(feet, 1)) < 1e-4  # lowest foot joint on the floor


def test_unknown_skeleton_is_named():
    motion = _smpl_motion(T=5)
    bvh = motion_to_bvh(motion)
    bvh.joints[1].name = "mystery"
    with pytest.raises(RetargetError, match="no joint map fits"):
        detect_family(to_skeleton_motion(bvh).names)


def _real(archive: str, member: str, scale: float, fps: float, drop_first: bool, end_sites: bool = False):
    path = SHARED / archive
    if not path.is_file():
        pytest.skip(f"team data not found at {path}")
    text = dict(iter_tar_texts(path, ".bvh"))[member] if member.endswith(".bvh") else None
    sm = to_skeleton_motion(parse_bvh(text), scale=scale, fps=fps, include_end_sites=end_sites)
    return drop_first_frame(sm) if drop_first else sm


@pytest.mark.parametrize("archive,member,family,scale,fps,drop,end_sites", [
    ("cmu/cmu_bvh_subject_02.tar.xz", "02/02_01.bvh", "cgspeed-mb-31", 0.056444, 40, True, False),
    ("cmu/cmu_bvh_subject_13.tar.xz", "13/13_11.bvh", "daz-friendly-43", 0.01, 40, True, True),
    ("extra/bandai_namco_1.tar.xz", "bandai_namco_1/dataset-1_walk_normal_001.bvh", "bandai-namco-22", 0.01, 30, False, False),
])
def test_real_sources_retarget_upright_forward_and_grounded(archive, member, family, scale, fps, drop, end_sites):
    source = _real(archive, member, scale, fps, drop, end_sites)
    motion, quality = retarget(source, JOINT_MAPS[family], target_fps=20)
    assert motion.fps == 20 and quality.bone_cos_mean >= 0.97, quality
    p = motion.positions()
    assert (p[:, 15, 1] > p[:, 0, 1] + 0.4).all() and (p[:, 0, 1] > p[:, [7, 8], 1].max(axis=1)).all()  # upright
    assert 1.3 < p[:, 15, 1].mean() < 1.8
    assert quality.penetration_frac < 0.05
    # left is +x when facing +Z at the first frame (SMPL's handedness)
    assert p[0, 16, 0] > p[0, 17, 0] and p[0, 1, 0] > p[0, 2, 0]
    # knees bend forward: the knee is in front of the hip-ankle line whenever bent
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        mid = (p[:, hip] + p[:, ankle]) / 2
        fwd = np.cross(p[:, 1] - p[:, 2], [0, 1, 0])
        fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
        bent = np.linalg.norm(p[:, ankle] - p[:, hip], axis=1) < 0.95 * (
            np.linalg.norm(p[:, knee] - p[:, hip], axis=1) + np.linalg.norm(p[:, ankle] - p[:, knee], axis=1))
        if bent.any():
            assert (np.sum((p[:, knee] - mid) * fwd, axis=1)[bent] > -0.01).mean() > 0.95
    if "walk" in member:
        travel = p[-1, 0] - p[0, 0]
        assert travel[2] > 1.0 and abs(travel[0]) < 0.5 * travel[2]  # walks the way it faces
        speed = np.linalg.norm(travel[[0, 2]]) / motion.duration
        assert 0.5 < speed < 2.0
