"""Shared set-up for the Blender add-on tests (imported by tests/test_addon_*.py).

`bpy` is imported once per process, with Blender's user folders (extensions, config, the
add-on's outbox) in a fresh temporary directory, never the developer's own. The repository root
goes on sys.path so `addon` (the add-on's source) imports as a package.

Fixtures for tests against a real server (import them by name into the test module):
`server` (a `server/serve.py` subprocess on the tiny checkpoint, one per module) and `addon` (the
built extension installed and enabled in a fresh scene). Also a Mixamo-style rig (`build_mixamo_rig`).
"""
from __future__ import annotations

import functools
import math
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if "bpy" not in sys.modules:
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="sopo-blender-user-")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import addon_utils  # noqa: E402  (bpy puts Blender's script modules on the path)

from shared import rotations as rot  # noqa: E402
from shared import skeleton  # noqa: E402

from addon import bone_maps  # noqa: E402
from server.service.server_process import ServerProcess  # noqa: E402

MODULE = "bl_ext.user_default.sopo_motion"  # the installed extension's package


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


# --- an artist's rig ------------------------------------------------------------------------------

PREFIX = "mixamorig:"
SCALE = 1.1  # the rig is 10% bigger than SMPL's template
# Extra Mixamo bones no SMPL joint drives: (name, parent, offset from the parent's head in cm, Y-up)
EXTRA = (("HeadTop_End", "Head", (0, 18, 0)), ("LeftHandIndex1", "LeftHand", (8, 0, 1)),
         ("RightHandIndex1", "RightHand", (-8, 0, 1)), ("LeftToe_End", "LeftToeBase", (0, 0, 6)),
         ("RightToe_End", "RightToeBase", (0, 0, 6)))


def _rotate_z(v, angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


def mixamo_rest_heads() -> dict:
    """Mixamo bone heads (cm, Y-up): SMPL's proportions scaled, arms lowered 40 degrees (an A-pose)."""
    joints = skeleton.REST_JOINTS * 100.0 * SCALE
    heads = {}
    for j, name in enumerate(skeleton.JOINT_NAMES):
        heads[PREFIX + bone_maps.MIXAMO[name]] = joints[j].copy()
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        shoulder = heads[f"{PREFIX}{side}Arm"]
        for bone in ("ForeArm", "Hand"):
            offset = heads[f"{PREFIX}{side}{bone}"] - shoulder
            heads[f"{PREFIX}{side}{bone}"] = shoulder + _rotate_z(offset, -sign * math.radians(40))
    for name, parent, offset in EXTRA:
        heads[PREFIX + name] = heads[PREFIX + parent] + np.array(offset, dtype=float)
    return heads


def build_mixamo_rig(floor_cm: float | None = None, location=(3.0, 1.0, 0.0)) -> bpy.types.Object:
    """A rig like an FBX import of a Mixamo character: Y-up cm bones, object rotated and scaled 0.01.
    floor_cm: stand it on the floor, its lowest foot point (toe ends) this high above its origin
    (by default its rest joints are SMPL's, the feet a metre below its origin)."""
    heads = mixamo_rest_heads()
    if floor_cm is not None:
        lowest = min(h[1] for name, h in heads.items() if "Foot" in name or "Toe" in name)
        for head in heads.values():
            head[1] += floor_cm - lowest
    parents = {PREFIX + bone_maps.MIXAMO[name]: (PREFIX + bone_maps.MIXAMO[skeleton.JOINT_NAMES[p]] if p >= 0 else None)
               for name, p in zip(skeleton.JOINT_NAMES, skeleton.PARENTS)}
    parents.update({PREFIX + name: PREFIX + parent for name, parent, _ in EXTRA})
    children = {}
    for bone, parent in parents.items():
        children.setdefault(parent, []).append(bone)
    data = bpy.data.armatures.new("Mixamo")
    obj = bpy.data.objects.new("Mixamo", data)
    bpy.context.scene.collection.objects.link(obj)
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.scale = (0.01, 0.01, 0.01)
    obj.location = location
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    rng = np.random.default_rng(1)
    for bone, head in heads.items():
        edit = data.edit_bones.new(bone)
        edit.head = head
        kids = [k for k in children.get(bone, []) if not k.endswith(("Index1", "_End"))]
        tail = heads[kids[0]] if len(kids) == 1 else head + np.array([0.0, 8.0, 0.0])
        edit.tail = tail
        edit.roll = float(rng.uniform(-math.pi, math.pi))  # rolls that match nothing in SMPL
    for bone, parent in parents.items():
        if parent is not None:
            data.edit_bones[bone].parent = data.edit_bones[parent]
    bpy.ops.object.mode_set(mode='OBJECT')
    return obj


# --- a real server and the installed extension ------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    data = tmp_path_factory.mktemp("server-data")
    shutil.copytree(tiny_checkpoint, data / "models" / "tiny")
    port = free_port()
    process = ServerProcess(data, "--checkpoint", "tiny", bind=f"tcp://127.0.0.1:{port}")
    yield process
    process.stop()


class Addon:
    """The installed extension's modules and preferences."""

    def __init__(self):
        self.session = sys.modules[f"{MODULE}.session"]
        self.candidates = sys.modules[f"{MODULE}.candidates"]
        self.prefs = bpy.context.preferences.addons[MODULE].preferences

    def module(self, name: str):
        return sys.modules[f"{MODULE}.{name}"]

    def poll_until(self, done, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out; status: {self.session.state().status}"
            self.session.poll_once()
            time.sleep(0.02)


@pytest.fixture
def addon() -> Addon:
    """The zip for this Blender (Python 3.11), built by build.py with its wheels and validated,
    installed once per process and enabled in a fresh scene."""
    reset_blender()
    if MODULE not in sys.modules:
        result = bpy.ops.extensions.package_install_files(
            filepath=str(built_zips()[0]), repo="user_default", enable_on_install=True)
        assert result == {'FINISHED'}
    else:
        addon_utils.enable(MODULE, default_set=True)
    loaded = Addon()
    assert Path(loaded.session.__file__).parent.parent.name == "user_default"  # the installed copy, not addon/
    yield loaded
    addon_utils.disable(MODULE, default_set=True)
