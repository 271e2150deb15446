"""Bone maps from SMPL-22 joints to a rig's bones: presets, a user JSON file, auto-detection.

A map is {smpl_joint_name: bone_name}; joints left out are simply not driven. Mixamo rigs
prefix every bone ("mixamorig:", "mixamorig1:", ...): the prefix is read off the rig.
"""
import json

from .vendored import skeleton

SMPL = {name: name for name in skeleton.JOINT_NAMES}

MIXAMO = {  # without the "mixamorig:" prefix
    "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "Spine",
    "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine1", "left_ankle": "LeftFoot",
    "right_ankle": "RightFoot", "spine3": "Spine2", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
    "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
    "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
    "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
}

RIGIFY = {  # the deform bones of a generated Rigify human
    "pelvis": "DEF-spine", "left_hip": "DEF-thigh.L", "right_hip": "DEF-thigh.R", "spine1": "DEF-spine.001",
    "left_knee": "DEF-shin.L", "right_knee": "DEF-shin.R", "spine2": "DEF-spine.002", "left_ankle": "DEF-foot.L",
    "right_ankle": "DEF-foot.R", "spine3": "DEF-spine.003", "left_foot": "DEF-toe.L", "right_foot": "DEF-toe.R",
    "neck": "DEF-spine.004", "left_collar": "DEF-shoulder.L", "right_collar": "DEF-shoulder.R",
    "head": "DEF-spine.006", "left_shoulder": "DEF-upper_arm.L", "right_shoulder": "DEF-upper_arm.R",
    "left_elbow": "DEF-forearm.L", "right_elbow": "DEF-forearm.R", "left_wrist": "DEF-hand.L",
    "right_wrist": "DEF-hand.R",
}

PRESETS = {'SMPL': SMPL, 'MIXAMO': MIXAMO, 'RIGIFY': RIGIFY}

ENUM_ITEMS = (
    ('AUTO', "Detect", "Use the preset whose bone names the rig has"),
    ('SMPL', "SMPL", "Bones named like the SMPL joints (pelvis, left_hip, ...)"),
    ('MIXAMO', "Mixamo", "Mixamo rigs (mixamorig:Hips, ...)"),
    ('RIGIFY', "Rigify", "Deform bones of a generated Rigify rig (DEF-spine, ...)"),
    ('FILE', "From file", "A JSON file mapping SMPL joint names to the rig's bone names"),
)


class BoneMapError(ValueError):
    """A bone map that cannot be used on this rig; the message says why."""


def mixamo_prefix(bone_names) -> str:
    """The prefix in front of "Hips" ("mixamorig:" or a numbered variant), "" when none."""
    for name in bone_names:
        if name.endswith("Hips"):
            return name[: -len("Hips")]
    return ""


def preset(kind: str, bone_names) -> dict:
    """A preset resolved against the rig's bone names (Mixamo prefix added)."""
    if kind == 'MIXAMO':
        prefix = mixamo_prefix(bone_names)
        return {joint: prefix + bone for joint, bone in MIXAMO.items()}
    return dict(PRESETS[kind])


def load_file(path: str) -> dict:
    """A user map from JSON: an object {smpl_joint_name: bone_name}."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise BoneMapError(f"cannot read the bone map {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise BoneMapError(f"{path}: a bone map is a JSON object of SMPL joint name -> bone name")
    unknown = sorted(set(data) - set(skeleton.JOINT_NAMES))
    if unknown:
        raise BoneMapError(f"{path}: unknown SMPL joints {unknown}; known: {list(skeleton.JOINT_NAMES)}")
    shared = sorted({bone for bone in data.values() if list(data.values()).count(bone) > 1})
    if shared:
        raise BoneMapError(f"{path}: bones {shared} are mapped from more than one SMPL joint")
    return data


def resolve(kind: str, bone_names, path: str = "") -> dict:
    """The map to use on a rig with `bone_names`: only pairs whose bone exists; the pelvis is required."""
    names = set(bone_names)
    if kind == 'FILE':
        mapping = load_file(path)
    elif kind == 'AUTO':
        scored = [(sum(b in names for b in preset(k, names).values()), k) for k in PRESETS]
        best_score, best = max(scored)
        if best_score == 0:
            raise BoneMapError("the rig's bone names match no preset (SMPL, Mixamo, Rigify): choose a map file")
        mapping = preset(best, names)
    else:
        mapping = preset(kind, names)
    found = {joint: bone for joint, bone in mapping.items() if bone in names}
    if skeleton.JOINT_NAMES[0] not in found:
        raise BoneMapError(f"the rig has no bone {mapping.get(skeleton.JOINT_NAMES[0], '(unmapped)')!r} "
                           "for the pelvis: choose another bone map")
    return found
