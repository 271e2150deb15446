"""Bulk keyframing: whole F-curves written with `foreach_set`, never frame by frame.

Blender 5.0+ (slotted Actions without `Action.fcurves`): an Action slot for the object, its
channelbag from `bpy_extras.anim_utils.action_ensure_channelbag_for_slot` (new in 5.0), then
`channelbag.fcurves.new(path, index=i, group_name=group)`. Blender 4.2-4.5: the legacy
`action.fcurves.new(path, index=i, action_group=group)` (4.4/4.5 map it onto the first slot).
Either way each curve gets `keyframe_points.add(T)` and one `foreach_set("co", ...)`.

Every Action written here records the scene frame rate its keys were made for (`sopo_fps`), its
first frame (`sopo_start`) and whether its keys sit on whole frames, so `retime_action` can move
it to another frame rate later (rotations slerped, everything else interpolated linearly).
"""
import bpy
import numpy as np
from bpy_extras import anim_utils

from .vendored import rotations as rot

# `bpy.types.Action` has no Python attribute per RNA property, so `hasattr(bpy.types.Action,
# "slots")` is False even in 5.0; the helper exists exactly where `Action.fcurves` is gone.
HAS_CHANNELBAGS = hasattr(anim_utils, "action_ensure_channelbag_for_slot")
_LINEAR = 1  # FCurve keyframe interpolation enum value of 'LINEAR'


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base


def scene_frames(scene: bpy.types.Scene, num_frames: int, motion_fps: float, start=None) -> np.ndarray:
    """Scene frame of each motion frame so it plays at its own speed: start + t * scene_fps."""
    start = scene.frame_start if start is None else start
    return start + np.arange(num_frames, dtype=np.float64) * (scene_fps(scene) / float(motion_fps))


def remove_if_unused(action) -> bool:
    """Delete an Action made here that nothing else uses (no fake user, no NLA strip, no other object)."""
    if action is None or "sopo_fps" not in action or action.users > 0:
        return False
    bpy.data.actions.remove(action)
    return True


def write_action(obj: bpy.types.Object, name: str, frames: np.ndarray, channels, replace: bool = False,
                 whole_frames: bool = True, scene=None) -> bpy.types.Action:
    """Key `channels` on `obj` as a new Action and assign it.

    channels: iterable of (data_path, group_name, values) with values (T, k): curve i of a
    path gets values[:, i]. Keys are linear: the data are samples, not poses to ease between.
    replace: the object's current Action, if written here and used by nothing else, is deleted
    first, so the new one takes its name instead of piling up "name.001", "name.002"...
    """
    scene = scene or bpy.context.scene
    frames = np.asarray(frames, dtype=np.float32)
    count = frames.shape[0]
    if replace and obj.animation_data is not None and obj.animation_data.action is not None:
        old = obj.animation_data.action
        if "sopo_fps" in old and old.users == 1:
            obj.animation_data.action = None
            remove_if_unused(old)
    action = bpy.data.actions.new(name)
    action["sopo_fps"] = scene_fps(scene)
    action["sopo_start"] = float(frames[0])
    action["sopo_whole_frames"] = bool(whole_frames)
    animation_data = obj.animation_data or obj.animation_data_create()
    if HAS_CHANNELBAGS:
        slot = action.slots.new(id_type='OBJECT', name=obj.name)
        fcurves = anim_utils.action_ensure_channelbag_for_slot(action, slot).fcurves

        def new_fcurve(path, index, group):
            return fcurves.new(path, index=index, group_name=group)
    else:
        slot = None

        def new_fcurve(path, index, group):
            return action.fcurves.new(path, index=index, action_group=group)

    co = np.empty((count, 2), dtype=np.float32)
    co[:, 0] = frames
    interpolation = np.full(count, _LINEAR, dtype=np.int32)
    for path, group, values in channels:
        values = np.asarray(values, dtype=np.float32).reshape(count, -1)
        for index in range(values.shape[1]):
            fcurve = new_fcurve(path, index, group)
            points = fcurve.keyframe_points
            points.add(count)
            co[:, 1] = values[:, index]
            points.foreach_set("co", co.ravel())
            points.foreach_set("interpolation", interpolation)
            fcurve.update()
    animation_data.action = action  # assigns the slot too: its name matches the object
    if slot is not None and animation_data.action_slot != slot:
        # bpy 5.0.1 crashes setting action_slot on an armature object whose pose is not built yet
        # (a new object before any depsgraph update): build it first.
        if obj.type == 'ARMATURE' and obj.pose is None:
            bpy.context.view_layer.update()
        animation_data.action_slot = slot
    return action


def fcurve_sets(action: bpy.types.Action) -> list:
    """The Action's F-curves, one list per slot (one list before 5.0)."""
    if HAS_CHANNELBAGS:
        return [list(bag.fcurves) for layer in action.layers for strip in layer.strips for bag in strip.channelbags]
    return [list(action.fcurves)]


