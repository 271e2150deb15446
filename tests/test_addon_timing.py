"""Keys on whole frames, in real bpy with the installed extension: candidates resampled to the scene's
frame rate (one key per frame, slerp) and lasting as long as the motion; source timing on request;
Re-time after the scene's rate changes (candidates and an applied action); In place and Trim
through Update Candidates."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from bpy_support import addon, build_mixamo_rig, bpy, smooth_motion  # noqa: F401 (fixture)

from shared.motion import Motion

RATES = (24.0, 25.0, 30.0, 30000 / 1001, 60.0)


def set_rate(scene, fps: float) -> None:
    scene.render.fps = int(math.ceil(fps - 1e-9))
    scene.render.fps_base = scene.render.fps / fps


def bring(addon, request_id: str, q, t):
    protocol = addon.module("shared.protocol")
    addon.session._import_result(protocol.result(request_id, q, t, fps=20.0, model="tiny"),
                                 {"scene": bpy.context.scene.name, "prompt": "a person walks", "sent": time.monotonic()})
    return addon.candidates.candidate_objects(bpy.context.scene.sopo_motion.candidates)


def key_frames(addon, obj) -> list[np.ndarray]:
    keyframes = addon.module("keyframes")
    out = []
    for fcurve in keyframes.action_fcurves(obj):
        co = np.empty(2 * len(fcurve.keyframe_points))
        fcurve.keyframe_points.foreach_get("co", co)
        out.append(co[0::2])
    return out


def joints_at(addon, obj, frame: int) -> np.ndarray:
    bpy.context.scene.frame_set(frame)
    return addon.module("armature").joint_positions_y_up(obj, bpy.context.evaluated_depsgraph_get())


@pytest.mark.parametrize("fps", RATES, ids=[f"{r:.2f}" for r in RATES])
def test_keys_sit_on_whole_frames_and_last_as_long_as_the_motion(addon, fps):
    scene = bpy.context.scene
    set_rate(scene, fps)
    q, t = smooth_motion(2, 41, seed=2)  # 2.0 s
    objects = bring(addon, f"req-{fps:.2f}", q, t)
    for i, obj in enumerate(objects):
        for frames in key_frames(addon, obj):
            np.testing.assert_array_equal(frames, scene.frame_start + np.arange(len(frames)))
            assert abs((frames[-1] - frames[0]) / fps - 2.0) <= 0.5 / fps  # within half a frame
        expected = Motion(q[i], t[i], 20.0).resample(fps).positions()  # slerp at k / fps
        for k in (0, 7, len(expected) // 2, len(expected) - 1):
            np.testing.assert_allclose(joints_at(addon, obj, scene.frame_start + k), expected[k], atol=1e-5)
    assert scene.frame_end == scene.frame_start + round(2.0 * fps)


def test_source_timing_keys_the_motion_samples_where_they_fall(addon):
    scene = bpy.context.scene
    set_rate(scene, 30.0)
    scene.sopo_motion.timing = 'SOURCE'
    [obj] = bring(addon, "req-source", *smooth_motion(1, 21))
    for frames in key_frames(addon, obj):
        np.testing.assert_allclose(frames, 1.0 + 1.5 * np.arange(21), atol=1e-5)


def test_retime_after_a_frame_rate_change_keeps_candidates_and_applied_actions_in_time(addon):
    scene = bpy.context.scene
    set_rate(scene, 24.0)
    q, t = smooth_motion(2, 61, seed=4)  # 3.0 s
    objects = bring(addon, "req-retime", q, t)
    rig = build_mixamo_rig(floor_cm=2.0)
    assert bpy.ops.sopo.pick(index=0) == {'FINISHED'}
    bpy.context.view_layer.objects.active = rig
    assert bpy.ops.sopo.apply_to_rig() == {'FINISHED'}
    action = rig.animation_data.action
    scene.frame_set(scene.frame_start + 36)  # 1.5 s
    hand_before = np.array(rig.matrix_world @ rig.pose.bones["mixamorig:LeftHand"].head)

    where = [tuple(obj.location) for obj in objects]
    set_rate(scene, 30.0)
    assert bpy.ops.sopo.retime() == {'FINISHED'}
    assert [tuple(obj.location) for obj in objects] == where  # re-timed where they stand
    for obj in [objects[0], rig]:
        for frames in key_frames(addon, obj):
            np.testing.assert_array_equal(frames, scene.frame_start + np.arange(len(frames)))
            assert abs((frames[-1] - frames[0]) / 30.0 - 3.0) <= 0.5 / 30.0
    assert rig.animation_data.action is action and action["sopo_fps"] == pytest.approx(30.0)
    expected = Motion(q[0], t[0], 20.0).resample(30.0).positions()
    np.testing.assert_allclose(joints_at(addon, objects[0], scene.frame_start + 45), expected[45], atol=1e-5)
    scene.frame_set(scene.frame_start + 45)  # 1.5 s again
    hand_after = np.array(rig.matrix_world @ rig.pose.bones["mixamorig:LeftHand"].head)
    np.testing.assert_allclose(hand_after, hand_before, atol=0.01)  # same moment, re-sampled keys
    assert scene.frame_end == scene.frame_start + 90


def test_in_place_and_trim_through_update_candidates(addon):
    scene = bpy.context.scene
    set_rate(scene, 20.0)
    q, t = smooth_motion(3, 41, seed=5)  # walks 2 m along +Z
    objects = bring(addon, "req-shape", q, t)
    candidates = addon.candidates
    props = scene.sopo_motion
    props.in_place, props.use_trim, props.trim_start, props.trim_end = True, True, 11, 30
    assert bpy.ops.sopo.update_candidates() == {'FINISHED'}
    for i, obj in enumerate(objects):
        frames = key_frames(addon, obj)
        assert all(len(f) == 20 and f[0] == scene.frame_start for f in frames)  # motion frames 10..29
        expected = Motion(q[i, 10:30], t[i, 10:30], 20.0).positions()
        travel = t[i, 10:30][:, [0, 2]] - t[i, 10][[0, 2]]
        expected[..., [0, 2]] -= travel[:, None, :]  # in place: no horizontal travel
        for k in (0, 9, 19):
            np.testing.assert_allclose(joints_at(addon, obj, scene.frame_start + k), expected[k], atol=1e-5)
    assert scene.frame_end == scene.frame_start + 19
    # In place: each candidate now sweeps a small area; they still stand apart
    xs = [obj.location.x for obj in objects]
    assert np.all(np.diff(xs) > 0.5)
    assert candidates.collections(scene)[-1]["sopo_shape"]["in_place"] is True
