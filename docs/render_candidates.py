"""Render the README's picture of N candidates side by side with bpy's Workbench engine.

    python docs/render_candidates.py --checkpoint DIR --prompt "a person walks forward"
    python docs/render_candidates.py --corpus data/corpus --caption walk   # real clips instead

With a checkpoint (default: the server's bundled one) the motions come from a real
`server/serve.py` subprocess; with --corpus they are corpus clips whose caption has the word.
Either way the add-on's own `candidates.import_candidates` builds the scene that is rendered.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="sopo-render-blender-"))
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Euler, Vector  # noqa: E402

from addon import candidates  # noqa: E402
from shared import skeleton  # noqa: E402


def from_server(checkpoint: Path | None, prompt: str, count: int, seconds: float, seed: int):
    from server.service.client import MotionClient
    from server.service.server_process import ServerProcess

    data = Path(tempfile.mkdtemp(prefix="sopo-render-server-"))
    args = []
    if checkpoint is not None:
        shutil.copytree(checkpoint, data / "models" / "render")
        args = ["--checkpoint", "render"]
    try:
        with ServerProcess(data, *args) as server, MotionClient(server.endpoint, timeout=300) as client:
            client.hello()
            result = client.generate(prompt, n=count, seconds=seconds, seed=seed)
            return np.array(result.rotations), np.array(result.translation), result.fps, f"{prompt} ({result.model})"
    finally:
        shutil.rmtree(data, ignore_errors=True)


def from_corpus(corpus: Path, word: str, count: int, seconds: float):
    from server.data.corpus import Corpus

    data = Corpus(corpus)
    fps = 20.0
    frames = int(seconds * fps)
    picked = []
    for i, clip in enumerate(data.clips):
        text = clip.captions[0].text if clip.captions else ""
        if word in text.split() and clip.frames >= frames and not clip.mirrored:
            picked.append(i)
        if len(picked) == count:
            break
    if len(picked) < count:
        raise SystemExit(f"only {len(picked)} corpus clips with '{word}' and {frames} frames")
    motions = [data.motion(i).slice(0, frames) for i in picked]
    q = np.stack([m.rotations for m in motions])
    t = np.stack([m.translation for m in motions])
    t[:, :, [0, 2]] -= t[:, :1, [0, 2]]  # start each clip at the origin, so they stand side by side
    return q, t, motions[0].fps, f"corpus clips: '{word}'"


def frame_camera(scene, objects, frame: int, labels) -> None:
    """An orthographic camera, a little above and to the side, fitting every joint and label."""
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    points = [label.matrix_world.translation + Vector((0.0, 0.0, 0.3)) for label in labels]
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        points += [evaluated.matrix_world @ evaluated.pose.bones[n].head for n in skeleton.JOINT_NAMES]
        points += [Vector((p.x, p.y, 0.0)) for p in points[-2:]]  # the feet's ground
    rotation = Euler((math.radians(70), 0.0, math.radians(-10))).to_matrix()
    in_view = np.array([rotation.transposed() @ p for p in points])  # camera axes: x right, y up
    low, high = in_view.min(axis=0), in_view.max(axis=0)
    aspect = scene.render.resolution_x / scene.render.resolution_y
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    camera.data.type = 'ORTHO'
    camera.data.ortho_scale = 1.12 * float(max(high[0] - low[0], (high[1] - low[1]) * aspect))
    centre = Vector(((low + high) / 2).tolist())
    centre.z = high[2] + 10.0  # in front of everything, looking down its -z
    camera.location = rotation @ centre
    camera.rotation_euler = rotation.to_euler()
    scene.camera = camera


def render(out: Path, q, t, fps, title: str, frame_seconds: float) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    collection = candidates.import_candidates(scene, request_id="readme", prompt=title, rotations=q,
                                              translation=t, fps=fps)
    objects = candidates.candidate_objects(collection)
    labels = [obj for obj in collection.objects if obj.type == 'FONT']
    for label in labels:
        label.color = (0.1, 0.1, 0.1, 1.0)
    bpy.ops.mesh.primitive_plane_add(size=60.0)
    bpy.context.active_object.color = (1.0, 1.0, 1.0, 1.0)
    frame = scene.frame_start + int(round(frame_seconds * scene.render.fps / scene.render.fps_base))
    frame_camera(scene, objects, frame, labels)
    shading = scene.display.shading
    scene.render.engine = 'BLENDER_WORKBENCH'
    shading.light, shading.studio_light, shading.color_type = 'STUDIO', 'outdoor.sl', 'OBJECT'
    shading.show_shadows, shading.show_cavity = True, True
    scene.display.shadow_focus = 0.8
    scene.display.light_direction = (0.45, -0.55, 0.70)  # a high sun: the labels' shadows stay short
    scene.world = bpy.data.worlds.new("world")
    scene.world.color = (1.0, 1.0, 1.0)
    scene.render.resolution_x, scene.render.resolution_y = 1280, 720
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.compression = 100
    scene.render.filepath = str(out)
    scene.frame_set(frame)
    bpy.ops.render.render(write_still=True)
    print(f"wrote {out} ({title}, frame {frame})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: bundled)")
    parser.add_argument("--corpus", type=Path, default=None, help="render corpus clips instead of generating")
    parser.add_argument("--caption", default="walk", help="with --corpus: a word the clips' captions contain")
    parser.add_argument("--prompt", default="a person walks forward and waves")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--at", type=float, default=1.5, help="seconds into the motion to render")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "addon_candidates.png")
    args = parser.parse_args()
    if args.corpus is not None:
        q, t, fps, title = from_corpus(args.corpus, args.caption, args.count, args.seconds)
    else:
        q, t, fps, title = from_server(args.checkpoint, args.prompt, args.count, args.seconds, args.seed)
    render(args.out.resolve(), q, t, fps, title, args.at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