def _keys(fcurve) -> np.ndarray:
    co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float64)
    fcurve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def _set_keys(fcurve, co: np.ndarray) -> None:
    points = fcurve.keyframe_points
    points.clear()
    points.add(len(co))
    points.foreach_set("co", np.asarray(co, dtype=np.float32).ravel())
    points.foreach_set("interpolation", np.full(len(co), _LINEAR, dtype=np.int32))
    fcurve.update()


def retime_action(action: bpy.types.Action, fps: float) -> None:
    """Move an Action written here to the scene rate `fps`, keeping its length in seconds: with whole
    frames, one key per frame again (quaternions slerped between the old keys, other channels
    linear); with source timing, the keys' frames are scaled."""
    old_fps, start = float(action["sopo_fps"]), float(action.get("sopo_start", 1.0))
    whole = bool(action.get("sopo_whole_frames", True))
    groups = {}
    for number, fcurves in enumerate(fcurve_sets(action)):
        for fcurve in fcurves:
            if len(fcurve.keyframe_points):
                groups.setdefault((number, fcurve.data_path), []).append(fcurve)
    for (_, path), fcurves in groups.items():
        fcurves.sort(key=lambda fc: fc.array_index)
        keys = [_keys(fc) for fc in fcurves]
        times = (keys[0][:, 0] - start) / old_fps
        if not whole:
            for fcurve, co in zip(fcurves, keys):
                _set_keys(fcurve, np.c_[start + (co[:, 0] - start) * fps / old_fps, co[:, 1]])
            continue
        count = int(round((times[-1] - times[0]) * fps)) + 1
        new_times = np.minimum(times[0] + np.arange(count) / fps, times[-1])
        frames = start + np.round(times[0] * fps) + np.arange(count)
        if path.endswith("rotation_quaternion") and len(fcurves) == 4 \
                and all(len(k) == len(keys[0]) for k in keys):
            q = np.stack([k[:, 1] for k in keys], axis=1)
            src = np.interp(new_times, times, np.arange(len(times)))
            i0 = np.minimum(np.floor(src).astype(np.int64), len(times) - 1)
            i1 = np.minimum(i0 + 1, len(times) - 1)
            values = rot.quat_fix_continuity(rot.quat_slerp(q[i0], q[i1], src - i0), axis=0)
            for index, fcurve in enumerate(fcurves):
                _set_keys(fcurve, np.c_[frames, values[:, index]])
        else:
            for fcurve, co in zip(fcurves, keys):
                _set_keys(fcurve, np.c_[frames, np.interp(new_times, (co[:, 0] - start) / old_fps, co[:, 1])])
    action["sopo_fps"] = float(fps)


def last_key_frame(obj: bpy.types.Object) -> float:
    """The frame of the last key animating `obj` (its scene start frame when it has none)."""
    last = [fc.keyframe_points[-1].co[0] for fc in action_fcurves(obj) if len(fc.keyframe_points)]
    return float(max(last)) if last else float(bpy.context.scene.frame_start)


def action_fcurves(obj: bpy.types.Object):
    """The F-curves animating `obj` (its slot's channelbag in 4.4+, `Action.fcurves` before)."""
    animation_data = obj.animation_data
    if animation_data is None or animation_data.action is None:
        return []
    action = animation_data.action
    if HAS_CHANNELBAGS:
        channelbag = anim_utils.action_get_channelbag_for_slot(action, animation_data.action_slot)
        return [] if channelbag is None else list(channelbag.fcurves)
    return list(action.fcurves)


def sample_fcurves(obj: bpy.types.Object, paths: dict, frames: np.ndarray) -> dict:
    """Evaluate `obj`'s F-curves at `frames`: {data_path: (T, k)} for each path given with its k.

    Missing curves read as 0 (a pose bone channel that was never keyed)."""
    by_key = {(fc.data_path, fc.array_index): fc for fc in action_fcurves(obj)}
    out = {}
    for path, width in paths.items():
        values = np.zeros((len(frames), width))
        for index in range(width):
            fcurve = by_key.get((path, index))
            if fcurve is not None:
                values[:, index] = [fcurve.evaluate(float(f)) for f in frames]
        out[path] = values
    return out


def key_frames(obj: bpy.types.Object, data_path: str) -> np.ndarray:
    """The frames of the keys on curve 0 of `data_path` (the sample times of a written motion)."""
    for fcurve in action_fcurves(obj):
        if fcurve.data_path == data_path and fcurve.array_index == 0:
            co = np.empty(2 * len(fcurve.keyframe_points), dtype=np.float32)
            fcurve.keyframe_points.foreach_get("co", co)
            return co[0::2].astype(np.float64)
    return np.zeros(0)
