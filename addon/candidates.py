"""N generated motions -> N keyframed SMPL-22 armatures, one collection and one row per request.

Each candidate is an armature object (shared Armature data) with its own Action, a mannequin
(or SMPL body) child, and a number label that follows its pelvis (a Copy Location constraint,
so the label stays upright and readable). The server's motion is kept on the object
(`sopo_src_*` properties), so the keys can be rebuilt from it at any time: at another scene frame
rate (`retime`), in place or trimmed (`rekey`); see shaping.py for the timing.

Placement: each candidate's swept ground area (every joint over the whole motion) is computed
before it is placed; candidates of a request stand in a row along X with their swept areas apart,
and each new request gets a new row in front (-Y) of the rows already in the scene, so no two
candidates overlap at any frame. A request whose motion is tied to a place (a start or end pose of a
rig, a path, kept legs: request.py) is not put in a row: its candidates all get that place's
`anchor` matrix, and its keys may begin at another scene frame than the scene's start
(`first_frame`). Earlier requests' unpicked candidates are hidden (optional); `clear` removes
every unpicked candidate and keeps the picked ones.
"""
from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix

from . import armature, keyframes, mannequin, shaping
from .shaping import Shape
from .vendored import rotations as rot
from .vendored import skeleton

MARGIN = 0.25  # metres kept free around the joints' swept area: the body and the hands reach past them
GAP = 0.3  # metres between neighbouring candidates' areas
ROW_GAP = 1.0  # metres between rows of successive requests
LABEL_ABOVE = 1.05  # metres above the pelvis
PALETTE = (
    (0.90, 0.45, 0.30, 1.0), (0.35, 0.60, 0.90, 1.0), (0.45, 0.80, 0.40, 1.0), (0.85, 0.75, 0.30, 1.0),
    (0.70, 0.45, 0.85, 1.0), (0.35, 0.80, 0.80, 1.0), (0.90, 0.50, 0.70, 1.0), (0.60, 0.60, 0.60, 1.0),
)
REQUEST_KEY = "sopo_request_id"
CANDIDATE_KEY = "sopo_candidate"
LABEL_KEY = "sopo_label"
GENERATIONS_KEY = "sopo_generations"  # on the scene: requests imported so far (numbers the names)
PINNED_KEY = "sopo_pinned_seconds"  # on a request: motion times of poses pinned from a rig (retarget.py keeps them)


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


# --- the objects of a candidate ---------------------------------------------------------------

def candidate_objects(collection) -> list:
    """The collection's candidate armatures, in candidate order."""
    if collection is None:
        return []
    found = [obj for obj in collection.objects if obj.type == 'ARMATURE' and CANDIDATE_KEY in obj]
    return sorted(found, key=lambda obj: obj[CANDIDATE_KEY])


def labels_of(obj) -> list:
    """The number label following candidate `obj` (a list: empty once the label was deleted)."""
    label = obj.get(LABEL_KEY)
    return [label] if isinstance(label, bpy.types.Object) else []


def parts_of(obj) -> list:
    """A candidate with its body and its label."""
    return [obj, *obj.children, *labels_of(obj)]


def collections(scene) -> list:
    """The scene's request collections, oldest first."""
    found = [c for c in scene.collection.children_recursive if REQUEST_KEY in c]
    return sorted(found, key=lambda c: c.get("sopo_generation", 0))


def request_collection(request_id: str):
    """The collection holding the candidates of `request_id`, or None."""
    for collection in bpy.data.collections:
        if collection.get(REQUEST_KEY) == request_id:
            return collection
    return None


