"""N generated motions -> N keyframed SMPL-22 armatures side by side, one collection per request.

Each candidate is an armature object (shared Armature data) with its own Action, a mannequin
(or SMPL body) child, and a number label above it. Keys sit at scene frames
start + t * scene_fps, so a 20 fps motion plays at its own speed on a 24 or 30 fps scene, and
the scene's frame range is set to cover it.
"""
import math

import bpy
import numpy as np

from . import armature, keyframes, mannequin
from .vendored import rotations as rot
from .vendored import skeleton

SPACING = 1.5  # metres between neighbours along X
LABEL_HEIGHT = 2.1
PALETTE = (
    (0.90, 0.45, 0.30, 1.0), (0.35, 0.60, 0.90, 1.0), (0.45, 0.80, 0.40, 1.0), (0.85, 0.75, 0.30, 1.0),
    (0.70, 0.45, 0.85, 1.0), (0.35, 0.80, 0.80, 1.0), (0.90, 0.50, 0.70, 1.0), (0.60, 0.60, 0.60, 1.0),
)
REQUEST_KEY = "sopo_request_id"
CANDIDATE_KEY = "sopo_candidate"


def bone_rotation_path(name: str) -> str:
    return f'pose.bones["{name}"].rotation_quaternion'


PELVIS_LOCATION_PATH = f'pose.bones["{skeleton.JOINT_NAMES[0]}"].location'


def motion_channels(rotations: np.ndarray, translation: np.ndarray):
    """Key channels of one motion: every joint's quaternion (signs made continuous) and the pelvis
    location (= translation: the armature's rest pelvis is at its origin, with identity rest rotation)."""
    q = rot.quat_fix_continuity(np.asarray(rotations, dtype=np.float64), axis=0)
    channels = [(bone_rotation_path(name), name, q[:, j]) for j, name in enumerate(skeleton.JOINT_NAMES)]
    channels.append((PELVIS_LOCATION_PATH, skeleton.JOINT_NAMES[0], np.asarray(translation, dtype=np.float64)))
    return channels


def offsets_x(count: int) -> np.ndarray:
    """X position of each candidate, centred on the origin."""
    return (np.arange(count) - (count - 1) / 2.0) * SPACING


def _label(text: str, x: float, collection) -> bpy.types.Object:
    curve = bpy.data.curves.new(f"label {text}", 'FONT')
    curve.body = text
    curve.align_x = 'CENTER'
    curve.size = 0.3
    obj = bpy.data.objects.new(f"label {text}", curve)
    obj.location = (x, 0.0, LABEL_HEIGHT)
    obj.rotation_euler = (math.pi / 2.0, 0.0, 0.0)
    collection.objects.link(obj)
    return obj


def import_candidates(scene: bpy.types.Scene, *, request_id: str, prompt: str, rotations, translation,
                      fps: float, model: str = "", rest_joints=None, body=None) -> bpy.types.Collection:
    """Build the request's collection; rotations (n, T, 22, 4), translation (n, T, 3).

    rest_joints: (22, 3) rest joints of the armature (default: the SMPL template's).
    body: optional SMPL body, a dict with "vertices" (V, 3), "faces" (F, 3), "weights" (V, 22) and
    "joints" (22, 3), the body's own rest joints (body.py reads one from the artist's model file).
    A body shape changes the rest joints, so the armature is built from the body's joints, which
    take the place of `rest_joints`: the mesh then sits on the bones and FK uses those joints. The
    rotations and the pelvis translation are the server's as they are (translation was made for
    the template skeleton). Without "joints", the body is taken to fit `rest_joints`."""
    rotations = np.asarray(rotations)
    translation = np.asarray(translation)
    if rotations.ndim != 4 or rotations.shape[2:] != (skeleton.NUM_JOINTS, 4):
        raise ValueError(f"rotations must be (n, T, 22, 4), got {rotations.shape}")
    if translation.shape != rotations.shape[:2] + (3,):
        raise ValueError(f"translation must be {rotations.shape[:2] + (3,)}, got {translation.shape}")
    count, num_frames = rotations.shape[:2]
    if body is not None and body.get("joints") is not None:
        rest_joints = body["joints"]
    data = armature.ensure_armature_data(rest_joints)
    if body is not None:  # before the collection: a bad body raises ValueError and leaves nothing behind
        joints = skeleton.REST_JOINTS if rest_joints is None else rest_joints
        mesh = mannequin.body_mesh(data, body["vertices"], body["faces"], body["weights"], joints)
    else:
        mesh = mannequin.ensure_mannequin_mesh(data)

    short = " ".join(prompt.split())[:40]
    collection = bpy.data.collections.new(f"Motion: {short}" if short else "Motion")
    collection[REQUEST_KEY] = request_id
    collection["sopo_prompt"] = prompt
    collection["sopo_model"] = model
    collection["sopo_fps"] = float(fps)
    collection["sopo_body"] = mesh["sopo_body"]
    scene.collection.children.link(collection)
    frames = keyframes.scene_frames(scene, num_frames, fps)
    for i, x in enumerate(offsets_x(count)):
        obj = armature.new_armature_object(f"#{i + 1} {short}"[:60], data, collection, location=(x, 0.0, 0.0))
        obj[REQUEST_KEY] = request_id
        obj[CANDIDATE_KEY] = i
        obj.color = PALETTE[i % len(PALETTE)]
        keyframes.write_action(obj, f"{obj.name} motion", frames, motion_channels(rotations[i], translation[i]))
        mannequin.attach_body(obj, mesh, collection)
        _label(str(i + 1), x, collection)
    scene.frame_end = max(scene.frame_start, int(math.ceil(frames[-1] - 1e-6)))
    scene.frame_set(scene.frame_start)
    return collection


def candidate_objects(collection) -> list:
    """The collection's candidate armatures, in candidate order."""
    if collection is None:
        return []
    found = [obj for obj in collection.objects if obj.type == 'ARMATURE' and CANDIDATE_KEY in obj]
    return sorted(found, key=lambda obj: obj[CANDIDATE_KEY])


def request_collection(request_id: str):
    """The collection holding the candidates of `request_id`, or None."""
    for collection in bpy.data.collections:
        if collection.get(REQUEST_KEY) == request_id:
            return collection
    return None
