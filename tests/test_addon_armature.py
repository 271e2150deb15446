"""Candidates as keyframed SMPL-22 armatures in real bpy: FK-exact, bulk-keyed, right speed, with a body."""
from __future__ import annotations

import numpy as np
import pytest

from bpy_support import bpy, evaluated_vertices, linear_blend_skinning, reset_blender, smooth_motion

from addon import armature, candidates, keyframes, shaping
from shared.motion import forward_kinematics
from shared import skeleton

SOURCE_TIMING = shaping.Shape(whole_frames=False)


@pytest.fixture
def scene():
    reset_blender()
    return bpy.context.scene


def _import(scene, count=2, frames=40, seed=0, request_id="req-1", fps=20.0, shape=shaping.Shape()):
    q, t = smooth_motion(count, frames, seed)
    collection = candidates.import_candidates(scene, request_id=request_id, prompt="a person walks and turns",
                                              rotations=q, translation=t, fps=fps, shape=shape)
    return q, t, collection


def _positions_at(scene, obj, frame: int, subframe: float = 0.0) -> np.ndarray:
    scene.frame_set(frame, subframe=subframe)
    return armature.joint_positions_y_up(obj, bpy.context.evaluated_depsgraph_get())


def test_joint_positions_equal_numpy_fk(scene):
    scene.render.fps, scene.render.fps_base = 20, 1.0
    q, t, collection = _import(scene)
    objects = candidates.candidate_objects(collection)
    assert len(objects) == 2
    for i, obj in enumerate(objects):
        for k in (0, 7, 20, 39):
            expected = forward_kinematics(q[i, k], t[i, k])
            got = _positions_at(scene, obj, scene.frame_start + k)
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_every_channel_has_one_key_per_frame_and_continuous_signs(scene):
    scene.render.fps, scene.render.fps_base = 20, 1.0  # the motion's own rate: one key per motion frame
    count, frames = 3, 25
    _, _, collection = _import(scene, count=count, frames=frames)
    objects = candidates.candidate_objects(collection)
    assert len(objects) == count
    for obj in objects:
        fcurves = keyframes.action_fcurves(obj)
        assert len(fcurves) == skeleton.NUM_JOINTS * 4 + 3
        assert all(len(fc.keyframe_points) == frames for fc in fcurves)
        assert {fc.group.name for fc in fcurves} == set(skeleton.JOINT_NAMES)
        for name in skeleton.JOINT_NAMES:
            path = candidates.bone_rotation_path(name)
            keys = keyframes.sample_fcurves(obj, {path: 4}, keyframes.key_frames(obj, path))[path]
            assert np.all(np.sum(keys[1:] * keys[:-1], axis=1) >= 0.0), name


def test_source_timing_plays_a_20_fps_motion_at_its_speed_on_a_30_fps_scene(scene):
    scene.render.fps, scene.render.fps_base = 30, 1.0
    q, t, collection = _import(scene, count=1, frames=40, shape=SOURCE_TIMING)
    obj = candidates.candidate_objects(collection)[0]
    frames = keyframes.key_frames(obj, candidates.bone_rotation_path("pelvis"))
    np.testing.assert_allclose(frames, 1.0 + np.arange(40) * 1.5, atol=1e-5)
    assert (scene.frame_start, scene.frame_end) == (1, 60)  # 39 motion frames = 1.95 s = 58.5 scene frames
    # motion frame 2 (0.1 s) is scene frame 4; motion frame 1 (0.05 s) is scene frame 2.5
    np.testing.assert_allclose(_positions_at(scene, obj, 4), forward_kinematics(q[0, 2], t[0, 2]), atol=1e-5)
    np.testing.assert_allclose(_positions_at(scene, obj, 2, 0.5), forward_kinematics(q[0, 1], t[0, 1]), atol=1e-5)


