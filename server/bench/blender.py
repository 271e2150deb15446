"""Benchmark the Blender add-on: `python server/bench/blender.py [--measure NAME ...|all] [--e2e] [--checkpoint DIR]`.

- keys: 8 candidates x 200 frames (22 quaternion channels + pelvis location) written with the
  add-on's bulk channelbag path vs. per-frame `keyframe_insert`, and the whole candidate import.
- connection: Generate and Pick against an address nobody listens on (seconds until the artist is
  told), the next Generate after Cancel and a corrected address (which server it went to), and a
  live server under a ~20 s generation (was it ever reported unreachable?).
- placement: 20 prompts x 8 candidates from the bundled model, imported one generation after
  another: candidate pairs whose ground boxes overlap at any frame.
- frames: share of keys on whole frames at 24, 25, 30, 29.97 and 60 fps and the motion's length
  in scene time, also after the scene's rate changes from 24 to 30 fps.
- feet: a Mixamo-style rig (A-pose, cm, higher ankles) after Apply: its lowest foot point in the
  source's contact frames against its own rest height.
- controls: Start from the current pose of a walking Mixamo-style rig and Follow path, through the panel
  against `server/serve.py`: the candidates against the rig at the current frame, the rig after Apply.
- e2e: Generate -> keys in the scene against `server/serve.py` (4 x 6 s by default; --e2e-seconds 10).
Without --measure: keys only; --e2e adds e2e; --measure all runs everything (minutes).
Every measure but `keys` uses the extension built fresh from this checkout and installed, and
the bundled checkpoint. Prints one JSON object per measurement. Runs in the `bpy` module (no Blender UI). The machine
may be shared: each bulk run records the CPU other processes used meanwhile, runs above
--max-other cores are not counted unless no run was quiet (then `quiet_runs` is 0).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="sopo-bench-blender-"))
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from addon import armature, bone_maps, candidates, keyframes  # noqa: E402
from shared import rotations as rot  # noqa: E402
from shared import skeleton  # noqa: E402


class OtherLoad:
    """CPU cores other processes used while the block ran (Linux /proc/stat; None elsewhere)."""

    def __enter__(self):
        self.busy0, self.own0, self.t0 = self._busy(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        busy = self._busy()
        self.cores = None if busy is None else round(
            max(0.0, (busy - self.busy0) - (time.process_time() - self.own0)) / wall, 2)

    @staticmethod
    def _busy():
        try:
            fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return None
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def motions(count: int, frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 4.0 * np.pi, frames)[None, :, None]
    aa = (0.6 * np.sin(t + rng.uniform(0, 6, (count, 1, 66)))).reshape(count, frames, 22, 3)
    trans = np.zeros((count, frames, 3))
    trans[..., 1] = 0.92
    trans[..., 2] = np.linspace(0.0, 5.0, frames)
    return rot.axis_angle_to_quat(aa).astype(np.float32), trans.astype(np.float32)


def fresh_objects(count: int) -> list:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    collection = bpy.data.collections.new("bench")
    bpy.context.scene.collection.children.link(collection)
    data = armature.ensure_armature_data()
    objects = [armature.new_armature_object(f"c{i}", data, collection) for i in range(count)]
    bpy.context.view_layer.update()
    return objects


def bulk(objects, q, t) -> float:
    frames = keyframes.scene_frames(bpy.context.scene, q.shape[1], 20.0)
    start = time.perf_counter()
    for obj, qi, ti in zip(objects, q, t):
        keyframes.write_action(obj, obj.name, frames, candidates.motion_channels(qi, ti))
    return time.perf_counter() - start


def keyframe_insert(objects, q, t) -> float:
    frames = keyframes.scene_frames(bpy.context.scene, q.shape[1], 20.0)
    names = skeleton.JOINT_NAMES
    start = time.perf_counter()
    for obj, qi, ti in zip(objects, q, t):
        qi = rot.quat_fix_continuity(qi.astype(np.float64), axis=0)
        bones = [obj.pose.bones[n] for n in names]
        for k, frame in enumerate(frames):
            for j, bone in enumerate(bones):
                bone.rotation_quaternion = qi[k, j]
                bone.keyframe_insert("rotation_quaternion", frame=float(frame), group=names[j])
            bones[0].location = ti[k]
            bones[0].keyframe_insert("location", frame=float(frame), group=names[0])
    return time.perf_counter() - start


def bench_keys(count: int, frames: int, repeats: int, max_other: float, max_tries: int) -> None:
    """Bulk runs until `repeats` of them ran while other processes used <= max_other cores (this
    machine is shared: contention, not the code, dominates a loaded run), or max_tries runs."""
    q, t = motions(count, frames)
    runs = []  # (seconds, other cores)
    while len([r for r in runs if r[1] is None or r[1] <= max_other]) < repeats and len(runs) < max_tries:
        objects = fresh_objects(count)
        with OtherLoad() as load:
            seconds = bulk(objects, q, t)
        runs.append((seconds, load.cores))
    quiet = [s for s, other in runs if other is None or other <= max_other]
    timed = quiet or [s for s, _ in runs]  # no quiet run at all: report the loaded ones, flagged
    with OtherLoad() as insert_load:
        insert_time = keyframe_insert(fresh_objects(count), q, t)
    imports = []
    for _ in range(repeats):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        start = time.perf_counter()
        candidates.import_candidates(bpy.context.scene, request_id="bench", prompt="bench", rotations=q,
                                     translation=t, fps=20.0)
        imports.append(time.perf_counter() - start)
    best = statistics.median(timed)
    print(json.dumps({"measure": "keyframes", "candidates": count, "frames": frames,
                      "bulk_s_median": round(best, 4), "bulk_s_min": round(min(timed), 4),
                      "quiet_runs": len(quiet), "max_other": max_other,
                      "runs": [(round(s, 4), c) for s, c in runs],
                      "keyframe_insert_s": round(insert_time, 3), "keyframe_insert_other_cores": insert_load.cores,
                      "speedup": round(insert_time / best, 1),
                      "full_import_s_median": round(statistics.median(imports), 4),
                      "blender": bpy.app.version_string}), flush=True)


def bench_e2e(checkpoint: Path | None, count: int, seconds: float, repeats: int) -> None:
    """Generate -> keys in the scene with the installed extension against a real serve.py."""
    from server.service.server_process import ServerProcess

    data = Path(tempfile.mkdtemp(prefix="sopo-bench-server-"))
    args = []
    if checkpoint is not None:
        shutil.copytree(checkpoint, data / "models" / "bench")
        args = ["--checkpoint", "bench"]
    server = ServerProcess(data, *args, bind=free_endpoint())
    try:
        times, others = [], []
        for i in range(repeats + 1):  # the first run warms the server up and is reported apart
            addon = Installed()
            session = addon.session
            addon.prefs.server_address, addon.prefs.timeout = server.endpoint, 120.0
            props = bpy.context.scene.sopo_motion
            props.prompt, props.count, props.seconds, props.random_seed = "a person walks forward", count, seconds, True
            with OtherLoad() as load:
                start = time.perf_counter()
                bpy.ops.sopo.generate()
                while session.generating():
                    session.poll_once()
                    time.sleep(0.005)
                elapsed = time.perf_counter() - start
            if props.candidates is None:
                raise SystemExit(f"generation failed: {session.state().status.text}")
            times.append(elapsed)
            others.append(load.cores)
        print(json.dumps({"measure": "generate_to_keys", "candidates": count, "seconds": seconds,
                          "checkpoint": str(checkpoint) if checkpoint else "bundled default",
                          "first_s": round(times[0], 3), "median_s": round(statistics.median(times[1:]), 3),
                          "all_s": [round(x, 3) for x in times[1:]], "other_cores_incl_server": others[1:],
                          "status": _status(addon)}), flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


# --- the add-on as an artist meets it (issue 18) ---------------------------------------------------

MODULE = "bl_ext.user_default.sopo_motion"
PROMPTS = (
    "a person walks forward", "a person runs in a circle", "a person walks sideways to the left",
    "a person jumps forward", "a person waves with the right hand", "a person jogs backwards",
    "a person dances", "a person walks in a circle", "a person kicks with the left foot",
    "a person crawls forward", "a person turns around and walks back", "a person skips forward",
    "a person walks up stairs", "a person sits down", "a person throws a ball",
    "a person zigzags forward", "a person stumbles to the right", "a person does a cartwheel",
    "a person marches in place", "a person runs forward and stops",
)


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class Installed:
    """The extension built from this checkout (a fresh zip) and installed in this bpy."""

    _zip = None

    def __init__(self):
        import addon_utils
        import build

        if Installed._zip is None:
            Installed._zip = build.build(out_dir=Path(tempfile.mkdtemp(prefix="sopo-bench-dist-")))[0]
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if MODULE not in sys.modules:
            assert bpy.ops.extensions.package_install_files(filepath=str(Installed._zip), repo="user_default",
                                                            enable_on_install=True) == {'FINISHED'}
        else:
            addon_utils.enable(MODULE, default_set=True)
        self.session = sys.modules[f"{MODULE}.session"]
        self.candidates = sys.modules[f"{MODULE}.candidates"]
        self.retarget = sys.modules[f"{MODULE}.retarget"]
        self.protocol = sys.modules[f"{MODULE}.shared.protocol"]
        self.prefs = bpy.context.preferences.addons[MODULE].preferences

    def import_result(self, request_id: str, prompt: str, q, t, fps: float = 20.0):
        """Candidates from a result message, the way the poll applies a server's reply."""
        reply = self.protocol.result(request_id, q, t, fps=fps, model="bench")
        self.session._import_result(reply, {"scene": bpy.context.scene.name, "prompt": prompt,
                                            "sent": time.monotonic()})
        return bpy.context.scene.sopo_motion.candidates


