"""Apply a candidate's motion to the artist's own armature through a bone map.

World-space transfer, so rest poses, bone rolls, armature axes and units may all differ:
1. Read the candidate's keys back as SMPL local rotations and pelvis translation.
2. For each mapped bone b of SMPL joint i, an alignment A_b (target armature space) turns b's
   rest direction (its head to the head of the bone mapped to i's main child) onto the SMPL
   rest direction; for the pelvis and the chest a second axis (left minus right) fixes the twist
   too; joints without a mapped child (head, wrists, toes) take their mapped parent's.
3. Per frame, the bone's armature-space rotation is W_b = K G_i K^T A_b R_b, with G_i the SMPL
   joint's world rotation, K the rotation from the candidate's armature space to the rig's, and
   R_b the bone's rest orientation: the bone turns exactly as the SMPL joint does, measured from
   a rest pose matched to SMPL's. The hips move by K (translation - standing pelvis), scaled by
   the ratio of leg lengths.
4. Walking the rig's hierarchy turns these into pose-bone `rotation_quaternion` (and the hips'
   `location`), keyed in bulk as a new Action on the rig, ready for the FBX/BVH exporters.
"""
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import bone_maps, candidates, keyframes
from .vendored import motion as shared_motion
from .vendored import rotations as rot
from .vendored import skeleton

MAIN_CHILD = {"pelvis": "spine1", "spine3": "neck"}  # where a joint has several children
SIDE_PAIRS = {"pelvis": ("left_hip", "right_hip"), "spine3": ("left_shoulder", "right_shoulder")}
LEGS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))


class RetargetError(ValueError):
    """The source or target cannot be used; the message says why."""


@dataclass
class Result:
    action: bpy.types.Action
    mapping: dict
    scale: float
    warnings: list = field(default_factory=list)


def read_candidate(obj: bpy.types.Object):
    """(frames (T,), rotations (T, 22, 4), translation (T, 3), rest heads (22, 3)) from a candidate's keys."""
    frames = keyframes.key_frames(obj, candidates.bone_rotation_path(skeleton.JOINT_NAMES[0]))
    if len(frames) == 0:
        raise RetargetError(f"{obj.name} has no motion keys")
    paths = {candidates.bone_rotation_path(name): 4 for name in skeleton.JOINT_NAMES}
    paths[candidates.PELVIS_LOCATION_PATH] = 3
    sampled = keyframes.sample_fcurves(obj, paths, frames)
    rotations = np.stack([sampled[candidates.bone_rotation_path(n)] for n in skeleton.JOINT_NAMES], axis=1)
    rotations = rot.quat_normalize(rotations)
    heads = np.array([obj.data.bones[name].head_local for name in skeleton.JOINT_NAMES], dtype=np.float64)
    return frames, rotations, sampled[candidates.PELVIS_LOCATION_PATH], heads


