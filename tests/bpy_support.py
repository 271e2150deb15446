"""Shared set-up for the Blender add-on tests (imported by tests/test_addon_*.py).

`bpy` is imported once per process, with Blender's user folders (extensions, config, the
add-on's outbox) in a fresh temporary directory, never the developer's own. The repository root
goes on sys.path so `addon` (the add-on's source) imports as a package.
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if "bpy" not in sys.modules:
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="sopo-blender-user-")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

from shared import rotations as rot  # noqa: E402
from shared import skeleton  # noqa: E402


def reset_blender() -> None:
    """An empty factory scene (also drops data made by earlier tests)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)


def smooth_motion(count: int = 2, frames: int = 40, seed: int = 0):
    """(rotations (n, T, 22, 4) float32, translation (n, T, 3) float32): smooth random joint rotations
    (well over 90 degrees for some joints, so quaternion signs flip), walking forward along +Z."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 2.0 * np.pi, frames)[None, :, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, (count, 1, skeleton.NUM_JOINTS * 3))
    amplitude = rng.uniform(0.2, 1.2, (count, 1, skeleton.NUM_JOINTS * 3))
    aa = (amplitude * np.sin(t + phase)).reshape(count, frames, skeleton.NUM_JOINTS, 3)
    aa[:, :, 0, 1] += np.linspace(0.0, 3.5, frames)  # the pelvis turns past 180 degrees: signs must flip
    q = rot.axis_angle_to_quat(aa)
    q = np.where(rng.uniform(size=q.shape[:-1] + (1,)) < 0.3, -q, q)  # random signs, as a model may emit
    trans = np.zeros((count, frames, 3))
    trans[:, :, 1] = 0.92 + 0.03 * np.sin(3 * t[..., 0])
    trans[:, :, 2] = np.linspace(0.0, 2.0, frames)[None]
    trans[:, :, 0] = rng.normal(0.0, 0.1, (count, 1))
    return q.astype(np.float32), trans.astype(np.float32)


def linear_blend_skinning(rotations, translation, vertices, weights, rest_joints=None) -> np.ndarray:
    """(V, 3) SMPL's LBS of rest `vertices` (V, 3) with `weights` (V, 22) for one frame's rotations
    (22, 4) and pelvis translation (3,), in the motion's Y-up space: sum_j w_j (G_j (v - J_j) + P_j)."""
    from shared.motion import forward_kinematics, global_rotations

    joints = skeleton.REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    G = rot.quat_to_matrix(global_rotations(rotations))  # (22, 3, 3)
    P = forward_kinematics(rotations, translation, joints)  # (22, 3)
    per_bone = np.einsum("jab,vjb->vja", G, np.asarray(vertices)[:, None, :] - joints[None]) + P[None]
    return np.einsum("vj,vja->va", weights, per_bone)


def evaluated_vertices(obj) -> np.ndarray:
    """(V, 3) vertices of a mesh object after its modifiers, in its own space, at the current frame."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        return np.array([v.co for v in mesh.vertices])
    finally:
        evaluated.to_mesh_clear()


@functools.lru_cache(maxsize=None)
def built_zips() -> tuple[Path, ...]:
    """build.py's zips (with their pyzmq wheels, validated), built once per test session."""
    import build

    return tuple(build.build(out_dir=Path(tempfile.mkdtemp(prefix="sopo-dist-"))))