def bundled_motions(prompts, n: int, seconds: float, seed: int = 1):
    """[(rotations (n, T, 22, 4), translation (n, T, 3))] from the bundled checkpoint, in this process."""
    import torch

    from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir

    torch.set_num_threads(1)
    gen = MotionGenerator.load(default_checkpoint_dir(), device="cpu")
    out = []
    for i in range(0, len(prompts), 5):
        out += gen.generate([GenerationRequest(p, n=n, seconds=seconds, seed=seed + i + k)
                             for k, p in enumerate(prompts[i:i + 5])])
    return out


def _status(addon) -> str:
    status = addon.session.state().status
    return f"{status.level}: {status.text}"


def bench_connection(cap: float) -> None:
    """Generate and Pick against nobody (how long until the artist is told), a corrected address
    after Cancel, and a live server under a long generation (never reported unreachable)."""
    from server.service.server_process import ServerProcess

    addon = Installed()
    session, props = addon.session, bpy.context.scene.sopo_motion
    addon.prefs.server_address = free_endpoint()  # nobody listens there; timeout and retries as installed
    props.prompt, props.count, props.seconds = "a person walks forward", 2, 2.0
    start = time.monotonic()
    bpy.ops.sopo.generate()
    while session.generating() and "not reachable" not in session.state().status.text.lower() \
            and time.monotonic() - start < cap:
        session.poll_once()
        time.sleep(0.01)
    generate_told = time.monotonic() - start
    generate_status = _status(addon)
    if session.generating():
        bpy.ops.sopo.cancel()

    q, t = smooth(2, 20)
    addon.import_result("bench-pick", "a person walks forward", q, t)
    start = time.monotonic()
    bpy.ops.sopo.pick(index=0)
    while session.state().status.level == 'INFO' and time.monotonic() - start < cap:
        session.poll_once()
        time.sleep(0.01)
    pick_told = time.monotonic() - start
    pick_status = _status(addon)
    box = session.outbox()
    pick_waiting = len(box) if box is not None else None

    data = Path(tempfile.mkdtemp(prefix="sopo-bench-server-"))
    server = ServerProcess(data, bind=free_endpoint())
    try:
        addon = Installed()
        session, props = addon.session, bpy.context.scene.sopo_motion
        props.prompt, props.count, props.seconds = "a person walks forward", 2, 2.0
        addon.prefs.server_address = free_endpoint()  # a wrong port first
        bpy.ops.sopo.generate()
        for _ in range(3):
            session.poll_once()
            time.sleep(0.05)
        if session.generating():
            bpy.ops.sopo.cancel()
        addon.prefs.server_address = server.endpoint  # corrected
        start = time.monotonic()
        bpy.ops.sopo.generate()
        sent_to = session.state().status.text
        while session.generating() and time.monotonic() - start < cap:
            session.poll_once()
            time.sleep(0.01)
        corrected = {"sent_to_corrected": server.endpoint in sent_to, "result_s": round(time.monotonic() - start, 2),
                     "keys_in_scene": props.candidates is not None, "status": _status(addon)}

        live = {"skipped": "this add-on's session.generate takes no steps"}
        import inspect
        if "steps" in inspect.signature(session.generate).parameters:
            live = long_generation(addon, server.endpoint)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    print(json.dumps({"measure": "connection", "unreachable_generate_told_s": round(generate_told, 2),
                      "generate_status": generate_status, "unreachable_pick_told_s": round(pick_told, 2),
                      "pick_status": pick_status, "picks_in_outbox": pick_waiting,
                      "corrected_address_after_cancel": corrected, "live_long_generation": live}), flush=True)


