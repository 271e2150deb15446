"""Benchmark the Blender add-on: `python server/bench/blender.py [--e2e] [--checkpoint DIR]`.

1. Keyframe import: 8 candidates x 200 frames (22 quaternion channels + pelvis location) written
   with the add-on's bulk channelbag path vs. per-frame `keyframe_insert`, and the whole
   candidate import (armatures, mannequins, labels, keys).
2. With --e2e: the installed extension (dist zip, built if missing) against `server/serve.py`
   on the default checkpoint (or --checkpoint DIR): time from the Generate operator to keys
   in the scene, polling the way Blender's timer does.
Prints one JSON object per measurement. Runs in the `bpy` module (no Blender UI). The machine
may be shared: each bulk run records the CPU other processes used meanwhile, runs above
--max-other cores are not counted unless no run was quiet (then `quiet_runs` is 0).
"""
from __future__ import annotations

import argparse
import json
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

from addon import armature, candidates, keyframes  # noqa: E402
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
    import addon_utils
    import build
    from server.service.server_process import ServerProcess

    module = "bl_ext.user_default.sopo_motion"
    zips = sorted((ROOT / "dist").glob("sopo_motion-*[0-9].zip")) or build.build()[:1]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.extensions.package_install_files(filepath=str(zips[-1]), repo="user_default",
                                                    enable_on_install=True) == {'FINISHED'}
    session = sys.modules[f"{module}.session"]
    data = Path(tempfile.mkdtemp(prefix="sopo-bench-server-"))
    args = []
    if checkpoint is not None:
        shutil.copytree(checkpoint, data / "models" / "bench")
        args = ["--checkpoint", "bench"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ServerProcess(data, *args, bind=f"tcp://127.0.0.1:{port}")
    try:
        prefs = bpy.context.preferences.addons[module].preferences
        prefs.server_address, prefs.timeout = server.endpoint, 120.0
        times = []
        for i in range(repeats + 1):  # the first run warms the server up and is reported apart
            bpy.ops.wm.read_factory_settings(use_empty=True)
            addon_utils.enable(module, default_set=True)
            prefs = bpy.context.preferences.addons[module].preferences
            prefs.server_address, prefs.timeout = server.endpoint, 120.0
            props = bpy.context.scene.sopo_motion
            props.prompt, props.count, props.seconds, props.random_seed = "a person walks forward", count, seconds, True
            start = time.perf_counter()
            bpy.ops.sopo.generate()
            while session.generating():
                session.poll_once()
                time.sleep(0.005)
            elapsed = time.perf_counter() - start
            if props.candidates is None:
                raise SystemExit(f"generation failed: {session.state().status.text}")
            times.append(elapsed)
        print(json.dumps({"measure": "generate_to_keys", "candidates": count, "seconds": seconds,
                          "checkpoint": str(checkpoint) if checkpoint else "bundled default",
                          "first_s": round(times[0], 3), "median_s": round(statistics.median(times[1:]), 3),
                          "all_s": [round(x, 3) for x in times[1:]]}), flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-other", type=float, default=0.3,
                        help="a bulk run counts when other processes used at most this many cores")
    parser.add_argument("--max-tries", type=int, default=60)
    parser.add_argument("--e2e", action="store_true", help="also time Generate -> keys against a real server")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: bundled)")
    parser.add_argument("--e2e-candidates", type=int, default=4)
    parser.add_argument("--e2e-seconds", type=float, default=6.0)
    args = parser.parse_args()
    bench_keys(args.candidates, args.frames, args.repeats, args.max_other, args.max_tries)
    if args.e2e:
        bench_e2e(args.checkpoint, args.e2e_candidates, args.e2e_seconds, max(1, args.repeats // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
