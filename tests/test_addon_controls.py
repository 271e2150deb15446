"""The panel's artist controls, end to end: the installed extension's Generate operator against a real
`server/serve.py` (the tiny checkpoint with a caption index), in real bpy.

Start from the current pose (an artist's Mixamo rig through its bone map, and a candidate armature), end at
the pose at frame N, loop, follow a path (in the world and in a rig's space), keep the upper or lower body of a
picked candidate, foot cleanup on and off, the low-confidence warning (and a protocol 1.0 server, which knows no
confidence: the add-on sends again without it), and the errors the status line shows.
Positions are compared in the world: the candidates stand where the rig stands.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from bpy_support import PREFIX, ROOT, Addon, addon, bpy, build_mixamo_rig, free_port, smooth_motion  # noqa: F401

from server.model.confidence import build_index
from server.service import server_process
from server.service.picks import PicksStore
from server.service.server_process import ServerProcess
from shared import constraints as C
from shared import rotations as rot
from shared.skeleton import JOINT_NAMES

PROMPT = "a person walks forward"
HELD_OUT = ["a person strolls forward", "someone sprints ahead", "a person hops in place",
            "someone waves the right hand", "a person turns left while walking"]
CM = 0.01
START = 10          # the current frame the controls read the rig at
END = 46            # 1.5 s later at 24 fps


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint, tiny_corpus):
    """serve.py on the tiny checkpoint with its training-caption embeddings (so it reports confidence)."""
    data = tmp_path_factory.mktemp("controls-server")
    folder = data / "models" / "tiny"
    shutil.copytree(tiny_checkpoint, folder)
    build_index(folder, tiny_corpus, held_out=HELD_OUT, log=lambda *a: None).save(folder)
    process = ServerProcess(data, "--checkpoint", "tiny", bind=f"tcp://127.0.0.1:{free_port()}")
    yield process
    process.stop()


# serve.py speaking protocol 1.0 (its messages as in shared/protocol.py before v1.1: no foot_cleanup,
# want_confidence or constraints on a generate, no confidence in a result, no models folder): the real service,
# with the protocol's message table narrowed before it starts.
PROTOCOL_1_0_SERVE = """
import dataclasses, runpy, sys
sys.path.insert(0, {root!r})
from shared import protocol as P
for name, fields in {{"hello": ("client",),
                     "generate": ("prompt", "n", "seconds", "seed", "guidance", "steps", "model"),
                     "result": ("request_id", "model", "fps", "seed", "steps", "guidance"),
                     "hello_ok": ("request_id", "protocol", "server", "models", "model", "limits", "skeleton",
                                  "device")}}.items():
    P.MESSAGE_TYPES[name] = dataclasses.replace(P.MESSAGE_TYPES[name], fields=fields, optional_arrays=())
