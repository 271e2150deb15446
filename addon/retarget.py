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
4. Feet on the floor (feet.py): the hips move so the rig's lowest foot points meet their rest
   height in the source's contact frames, and two-bone IK pins each foot while it is down. Frames
   the request pinned to a rig's pose (Start from the current pose, End at the pose at frame N:
   `candidates.PINNED_KEY`) are left exactly as transferred, so the rig continues from where it
   stood: both corrections fade in over `FADE_SECONDS` away from them (as the server fades its own
   corrections towards a pinned pose).
5. Walking the rig's hierarchy turns these into pose-bone `rotation_quaternion` (and the hips'
   `location`), keyed in bulk as an Action on the rig (replacing the previous one made here unless
   it is kept), ready for the FBX/BVH exporters.
"""
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import bone_maps, candidates, feet, keyframes, shaping
from .vendored import motion as shared_motion
from .vendored import rotations as rot
from .vendored import skeleton

MAIN_CHILD = {"pelvis": "spine1", "spine3": "neck"}  # where a joint has several children
SIDE_PAIRS = {"pelvis": ("left_hip", "right_hip"), "spine3": ("left_shoulder", "right_shoulder")}
LEGS = (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle"))
FADE_SECONDS = 0.5  # feet corrections fade in this far from a pinned frame (the server's fix-up: 10 frames at 20 fps)


class RetargetError(ValueError):
    """The source or target cannot be used; the message says why."""


@dataclass
class Result:
    action: bpy.types.Action
    mapping: dict
    scale: float
    warnings: list = field(default_factory=list)
    height_offset: float = 0.0  # metres (world) the hips were raised to put the feet on the floor
    pinned_frames: int = 0  # foot-frames pinned by foot locking


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


def pinned_weights(source: bpy.types.Object, frames: np.ndarray, scene) -> np.ndarray | None:
    """(T,) how much of the feet corrections each key frame gets: 0 at the frames its request pinned to a rig's
    pose, 1 from `FADE_SECONDS` away (smoothstep between); None when nothing was pinned."""
    collection = source.users_collection[0] if source.users_collection else None
    pins = collection.get(candidates.PINNED_KEY) if collection is not None else None
    if not pins or len(frames) == 0:
        return None
    trim = shaping.Shape.from_dict(collection.get("sopo_shape")).trim
    times = (max(0.0, trim[0]) if trim else 0.0) + (np.asarray(frames) - frames[0]) / keyframes.scene_fps(scene)
    x = np.clip(np.min(np.abs(times[:, None] - np.asarray(list(pins), dtype=np.float64)[None]), axis=1)
                / FADE_SECONDS, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


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


def _descendants(bones, names) -> set:
    out = set()
    for name in names:
        out |= {child.name for child in bones[name].children_recursive}
    return out


def _solve(target, order, rest, rotations, root_bone, root) -> tuple[dict, dict]:
    """Armature-space pose matrices (T, 4, 4) of the bones in `order` (parents first), and each one's
    parent chain (the pose it would have with an identity basis): mapped bones take their rotation
    from `rotations`, the root its position from `root`, other bones their current basis."""
    bones = target.data.bones
    T = len(root)
    pose, chains = {}, {}
    for name in order:
        bone = bones[name]
        parent_pose = pose[bone.parent.name] if bone.parent else np.broadcast_to(np.eye(4), (T, 4, 4))
        local_rest = rest[name] if bone.parent is None else np.linalg.inv(rest[bone.parent.name]) @ rest[name]
        chain = parent_pose @ local_rest
        chains[name] = chain
        if name not in rotations:
            pose[name] = chain @ np.array(target.pose.bones[name].matrix_basis, dtype=np.float64)
            continue
        M = np.array(chain)
        M[:, :3, :3] = rotations[name]
        if name == root_bone:
            M[:, :3, 3] = root
        pose[name] = M
    return pose, chains


class _Feet:
    """The rig's feet: which bones, their lowest point's world height per frame and at rest."""

    def __init__(self, target, mapping: dict, rest: dict):
        bones = target.data.bones
        self.world = np.array(target.matrix_world, dtype=np.float64)
        self.legs, self.points = {}, {}
        for side in feet.SIDES:
            leg = [mapping.get(f"{side}_{joint}") for joint in ("hip", "knee", "ankle")]
            foot = [b for b in (mapping.get(f"{side}_ankle"), mapping.get(f"{side}_foot")) if b]
            if None in leg:
                continue
            self.legs[side] = leg
            self.points[side] = sorted(set(foot) | _descendants(bones, foot))
        self.lengths = {b.name: b.length for b in bones}
        self.rest = {side: float(self.lowest({n: rest[n][None] for n in names}, side)[0])
                     for side, names in self.points.items()}

    @property
    def bones(self) -> set:
        return {b for names in self.points.values() for b in names}

    def lowest(self, pose: dict, side: str) -> np.ndarray:
        """(T,) world height of the lowest head or tail of the side's foot bones."""
        heights = []
        for name in self.points[side]:
            m = pose[name]
            for y in (0.0, self.lengths[name]):
                p = m[:, :3, :3] @ np.array([0.0, y, 0.0]) + m[:, :3, 3]
                heights.append(p @ self.world[2, :3] + self.world[2, 3])
        return np.min(heights, axis=0)

    def to_world(self, p: np.ndarray) -> np.ndarray:
        return p @ self.world[:3, :3].T + self.world[:3, 3]

    def to_armature(self, p: np.ndarray) -> np.ndarray:
        inverse = np.linalg.inv(self.world)
        return p @ inverse[:3, :3].T + inverse[:3, 3]


