"""Apply to my rig: a Mixamo-named rig with another rest pose, axes, units and proportions
reproduces the candidate's joint directions, and its Action exports as BVH."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bpy_support import SCALE, build_mixamo_rig, bpy, reset_blender, smooth_motion

from addon import bone_maps, candidates, retarget
from shared import skeleton

@pytest.fixture
def scene_with_rig():
    reset_blender()
    scene = bpy.context.scene
    q, t = smooth_motion(count=1, frames=30, seed=3)
    collection = candidates.import_candidates(scene, request_id="req", prompt="a person dances", rotations=q,
                                              translation=t, fps=20.0)
    return scene, candidates.candidate_objects(collection)[0], build_mixamo_rig()


def _world_heads(obj, names):
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    return {n: np.array(evaluated.matrix_world @ evaluated.pose.bones[n].head) for n in names}


def _unit(v):
    return v / np.linalg.norm(v)


def test_mixamo_rig_reproduces_joint_directions_and_scaled_root_motion(scene_with_rig):
    scene, source, rig = scene_with_rig
    result = retarget.apply_to_rig(scene, source, rig, 'AUTO', feet_on_floor=False)  # the transfer alone
    assert len(result.mapping) == 22 and result.mapping["pelvis"] == "mixamorig:Hips"
    assert result.scale == pytest.approx(100.0 * SCALE, rel=1e-6)  # cm per metre, times the bigger legs
    assert rig.animation_data.action is result.action

    checks = []  # (joint, child) pairs whose bone directions must match
    for j, joint in enumerate(skeleton.JOINT_NAMES):
        kids = skeleton.CHILDREN[j]
        if kids:
            checks.append((joint, retarget.MAIN_CHILD.get(joint, skeleton.JOINT_NAMES[kids[0]])))
    checks.append(("right_hip", "left_hip"))  # the pelvis's twist: across the hips
    first_src = first_tgt = None
    for k in (0, 9, 17, 29):
        scene.frame_set(1 + k)
        src = _world_heads(source, skeleton.JOINT_NAMES)
        tgt = _world_heads(rig, result.mapping.values())
        tgt = {joint: tgt[bone] for joint, bone in result.mapping.items()}
        for a, b in checks:
            np.testing.assert_allclose(_unit(tgt[b] - tgt[a]), _unit(src[b] - src[a]), atol=2e-4,
                                       err_msg=f"frame {k}: {a} -> {b}")
        if first_src is None:
            first_src, first_tgt = src["pelvis"], tgt["pelvis"]
        np.testing.assert_allclose(tgt["pelvis"] - first_tgt, SCALE * (src["pelvis"] - first_src), atol=1e-4)


def test_retargeted_action_exports_as_bvh(scene_with_rig, tmp_path):
    scene, source, rig = scene_with_rig
    retarget.apply_to_rig(scene, source, rig, 'MIXAMO')
    for obj in scene.objects:
        obj.select_set(obj is rig)
    bpy.context.view_layer.objects.active = rig
    path = tmp_path / "rig.bvh"
    assert bpy.ops.export_anim.bvh(filepath=str(path), frame_start=scene.frame_start,
                                   frame_end=scene.frame_end) == {'FINISHED'}
    text = path.read_text()
    assert "JOINT mixamorig:LeftForeArm" in text
    assert f"Frames: {scene.frame_end - scene.frame_start + 1}" in text


def test_user_map_file_and_bad_maps(scene_with_rig, tmp_path):
    scene, source, rig = scene_with_rig
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"pelvis": "mixamorig:Hips", "spine1": "mixamorig:Spine"}))
    result = retarget.apply_to_rig(scene, source, rig, 'FILE', str(path))
    assert result.mapping == {"pelvis": "mixamorig:Hips", "spine1": "mixamorig:Spine"}
    assert any("legs" in w for w in result.warnings)
    path.write_text(json.dumps({"hips": "mixamorig:Hips"}))
    with pytest.raises(bone_maps.BoneMapError, match="unknown SMPL joints"):
        retarget.apply_to_rig(scene, source, rig, 'FILE', str(path))
    with pytest.raises(bone_maps.BoneMapError, match="pelvis"):
        retarget.apply_to_rig(scene, source, rig, 'RIGIFY')