def long_generation(addon, endpoint: str, others: int = 4) -> dict:
    """The add-on's 8 x 10 s request at the server's most denoising steps, queued behind `others`
    requests of the same size from other clients (a busy server: silent until they are done, then
    progress; about 20 s on this CPU): was the server ever reported unreachable?"""
    import threading

    from server.service.client import MotionClient

    session, scene = addon.session, bpy.context.scene
    start = time.monotonic()
    while session.state().hello is None and time.monotonic() - start < 30:
        session.poll_once()
        time.sleep(0.02)
    steps = int(session.state().hello["limits"]["max_steps"])
    other_s = []

    def other_client(k: int):
        begin = time.monotonic()
        MotionClient(endpoint, timeout=600).generate("a person dances", n=8, seconds=10.0, seed=2 + k,
                                                     steps=steps - k)
        other_s.append(round(time.monotonic() - begin, 1))

    threads = [threading.Thread(target=other_client, args=(k + 1,)) for k in range(others)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    start = time.monotonic()
    session.generate(scene, "a person walks forward", 8, 10.0, 1, 2.5, steps=steps)
    unreachable_polls, states, first_progress, last_heard, silence = 0, set(), None, start, 0.0
    while session.generating() and time.monotonic() - start < 600:
        session.poll_once()
        state = session.state()
        states.add(state.connection.reachable)
        heard = state.client.last_heard if state.client is not None else None
        if heard is not None and heard > last_heard:
            silence, last_heard = max(silence, heard - last_heard), heard
        text = state.status.text.lower()
        if first_progress is None and text.startswith("generating"):
            first_progress = time.monotonic() - start
        if "not reachable" in text or "stopped answering" in text or state.connection.reachable is False:
            unreachable_polls += 1
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    return {"steps": steps, "other_clients": others, "candidates": 8, "seconds_of_motion": 10.0,
            "generation_s": round(time.monotonic() - start, 1), "other_client_s": other_s,
            "first_progress_after_s": None if first_progress is None else round(first_progress, 1),
            "longest_server_silence_s": round(silence, 2), "polls_reporting_unreachable": unreachable_polls,
            "connection_states": sorted(str(r) for r in states),
            "result_in_scene": scene.sopo_motion.candidates is not None and session.state().status.level == 'INFO',
            "status": _status(addon)}


def smooth(count: int, frames: int):
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 2.0 * np.pi, frames)[None, :, None]
    aa = (0.3 * np.sin(t + rng.uniform(0, 6, (count, 1, 66)))).reshape(count, frames, 22, 3)
    trans = np.zeros((count, frames, 3))
    trans[..., 1] = 0.92
    return rot.axis_angle_to_quat(aa).astype(np.float32), trans.astype(np.float32)


