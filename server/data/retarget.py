"""Retarget a source skeleton's motion onto SMPL-22: one retargeter, a small joint map per skeleton.

How it works (no source rest pose is SMPL's, so nothing here relies on a source rest pose
except for its leg length):
1. Source joint positions come from the source's own forward kinematics (`SkeletonMotion`),
   and each SMPL joint is mapped to a source point: a source joint, a point between two
   source joints, or (spine1/2/3) a point at SMPL's arc-length fraction along the source
   spine chain.
2. World orientations of the SMPL joints are solved from bone DIRECTIONS: each joint's
   frame maps its SMPL rest bone to the source bone exactly (primary direction) and a
   secondary direction as closely as possible. For the limbs the secondary direction is
   the knee/elbow hinge axis (from the bend when the limb is bent, from the foot for a
   straight leg, from the minimal swing of the parent frame for a straight arm), so knees
   and elbows bend about their hinge and limbs do not twist.
3. Local rotations follow from the world ones; the root translation is the source pelvis
   scaled by SMPL's leg length over the source's; the clip is turned to face +Z at its
   first frame with the pelvis above the origin, and put with its feet on the floor (y = 0
   at the lowest foot joint, as HumanML3D does).
4. Quality is measured on every clip: bone-direction cosine between source and result,
   foot skating and ground penetration (see `RetargetQuality`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from server.data.skeleton_motion import SkeletonMotion
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import (FOOT_JOINTS, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS, REST_JOINTS,
                             leg_length)


class RetargetError(ValueError):
    """A motion cannot be retargeted (unknown joints, degenerate skeleton, bad values)."""


# A source point for one SMPL joint: a joint name, or (joint_a, joint_b, alpha) = lerp(a, b, alpha).
SourcePoint = str | tuple[str, str, float]


@dataclass(frozen=True)
class JointMap:
    """How one source skeleton family maps onto SMPL-22.

    `joints` maps every SMPL joint except spine1/2/3 to a source point; `spine_chain` lists
    source joints from the pelvis up to the neck base, along which spine1/2/3 are placed at
    SMPL's arc-length fractions.
    """

    family: str
    joints: dict[str, SourcePoint]
    spine_chain: tuple[str, ...]


def _side(left: str, right: str, **pairs: SourcePoint) -> dict[str, SourcePoint]:
    return {f"{side}_{k}": (v.format(L=left, R=right, S=s) if isinstance(v, str)
                            else (v[0].format(S=s), v[1].format(S=s), v[2]))
            for side, s in (("left", left), ("right", right)) for k, v in pairs.items()}


# CMU's ASF skeleton in Bruce Hahne's MotionBuilder-friendly BVH ("cgspeed", 31 joints): a BVH
# joint sits at the START of its ASF bone (LeftUpLeg = hip, LeftLeg = knee, LeftFoot = ankle).
CGSPEED = JointMap(
    "cgspeed-mb-31",
    {"pelvis": "Hips", "neck": "Neck1", "head": "Head",
     **_side("Left", "Right", hip="{S}UpLeg", knee="{S}Leg", ankle="{S}Foot", foot="{S}ToeBase",
             collar=("{S}Shoulder", "{S}Arm", 0.45), shoulder="{S}Arm", elbow="{S}ForeArm", wrist="{S}Hand")},
    ("Hips", "Spine", "Spine1", "Neck"),
)
# The same ASF skeleton with its original bone names (CMU 16_xx in our data).
ASF_NAMES = JointMap(
    "asf-names-31",
    {"pelvis": "hip", "neck": "upperneck", "head": "head",
     **_side("l", "r", hip="{S}femur", knee="{S}tibia", ankle="{S}foot", foot="{S}toes",
             collar=("{S}clavicle", "{S}humerus", 0.45), shoulder="{S}humerus", elbow="{S}radius", wrist="{S}wrist")},
    ("hip", "upperback", "thorax", "lowerneck"),
)
# DAZ-friendly 43-joint conversion (CMU 10-14 in our data). lFoot has no toe joint: its end site is the toe.
DAZ = JointMap(
    "daz-friendly-43",
    {"pelvis": "hip", "neck": "neck", "head": "head",
     **_side("l", "r", hip="{S}Thigh", knee="{S}Shin", ankle="{S}Foot", foot="{S}Foot_end",
             collar=("{S}Collar", "{S}Shldr", 0.45), shoulder="{S}Shldr", elbow="{S}ForeArm", wrist="{S}Hand")},
    ("hip", "abdomen", "chest", "neck"),
)
# Bandai Namco Research Motion Dataset 1 and 2 (22 joints, bones along local +X at rest).
BANDAI = JointMap(
    "bandai-namco-22",
    {"pelvis": "Hips", "neck": "Neck", "head": "Head",
     **{f"{side}_{k}": v.format(S=s) if isinstance(v, str) else (v[0].format(S=s), v[1].format(S=s), v[2])
        for side, s in (("left", "L"), ("right", "R"))
        for k, v in dict(hip="UpperLeg_{S}", knee="LowerLeg_{S}", ankle="Foot_{S}", foot="Toes_{S}",
                         collar=("Shoulder_{S}", "UpperArm_{S}", 0.45), shoulder="UpperArm_{S}",
                         elbow="LowerArm_{S}", wrist="Hand_{S}").items()}},
    ("Hips", "Spine", "Chest", "Neck"),
)

# Li et al. 2018's CMU exp-map set: the same ASF bones (server/data/sources.py LI2018_NAMES).
LI2018 = JointMap(
    "li2018-38",
    {**ASF_NAMES.joints, "pelvis": "root"},
    ("root", "upperback", "thorax", "lowerneck"),
)
# DeepMimic's humanoid3d (15 bodies): no collars or toes; toes and head are points fixed to its bodies.
DEEPMIMIC = JointMap(
    "deepmimic-humanoid3d",
    {"pelvis": "root", "neck": "neck", "head": "head",
     **{f"{side}_{k}": v.format(S=side) if isinstance(v, str) else (v[0], v[1].format(S=side), v[2])
        for side in ("left", "right")
        for k, v in dict(hip="{S}_hip", knee="{S}_knee", ankle="{S}_ankle", foot="{S}_toe",
                         collar=("neck", "{S}_shoulder", 0.5), shoulder="{S}_shoulder", elbow="{S}_elbow",
                         wrist="{S}_wrist").items()}},
    ("root", "chest", "neck"),
)
# Our own SMPL-22 BVH export (server/data/bvh.py motion_to_bvh), so exported motions come back in.
SMPL = JointMap(
    "smpl-22",
    {name: name for name in JOINT_NAMES if name not in ("spine1", "spine2", "spine3")},
    ("pelvis", "spine1", "spine2", "spine3", "neck"),
)

JOINT_MAPS: dict[str, JointMap] = {m.family: m for m in (CGSPEED, ASF_NAMES, DAZ, BANDAI, LI2018, DEEPMIMIC, SMPL)}


def register_joint_map(joint_map: JointMap) -> None:
    """Add a skeleton family (e.g. from a user's JSON map) to the known ones."""
    JOINT_MAPS[joint_map.family] = joint_map


def detect_family(names: list[str]) -> JointMap:
    """The known joint map whose source names all exist in `names` (user BVH folders)."""
    have = set(names)
    for joint_map in JOINT_MAPS.values():
        if set(_required_names(joint_map)) <= have:
            return joint_map
    raise RetargetError(f"no joint map fits a skeleton with joints {sorted(have)[:12]}...; "
                        f"known families: {sorted(JOINT_MAPS)}")


def _required_names(joint_map: JointMap) -> list[str]:
    out = list(joint_map.spine_chain)
    for point in joint_map.joints.values():
        out.extend([point] if isinstance(point, str) else [point[0], point[1]])
    return out


# ----------------------------------------------------------------------------------------------
# Geometry helpers (all vectorised over frames)

def _normalize(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(..., 3, 3) orthonormal frame with columns (e1 along primary, e2 = secondary made orthogonal, e1 x e2)."""
    e1 = _normalize(primary)
    e2 = _normalize(secondary - np.sum(secondary * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def _align(primary: np.ndarray, secondary: np.ndarray, rest_primary: np.ndarray, rest_secondary: np.ndarray) -> np.ndarray:
    """World rotation taking the rest pair of directions onto the target pair (primary exactly)."""
    return _frame(primary, secondary) @ np.swapaxes(_frame(rest_primary, rest_secondary), -1, -2)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _spine_fractions() -> np.ndarray:
    """Arc-length fractions of spine1, spine2, spine3 along SMPL's pelvis -> neck chain."""
    chain = REST_JOINTS[[0, 3, 6, 9, 12]]
    seg = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    return np.cumsum(seg)[:3] / seg.sum()


def map_positions(source: SkeletonMotion, joint_map: JointMap, positions: np.ndarray | None = None) -> np.ndarray:
    """(T, 22, 3) source points for the SMPL joints, from the source's world joint positions.

    Returns the mapped points with spine1/2/3 interpolated along the spine chain; call
    `_interpolate_spine` again after moving the pelvis point.
    """
    if positions is None:
        positions = source.global_transforms()[1]
    index = {name: i for i, name in enumerate(source.names)}
    missing = [n for n in _required_names(joint_map) if n not in index]
    if missing:
        raise RetargetError(f"{joint_map.family}: source skeleton lacks joints {missing}")
    out = np.zeros((positions.shape[0], NUM_JOINTS, 3))
    for smpl_name, point in joint_map.joints.items():
        if isinstance(point, str):
            out[:, JOINT_INDEX[smpl_name]] = positions[:, index[point]]
        else:
            a, b, alpha = point
            out[:, JOINT_INDEX[smpl_name]] = (1 - alpha) * positions[:, index[a]] + alpha * positions[:, index[b]]
    chain = positions[:, [index[n] for n in joint_map.spine_chain]]
    return _interpolate_spine(out, chain)


def _interpolate_spine(points: np.ndarray, chain: np.ndarray) -> np.ndarray:
    """Place spine1/2/3 at SMPL's arc-length fractions along the polyline pelvis point -> chain[1:] (T, K, 3)."""
    poly = np.concatenate([points[:, :1], chain[:, 1:]], axis=1)
    seg = np.linalg.norm(np.diff(poly, axis=1), axis=-1)  # (T, K-1)
    cum = np.concatenate([np.zeros((len(seg), 1)), np.cumsum(seg, axis=1)], axis=1)
    cum /= np.maximum(cum[:, -1:], 1e-9)
    out = points.copy()
    rows = np.arange(len(poly))
    for smpl_joint, f in zip((3, 6, 9), _spine_fractions()):
        k = np.clip((cum < f).sum(axis=1) - 1, 0, seg.shape[1] - 1)
        alpha = ((f - cum[rows, k]) / np.maximum(cum[rows, k + 1] - cum[rows, k], 1e-9))[:, None]
        out[:, smpl_joint] = (1 - alpha) * poly[rows, k] + alpha * poly[rows, k + 1]
    return out


def source_leg_length(source: SkeletonMotion, joint_map: JointMap) -> float:
    """Hip-knee-ankle length of the source skeleton (metres), from its rest pose."""
    rest = map_positions(source, joint_map, source.rest_positions()[None])[0]
    return leg_length(rest)


# ----------------------------------------------------------------------------------------------
# The solver

_LEG_HINGE_REST = np.array([1.0, 0.0, 0.0])  # knees flex about +x (shin goes backward)
_ARM_HINGE_REST = {16: np.array([0.0, -1.0, 0.0]), 17: np.array([0.0, 1.0, 0.0])}  # elbows flex forward


def solve_global_rotations(points: np.ndarray, rest_joints: np.ndarray = REST_JOINTS) -> np.ndarray:
    """(T, 22, 3, 3) world rotations of the SMPL joints that best reproduce the source points' bone directions."""
    P, J = points, rest_joints
    T = P.shape[0]
    G = np.tile(np.eye(3), (T, NUM_JOINTS, 1, 1))

    def rest_vec(v: np.ndarray) -> np.ndarray:
        return np.broadcast_to(v, (T, 3))

    lat_hip, lat_sh = _normalize(P[:, 1] - P[:, 2]), _normalize(P[:, 16] - P[:, 17])
    rlat_hip, rlat_sh = _normalize(J[1] - J[2]), _normalize(J[16] - J[17])
    # pelvis: the hip line exactly, the trunk (hips to upper spine) as up
    mid, rmid = (P[:, 1] + P[:, 2]) / 2, (J[1] + J[2]) / 2
    G[:, 0] = _align(lat_hip, P[:, 9] - mid, rest_vec(rlat_hip), rest_vec(J[9] - rmid))
    # spine: each bone exactly, sideways blended from the hip line to the shoulder line
    for joint, child, w in ((3, 6, 0.33), (6, 9, 0.67), (9, 12, 1.0), (12, 15, 1.0)):
        side = (1 - w) * lat_hip + w * lat_sh
        rside = (1 - w) * rlat_hip + w * rlat_sh
        G[:, joint] = _align(P[:, child] - P[:, joint], side, rest_vec(J[child] - J[joint]), rest_vec(rside))
    G[:, 15] = G[:, 12]
    # collars: the collar bone exactly, up from the upper spine
    up9 = G[:, 9] @ np.array([0.0, 1.0, 0.0])
    for joint, child in ((13, 16), (14, 17)):
        G[:, joint] = _align(P[:, child] - P[:, joint], up9, rest_vec(J[child] - J[joint]), rest_vec(np.array([0.0, 1.0, 0.0])))
    # legs: hinge from the knee bend, or from the foot when the leg is straight
    for hip, knee, ankle, foot in ((1, 4, 7, 10), (2, 5, 8, 11)):
        thigh, shin, toe = P[:, knee] - P[:, hip], P[:, ankle] - P[:, knee], P[:, foot] - P[:, ankle]
        hinge = _hinge(thigh, shin, fallback=_normalize(np.cross(toe, thigh)), lo=8.0, hi=25.0)
        h0 = rest_vec(_LEG_HINGE_REST)
        G[:, hip] = _align(thigh, hinge, rest_vec(J[knee] - J[hip]), h0)
        G[:, knee] = _align(shin, hinge, rest_vec(J[ankle] - J[knee]), h0)
        G[:, ankle] = _align(toe, hinge, rest_vec(J[foot] - J[ankle]), h0)
        G[:, foot] = G[:, ankle]
    # arms: hinge from the elbow bend, or from the collar frame swung minimally onto the upper arm
    for collar, shoulder, elbow, wrist in ((13, 16, 18, 20), (14, 17, 19, 21)):
        upper, fore = P[:, elbow] - P[:, shoulder], P[:, wrist] - P[:, elbow]
        h0 = _ARM_HINGE_REST[shoulder]
        rest_upper_world = _normalize(np.einsum("tij,tj->ti", G[:, collar], rest_vec(J[elbow] - J[shoulder])))
        swing = rot.quat_between(rest_upper_world, _normalize(upper))
        carried = rot.quat_apply(swing, np.einsum("tij,j->ti", G[:, collar], h0))
        hinge = _hinge(upper, fore, fallback=carried, lo=10.0, hi=30.0)
        G[:, shoulder] = _align(upper, hinge, rest_vec(J[elbow] - J[shoulder]), rest_vec(h0))
        G[:, elbow] = _align(fore, hinge, rest_vec(J[wrist] - J[elbow]), rest_vec(h0))
        G[:, wrist] = G[:, elbow]
    return G


def _hinge(upper: np.ndarray, lower: np.ndarray, fallback: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Hinge axis of a two-bone limb: from the bend where it is clear, blended into `fallback` when straight."""
    cos = np.sum(_normalize(upper) * _normalize(lower), axis=-1).clip(-1, 1)
    bend = np.degrees(np.arccos(cos))
    w = _smoothstep(bend, lo, hi)[:, None]
    from_bend = _normalize(np.cross(upper, lower))
    blended = w * from_bend + (1 - w) * _normalize(fallback)
    return np.where(np.linalg.norm(blended, axis=-1, keepdims=True) > 1e-6, _normalize(blended), _normalize(fallback))


def global_to_local(G: np.ndarray) -> np.ndarray:
    """(T, 22, 3, 3) world rotations -> (T, 22, 4) local quaternions relative to the parent."""
    local = G.copy()
    local[:, 1:] = np.swapaxes(G[:, PARENTS[1:]], -1, -2) @ G[:, 1:]
    return rot.quat_fix_continuity(rot.matrix_to_quat(local), axis=0)


# ----------------------------------------------------------------------------------------------
# Quality

# the 21 SMPL bones as (parent, child), for the bone-direction quality measure
BONES: tuple[tuple[int, int], ...] = tuple((int(PARENTS[j]), j) for j in range(1, NUM_JOINTS))


@dataclass
class RetargetQuality:
    """Per-clip retargeting metrics (directions in [-1, 1], lengths in metres, speeds in m/s)."""

    bone_cos_mean: float  # mean over frames and bones of cos(source bone, result bone)
    bone_cos_min_bone: float  # the worst bone's mean cosine
    worst_bone: str
    skating: float  # mean horizontal speed of foot joints while in contact (m/s)
    source_skating: float  # the same on the source, scaled to SMPL's size (what retargeting inherited)
    penetration_mean: float  # mean depth of foot joints below the floor, over frames (m)
    penetration_frac: float  # fraction of frames with a foot joint more than 2 cm below the floor
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def bone_cosines(points: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(21,) mean cosine per SMPL bone between source points and result joint positions, (T, 22, 3) each."""
    idx_p, idx_c = np.array([b[0] for b in BONES]), np.array([b[1] for b in BONES])
    a = _normalize(points[:, idx_c] - points[:, idx_p])
    b = _normalize(positions[:, idx_c] - positions[:, idx_p])
    return np.sum(a * b, axis=-1).mean(axis=0)


def foot_skating(positions: np.ndarray, fps: float, height: float = 0.05) -> float:
    """Mean horizontal speed (m/s) of ankle and foot joints in frames where they are within `height` of the floor."""
    feet = positions[:, list(FOOT_JOINTS)]
    if feet.shape[0] < 2:
        return 0.0
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps
    contact = (feet[1:, :, 1] < height) & (feet[:-1, :, 1] < height)
    return float(speed[contact].mean()) if contact.any() else 0.0


def ground_penetration(positions: np.ndarray, tolerance: float = 0.02) -> tuple[float, float]:
    low = positions[:, list(FOOT_JOINTS), 1].min(axis=1)
    return float(np.clip(-low, 0, None).mean()), float((low < -tolerance).mean())


# ----------------------------------------------------------------------------------------------
# Public entry point

def floor_offset(positions: np.ndarray) -> float:
    """Height of the floor under a motion: the lowest foot joint, robust to a few glitchy frames."""
    low = positions[:, list(FOOT_JOINTS), 1].min(axis=1)
    return float(np.percentile(low, 1.0)) if len(low) > 20 else float(low.min())


def _is_mirrored(points: np.ndarray) -> bool:
    """True if the source's left side is on the character's right (a left-handed source world)."""
    lateral = points[:, 1] - points[:, 2]
    up = points[:, 12] - points[:, 0]
    forward = np.cross(lateral, up)
    toes = (points[:, 10] - points[:, 7]) + (points[:, 11] - points[:, 8])
    return bool(np.mean(np.sum(forward * toes, axis=-1)) < 0)


def _place_pelvis(points: np.ndarray, source_leg: float, rest_joints: np.ndarray) -> np.ndarray:
    """Move the source pelvis point to where SMPL's pelvis sits relative to the hips.

    Source skeletons put their root anywhere between the hip joints (CMU: on the hip line,
    DAZ: below it); SMPL's pelvis is above the hip line. The offset is taken from the SMPL
    rest pose, turned with the hips/lower-spine frame and scaled to the source's size.
    """
    J = rest_joints
    mid, rmid = (points[:, 1] + points[:, 2]) / 2, (J[1] + J[2]) / 2
    T = points.shape[0]
    R = _align(points[:, 1] - points[:, 2], points[:, 9] - mid, np.broadcast_to(J[1] - J[2], (T, 3)),
               np.broadcast_to(J[9] - rmid, (T, 3)))
    out = points.copy()
    out[:, 0] = mid + np.einsum("tij,j->ti", R, (J[0] - rmid) * source_leg / leg_length(J))
    return out


def _facing_rotation(points0: np.ndarray) -> np.ndarray:
    """Rotation about Y that turns a frame's facing (hip line x up) to +Z."""
    lateral = points0[1] - points0[2] + points0[16] - points0[17]
    forward = np.cross(lateral, np.array([0.0, 1.0, 0.0]))
    angle = np.arctan2(forward[0], forward[2])
    return rot.axis_angle_to_matrix(np.array([0.0, -angle, 0.0]))


def retarget(source: SkeletonMotion, joint_map: JointMap, target_fps: float | None = None,
             rest_joints: np.ndarray = REST_JOINTS) -> tuple[Motion, RetargetQuality]:
    """Retarget `source` onto SMPL-22; returns the motion (at `target_fps`, or the source rate) and its quality."""
    if source.local_rotations.shape[0] < 2:
        raise RetargetError("a motion needs at least 2 frames")
    positions = source.global_transforms()[1]
    points = map_positions(source, joint_map, positions)
    chain = positions[:, [source.names.index(n) for n in joint_map.spine_chain]]
    if not np.isfinite(points).all():
        raise RetargetError("source joint positions contain NaN or inf")
    if _is_mirrored(points):
        points[..., 0] *= -1
        chain[..., 0] *= -1
    source_leg = source_leg_length(source, joint_map)
    points = _interpolate_spine(_place_pelvis(points, source_leg, rest_joints), chain)
    # canonical placement: face +Z at frame 0, pelvis above the origin
    turn = _facing_rotation(points[0])
    points = points @ turn.T
    points[..., [0, 2]] -= points[0, 0, [0, 2]]
    scale = leg_length(rest_joints) / max(source_leg, 1e-6)

    G = solve_global_rotations(points, rest_joints)
    quats = global_to_local(G)
    translation = points[:, 0] * scale
    motion = Motion(quats.astype(np.float32), translation.astype(np.float32), source.fps)
    positions = motion.positions(rest_joints)
    floor = floor_offset(positions)
    motion = Motion(motion.rotations, motion.translation - np.array([0, floor, 0], np.float32), source.fps)
    positions[..., 1] -= floor

    cos = bone_cosines(points, positions)
    scaled_source = points * scale
    scaled_source[..., 1] -= floor_offset(scaled_source)
    pen_mean, pen_frac = ground_penetration(positions)
    quality = RetargetQuality(
        bone_cos_mean=float(cos.mean()), bone_cos_min_bone=float(cos.min()),
        worst_bone=f"{JOINT_NAMES[BONES[int(cos.argmin())][0]]}->{JOINT_NAMES[BONES[int(cos.argmin())][1]]}",
        skating=foot_skating(positions, source.fps), source_skating=foot_skating(scaled_source, source.fps),
        penetration_mean=pen_mean, penetration_frac=pen_frac, extra={"scale": float(scale)},
    )
    if target_fps is not None and abs(target_fps - source.fps) > 1e-6:
        motion = motion.resample(target_fps)
    return motion, quality
