"""The add-on's artist controls in real bpy: a rig's pose and place (SMPL-22 candidates and a Mixamo rig, as the
exact inverse of Apply to rig), a curve as a root path, kept half bodies. Each control through the panel and a
real server: tests/test_addon_controls.py."""
from __future__ import annotations

import numpy as np
import pytest

from bpy_support import bpy, reset_blender, smooth_motion

from addon import candidates, keyframes, retarget
from addon import constraints as controls
from addon.shaping import Shape
from shared import constraints as C
from shared import protocol as P
from shared import rotations as rot
from shared.motion import forward_kinematics
from test_addon_retarget import build_mixamo_rig

FRAMES = 30


@pytest.fixture
def scene():
    reset_blender()
    scene = bpy.context.scene
    scene.render.fps = 24                                     # not the motion's 20 fps
    q, t = smooth_motion(count=2, frames=FRAMES, seed=4)
    collection = candidates.import_candidates(scene, request_id="req", prompt="a person dances", rotations=q,
                                              translation=t, fps=20.0, shape=Shape(whole_frames=False))
    return scene, candidates.candidate_objects(collection), q.astype(np.float64), t.astype(np.float64)


def _same_rotations(a, b, atol=1e-5):
    np.testing.assert_allclose(np.abs(np.sum(rot.quat_normalize(a) * rot.quat_normalize(b), axis=-1)), 1.0, atol=atol)


def test_motion_frames_follow_the_scene_rate(scene):
    scene, objs, q, t = scene
    frames = keyframes.scene_frames(scene, FRAMES, 20.0)
    assert [controls.motion_frame(scene, f) for f in frames] == list(range(FRAMES))
    assert controls.motion_frame(scene, scene.frame_start + 24) == 20      # one second


def test_read_pose_of_a_candidate_is_its_motion(scene):
    scene, objs, q, t = scene
    frames = keyframes.scene_frames(scene, FRAMES, 20.0)
    scene.frame_set(7)
    for obj, k in ((objs[0], 0), (objs[0], 13), (objs[1], 29)):
        rotations, translation = controls.read_pose(obj, frames[k])
        candidate = candidates.candidate_objects(objs[0].users_collection[0]).index(obj)
        _same_rotations(rotations, q[candidate, k])
        np.testing.assert_allclose(translation, t[candidate, k], atol=1e-5)
    assert scene.frame_current == 7                                     # the artist's frame is left as it was


def test_read_pose_of_a_rig_is_the_inverse_of_apply_to_rig(scene):
    scene, objs, q, t = scene
    rig = build_mixamo_rig()
    retarget.apply_to_rig(scene, objs[0], rig, 'AUTO', feet_on_floor=False)   # the transfer alone: its exact inverse
    frames = keyframes.scene_frames(scene, FRAMES, 20.0)
    for k in (0, 11, 29):
        rotations, translation = controls.read_pose(rig, frames[k])
        np.testing.assert_allclose(forward_kinematics(rotations, translation), forward_kinematics(q[0, k], t[0, k]),
                                   atol=1e-4)
        _same_rotations(rotations, q[0, k], atol=1e-5)


def test_start_end_and_keyframe_controls(scene):
    scene, objs, q, t = scene
    frames = keyframes.scene_frames(scene, FRAMES, 20.0)
    start = controls.start_pose(objs[1], frames[29])
    assert (start.frame, start.root, start.joints) == (0, True, None)
    np.testing.assert_allclose(start.translation, t[1, 29], atol=1e-5)
    end = controls.end_pose(objs[0], frames[3], frames=120)
    assert (end.frame, end.root) == (119, True)
    arms = controls.keyframe(objs[0], frames[5], frame=60, joints=range(16, 22))
    assert arms.joints == tuple(range(16, 22)) and not arms.root
    c = controls.validate(C.Constraints(start_pose=start, end_pose=end, keyframes=[arms]), seconds=6.0)
    assert P.decode_message(P.generate("walk", seconds=6.0, constraints=c).encode(), accept=P.CLIENT_TYPES)
    with pytest.raises(controls.ControlError, match="the clip has 40 frames"):
        controls.validate(C.Constraints(end_pose=end), seconds=2.0)