def world_points(obj) -> np.ndarray:
    """(44, 3) world heads and tails of a candidate's bones at the current frame."""
    m = np.array(obj.matrix_world)
    local = np.array([p for b in obj.pose.bones for p in (b.head, b.tail)])
    return local @ m[:3, :3].T + m[:3, 3]


def count_overlaps(objects, first: int, last: int, radius: float = 0.1) -> dict:
    """Pairs of candidates whose ground-plane boxes (bones plus `radius`) overlap at some frame."""
    scene = bpy.context.scene
    pairs, pairs_visible, frames_with = set(), set(), 0
    visible = [not obj.hide_get() for obj in objects]
    for frame in range(first, last + 1):
        scene.frame_set(frame)
        boxes = []
        for obj in objects:
            p = world_points(obj)
            boxes.append((p[:, 0].min() - radius, p[:, 0].max() + radius, p[:, 1].min() - radius,
                          p[:, 1].max() + radius))
        b = np.array(boxes)
        hit = ((b[:, None, 0] < b[None, :, 1]) & (b[None, :, 0] < b[:, None, 1])
               & (b[:, None, 2] < b[None, :, 3]) & (b[None, :, 2] < b[:, None, 3]))
        np.fill_diagonal(hit, False)
        found = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(hit)))}
        frames_with += bool(found)
        pairs |= found
        pairs_visible |= {(i, j) for i, j in found if visible[i] and visible[j]}
    return {"overlapping_pairs": len(pairs), "overlapping_visible_pairs": len(pairs_visible),
            "frames_with_overlap": frames_with, "frames": last - first + 1}


def bench_placement(generations: int, count: int, seconds: float) -> None:
    """`generations` prompts x `count` candidates from the bundled model, imported one after another
    as the poll does: do any two candidates' boxes overlap at any frame?"""
    motions = bundled_motions(PROMPTS[:generations], count, seconds)
    addon = Installed()
    scene = bpy.context.scene
    start = time.perf_counter()
    for g, (q, t) in enumerate(motions):
        addon.import_result(f"bench-{g}", PROMPTS[g], q, t)
    import_s = time.perf_counter() - start
    objects = [obj for c in bpy.data.collections for obj in addon.candidates.candidate_objects(c)]
    result = count_overlaps(objects, scene.frame_start, scene.frame_end)
    shown = [obj for obj in objects if not obj.hide_get()]
    xs = [obj.matrix_world.translation.x for obj in shown]
    ys = [obj.matrix_world.translation.y for obj in shown]
    print(json.dumps({"measure": "placement", "generations": generations, "candidates": count,
                      "seconds": seconds, **result, "candidates_total": len(objects), "visible": len(shown),
                      "visible_extent_m": [round(max(xs) - min(xs), 1), round(max(ys) - min(ys), 1)] if shown else None,
                      "import_all_s": round(import_s, 2), "status": _status(addon)}), flush=True)