sys.argv[0] = {serve!r}
runpy.run_path({serve!r}, run_name="__main__")
"""


@pytest.fixture(scope="module")
def server_1_0(tmp_path_factory, tiny_checkpoint, tiny_corpus):
    """A protocol 1.0 serve.py on the tiny checkpoint, with the caption index (so only the protocol stops it
    from sending a confidence)."""
    data = tmp_path_factory.mktemp("server-1.0")
    folder = data / "models" / "tiny"
    shutil.copytree(tiny_checkpoint, folder)
    build_index(folder, tiny_corpus, held_out=HELD_OUT, log=lambda *a: None).save(folder)
    launcher = data / "serve_1_0.py"
    launcher.write_text(PROTOCOL_1_0_SERVE.format(root=str(ROOT), serve=str(server_process.SERVE)))
    serve, server_process.SERVE = server_process.SERVE, launcher  # ServerProcess runs `python SERVE ARGS`
    try:
        process = ServerProcess(data, "--checkpoint", "tiny", bind=f"tcp://127.0.0.1:{free_port()}")
    finally:
        server_process.SERVE = serve
    yield process
    process.stop()


CONTROLS_OFF = dict(use_start_pose=False, use_end_pose=False, loop=False, use_path=False, path_speed=0.0, keep='NONE',
                    foot_cleanup=True)


def generate(addon: Addon, server, prompt: str = PROMPT, count: int = 2, seconds: float = 1.5, seed: int = 3,
             guidance: float = 2.5, expect_error: bool = False, **controls):
    """Set the panel (controls: properties of scene.sopo_motion), press Generate, wait for the candidates."""
    addon.prefs.server_address, addon.prefs.timeout = server.endpoint, 60.0
    props = bpy.context.scene.sopo_motion
    props.prompt, props.count, props.seconds, props.seed, props.random_seed = prompt, count, seconds, seed, False
    props.guidance = guidance
    for name, value in {**CONTROLS_OFF, **controls}.items():
        setattr(props, name, value)
    before = props.candidates
    if expect_error:
        with pytest.raises(RuntimeError):
            bpy.ops.sopo.generate()
        status = addon.session.state().status
        assert status.level == 'ERROR' and not addon.session.generating() and props.candidates == before
        return status.text
    assert bpy.ops.sopo.generate() == {'FINISHED'}, addon.session.state().status
    addon.poll_until(lambda: not addon.session.generating())
    status = addon.session.state().status
    assert status.level != 'ERROR' and props.candidates is not None and props.candidates != before, status
    return props.candidates, addon.candidates.candidate_objects(props.candidates)


def world_joints(obj, bones=None) -> np.ndarray:
    """(22, 3) world positions of the heads of `bones` (default an add-on armature's SMPL joints) now."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    names = bones or JOINT_NAMES
    return np.array([evaluated.matrix_world @ evaluated.pose.bones[name].head for name in names])


def rig_bones(addon: Addon, rig) -> list[str]:
    mapping = addon.module("bone_maps").resolve('AUTO', rig.data.bones.keys())
    return [mapping[name] for name in JOINT_NAMES]


def first_key(addon: Addon, obj) -> float:
    path = addon.candidates.bone_rotation_path(JOINT_NAMES[0])
    return float(addon.module("keyframes").key_frames(obj, path)[0])


def last_key(addon: Addon, obj) -> float:
    path = addon.candidates.bone_rotation_path(JOINT_NAMES[0])
    return float(addon.module("keyframes").key_frames(obj, path)[-1])


def animated_rig(addon: Addon):
    """A Mixamo rig (10% larger than SMPL, Y-up cm bones, rotated and scaled object) animated by a 3 s motion
    through Apply to rig, with feet on the floor; and the candidate that animated it."""
    scene = bpy.context.scene
    q, t = smooth_motion(count=1, frames=60, seed=2)
    t[..., 1] -= 0.05
    collection = addon.candidates.import_candidates(scene, request_id="animation", prompt="dance", rotations=q,
                                                    translation=t, fps=20.0)
    source = addon.candidates.candidate_objects(collection)[0]
    rig = build_mixamo_rig(floor_cm=0.0, location=(1.5, -2.0, 0.0))
    rig.rotation_euler.z = 0.7                      # facing somewhere else than the candidates
    addon.module("retarget").apply_to_rig(scene, source, rig, 'AUTO')
    return rig, source


def make_active(obj) -> None:
    for other in bpy.context.selected_objects:
        other.select_set(False)
    bpy.context.view_layer.objects.active = obj
    if obj is not None:
        obj.select_set(True)


def poly_curve(points, name="path"):
    data = bpy.data.curves.new(name, 'CURVE')
    data.dimensions = '3D'
    spline = data.splines.new('POLY')
    spline.points.add(len(points) - 1)
    for point, co in zip(spline.points, points):
        point.co = (*co, 1.0)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) distance of (N, 2) points to the polyline (P, 2)."""
    a, b = line[:-1][None], line[1:][None]
    ab = b - a
    s = np.clip(np.sum((points[:, None] - a) * ab, -1) / np.sum(ab * ab, -1), 0.0, 1.0)
    return np.linalg.norm(points[:, None] - (a + s[..., None] * ab), axis=-1).min(axis=1)


# --- start, end ------------------------------------------------------------------------------------

def test_start_from_the_rigs_pose_starts_where_the_rig_stands_and_apply_continues_it(addon, server):
    """Without Feet on floor: the exact inverse of the transfer, every joint where the rig's is."""
    scene = bpy.context.scene
    rig, _ = animated_rig(addon)
    bones = rig_bones(addon, rig)
    scene.frame_set(START)
    standing = world_joints(rig, bones)
    make_active(rig)
    scene.sopo_motion.feet_on_floor = False
    collection, made = generate(addon, server, use_start_pose=True)
    assert collection["sopo_first_frame"] == START and "sopo_anchor" in collection
    for obj in made:
        assert first_key(addon, obj) == START                               # keyed from the current frame
        scene.frame_set(START)
        error = np.linalg.norm(world_joints(obj) - standing, axis=-1)
        assert error.max() < 2 * CM, error                                  # every joint on the rig's, in the world
    assert scene.frame_current == START

    bpy.ops.sopo.pick(index=1)
    make_active(rig)
    assert bpy.ops.sopo.apply_to_rig('EXEC_DEFAULT', feet_on_floor=False) == {'FINISHED'}
    scene.frame_set(START)
    moved = np.linalg.norm(world_joints(rig, bones) - standing, axis=-1)
    assert moved.max() < 2 * CM, moved                                      # the rig continues from its own pose
    scene.frame_set(START + 12)
    assert np.linalg.norm(world_joints(rig, bones) - world_joints(made[1]), axis=-1).max() < 2 * CM


