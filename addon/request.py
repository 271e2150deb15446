"""The panel's artist controls made into one generate request: its length, its constraints, the scene frame its
keys start at and where its candidates stand (reads the scene; no UI, no server).

Placement (what an animator expects from each control):
- Start from the current pose / End at the pose at frame N: the poses are read from the active armature (an
  artist's rig through the panel's bone map, or an add-on candidate), in that armature's motion space
  (constraints.py), and the candidates are put in that same space (`constraints.motion_space`): each one stands
  exactly where the rig stands at the current frame (all of them, overlapping there, then going their own ways)
  or reaches the rig's place at frame N. Their keys begin at the current frame, so at that frame they
  coincide with the rig, and "Apply to my rig" continues the rig from where it is. With End on (and no Keep), the
  motion lasts from the current frame to frame N and ends there in the rig's pose: the panel's Seconds is not used.
- Follow path: the curve in the active armature's space (the world without one); the candidates are put in that
  space too, so they walk along the curve itself, and the rig does after "Apply to my rig".
- Keep lower body (the pelvis, and with it the root's path): the source candidate's space, so the new candidates'
  legs play exactly over the source's. The request lasts as long as the source (Seconds is not used).
- Anything else (text only, Loop, Keep upper body): a new row of candidates, as without controls.
With Keep on, Start and End pin only the joints that are not kept (and the root only when the pelvis is not).
The poses pinned from a rig are recorded on the request (`pinned_seconds`): "Apply to my rig" keeps the rig
exactly there, fading its Feet on floor and Lock feet corrections in over half a second away from them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from . import candidates, keyframes
from . import constraints as controls
from .vendored import constraints as shared


@dataclass
class Plan:
    """What Generate sends and where its candidates go."""

    seconds: float
    constraints: shared.Constraints | None = None
    first_frame: float | None = None        # scene frame of the motion's first frame (None: the scene's start)
    anchor: np.ndarray | None = None         # (4, 4) world matrix of the candidates (None: a new row)
    pinned_seconds: list = field(default_factory=list)   # motion times of poses pinned from the rig (with the hips)


def active_armature(context):
    """The active object when it is an armature (an artist's rig or a candidate), else None."""
    obj = context.active_object
    return obj if obj is not None and obj.type == 'ARMATURE' else None


def source_candidate(context):
    """The candidate to transfer or keep joints of: the picked one, else a selected candidate, else None."""
    collection = context.scene.sopo_motion.candidates
    objects = candidates.candidate_objects(collection)
    picked = collection.get("sopo_picked", -1) if collection is not None else -1
    if 0 <= picked < len(objects):
        return objects[picked]
    for obj in context.selected_objects:
        if obj.type == 'ARMATURE' and candidates.CANDIDATE_KEY in obj:
            return obj
    return None


def uses_rig(props) -> bool:
    return bool(props.use_start_pose or props.use_end_pose)


def first_frame(scene, props) -> float:
    """The scene frame the candidates' keys begin at: the current frame with Start or End, else the scene's start."""
    return float(scene.frame_current if uses_rig(props) else scene.frame_start)


def end_seconds(scene, start: float, end_frame: int) -> float:
    """The request's length so its last frame plays at scene frame `end_frame` when its first plays at `start`."""
    if end_frame <= start:
        raise controls.ControlError(f"End at frame {end_frame}: the motion starts at frame {start:g} (the current "
                                    "frame); choose a later end frame or go to an earlier frame")
    frames = int(round((end_frame - start) * shared.WIRE_FPS / keyframes.scene_fps(scene))) + 1
    return max(shared.MIN_FRAMES, frames) / shared.WIRE_FPS


def _pin_free_joints(key, kept: tuple) -> None:
    """With Keep on: a pose pins only the joints that are not kept, and the root only when the pelvis is not."""
    if kept:
        key.joints = tuple(j for j in range(len(key.rotations)) if j not in kept)
        key.root = key.root and 0 not in kept


def plan(context) -> Plan:
    """The request of the panel's settings (ControlError, in the server's words where the server would refuse it)."""
    scene = context.scene
    props = scene.sopo_motion
    rig = active_armature(context)
    if uses_rig(props) and rig is None:
        what = "start from" if props.use_start_pose else "end at"
        raise controls.ControlError(f"select the armature to {what} (your rig, or a candidate)")
    mapping = dict(map_kind=props.bone_map, map_file=bpy.path.abspath(props.bone_map_file))
    start = first_frame(scene, props)
    out = Plan(seconds=float(props.seconds), first_frame=start if uses_rig(props) else None)
    c = shared.Constraints(loop=bool(props.loop))
    kept: tuple = ()
    if props.keep != 'NONE':
        source = source_candidate(context)
        if source is None:
            raise controls.ControlError("Keep upper / lower body: pick a candidate first (or select one)")
        c.keep_joints = controls.keep_joints(source, props.keep)
        kept = tuple(c.keep_joints.joints)
        out.seconds = controls.candidate_seconds(source)
        if 0 in kept:
            out.anchor = controls.motion_space(source)
    elif props.use_end_pose:
        out.seconds = end_seconds(scene, start, props.end_frame)
    frames = shared.clip_frames(out.seconds)
    if props.use_start_pose:
        c.start_pose = controls.start_pose(rig, scene.frame_current, **mapping)
        _pin_free_joints(c.start_pose, kept)
    if props.use_end_pose:
        at = frames - 1 if not kept else controls.motion_frame(scene, props.end_frame, start=start)
        c.end_pose = controls.end_pose(rig, props.end_frame, frames, frame=at, **mapping)
        _pin_free_joints(c.end_pose, kept)
    out.pinned_seconds = [key.frame / shared.WIRE_FPS for key in (c.start_pose, c.end_pose)
                          if key is not None and (key.joints is None or 0 in key.joints)]
    if props.use_path:
        if props.path_curve is None:
            raise controls.ControlError("Follow path: choose a curve object to follow")
        c.root_path = controls.root_path(props.path_curve, rig, props.path_speed or None, **mapping)
    if (uses_rig(props) or props.use_path) and out.anchor is None:
        out.anchor = controls.motion_space(rig, **mapping)
    out.constraints = None if c.is_empty() else controls.validate(c, out.seconds)
    return out