def has_operator(name: str) -> bool:
    try:
        getattr(bpy.ops.sopo, name).get_rna_type()
    except (AttributeError, KeyError):
        return False
    return True


def scene_rate(scene, fps: float) -> None:
    if abs(fps - round(fps)) < 1e-9:
        scene.render.fps, scene.render.fps_base = int(round(fps)), 1.0
    else:  # NTSC: 30000 / 1001
        scene.render.fps, scene.render.fps_base = int(math.ceil(fps)), math.ceil(fps) / fps


def key_stats(objects, motion_seconds: float, scene) -> dict:
    fps = scene.render.fps / scene.render.fps_base
    keyframes = sys.modules[f"{MODULE}.keyframes"]
    on_whole, total, errors = 0, 0, []
    for obj in objects:
        for fcurve in keyframes.action_fcurves(obj):
            co = np.empty(2 * len(fcurve.keyframe_points))
            fcurve.keyframe_points.foreach_get("co", co)
            frames = co[0::2]
            on_whole += int(np.sum(np.abs(frames - np.round(frames)) < 1e-3))
            total += len(frames)
            errors.append(abs((frames[-1] - frames[0]) / fps - motion_seconds))
    return {"keys_on_whole_frames": round(on_whole / max(total, 1), 4), "keys": total,
            "duration_error_frames": round(max(errors) * fps, 3)}


def bench_frames(seconds: float) -> None:
    """Keys on whole frames at common scene rates, and after the scene's rate changes."""
    [(q, t)] = bundled_motions(PROMPTS[:1], 4, seconds)
    motion_seconds = (q.shape[1] - 1) / 20.0
    out = {"measure": "whole_frames", "candidates": 4, "seconds": seconds}
    for fps in (24.0, 25.0, 30.0, 30000 / 1001, 60.0):
        addon = Installed()
        scene = bpy.context.scene
        scene_rate(scene, fps)
        collection = addon.import_result(f"frames-{fps:.2f}", PROMPTS[0], q, t)
        out[f"{fps:.2f}"] = key_stats(addon.candidates.candidate_objects(collection), motion_seconds, scene)
    addon = Installed()
    scene = bpy.context.scene
    scene_rate(scene, 24.0)
    collection = addon.import_result("frames-change", PROMPTS[0], q, t)
    scene_rate(scene, 30.0)
    retimed = has_operator("retime") and bpy.ops.sopo.retime() == {'FINISHED'}
    out["24_to_30"] = {**key_stats(addon.candidates.candidate_objects(collection), motion_seconds, scene),
                       "retime_operator": retimed}
    print(json.dumps(out), flush=True)


RIG_PREFIX = "mixamorig:"
RIG_BONES = bone_maps.MIXAMO  # SMPL joint -> Mixamo bone (without the prefix)
FEET = {"Left": ("LeftFoot", "LeftToeBase", "LeftToe_End"), "Right": ("RightFoot", "RightToeBase", "RightToe_End")}