def test_apply_with_feet_on_floor_keeps_the_rig_at_the_pinned_frames(addon, server):
    """The defaults (Feet on floor, Lock feet): the rig keeps its pose at the current frame and at frame N exactly,
    the feet corrections fade in between (half a second away from them)."""
    scene = bpy.context.scene
    rig, _ = animated_rig(addon)
    bones = rig_bones(addon, rig)
    before = {}
    for frame in (START, END):
        scene.frame_set(frame)
        before[frame] = world_joints(rig, bones)
    make_active(rig)
    scene.frame_set(START)
    _, made = generate(addon, server, use_start_pose=True, use_end_pose=True, end_frame=END)
    bpy.ops.sopo.pick(index=0)
    make_active(rig)
    assert bpy.context.scene.sopo_motion.feet_on_floor and bpy.context.scene.sopo_motion.lock_feet
    hips = {}
    for feet in (True, False):
        assert bpy.ops.sopo.apply_to_rig('EXEC_DEFAULT', feet_on_floor=feet, lock_feet=feet) == {'FINISHED'}
        for frame in (START, END):
            scene.frame_set(frame)
            moved = np.linalg.norm(world_joints(rig, bones) - before[frame], axis=-1)
            assert moved.max() < 2 * CM, (feet, frame, moved)
        scene.frame_set((START + END) // 2)
        hips[feet] = world_joints(rig, bones)[0]
    result_offset = abs(hips[True][2] - hips[False][2])
    assert result_offset > 1e-3, hips                        # in between, Feet on floor did move the hips


def test_start_from_a_candidates_pose(addon, server):
    scene = bpy.context.scene
    first, made = generate(addon, server, seconds=2.0, count=1)
    make_active(made[0])
    scene.frame_set(START)
    standing = world_joints(made[0])
    _, later = generate(addon, server, prompt="a person jumps", use_start_pose=True)
    for obj in later:
        np.testing.assert_allclose(np.array(obj.matrix_world), np.array(made[0].matrix_world), atol=1e-6)
        scene.frame_set(START)
        assert np.linalg.norm(world_joints(obj) - standing, axis=-1).max() < 2 * CM


def test_end_at_the_pose_at_frame_n(addon, server):
    scene = bpy.context.scene
    rig, _ = animated_rig(addon)
    bones = rig_bones(addon, rig)
    scene.frame_set(END)
    ending = world_joints(rig, bones)
    scene.frame_set(START)
    starting = world_joints(rig, bones)
    make_active(rig)
    scene.sopo_motion.feet_on_floor = False
    collection, made = generate(addon, server, seconds=6.0, use_start_pose=True, use_end_pose=True, end_frame=END)
    request_id = collection[addon.candidates.REQUEST_KEY]
    with PicksStore(server.data_dir / "picks.db") as store:
        stored = store.get_result(request_id)
    assert stored.rotations.shape[1] == C.clip_frames((END - START) / 24.0 + 1 / 20.0) == 31   # 1.5 s, not 6
    for obj in made:
        assert (first_key(addon, obj), last_key(addon, obj)) == (START, END)
        scene.frame_set(START)
        assert np.linalg.norm(world_joints(obj) - starting, axis=-1).max() < 2 * CM
        scene.frame_set(END)
        assert np.linalg.norm(world_joints(obj) - ending, axis=-1).max() < 2 * CM   # in the rig's pose, in its place


# --- loop, path ------------------------------------------------------------------------------------

def test_loop_closes_the_seam(addon, server):
    from server.model.constraint_fixup import local_positions

    def seams(made):
        out = []
        for obj in made:
            q, t, _ = addon.candidates.source_motion(obj)
            L = local_positions(q.astype(np.float64), t.astype(np.float64))
            seam = np.linalg.norm((L[0] - L[-1]) - (L[-1] - L[-2]), axis=-1).max()
            steps = np.linalg.norm(np.diff(L, n=2, axis=0), axis=-1).max(-1)
            out.append((seam, np.percentile(steps, 90)))
        return np.array(out)

    _, free = generate(addon, server, seconds=2.0)
    _, looped = generate(addon, server, seconds=2.0, loop=True)
    closed, open_ = seams(looped), seams(free)
    assert np.all(closed[:, 0] <= closed[:, 1] + 1e-6), closed      # a seam as smooth as the motion's own steps
    assert np.all(open_[:, 0] > closed[:, 0]), (open_, closed)        # the same seeds without Loop jump there


def test_follow_a_path_in_the_world(addon, server):
    scene = bpy.context.scene
    line = np.array([[0.5, 0.0], [0.5, -1.5], [1.5, -2.0]])           # Blender's ground (x, y), metres
    curve = poly_curve([(x, y, 0.0) for x, y in line])
    make_active(curve)
    collection, made = generate(addon, server, seconds=2.0, use_path=True, path_curve=curve)
    assert "sopo_first_frame" not in collection and "sopo_anchor" in collection   # the world: no row
    for obj in made:
        frames = range(int(first_key(addon, obj)), int(last_key(addon, obj)) + 1)
        pelvis = []
        for frame in frames:
            scene.frame_set(frame)
            pelvis.append(world_joints(obj)[0, :2])
        pelvis = np.array(pelvis)
        assert distance_to_polyline(pelvis, line).max() < 2 * CM
        assert np.linalg.norm(pelvis[0] - line[0]) < 2 * CM and np.linalg.norm(pelvis[-1] - line[-1]) < 2 * CM


def test_follow_a_path_in_the_rigs_space_then_apply(addon, server):
    scene = bpy.context.scene
    rig, _ = animated_rig(addon)
    line = np.array([[1.5, -2.0], [2.5, -3.0], [2.5, -4.0]])
    curve = poly_curve([(x, y, 0.0) for x, y in line])
    make_active(rig)
    _, made = generate(addon, server, seconds=2.0, use_path=True, path_curve=curve, path_speed=1.0)
    bpy.ops.sopo.pick(index=0)
    make_active(rig)
    assert bpy.ops.sopo.apply_to_rig('EXEC_DEFAULT', feet_on_floor=False) == {'FINISHED'}
    hips = []
    for frame in range(int(first_key(addon, made[0])), int(last_key(addon, made[0])) + 1):
        scene.frame_set(frame)
        hips.append(world_joints(rig, [PREFIX + "Hips"])[0, :2])
        assert np.linalg.norm(world_joints(made[0])[0, :2] - hips[-1]) < 2 * CM   # the candidate walked it too
    hips = np.array(hips)
    assert distance_to_polyline(hips, line).max() < 2 * CM                # the rig walks along the curve
    assert np.linalg.norm(hips[0] - line[0]) < 2 * CM
    assert np.linalg.norm(hips[-1] - hips[0]) > 1.0                       # 1 m/s for 2 s along a 2.4 m path


# --- keep ------------------------------------------------------------------------------------------

def test_keep_lower_then_upper_body_of_the_picked_candidate(addon, server):
    _, made = generate(addon, server, seconds=1.0, count=2)
    assert bpy.ops.sopo.pick(index=1) == {'FINISHED'}
    source = made[1]
    q0, t0, _ = addon.candidates.source_motion(source)
    for half, joints in (("LOWER", C.LOWER_BODY), ("UPPER", C.UPPER_BODY)):
        bpy.context.scene.sopo_motion.candidates = source.users_collection[0]   # the picked one's request
        collection, variants = generate(addon, server, prompt="a person waves both hands", seconds=4.0, keep=half)
        for obj in variants:
            q, t, _ = addon.candidates.source_motion(obj)
            assert q.shape == q0.shape                                     # the source's length, not 4 s
            dots = np.abs(np.sum(rot.quat_normalize(q[:, joints]) * rot.quat_normalize(q0[:, joints]), -1))
            assert dots.min() > 1 - 1e-6                                   # kept joints identical (float32)
            assert not np.allclose(q[:, C.UPPER_BODY if half == "LOWER" else C.LOWER_BODY],
                                   q0[:, C.UPPER_BODY if half == "LOWER" else C.LOWER_BODY], atol=1e-3)
            if half == "LOWER":                                            # the legs play over the source's
                np.testing.assert_array_equal(t, t0)
                np.testing.assert_allclose(np.array(obj.matrix_world), np.array(source.matrix_world), atol=1e-6)
        assert ("sopo_anchor" in collection) == (half == "LOWER")          # the upper half: a new row


# --- cleanup, confidence, errors -------------------------------------------------------------------

def test_foot_cleanup_flag_reaches_the_server(addon, server):
    """Off: the raw sampled motion; on (the default): feet the model predicts in contact pinned by leg IK (the tiny
    model's feet touch down in this jump at its own guidance, 3)."""
    stored = {}
    for cleanup in (True, False):
        collection, _ = generate(addon, server, prompt="a person jumps in place", seed=21, guidance=3.0,
                                 foot_cleanup=cleanup)
        with PicksStore(server.data_dir / "picks.db") as store:
            stored[cleanup] = store.get_result(collection[addon.candidates.REQUEST_KEY])
        assert stored[cleanup].params["foot_cleanup"] is cleanup
    assert np.abs(stored[True].rotations - stored[False].rotations).max() > 1e-2


def test_a_prompt_far_from_the_training_data_shows_a_warning(addon, server):
    collection, _ = generate(addon, server, prompt="a person plays the violin", count=1)
    assert collection["sopo_low_confidence"] and collection["sopo_confidence"] < 0.5
    warning = addon.session.confidence_warning(collection)
    assert warning.startswith(f"Far from the training data (confidence {collection['sopo_confidence']:.2f}; "
                              "nearest: '") and collection["sopo_nearest_caption"] in warning
    assert ("label", warning, 'ERROR') in draw_main_panel(addon)
    inside, _ = generate(addon, server, prompt=PROMPT, count=1)
    assert not inside["sopo_low_confidence"] and addon.session.confidence_warning(inside) is None
    assert not [line for line in draw_main_panel(addon) if "training data" in str(line)]


def test_a_protocol_1_0_server_gets_the_generate_again_without_the_newer_fields(addon, server_1_0):
    """A 1.0 server refuses `want_confidence` and `foot_cleanup` (bad_field, unknown fields): the add-on sends the
    generation again without them, remembers that for this address, and the panel works without a confidence."""
    session, props = addon.session, bpy.context.scene.sopo_motion
    sent, received = [], []
    for prompt in ("a person plays the violin", PROMPT):  # far from the training data, then near it
        addon.prefs.server_address, addon.prefs.timeout = server_1_0.endpoint, 60.0
        props.prompt, props.count, props.seconds, props.seed, props.random_seed = prompt, 1, 1.0, 3, False
        for name, value in CONTROLS_OFF.items():
            setattr(props, name, value)
        assert bpy.ops.sopo.generate() == {'FINISHED'}
        sent.append(session.state().generate_id)
        addon.poll_until(lambda: not session.generating())
        status, collection = session.state().status, props.candidates
        assert status.level == 'INFO' and collection is not None, status
        received.append(collection[addon.candidates.REQUEST_KEY])
        assert not [key for key in collection.keys() if "confidence" in key or "nearest" in key]
        assert session.confidence_warning(collection) is None
        assert not [line for line in draw_main_panel(addon) if "training data" in str(line)]
        with PicksStore(server_1_0.data_dir / "picks.db") as store:
            assert store.get_result(received[-1]).prompt == prompt
    assert sent[0] != received[0]  # refused, then sent again under a new id
    assert sent[1] == received[1]  # remembered: sent without the fields at once
    assert session.state().unknown_fields == {server_1_0.endpoint: {"want_confidence", "foot_cleanup"}}


def test_only_a_refusal_of_optional_fields_alone_is_retried(addon):
    protocol = addon.module("shared.protocol")
    unknown = addon.session.unknown_optional_fields

    def refusal(names, code=protocol.BAD_FIELD):
        return protocol.error(code, f"'generate' has unknown fields {names}; allowed: ['prompt', 'n']", "x")

    assert unknown(refusal(["want_confidence"])) == {"want_confidence"}
    assert unknown(refusal(["foot_cleanup", "want_confidence"])) == {"foot_cleanup", "want_confidence"}
    assert unknown(refusal(["loop", "want_confidence"])) == set()  # a control the server lacks: no silent drop
    assert unknown(refusal(["want_confidence"], code=protocol.BAD_FRAMES)) == set()
    assert unknown(protocol.error(protocol.BAD_FIELD, "field 'want_confidence' must be true or false", "x")) == set()


# --- the panel -------------------------------------------------------------------------------------

ICONS = {item.identifier for item in bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items}


class Layout:
    """Records what a panel draws. The bpy module opens no window, so it has no UILayout to draw into; this one
    checks what a real one would refuse (unknown properties, operators and icons)."""

    def __init__(self, lines: list):
        self.lines, self.active, self.scale_y, self.use_property_split = lines, True, 1.0, False

    def row(self, **_):
        return Layout(self.lines)

    column = box = row

    def label(self, text="", icon='NONE'):
        assert icon in ICONS, icon
        self.lines.append(("label", text, icon))

    def prop(self, data, name, text=None, icon='NONE', **_):
        assert name in data.bl_rna.properties and icon in ICONS, (name, icon)
        self.lines.append(("prop", name))

    def operator(self, idname, text=None, icon='NONE', **_):
        category, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, category), name) and icon in ICONS, (idname, icon)
        self.lines.append(("operator", idname))
        return type("Properties", (), {})()


