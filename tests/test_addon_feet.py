"""Feet on the floor on the artist's rig after Apply, in real bpy: a Mixamo-style rig standing 2 cm
above the floor at rest takes a marching motion that floats 3 cm, then sinks 2 cm, and slides
sideways; in the frames its feet are down they meet the floor at the rig's rest height, never go
below it, and stay pinned. Apply again replaces the previous Action unless it is kept; a name
field names it."""
from __future__ import annotations

import numpy as np
import pytest

from bpy_support import build_mixamo_rig, bpy, reset_blender

from addon import candidates, feet, keyframes, retarget
from shared import rotations as rot
from shared import skeleton

FPS = 20.0
FOOT_BONES = {"left": ("LeftFoot", "LeftToeBase", "LeftToe_End"),
              "right": ("RightFoot", "RightToeBase", "RightToe_End")}


def march(frames: int = 80, slide: float = 0.25, float_m: float = 0.03, sink_m: float = 0.02):
    """(rotations (1, T, 22, 4), translation (1, T, 3), down {side: (T,) bool}): marching on the spot,
    each leg lifted in turn while the other stands, the whole body sliding sideways at `slide` m/s,
    the standing foot `float_m` above the floor in the first half and `sink_m` below it in the second."""
    t = np.arange(frames) / FPS
    phase = np.sin(2.0 * np.pi * t / 1.6)
    aa = np.zeros((frames, skeleton.NUM_JOINTS, 3))
    down = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lift = np.maximum(0.0, sign * phase)
        hip, knee, ankle = (skeleton.JOINT_INDEX[f"{side}_{j}"] for j in ("hip", "knee", "ankle"))
        aa[:, hip, 0], aa[:, knee, 0], aa[:, ankle, 0] = -0.9 * lift, 1.6 * lift, -0.7 * lift
        down[side] = lift == 0.0
    q = rot.axis_angle_to_quat(aa)
    standing = -skeleton.floor_height(skeleton.REST_JOINTS - skeleton.REST_JOINTS[0])
    trans = np.zeros((frames, 3))
    trans[:, 0] = slide * t
    ramp = np.clip((t - t[-1] / 2) / 0.6 + 0.5, 0.0, 1.0)  # from floating to sinking over 0.6 s
    trans[:, 1] = standing + float_m + (-sink_m - float_m) * ramp * ramp * (3.0 - 2.0 * ramp)
    return q[None].astype(np.float32), trans[None].astype(np.float32), down


@pytest.fixture
def scene_with_rig():
    reset_blender()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = int(FPS), 1.0
    q, t, down = march()
    collection = candidates.import_candidates(scene, request_id="march", prompt="a person marches", rotations=q,
                                              translation=t, fps=FPS)
    return scene, candidates.candidate_objects(collection)[0], build_mixamo_rig(floor_cm=2.0), down


def _lowest(rig, side: str, rest: bool = False) -> float:
    m = np.array(rig.matrix_world)
    heights = []
    for name in FOOT_BONES[side]:
        bone = rig.data.bones[f"mixamorig:{name}"] if rest else rig.pose.bones[f"mixamorig:{name}"]
        for p in ((bone.head_local, bone.tail_local) if rest else (bone.head, bone.tail)):
            heights.append((m @ np.r_[np.array(p), 1.0])[2])
    return float(min(heights))


def _track(scene, rig, count: int):
    """Per frame: {side: lowest foot height}, {side: ankle world xy}."""
    low, xy = {s: [] for s in FOOT_BONES}, {s: [] for s in FOOT_BONES}
    m = np.array(rig.matrix_world)
    for k in range(count):
        scene.frame_set(scene.frame_start + k)
        for side in FOOT_BONES:
            low[side].append(_lowest(rig, side))
            head = np.array(rig.pose.bones[f"mixamorig:{FOOT_BONES[side][0]}"].head)
            xy[side].append((m[:3, :3] @ head + m[:3, 3])[:2])
    return {s: np.array(v) for s, v in low.items()}, {s: np.array(v) for s, v in xy.items()}


def test_feet_meet_the_floor_at_the_rigs_rest_height_and_stay_pinned(scene_with_rig):
    scene, source, rig, down = scene_with_rig
    rest = {side: _lowest(rig, side, rest=True) for side in FOOT_BONES}
    assert rest["left"] == pytest.approx(0.02, abs=1e-6)  # the rig's own rest feet: 2 cm up
    count = len(down["left"])

    retarget.apply_to_rig(scene, source, rig, 'AUTO', feet_on_floor=False)
    low, _ = _track(scene, rig, count)
    off = np.concatenate([low[s][down[s]] - rest[s] for s in FOOT_BONES])
    assert np.median(np.abs(off)) > 0.015  # without it: floating or sinking by centimetres

    result = retarget.apply_to_rig(scene, source, rig, 'AUTO')
    assert result.pinned_frames > 0 and not result.warnings
    low, xy = _track(scene, rig, count)
    for side in FOOT_BONES:
        gap = low[side][down[side]] - rest[side]
        assert np.median(np.abs(gap)) < 0.01, side  # the bar: within 1 cm
        assert np.abs(gap).max() < 0.002, side  # in fact at it, in every contact frame
        assert (low[side] - rest[side]).min() > -0.002, side  # never through the floor
        for first, last in feet.segments(down[side]):
            if last - first >= 4:
                pinned = xy[side][first + 1:last]  # the body slides 0.25 m/s; the foot does not
                assert np.linalg.norm(pinned - pinned.mean(axis=0), axis=1).max() < 0.003, (side, first, last)


def test_apply_again_replaces_the_action_unless_kept_and_takes_a_name(scene_with_rig):
    scene, source, rig, _ = scene_with_rig
    first = retarget.apply_to_rig(scene, source, rig, 'AUTO').action.name
    second = retarget.apply_to_rig(scene, source, rig, 'AUTO').action
    assert first == second.name == "Mixamo a person marches"  # replaced, not "….001"
    applied = [a for a in bpy.data.actions if a.get("sopo_applied")]
    assert applied == [second]

    named = retarget.apply_to_rig(scene, source, rig, 'AUTO', name="March A").action
    assert named.name == "March A" and rig.animation_data.action is named
    kept = retarget.apply_to_rig(scene, source, rig, 'AUTO', name="March B", keep_previous=True).action
    assert rig.animation_data.action is kept and kept.name == "March B"
    assert bpy.data.actions["March A"].use_fake_user  # kept: survives saving without a user
    assert sorted(a.name for a in bpy.data.actions if a.get("sopo_applied")) == ["March A", "March B"]
    assert keyframes.action_fcurves(rig)  # the rig plays the new one