def _rotation(matrix) -> np.ndarray:
    """The rotation part of a Blender matrix, without scale."""
    m = np.array(matrix, dtype=np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1.0, 1.0, -1.0]) @ vt


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal 3x3 with columns (primary, secondary made orthogonal, their cross)."""
    a = primary / np.linalg.norm(primary)
    b = secondary - a * np.dot(a, secondary)
    b /= np.linalg.norm(b)
    return np.stack([a, b, np.cross(a, b)], axis=1)


def _alignments(mapping: dict, src_heads: np.ndarray, tgt_heads: dict, K: np.ndarray) -> dict:
    """A_b for every mapped joint (3x3, target armature space), parents before children."""
    src = {name: K @ src_heads[j] for j, name in enumerate(skeleton.JOINT_NAMES)}
    out = {}
    for j, joint in enumerate(skeleton.JOINT_NAMES):
        if joint not in mapping:
            continue
        children = [skeleton.JOINT_NAMES[c] for c in skeleton.CHILDREN[j]]
        child = MAIN_CHILD.get(joint, children[0] if children else None)
        if child is None or child not in mapping:
            parent = skeleton.PARENTS[j]
            while parent >= 0 and skeleton.JOINT_NAMES[parent] not in out:
                parent = skeleton.PARENTS[parent]
            out[joint] = out[skeleton.JOINT_NAMES[parent]] if parent >= 0 else np.eye(3)
            continue
        d_src = src[child] - src[joint]
        d_tgt = tgt_heads[mapping[child]] - tgt_heads[mapping[joint]]
        sides = SIDE_PAIRS.get(joint)
        if sides and all(s in mapping for s in sides):
            s_src = src[sides[0]] - src[sides[1]]
            s_tgt = tgt_heads[mapping[sides[0]]] - tgt_heads[mapping[sides[1]]]
            out[joint] = _frame(d_src, s_src) @ _frame(d_tgt, s_tgt).T
        else:
            out[joint] = rot.quat_to_matrix(rot.quat_between(d_tgt, d_src))
    return out


def _leg_length(points: dict, names) -> float | None:
    lengths = [sum(np.linalg.norm(points[b] - points[a]) for a, b in zip(leg, leg[1:]))
               for leg in LEGS if all(n in names for n in leg)]
    return float(np.mean(lengths)) if lengths else None


def _topological(bones, wanted: set) -> list:
    """`wanted` bones and all their ancestors, parents first."""
    keep = set()
    for name in wanted:
        bone = bones[name]
        while bone is not None and bone.name not in keep:
            keep.add(bone.name)
            bone = bone.parent
    depth = {name: len(bones[name].parent_recursive) for name in keep}
    return sorted(keep, key=lambda n: (depth[n], n))


def apply_to_rig(scene, source: bpy.types.Object, target: bpy.types.Object, map_kind: str = 'AUTO',
                 map_file: str = "") -> Result:
    """Key `source`'s motion onto `target` as a new Action; returns it with the map used."""
    if target.type != 'ARMATURE':
        raise RetargetError(f"{target.name} is not an armature")
    if source is None or candidates.CANDIDATE_KEY not in source:
        raise RetargetError("the source must be a generated candidate")
    bones = target.data.bones
    mapping = bone_maps.resolve(map_kind, bones.keys(), map_file)
    frames, local, translation, src_heads = read_candidate(source)
    T = len(frames)
    warnings = []

    K = _rotation(target.matrix_world).T @ _rotation(source.matrix_world)
    rest = {b.name: np.array(b.matrix_local, dtype=np.float64) for b in bones}
    tgt_heads = {name: m[:3, 3] for name, m in rest.items()}
    align = _alignments(mapping, src_heads, tgt_heads, K)

    src_points = {name: src_heads[j] for j, name in enumerate(skeleton.JOINT_NAMES)}
    tgt_points = {joint: tgt_heads[bone] for joint, bone in mapping.items()}
    src_leg, tgt_leg = _leg_length(src_points, skeleton.JOINT_NAMES), _leg_length(tgt_points, mapping)
    if tgt_leg is None:
        scale = float(np.mean(target.matrix_world.to_scale())) ** -1
        warnings.append("no legs in the bone map: root motion is not scaled to the rig")
    else:
        scale = tgt_leg / src_leg
    standing = np.array([0.0, -skeleton.floor_height(src_heads), 0.0])  # pelvis above the feet at rest

    world = rot.quat_to_matrix(shared_motion.global_rotations(local))  # (T, 22, 3, 3) SMPL joint world
    joint_of = {bone: joint for joint, bone in mapping.items()}
    root_joint = skeleton.JOINT_NAMES[0]
    pose = {}  # bone -> (T, 4, 4) armature-space pose matrices
    channels = []
    for name in _topological(bones, set(mapping.values())):
        bone = bones[name]
        parent_pose = pose[bone.parent.name] if bone.parent else np.broadcast_to(np.eye(4), (T, 4, 4))
        local_rest = rest[name] if bone.parent is None else np.linalg.inv(rest[bone.parent.name]) @ rest[name]
        chain = parent_pose @ local_rest
        joint = joint_of.get(name)
        if joint is None:
            pose[name] = chain @ np.array(target.pose.bones[name].matrix_basis, dtype=np.float64)
            continue
        j = skeleton.JOINT_INDEX[joint]
        M = np.array(chain)
        M[:, :3, :3] = K @ world[:, j] @ K.T @ align[joint] @ rest[name][:3, :3]
        if joint == root_joint:
            M[:, :3, 3] = tgt_heads[name] + scale * (translation - standing) @ K.T
        pose[name] = M
        basis = np.linalg.inv(chain) @ M
        quat = rot.quat_fix_continuity(rot.matrix_to_quat(basis[:, :3, :3]), axis=0)
        channels.append((f'pose.bones["{name}"].rotation_quaternion', name, quat))
        if joint == root_joint:
            channels.append((f'pose.bones["{name}"].location', name, basis[:, :3, 3]))
        target.pose.bones[name].rotation_mode = 'QUATERNION'

    constrained = [b for b in mapping.values() if any(c.enabled for c in target.pose.bones[b].constraints)]
    if constrained:
        warnings.append(f"{len(constrained)} mapped bones have constraints that override their keys "
                        f"(e.g. {constrained[0]}); mute them or bake")
    prompt = " ".join(str(source.users_collection[0].get("sopo_prompt", "")).split())[:40] \
        if source.users_collection else ""
    action = keyframes.write_action(target, f"{target.name} {prompt}".strip(), frames, channels)
    scene.frame_start = int(np.floor(frames[0]))
    scene.frame_end = max(scene.frame_start, int(np.ceil(frames[-1] - 1e-6)))
    return Result(action, mapping, scale, warnings)