def _poly_curve(points, cyclic=False, name="path"):
    data = bpy.data.curves.new(name, 'CURVE')
    data.dimensions = '3D'
    spline = data.splines.new('POLY')
    spline.points.add(len(points) - 1)
    for point, co in zip(spline.points, points):
        point.co = (*co, 1.0)
    spline.use_cyclic_u = cyclic
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def test_a_curve_becomes_a_root_path(scene):
    scene, objs, q, t = scene
    curve = _poly_curve([(0.0, 0.0, 0.0), (2.0, 0.0, 0.0), (2.0, 3.0, 0.0)])
    curve.location = (1.0, 0.5, 0.0)
    path = controls.root_path(curve)                                   # the world, in the motion's axes
    assert len(path.points) == 101 and path.speed is None               # 5 m at 5 cm
    np.testing.assert_allclose(path.points[[0, 40, -1]], [[1.0, -0.5], [3.0, -0.5], [3.0, -3.5]], atol=1e-9)
    x = objs[0].location.x
    local = controls.root_path(curve, objs[0], speed=1.2)               # relative to a candidate armature
    np.testing.assert_allclose(local.points, path.points - [x, 0.0], atol=1e-6)
    assert local.speed == 1.2
    ring = _poly_curve([(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (1.0, 1.0, 0.0)], cyclic=True, name="ring")
    np.testing.assert_allclose(controls.root_path(ring).points[-1], [0.0, 0.0], atol=1e-9)   # closed
    C.Constraints(root_path=local).check(120)


def test_a_path_for_a_rig_walks_the_rig_along_the_curve(scene):
    """The path in the rig's motion space, made into a motion and applied to the rig, puts its hips on the curve."""
    scene, objs, q, t = scene
    rig = build_mixamo_rig()
    curve = _poly_curve([(3.0, 1.0, 0.0), (4.0, 1.0, 0.0), (4.0, 2.5, 0.0)])
    path = controls.root_path(curve, rig)
    s = np.linspace(0.0, path.length, FRAMES)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path.points, axis=0), axis=-1))])
    along = np.stack([np.interp(s, arc, path.points[:, 0]), np.interp(s, arc, path.points[:, 1])], -1)
    walk_t = t[0].copy()
    walk_t[:, [0, 2]] = along
    collection = candidates.import_candidates(scene, request_id="walk", prompt="walk", rotations=q[:1],
                                              translation=walk_t[None], fps=20.0)
    retarget.apply_to_rig(scene, candidates.candidate_objects(collection)[0], rig, 'AUTO')
    hips = rig.pose.bones["mixamorig:Hips"]
    world_curve = controls.curve_points_world(curve)[:, :2]
    for k, frame in enumerate(keyframes.scene_frames(scene, FRAMES, 20.0)[::7]):
        scene.frame_set(int(round(frame)))
        at = np.array(rig.matrix_world @ hips.head)[:2]
        assert np.min(np.linalg.norm(world_curve[:-1] - at, axis=-1) + np.linalg.norm(world_curve[1:] - at, axis=-1)
                      - np.linalg.norm(np.diff(world_curve, axis=0), axis=-1)) < 1e-3, (k, at)


def test_keep_a_half_of_a_picked_candidate(scene):
    scene, objs, q, t = scene
    lower = controls.keep_joints(objs[1], "lower")
    assert lower.joints == C.LOWER_BODY and controls.candidate_seconds(objs[1]) == FRAMES / 20.0
    _same_rotations(lower.rotations, q[1])
    np.testing.assert_allclose(lower.translation, t[1], atol=1e-6)
    upper = controls.keep_joints(objs[0], "UPPER")
    assert upper.joints == C.UPPER_BODY
    c = controls.validate(C.Constraints(keep_joints=upper), seconds=controls.candidate_seconds(objs[0]))
    assert c.keep_joints.rotations.shape == (FRAMES, 22, 4)
    with pytest.raises(controls.ControlError, match="exactly that length"):
        controls.validate(C.Constraints(keep_joints=upper), seconds=2.0)


def test_scene_errors_are_control_errors(scene):
    scene, objs, q, t = scene
    curve = _poly_curve([(0.0, 0.0, 0.0), (1.0, 0.0, 0.0)])
    with pytest.raises(controls.ControlError, match="not an armature"):
        controls.read_pose(curve)
    with pytest.raises(controls.ControlError, match="not a curve"):
        controls.root_path(objs[0])
    curve.data.splines.new('POLY').points.add(1)
    with pytest.raises(controls.ControlError, match="2 splines"):
        controls.root_path(curve)
    with pytest.raises(controls.ControlError, match="generated candidate"):
        controls.keep_joints(curve, "UPPER")
    with pytest.raises(controls.ControlError, match="UPPER or LOWER"):
        controls.keep_joints(objs[0], "arms")
    stranger = bpy.data.objects.new("stranger", bpy.data.armatures.new("stranger"))
    scene.collection.objects.link(stranger)
    bpy.context.view_layer.objects.active = stranger
    bpy.ops.object.mode_set(mode='EDIT')
    bone = stranger.data.edit_bones.new("Root")
    bone.tail = (0.0, 0.0, 1.0)
    bpy.ops.object.mode_set(mode='OBJECT')
    with pytest.raises(controls.ControlError, match="stranger"):
        controls.read_pose(stranger)