def draw_main_panel(addon: Addon) -> list:
    lines = []
    panel = addon.module("panel")
    panel.SOPO_PT_motion.draw(type("Panel", (), {"layout": Layout(lines)})(), bpy.context)
    return lines


def test_the_controls_box_says_what_generate_will_use(addon):
    scene = bpy.context.scene
    props = scene.sopo_motion
    lines = draw_main_panel(addon)
    for name in ("use_start_pose", "use_end_pose", "end_frame", "loop", "use_path", "path_curve", "keep",
                 "foot_cleanup"):
        assert ("prop", name) in lines
    assert not [line for line in lines if line[0] == "label" and line[1].startswith(("Pose of", "From"))]
    props.use_start_pose, props.use_end_pose, props.end_frame, props.keep = True, True, 46, 'UPPER'
    scene.frame_set(START)
    lines = draw_main_panel(addon)
    assert ("label", "Pose of: (select your rig or a candidate)", 'ERROR') in lines
    assert ("label", "From: (pick or select a candidate)", 'ERROR') in lines
    rig = build_mixamo_rig()
    make_active(rig)
    props.keep = 'NONE'
    lines = draw_main_panel(addon)
    assert ("label", f"Pose of: {rig.name}", 'ARMATURE_DATA') in lines
    assert ("label", "Frames 10-46: 1.5 s", 'TIME') in lines
    assert ("label", f"frame {START}", 'NONE') in lines
    props.use_path = True
    assert ("prop", "path_speed") in draw_main_panel(addon)