def mixamo_rig(rest_foot_cm: float = 2.0) -> bpy.types.Object:
    """A Mixamo-style rig as an FBX import brings it: cm bones, Y-up turned by the object, A-pose arms,
    taller than SMPL with higher ankles, toe-end bones, its lowest foot point `rest_foot_cm` above the floor."""
    joints = skeleton.REST_JOINTS * 110.0
    heads = {RIG_PREFIX + RIG_BONES[name]: joints[j].copy() for j, name in enumerate(skeleton.JOINT_NAMES)}
    for side in ("Left", "Right"):
        ankle = heads[f"{RIG_PREFIX}{side}Foot"]
        ankle[1] += 3.0  # higher ankles than SMPL's, as most game characters have
        toe = heads[f"{RIG_PREFIX}{side}ToeBase"]
        heads[f"{RIG_PREFIX}{side}Toe_End"] = toe + np.array([0.0, 0.0, 7.0])
        sign = 1.0 if side == "Left" else -1.0
        shoulder = heads[f"{RIG_PREFIX}{side}Arm"]
        c, s = math.cos(-sign * math.radians(40)), math.sin(-sign * math.radians(40))
        for bone in ("ForeArm", "Hand"):
            v = heads[f"{RIG_PREFIX}{side}{bone}"] - shoulder
            heads[f"{RIG_PREFIX}{side}{bone}"] = shoulder + np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])
    lowest = min(heads[RIG_PREFIX + b][1] for bones in FEET.values() for b in bones)
    for name in heads:
        heads[name][1] += rest_foot_cm - lowest
    parents = {RIG_PREFIX + RIG_BONES[n]: (RIG_PREFIX + RIG_BONES[skeleton.JOINT_NAMES[p]] if p >= 0 else None)
               for n, p in zip(skeleton.JOINT_NAMES, skeleton.PARENTS)}
    parents[RIG_PREFIX + "LeftToe_End"], parents[RIG_PREFIX + "RightToe_End"] = (RIG_PREFIX + "LeftToeBase",
                                                                               RIG_PREFIX + "RightToeBase")
    children = {}
    for bone, parent in parents.items():
        children.setdefault(parent, []).append(bone)
    data = bpy.data.armatures.new("Mixamo")
    obj = bpy.data.objects.new("Mixamo", data)
    bpy.context.scene.collection.objects.link(obj)
    obj.rotation_euler, obj.scale, obj.location = (math.pi / 2, 0.0, 0.0), (0.01, 0.01, 0.01), (0.0, 4.0, 0.0)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    for bone, head in heads.items():
        edit = data.edit_bones.new(bone)
        edit.head = head
        kids = children.get(bone, [])
        edit.tail = heads[kids[0]] if len(kids) == 1 else head + np.array([0.0, 8.0, 0.0])
        if bone.endswith("Toe_End"):
            edit.tail = head + np.array([0.0, 0.0, 3.0])
    for bone, parent in parents.items():
        if parent is not None:
            data.edit_bones[bone].parent = data.edit_bones[parent]
    bpy.ops.object.mode_set(mode='OBJECT')
    return obj


def ankle_xy(rig, side: str) -> np.ndarray:
    m = np.array(rig.matrix_world)
    head = np.array(rig.pose.bones[f"{RIG_PREFIX}{FEET[side][0]}"].head)
    return (m[:3, :3] @ head + m[:3, 3])[:2]


def slides(xy: np.ndarray, contact: np.ndarray) -> list:
    """For each run of contact frames: how far (m) the ankle strays from where it stands on average."""
    out = []
    edges = np.diff(np.r_[0, contact.astype(np.int8), 0])
    for first, last in zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]):
        if last - first >= 2:
            run = xy[first:last]
            out.append(float(np.linalg.norm(run - run.mean(axis=0), axis=1).max()))
    return out


def foot_heights(rig, side: str, rest: bool = False) -> float:
    """World height of the lowest head or tail of one foot's bones (posed, or at rest)."""
    m = np.array(rig.matrix_world)
    points = []
    for name in FEET[side]:
        bone = rig.data.bones[RIG_PREFIX + name] if rest else rig.pose.bones[RIG_PREFIX + name]
        for p in ((bone.head_local, bone.tail_local) if rest else (bone.head, bone.tail)):
            points.append(m[:3, :3] @ np.array(p) + m[:3, 3])
    return float(min(p[2] for p in points))