def _label(text: str, obj, collection) -> bpy.types.Object:
    curve = bpy.data.curves.new(f"{obj.name} label", 'FONT')
    curve.body = text
    curve.align_x = 'CENTER'
    curve.size = 0.3
    label = bpy.data.objects.new(f"{obj.name} label", curve)
    obj[LABEL_KEY] = label
    label.location = (0.0, 0.0, LABEL_ABOVE)  # added to the pelvis's position by the constraint
    label.rotation_euler = (math.pi / 2.0, 0.0, 0.0)
    follow = label.constraints.new('COPY_LOCATION')
    follow.target, follow.subtarget, follow.use_offset = obj, skeleton.JOINT_NAMES[0], True
    label.color = obj.color
    collection.objects.link(label)
    return label


def set_hidden(objects, hidden: bool) -> None:
    """Hide (or show) objects in the viewport and the render. Hidden ones are also disabled in the
    viewports: Blender then skips them when it evaluates a frame, so candidates hidden by the dozen
    cost nothing at playback (the Outliner shows them again)."""
    view_layer = bpy.context.view_layer
    for obj in objects:
        obj.hide_viewport = hidden
        if obj.name in view_layer.objects:
            obj.hide_set(hidden)
        obj.hide_render = hidden


# --- the source motion and its keys -----------------------------------------------------------------

def store_source(obj, rotations, translation, fps: float) -> None:
    """Keep the server's motion on the candidate (float32 arrays in the .blend)."""
    obj["sopo_src_rotations"] = np.ascontiguousarray(rotations, dtype=np.float32).ravel()
    obj["sopo_src_translation"] = np.ascontiguousarray(translation, dtype=np.float32).ravel()
    obj["sopo_src_fps"] = float(fps)


def source_motion(obj):
    """(rotations (T, 22, 4), translation (T, 3), fps) kept on a candidate, or None."""
    if "sopo_src_rotations" not in obj:
        return None
    q = np.asarray(obj["sopo_src_rotations"], dtype=np.float32).reshape(-1, skeleton.NUM_JOINTS, 4)
    t = np.asarray(obj["sopo_src_translation"], dtype=np.float32).reshape(-1, 3)
    return q, t, float(obj["sopo_src_fps"])


def _rest_joints(obj) -> np.ndarray:
    return np.array([obj.data.bones[name].head_local for name in skeleton.JOINT_NAMES], dtype=np.float64)


def first_frame_of(collection, scene) -> float:
    """The scene frame a request's keys begin at (the scene's start unless the request said otherwise)."""
    first = collection.get("sopo_first_frame") if collection is not None else None
    return float(scene.frame_start if first is None else first)


def _key(obj, scene, shape: Shape, name: str, first: float):
    """Key `obj` from its source motion with `shape`, its first key at scene frame `first`; returns
    (last key frame, keyed rotations, keyed translation)."""
    q, t, fps = source_motion(obj)
    offsets, q, t = shaping.shape_motion(q, t, fps, keyframes.scene_fps(scene), shape)
    frames = first + offsets
    keyframes.write_action(obj, name, frames, motion_channels(q, t), replace=True,
                           whole_frames=shape.whole_frames, scene=scene)
    return float(frames[-1]), q, t


def _key_all(objects, scene, shape: Shape, first: float):
    """Key every candidate; returns (last key frame, (n, 4) swept ground extents)."""
    keyed = [_key(obj, scene, shape, f"{obj.name} motion", first) for obj in objects]
    rotations, translations = np.stack([k[1] for k in keyed]), np.stack([k[2] for k in keyed])
    extents = shaping.ground_extent(rotations, translations, _rest_joints(objects[0]))  # one FK for all
    return max(k[0] for k in keyed), extents


def _place_row(scene, collection, objects, extents, keep_row: bool) -> None:
    """Candidates side by side along X; the row in front of the scene's other rows (or where it was)."""
    extents = np.asarray(extents).reshape(-1, 4)
    xs = shaping.row_offsets(extents, MARGIN, GAP)
    # Y-up motion -> Blender: world X = x, world Y = -z (the object turns Y-up into Z-up).
    back = float(np.max(-extents[:, 2])) + MARGIN
    front = float(np.min(-extents[:, 3])) - MARGIN
    if keep_row and "sopo_row_y" in collection:
        y = float(collection["sopo_row_y"])
    else:
        others = [c["sopo_row_front"] for c in collections(scene)
                  if c is not collection and "sopo_row_front" in c and candidate_objects(c)]
        y = 0.0 if not others else min(others) - ROW_GAP - back
    for obj, x in zip(objects, xs):
        obj.location = (float(x), y, 0.0)
    collection["sopo_row_y"] = y
    collection["sopo_row_front"] = y + front
    collection["sopo_row_back"] = y + back


