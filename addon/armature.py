"""The SMPL-22 armature: bones along +Y with roll 0, so a SMPL local rotation is the pose
bone's `rotation_quaternion` as is (DESIGN.md sections 3 and 9).

The armature's own space is the motion's Y-up space with the rest pelvis at the origin, so the
pelvis bone's `location` is the motion's `translation`; the object rotation (pi/2, 0, 0) turns
Y-up into Blender's Z-up. All candidates with the same rest joints share one Armature datablock
(the pose lives on each object).
"""
import hashlib
import math

import bpy
import numpy as np
from mathutils import Matrix

from .vendored import skeleton

Y_UP_TO_Z_UP = (math.pi / 2.0, 0.0, 0.0)  # object rotation_euler
LEAF_BONE_LENGTH = 0.06
REST_KEY = "sopo_rest_key"


def rest_heads(rest_joints=None) -> np.ndarray:
    """(22, 3) rest joint positions with the pelvis at the origin (armature space, Y-up)."""
    joints = skeleton.REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    if joints.shape != (skeleton.NUM_JOINTS, 3):
        raise ValueError(f"rest joints must have shape (22, 3), got {joints.shape}")
    return joints - joints[0]


def _rest_key(heads: np.ndarray) -> str:
    return hashlib.sha1(np.round(heads, 6).astype(np.float64).tobytes()).hexdigest()[:16]


def _bone_length(heads: np.ndarray, j: int) -> float:
    children = skeleton.CHILDREN[j]
    if not children:
        return LEAF_BONE_LENGTH
    return max(0.5 * float(np.linalg.norm(heads[children[0]] - heads[j])), 0.02)


def ensure_armature_data(rest_joints=None) -> bpy.types.Armature:
    """The shared SMPL-22 Armature for these rest joints, built once (needs Edit Mode briefly)."""
    heads = rest_heads(rest_joints)
    key = _rest_key(heads)
    for arm in bpy.data.armatures:
        if arm.get(REST_KEY) == key and len(arm.bones) == skeleton.NUM_JOINTS:
            return arm
    arm = bpy.data.armatures.new("SMPL-22")
    arm[REST_KEY] = key
    arm.display_type = 'STICK'
    builder = bpy.data.objects.new("SMPL-22 builder", arm)
    scene = bpy.context.scene
    scene.collection.objects.link(builder)
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    try:
        if bpy.context.mode != 'OBJECT':
            bpy.ops.object.mode_set(mode='OBJECT')
        view_layer.objects.active = builder
        bpy.ops.object.mode_set(mode='EDIT')
        edit_bones = arm.edit_bones
        for j, name in enumerate(skeleton.JOINT_NAMES):
            bone = edit_bones.new(name)
            bone.head = heads[j]
            bone.tail = heads[j] + np.array([0.0, _bone_length(heads, j), 0.0])
            bone.roll = 0.0
            bone.use_connect = False
            if skeleton.PARENTS[j] >= 0:
                bone.parent = edit_bones[skeleton.JOINT_NAMES[skeleton.PARENTS[j]]]
        bpy.ops.object.mode_set(mode='OBJECT')
    finally:
        view_layer.objects.active = previous_active
        bpy.data.objects.remove(builder)
    return arm


def new_armature_object(name: str, data: bpy.types.Armature, collection: bpy.types.Collection,
                        location=(0.0, 0.0, 0.0)) -> bpy.types.Object:
    """An object using the shared SMPL-22 armature, turned Y-up -> Z-up (pose bones start in
    quaternion mode, Blender's default)."""
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    obj.rotation_mode = 'XYZ'
    obj.rotation_euler = Y_UP_TO_Z_UP
    collection.objects.link(obj)
    return obj


def joint_positions_y_up(obj: bpy.types.Object, depsgraph) -> np.ndarray:
    """(22, 3) evaluated joint positions of a SMPL-22 armature object in the motion's Y-up world:
    Blender world space with the object's own location removed and Z-up turned back to Y-up."""
    evaluated = obj.evaluated_get(depsgraph)
    z_up_to_y_up = Matrix.Rotation(-math.pi / 2.0, 4, 'X')
    to_motion = z_up_to_y_up @ Matrix.Translation(-evaluated.matrix_world.translation) @ evaluated.matrix_world
    return np.array([to_motion @ evaluated.pose.bones[name].head for name in skeleton.JOINT_NAMES])