def source_contacts(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T, 2) left/right contact from SMPL joint positions (Y-up, floor at 0): the ankle or the toe
    near the floor and slow."""
    out = np.zeros((len(positions), 2), dtype=bool)
    for k, (ankle, toe) in enumerate(((7, 10), (8, 11))):
        for joint, height in ((ankle, 0.11), (toe, 0.05)):
            p = positions[:, joint]
            speed = np.r_[0.0, np.linalg.norm(np.diff(p, axis=0), axis=1)] * fps
            out[:, k] |= (p[:, 1] < height) & (speed < 0.5)
    return out


def bench_feet(seconds: float) -> None:
    """Apply to a Mixamo-style rig: its lowest foot point in the source's contact frames vs its rest height."""
    prompts = ("a person walks forward", "a person walks in a circle", "a person jogs forward",
               "a person walks sideways to the left")
    motions = bundled_motions(prompts, 1, seconds)
    addon = Installed()
    keyframes = sys.modules[f"{MODULE}.keyframes"]
    armature = sys.modules[f"{MODULE}.armature"]
    rig = mixamo_rig()
    rest = {side: foot_heights(rig, side, rest=True) for side in FEET}
    diffs, all_diffs, applied, strays = [], [], [], []
    scene = bpy.context.scene
    for g, (q, t) in enumerate(motions):
        collection = addon.import_result(f"feet-{g}", prompts[g], q, t)
        source = addon.candidates.candidate_objects(collection)[0]
        for obj in bpy.context.selected_objects:
            obj.select_set(False)
        bpy.context.view_layer.objects.active = rig
        addon.retarget.apply_to_rig(scene, source, rig, 'AUTO')
        applied.append(rig.animation_data.action.name)
        frames = keyframes.key_frames(source, addon.candidates.bone_rotation_path("pelvis"))
        positions, heights, xys = [], [], []
        for frame in frames:
            scene.frame_set(int(np.floor(frame)), subframe=float(frame - np.floor(frame)))
            positions.append(armature.joint_positions_y_up(source, bpy.context.evaluated_depsgraph_get()))
            heights.append([foot_heights(rig, side) - rest[side] for side in FEET])
            xys.append([ankle_xy(rig, side) for side in FEET])
        fps = scene.render.fps / scene.render.fps_base * (len(frames) - 1) / max(frames[-1] - frames[0], 1e-9)
        contacts = source_contacts(np.array(positions), fps)
        heights, xys = np.array(heights), np.array(xys)
        diffs += list(heights[contacts])
        for k in range(2):
            strays += slides(xys[:, k], contacts[:, k])
        all_diffs += list(heights.ravel())
    addon.retarget.apply_to_rig(scene, source, rig, 'AUTO')  # the same motion again: replaced, not piled up
    diffs, all_diffs = np.array(diffs), np.array(all_diffs)
    print(json.dumps({"measure": "rig_feet", "motions": len(motions), "seconds": seconds,
                      "rig_rest_lowest_foot_cm": round(100 * min(rest.values()), 2),
                      "contact_samples": int(len(diffs)),
                      "median_above_rest_in_contact_cm": round(100 * float(np.median(diffs)), 2),
                      "touching_in_contact": round(float(np.mean(np.abs(diffs) < 0.01)), 3),
                      "lowest_below_rest_cm": round(-100 * float(all_diffs.min()), 2),
                      "samples_below_rest_over_1cm": int(np.sum(all_diffs < -0.01)),
                      "ankle_slide_in_contact_cm_median_p90": [round(100 * float(np.median(strays)), 2),
                                                               round(100 * float(np.percentile(strays, 90)), 2)],
                      "rig_actions_after_applying_the_last_twice": sorted(
                          a.name for a in bpy.data.actions if a.name.startswith("Mixamo")),
                      }), flush=True)


def _rig_joints(rig, scene, frame: int) -> np.ndarray:
    """(22, 3) world heads of the rig's bones for the SMPL joints, at `frame`."""
    scene.frame_set(frame)
    m = np.array(rig.matrix_world)
    return np.array([m[:3, :3] @ np.array(rig.pose.bones[RIG_PREFIX + RIG_BONES[n]].head) + m[:3, 3]
                     for n in skeleton.JOINT_NAMES])


def _panel_generate(addon, prompt: str, count: int, seconds: float, **controls) -> list:
    props = bpy.context.scene.sopo_motion
    props.prompt, props.count, props.seconds, props.seed, props.random_seed = prompt, count, seconds, 7, False
    for name, value in controls.items():
        setattr(props, name, value)
    bpy.ops.sopo.generate()
    while addon.session.generating():
        addon.session.poll_once()
        time.sleep(0.005)
    if addon.session.state().status.level == 'ERROR':
        raise SystemExit(f"generation failed: {_status(addon)}")
    return addon.candidates.candidate_objects(props.candidates)


