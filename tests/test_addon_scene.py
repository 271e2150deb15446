"""A readable scene, in real bpy with the installed extension: candidates that never overlap at any
frame (also across requests), labels that follow their body, earlier unpicked candidates hidden,
"Clear candidates" keeping the picked ones, no ".001" names piling up, "1 candidate".

Candidates come in through `session._import_result`, the path a server's reply takes, with result
messages made here (no server needed)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from bpy_support import addon, bpy, smooth_motion  # noqa: F401 (fixture)

from shared import rotations as rot

RADIUS = 0.1  # metres of body around the bones when boxes are compared


def drifting(count: int, frames: int = 40, seed: int = 0):
    """Motions that wander: sideways drift up to 1.5 m, a forward walk of 2 m, and (the last one) a
    circle of 1.2 m radius while turning: what made candidates collide before."""
    q, t = smooth_motion(count, frames, seed)
    rng = np.random.default_rng(seed)
    s = np.linspace(0.0, 1.0, frames)
    for i in range(count):
        t[i, :, 0] = rng.uniform(-1.5, 1.5) * s ** 2
    angle = np.linspace(0.0, 2.0 * np.pi, frames)
    t[-1, :, 0] = 1.2 * (1.0 - np.cos(angle))
    t[-1, :, 2] = 1.2 * np.sin(angle)
    q[-1, :, 0] = rot.axis_angle_to_quat(np.outer(angle, [0.0, 1.0, 0.0])).astype(np.float32)
    return q, t


def bring(addon, request_id: str, q, t, prompt: str = "a person wanders"):
    """Candidates from a result message, applied as the poll applies a reply."""
    protocol = addon.module("shared.protocol")
    addon.session._import_result(protocol.result(request_id, q, t, fps=20.0, model="tiny", steps=4),
                                 {"scene": bpy.context.scene.name, "prompt": prompt, "sent": time.monotonic()})
    collection = bpy.context.scene.sopo_motion.candidates
    assert collection is not None and collection["sopo_request_id"] == request_id, addon.session.state().status
    return collection


def boxes(objects) -> np.ndarray:
    """(n, 4) ground boxes (xmin, xmax, ymin, ymax) of the candidates' bones at the current frame."""
    out = []
    for obj in objects:
        m = np.array(obj.matrix_world)
        p = np.array([v for b in obj.pose.bones for v in (b.head, b.tail)]) @ m[:3, :3].T + m[:3, 3]
        out.append((p[:, 0].min() - RADIUS, p[:, 0].max() + RADIUS, p[:, 1].min() - RADIUS, p[:, 1].max() + RADIUS))
    return np.array(out)


def overlapping_pairs(objects, scene) -> set:
    found = set()
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        b = boxes(objects)
        hit = ((b[:, None, 0] < b[None, :, 1]) & (b[None, :, 0] < b[:, None, 1])
               & (b[:, None, 2] < b[None, :, 3]) & (b[None, :, 2] < b[:, None, 3]))
        found |= {(i, j) for i, j in zip(*np.nonzero(np.triu(hit, 1)))}
    return found


def test_candidates_never_overlap_at_any_frame_across_requests(addon):
    scene = bpy.context.scene
    scene.sopo_motion.hide_earlier = False  # every request stays visible (and evaluated)
    objects = []
    for g in range(3):
        collection = bring(addon, f"req-{g}", *drifting(5, seed=g))
        objects += addon.candidates.candidate_objects(collection)
    assert len(objects) == 15
    scene.frame_end = max(scene.frame_end, scene.frame_start + 48)
    assert overlapping_pairs(objects, scene) == set()
    rows = sorted((c["sopo_row_front"], c["sopo_row_back"]) for c in addon.candidates.collections(scene))
    assert all(back < front for (_, back), (front, _) in zip(rows, rows[1:]))  # rows apart, newest in front


def test_labels_follow_their_candidates_pelvis(addon):
    scene = bpy.context.scene
    collection = bring(addon, "req-labels", *drifting(3))
    candidates = addon.candidates
    for obj in candidates.candidate_objects(collection):
        [label] = candidates.labels_of(obj)
        assert label.type == 'FONT' and label.data.body == str(obj["sopo_candidate"] + 1)
        offsets = []
        for frame in (scene.frame_start, scene.frame_start + 20, scene.frame_end):
            scene.frame_set(frame)
            pelvis = obj.matrix_world @ obj.pose.bones["pelvis"].head
            offsets.append(np.array(label.matrix_world.translation - pelvis))
        np.testing.assert_allclose(offsets, [[0.0, 0.0, candidates.LABEL_ABOVE]] * 3, atol=1e-5)


def test_a_new_request_hides_the_earlier_unpicked_candidates_and_clear_keeps_the_picked(addon):
    scene = bpy.context.scene
    candidates = addon.candidates
    first = bring(addon, "req-first", *drifting(3), prompt="a person walks")
    assert bpy.ops.sopo.pick(index=1) == {'FINISHED'}  # outbox: nobody answers here, that is fine
    second = bring(addon, "req-second", *drifting(2, seed=1), prompt="a person walks")
    old = candidates.candidate_objects(first)
    for obj in (old[0], old[2]):
        assert all(part.hide_get() and part.hide_viewport for part in candidates.parts_of(obj))
        assert len(candidates.parts_of(obj)) == 3  # armature, body, label
    assert not any(part.hide_get() for part in candidates.parts_of(old[1]))  # the picked one stays
    assert not any(part.hide_get() for obj in candidates.candidate_objects(second)
                   for part in candidates.parts_of(obj))

    names = [o.name for o in bpy.data.objects] + [a.name for a in bpy.data.actions]
    assert not [n for n in names if ".00" in n], names  # the same prompt twice: no "name.001"

    assert bpy.ops.sopo.clear_candidates() == {'FINISHED'}
    assert [c.name for c in candidates.collections(scene)] == [first.name]  # the second had no pick
    assert candidates.candidate_objects(first) == [old[1]]
    assert sorted(o.type for o in first.objects) == ['ARMATURE', 'FONT', 'MESH']
    assert scene.sopo_motion.candidates is None
    assert len([a for a in bpy.data.actions if a.users == 0]) == 0  # no orphan actions left behind
    assert not bpy.ops.sopo.pick.poll()


def test_one_candidate_reads_as_one_candidate(addon):
    bring(addon, "req-one", *drifting(1))
    status = addon.session.state().status
    assert status.level == 'INFO' and status.text.startswith("1 candidate of 2.0 s (") and "4 steps" in status.text
    assert "candidates" not in status.text


@pytest.mark.parametrize("mode", ["DELETE", "HIDE"])
def test_pick_hides_or_deletes_the_others_with_their_labels(addon, mode):
    addon.prefs.unpicked = mode
    collection = bring(addon, f"req-{mode}", *drifting(3))
    candidates = addon.candidates
    objects = candidates.candidate_objects(collection)
    labels = [candidates.labels_of(obj)[0] for obj in objects]
    assert bpy.ops.sopo.pick(index=2) == {'FINISHED'}
    if mode == 'DELETE':
        assert candidates.candidate_objects(collection) == [objects[2]]
        assert sorted(o.type for o in collection.objects) == ['ARMATURE', 'FONT', 'MESH']
    else:
        assert [label.hide_get() for label in labels] == [True, True, False]