def _set_frame_range(scene, last: float) -> None:
    scene.frame_end = max(scene.frame_start, int(math.ceil(last - 1e-6)))


def import_candidates(scene: bpy.types.Scene, *, request_id: str, prompt: str, rotations, translation,
                      fps: float, model: str = "", rest_joints=None, body=None, shape: Shape = Shape(),
                      hide_earlier: bool = False, first_frame: float | None = None,
                      anchor=None) -> bpy.types.Collection:
    """Build the request's collection; rotations (n, T, 22, 4), translation (n, T, 3).

    rest_joints: (22, 3) rest joints of the armature (default: the SMPL template's).
    body: optional SMPL body, a dict with "vertices" (V, 3), "faces" (F, 3), "weights" (V, 22) and
    "joints" (22, 3), the body's own rest joints (body.py reads one from the artist's model file).
    A body shape changes the rest joints, so the armature is built from the body's joints, which
    take the place of `rest_joints`: the mesh then sits on the bones and FK uses those joints. The
    rotations and the pelvis translation are the server's as they are (translation was made for
    the template skeleton). Without "joints", the body is taken to fit `rest_joints`.
    shape: timing, in place, trim (shaping.py). hide_earlier: hide the unpicked candidates of the
    scene's earlier requests. first_frame: the scene frame the keys begin at (default the scene's
    start). anchor: (4, 4) world matrix every candidate gets (the space its motion was made in:
    constraints.motion_space) instead of a place in a new row."""
    rotations = np.asarray(rotations)
    translation = np.asarray(translation)
    if rotations.ndim != 4 or rotations.shape[2:] != (skeleton.NUM_JOINTS, 4):
        raise ValueError(f"rotations must be (n, T, 22, 4), got {rotations.shape}")
    if translation.shape != rotations.shape[:2] + (3,):
        raise ValueError(f"translation must be {rotations.shape[:2] + (3,)}, got {translation.shape}")
    count = rotations.shape[0]
    if body is not None and body.get("joints") is not None:
        rest_joints = body["joints"]
    data = armature.ensure_armature_data(rest_joints)
    if body is not None:  # before the collection: a bad body raises ValueError and leaves nothing behind
        joints = skeleton.REST_JOINTS if rest_joints is None else rest_joints
        mesh = mannequin.body_mesh(data, body["vertices"], body["faces"], body["weights"], joints)
    else:
        mesh = mannequin.ensure_mannequin_mesh(data)

    earlier = collections(scene)
    generation = int(scene.get(GENERATIONS_KEY, 0)) + 1
    scene[GENERATIONS_KEY] = generation
    short = " ".join(prompt.split())[:40]
    collection = bpy.data.collections.new(f"Motion {generation}: {short}" if short else f"Motion {generation}")
    collection[REQUEST_KEY] = request_id
    collection["sopo_generation"] = generation
    collection["sopo_prompt"] = prompt
    collection["sopo_model"] = model
    collection["sopo_fps"] = float(fps)
    collection["sopo_body"] = mesh["sopo_body"]
    collection["sopo_shape"] = shape.to_dict()
    first = float(scene.frame_start if first_frame is None else first_frame)
    if first_frame is not None:
        collection["sopo_first_frame"] = first
    if anchor is not None:
        anchor = np.asarray(anchor, dtype=np.float64).reshape(4, 4)
        collection["sopo_anchor"] = anchor.ravel().tolist()
    scene.collection.children.link(collection)
    objects = []
    for i in range(count):
        obj = armature.new_armature_object(f"{generation}.{i + 1} {short}"[:60], data, collection)
        obj[REQUEST_KEY] = request_id
        obj[CANDIDATE_KEY] = i
        obj.color = PALETTE[i % len(PALETTE)]
        store_source(obj, rotations[i], translation[i], fps)
        objects.append(obj)
    bpy.context.view_layer.update()  # builds the new objects' poses once (keyframes.write_action needs them)
    last, extents = _key_all(objects, scene, shape, first)
    for i, obj in enumerate(objects):
        mannequin.attach_body(obj, mesh, collection)
        _label(str(i + 1), obj, collection)
    if anchor is None:
        _place_row(scene, collection, objects, extents, keep_row=False)
    else:
        for obj in objects:
            obj.matrix_world = Matrix(anchor.tolist())
    if hide_earlier:
        for old in earlier:
            hide_unpicked(old)
    _set_frame_range(scene, last)
    scene.frame_set(int(math.floor(first)))
    return collection