def bench_controls(count: int, seconds: float, frame: int = 40) -> None:
    """The panel's Start from the current pose and Follow path against serve.py (bundled model) with a Mixamo-style
    rig walking (applied with the defaults): the candidates' joints against the rig's at the current frame (the
    rig's proportions differ: higher ankles), how far the rig's joints move there after Apply (defaults, and
    without feet on floor) and how far Feet on floor moves the hips 1 s later, and the rig's hips against the
    curve after Apply."""
    from server.service.server_process import ServerProcess

    [(q, t)] = bundled_motions(("a person walks forward",), 1, 6.0)
    data = Path(tempfile.mkdtemp(prefix="sopo-bench-server-"))
    server = ServerProcess(data, bind=free_endpoint())
    try:
        addon = Installed()
        addon.prefs.server_address, addon.prefs.timeout = server.endpoint, 120.0
        scene = bpy.context.scene
        walk = addon.candidates.candidate_objects(addon.import_result("walk", "a person walks forward", q, t))[0]
        rig = mixamo_rig()
        addon.retarget.apply_to_rig(scene, walk, rig, 'AUTO')
        before = _rig_joints(rig, scene, frame)
        bpy.context.view_layer.objects.active = rig
        made = _panel_generate(addon, "a person jumps forward", count, seconds, use_start_pose=True)
        gap = np.stack([_world_joints(obj, scene, frame) for obj in made]) - before
        moved, later = {}, {}
        for feet in (False, True):
            result = addon.retarget.apply_to_rig(scene, made[0], rig, 'AUTO', feet_on_floor=feet, lock_feet=feet)
            moved[feet] = np.linalg.norm(_rig_joints(rig, scene, frame) - before, axis=-1)
            later[feet] = _rig_joints(rig, scene, frame + 24)[0, 2]   # the hips 1 s later
        offset = result.height_offset
        arc = [(1.0 + 2.0 * math.sin(a), 4.0 - 2.0 + 2.0 * math.cos(a), 0.0) for a in np.linspace(0, math.pi / 2, 9)]
        curve = bpy.data.objects.new("path", bpy.data.curves.new("path", 'CURVE'))
        curve.data.splines.new('POLY').points.add(len(arc) - 1)
        for point, co in zip(curve.data.splines[0].points, arc):
            point.co = (*co, 1.0)
        scene.collection.objects.link(curve)
        bpy.context.view_layer.objects.active = rig
        made = _panel_generate(addon, "a person walks forward", count, seconds, use_start_pose=False, use_path=True,
                               path_curve=curve)
        addon.retarget.apply_to_rig(scene, made[0], rig, 'AUTO')
        line = np.array(arc)[:, :2]
        hips = np.array([_rig_joints(rig, scene, f)[0, :2] for f in range(scene.frame_start, scene.frame_end + 1)])
        seg = line[1:] - line[:-1]
        s = np.clip(np.einsum("tsk,sk->ts", hips[:, None] - line[:-1], seg) / np.sum(seg * seg, -1), 0, 1)
        dist = np.linalg.norm(hips[:, None] - (line[:-1] + s[..., None] * seg), axis=-1).min(axis=1)
        cm = lambda x: round(100 * float(x), 2)  # noqa: E731
        print(json.dumps({"measure": "controls", "candidates": count, "seconds": seconds, "frame": frame,
                          "start_pelvis_gap_cm_max": cm(np.linalg.norm(gap[:, 0], axis=-1).max()),
                          "start_joint_gap_cm_median_max": [cm(np.median(np.linalg.norm(gap, axis=-1))),
                                                            cm(np.linalg.norm(gap, axis=-1).max())],
                          "apply_moves_rig_at_frame_cm_median_max": {
                              "defaults": [cm(np.median(moved[True])), cm(moved[True].max())],
                              "no_feet_on_floor": [cm(np.median(moved[False])), cm(moved[False].max())]},
                          "feet_on_floor_offset_cm": cm(offset),
                          "hips_moved_by_feet_on_floor_1s_later_cm": cm(later[True] - later[False]),
                          "path_rig_hips_to_curve_cm_mean_max": [cm(dist.mean()), cm(dist.max())],
                          "status": _status(addon)}), flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _world_joints(obj, scene, frame: int) -> np.ndarray:
    scene.frame_set(frame)
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    return np.array([np.array(evaluated.matrix_world @ evaluated.pose.bones[n].head) for n in skeleton.JOINT_NAMES])


MEASURES = ("keys", "connection", "placement", "frames", "feet", "controls", "e2e")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="append", choices=MEASURES + ("all",),
                        help="what to measure (repeatable; default: keys)")
    parser.add_argument("--e2e", action="store_true", help="the same as --measure keys --measure e2e")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-other", type=float, default=0.3,
                        help="a bulk run counts when other processes used at most this many cores")
    parser.add_argument("--max-tries", type=int, default=60)
    parser.add_argument("--checkpoint", type=Path, default=None, help="e2e: checkpoint folder (default: bundled)")
    parser.add_argument("--e2e-candidates", type=int, default=4)
    parser.add_argument("--e2e-seconds", type=float, default=6.0, help="e2e: seconds of motion (the issue: 10)")
    parser.add_argument("--generations", type=int, default=20, help="placement: prompts, one generation each")
    parser.add_argument("--seconds", type=float, default=6.0, help="placement, frames, feet: motion length")
    parser.add_argument("--cap", type=float, default=120.0, help="connection: give up waiting after this")
    args = parser.parse_args()
    measures = set(args.measure or ["keys"]) | ({"keys", "e2e"} if args.e2e else set())
    if "all" in measures:
        measures = set(MEASURES)
    if "keys" in measures:
        bench_keys(args.candidates, args.frames, args.repeats, args.max_other, args.max_tries)
    if "connection" in measures:
        bench_connection(args.cap)
    if "placement" in measures:
        bench_placement(args.generations, args.candidates, args.seconds)
    if "frames" in measures:
        bench_frames(args.seconds)
    if "feet" in measures:
        bench_feet(args.seconds)
    if "controls" in measures:
        bench_controls(args.e2e_candidates, 4.0)
    if "e2e" in measures:
        bench_e2e(args.checkpoint, args.e2e_candidates, args.e2e_seconds, max(1, args.repeats // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