def test_candidates_side_by_side_labelled_one_collection_per_request(scene):
    _, _, first = _import(scene, count=4, request_id="req-a")
    _, _, second = _import(scene, count=2, request_id="req-b")
    assert first is not second and {first[candidates.REQUEST_KEY], second[candidates.REQUEST_KEY]} == {"req-a", "req-b"}
    assert candidates.request_collection("req-b") is second
    objects = candidates.candidate_objects(first)
    xs = [obj.location.x for obj in objects]
    assert np.all(np.diff(xs) >= 1.0)
    assert [obj[candidates.CANDIDATE_KEY] for obj in objects] == [0, 1, 2, 3]
    labels = sorted(obj.data.body for obj in first.objects if obj.type == 'FONT')
    assert labels == ["1", "2", "3", "4"]
    assert len(bpy.data.armatures) == 1  # every candidate shares one Armature datablock


def test_mannequin_is_shared_and_skinned_to_the_bones(scene):
    q, t, collection = _import(scene, count=2)
    objects = candidates.candidate_objects(collection)
    bodies = [child for obj in objects for child in obj.children if child.type == 'MESH']
    assert len(bodies) == 2 and bodies[0].data is bodies[1].data
    mesh = bodies[0].data
    for body, obj in zip(bodies, objects):
        modifier = body.modifiers[0]
        assert modifier.type == 'ARMATURE' and modifier.object is obj
    assert set(g.name for g in bodies[0].vertex_groups) <= set(skeleton.JOINT_NAMES)
    weights = [[g.weight for g in v.groups] for v in mesh.vertices]
    assert all(w == [1.0] for w in weights)  # rigid: each vertex on exactly one bone

    # Deformed, the head capsule's vertices follow the head bone: rest offset carried by its world matrix.
    scene.frame_set(11)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    obj, body = objects[0], bodies[0]
    head = obj.evaluated_get(depsgraph).pose.bones["head"]
    evaluated = body.evaluated_get(depsgraph).to_mesh()
    group = bodies[0].vertex_groups["head"].index
    ids = [v.index for v in mesh.vertices if v.groups[0].group == group]
    rest_bone = np.array(obj.data.bones["head"].matrix_local)
    pose_bone = np.array(head.matrix)
    rest_co = np.array([mesh.vertices[i].co for i in ids])
    expected = (pose_bone @ np.linalg.inv(rest_bone) @ np.c_[rest_co, np.ones(len(ids))].T).T[:, :3]
    got = np.array([evaluated.vertices[i].co for i in ids])
    body.evaluated_get(depsgraph).to_mesh_clear()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_server_body_mesh_deforms_by_linear_blend_skinning(scene):
    """A skinned body (as body.py reads from an SMPL model file) follows SMPL's LBS exactly."""
    scene.render.fps, scene.render.fps_base = 20, 1.0
    joints = skeleton.REST_JOINTS
    parents = skeleton.PARENTS
    # vertices on the joints, and halfway along each bone weighted half to each end's bone
    vertices = np.concatenate([joints, (joints[1:] + joints[parents[1:]]) / 2])
    weights = np.zeros((len(vertices), skeleton.NUM_JOINTS))
    weights[np.arange(22), np.arange(22)] = 1.0
    weights[22 + np.arange(21), np.arange(1, 22)] = 0.5
    weights[22 + np.arange(21), parents[1:]] += 0.5
    faces = np.array([[i, i + 1, i + 2] for i in range(0, len(vertices) - 2, 3)])
    q, t = smooth_motion(1, 20, seed=5)
    collection = candidates.import_candidates(scene, request_id="body", prompt="body", rotations=q, translation=t,
                                              fps=20.0, body={"vertices": vertices, "faces": faces, "weights": weights})
    obj = candidates.candidate_objects(collection)[0]
    body = obj.children[0]
    assert body.data["sopo_body"] == "smpl"
    k = 13
    scene.frame_set(1 + k)
    expected = linear_blend_skinning(q[0, k], t[0, k], vertices, weights, joints)
    np.testing.assert_allclose(evaluated_vertices(body), expected, atol=1e-5)