def hide_unpicked(collection) -> None:
    """Hide a request's candidates other than its picked one (all of them after "none are good")."""
    picked = collection.get("sopo_picked")
    for obj in candidate_objects(collection):
        if obj[CANDIDATE_KEY] != picked:
            set_hidden(parts_of(obj), True)


def rekey(scene, collection, shape: Shape, place: bool = True) -> int:
    """Key a request's candidates again from their source with `shape` at the scene's frame rate;
    with `place`, the row is laid out again for the new swept areas. Returns how many were keyed."""
    objects = [obj for obj in candidate_objects(collection) if source_motion(obj) is not None]
    if not objects:
        return 0
    last, extents = _key_all(objects, scene, shape, first_frame_of(collection, scene))
    if place and len(objects) == len(candidate_objects(collection)) and "sopo_anchor" not in collection:
        _place_row(scene, collection, objects, extents, keep_row=True)
    collection["sopo_shape"] = shape.to_dict()
    _set_frame_range(scene, last)
    return len(objects)


def retime(scene) -> tuple[int, int]:
    """After the scene's frame rate changed: every request's candidates keyed again from their source
    (with their own shape, where they stand), and every applied action (keyframes.retime_action).
    Returns (candidates, actions) re-timed."""
    fps = keyframes.scene_fps(scene)
    done_candidates = 0
    for collection in collections(scene):
        done_candidates += rekey(scene, collection, Shape.from_dict(collection.get("sopo_shape")), place=False)
    done_actions = 0
    for action in bpy.data.actions:
        if action.get("sopo_applied") and abs(float(action.get("sopo_fps", fps)) - fps) > 1e-6:
            keyframes.retime_action(action, fps)
            done_actions += 1
    ends = [keyframes.last_key_frame(obj) for c in collections(scene) for obj in candidate_objects(c)
            if not obj.hide_get()]
    if ends:
        _set_frame_range(scene, max(ends))
    return done_candidates, done_actions


def remove_candidate(obj) -> None:
    """Delete a candidate with its body, label and Action."""
    actions = [o.animation_data.action for o in parts_of(obj) if o.animation_data and o.animation_data.action]
    for part in parts_of(obj):
        bpy.data.objects.remove(part)
    for action in actions:
        if action.users == 0:
            bpy.data.actions.remove(action)


def clear(scene) -> tuple[int, int]:
    """Delete every unpicked candidate of the scene's requests (and requests left empty); the picked
    ones stay where they are. Returns (removed, kept)."""
    removed = kept = 0
    for collection in collections(scene):
        picked = collection.get("sopo_picked")
        for obj in candidate_objects(collection):
            if obj[CANDIDATE_KEY] == picked:
                kept += 1
                continue
            remove_candidate(obj)
            removed += 1
        if not candidate_objects(collection):
            for leftover in list(collection.objects):
                bpy.data.objects.remove(leftover)
            bpy.data.collections.remove(collection)
    return removed, kept