def apply_to_rig(scene, source: bpy.types.Object, target: bpy.types.Object, map_kind: str = 'AUTO',
                 map_file: str = "", *, feet_on_floor: bool = True, lock_feet: bool = True, name: str = "",
                 keep_previous: bool = False) -> Result:
    """Key `source`'s motion onto `target` as an Action; returns it with the map used.

    feet_on_floor: raise or lower the hips so the rig's feet meet the floor in contact frames as they
    do in its rest pose, and lift feet that would go below it; lock_feet: also pin each foot while it
    is down (two-bone IK on the legs). name: the Action's name (default "<rig> <prompt>").
    keep_previous: leave the rig's previous Action from here (with a fake user) instead of replacing it."""
    if target.type != 'ARMATURE':
        raise RetargetError(f"{target.name} is not an armature")
    if source is None or candidates.CANDIDATE_KEY not in source:
        raise RetargetError("the source must be a generated candidate")
    bones = target.data.bones
    mapping = bone_maps.resolve(map_kind, bones.keys(), map_file)
    frames, local, translation, src_heads = read_candidate(source)
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
    root_bone = mapping[skeleton.JOINT_NAMES[0]]
    rotations = {bone: K @ world[:, skeleton.JOINT_INDEX[joint]] @ K.T @ align[joint] @ rest[bone][:3, :3]
                 for joint, bone in mapping.items()}
    root = tgt_heads[root_bone] + scale * (translation - standing) @ K.T
    rig_feet = _Feet(target, mapping, rest)
    order = _topological(bones, set(mapping.values()) | rig_feet.bones)
    pose, chains = _solve(target, order, rest, rotations, root_bone, root)

    offset, pinned = 0.0, 0
    weight = pinned_weights(source, frames, scene)  # None, or (T,): 0 where the rig's own pose was pinned
    if feet_on_floor and len(rig_feet.legs) == 2 and len(frames) > 1:
        positions = shared_motion.forward_kinematics(local, translation, src_heads)
        dt = np.diff(frames) / keyframes.scene_fps(scene)
        down = feet.contacts(positions, src_heads, dt)
        lowest = {side: rig_feet.lowest(pose, side) for side in rig_feet.legs}
        offset = feet.height_offset(lowest, rig_feet.rest, down)
        up = np.linalg.inv(rig_feet.world)[:3, :3] @ np.array([0.0, 0.0, 1.0])
        root = root + (offset if weight is None else offset * weight[:, None]) * up
        pose, chains = _solve(target, order, rest, rotations, root_bone, root)
        forward = np.einsum("ij,tjk,k->ti", K, world[:, 0], np.array([0.0, 0.0, 1.0]))
        pins = {side: down[side] if lock_feet else np.zeros(len(frames), dtype=bool) for side in rig_feet.legs}

        def goals(pose):
            out = {}
            for side, (_, _, ankle) in rig_feet.legs.items():
                here = rig_feet.to_world(pose[ankle][:, :3, 3])
                target = feet.ankle_targets(here, rig_feet.lowest(pose, side), rig_feet.rest[side], pins[side],
                                            np.array([0.0, 0.0, 1.0]))
                if weight is not None:
                    target = here + weight[:, None] * (target - here)
                out[side] = rig_feet.to_armature(target)
            return out

        goal = goals(pose)
        drop = feet.hip_drop([(pose[h][:, :3, 3], pose[k][:, :3, 3], pose[a][:, :3, 3], goal[side])
                              for side, (h, k, a) in rig_feet.legs.items()], up)
        if drop.any():
            root = root - drop[:, None] * up / np.linalg.norm(up)
            pose, chains = _solve(target, order, rest, rotations, root_bone, root)
            goal = goals(pose)
        for side, (hip, knee, ankle) in rig_feet.legs.items():
            move = np.linalg.norm(goal[side] - pose[ankle][:, :3, 3], axis=1) > 1e-6 * max(scale, 1e-9)
            if not move.any():
                continue
            r1, r2 = feet.two_bone_ik(pose[hip][:, :3, 3], pose[knee][:, :3, 3], pose[ankle][:, :3, 3],
                                      goal[side], forward)
            eye = np.eye(3)
            rotations[hip] = np.where(move[:, None, None], r1, eye) @ rotations[hip]
            rotations[knee] = np.where(move[:, None, None], r2 @ r1, eye) @ rotations[knee]
            pinned += int(pins[side].sum())
        pose, chains = _solve(target, order, rest, rotations, root_bone, root)
    elif feet_on_floor:
        warnings.append("feet not put on the floor: the bone map needs both legs (hip, knee, ankle)")

    channels = []
    for bone_name in order:
        if bone_name not in rotations:
            continue
        basis = np.linalg.inv(chains[bone_name]) @ pose[bone_name]
        quat = rot.quat_fix_continuity(rot.matrix_to_quat(basis[:, :3, :3]), axis=0)
        channels.append((f'pose.bones["{bone_name}"].rotation_quaternion', bone_name, quat))
        if bone_name == root_bone:
            channels.append((f'pose.bones["{bone_name}"].location', bone_name, basis[:, :3, 3]))
        target.pose.bones[bone_name].rotation_mode = 'QUATERNION'

    constrained = [b for b in mapping.values() if any(c.enabled for c in target.pose.bones[b].constraints)]
    if constrained:
        warnings.append(f"{len(constrained)} mapped bones have constraints that override their keys "
                        f"(e.g. {constrained[0]}); mute them or bake")
    prompt = " ".join(str(source.users_collection[0].get("sopo_prompt", "")).split())[:40] \
        if source.users_collection else ""
    previous = target.animation_data.action if target.animation_data else None
    if previous is not None and previous.get("sopo_applied"):
        if keep_previous:
            previous.use_fake_user = True  # kept means kept: it survives saving without a user
        elif previous.users == 1:
            target.animation_data.action = None
            bpy.data.actions.remove(previous)  # Apply again replaces: no "name.001" pile-up
    source_action = source.animation_data.action if source.animation_data else None
    whole = bool(source_action.get("sopo_whole_frames", True)) if source_action is not None else True
    action = keyframes.write_action(target, name.strip() or f"{target.name} {prompt}".strip(), frames, channels,
                                    whole_frames=whole, scene=scene)
    action["sopo_applied"] = True
    action["sopo_source"] = source.name
    scene.frame_start = int(np.floor(frames[0]))
    scene.frame_end = max(scene.frame_start, int(np.ceil(frames[-1] - 1e-6)))
    return Result(action, mapping, scale, warnings, offset, pinned)