def test_control_errors_show_in_the_status_line(addon, server):
    scene = bpy.context.scene
    make_active(None)
    text = generate(addon, server, use_start_pose=True, expect_error=True)
    assert text == "select the armature to start from (your rig, or a candidate)"
    _, made = generate(addon, server, seconds=1.0)
    make_active(made[0])
    scene.frame_set(50)
    text = generate(addon, server, use_end_pose=True, end_frame=40, expect_error=True)
    assert text.startswith("End at frame 40: the motion starts at frame 50")
    stub = poly_curve([(0.0, 0.0, 0.0), (0.005, 0.0, 0.0)], name="stub")
    text = generate(addon, server, use_path=True, path_curve=stub, expect_error=True)
    assert text == "root_path is 0.005 m long; it must be at least 0.01 m"           # shared's (the server's) words
    bpy.ops.sopo.pick(index=0)
    text = generate(addon, server, keep='LOWER', use_path=True, path_curve=poly_curve([(0, 0, 0), (1, 0, 0)]),
                    expect_error=True)
    assert text.startswith("keep_joints keeps the pelvis, and with it the root's path")
    scene.sopo_motion.candidates = None
    make_active(None)
    text = generate(addon, server, keep='UPPER', expect_error=True)
    assert text == "Keep upper / lower body: pick a candidate first (or select one)"
