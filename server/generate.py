"""Generate motions from text without Blender: .npz (wire format), .bvh and a stick-figure preview.

    python server/generate.py "a person jumps forward" -n 4 --seconds 6 --seed 1 --out out/
    python server/generate.py "a person walks in a circle" --checkpoint runs/mld/checkpoint

Writes <out>/<slug>_<k>.npz (rotations, translation, fps; `shared.motion.Motion.load` reads it),
<out>/<slug>_<k>.bvh (SMPL-22 hierarchy, metres) for k = 0..n-1, and <out>/<slug>.png (one row
of frames per candidate).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.model.checkpoint import CheckpointError
from server.model.inference import GenerationRequest, MotionGenerator, RequestError, default_checkpoint_dir
from shared.motion import Motion


def slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (s[:limit].rstrip("_") or "motion")


def write_outputs(prompt: str, rotations, translation, fps: float, out: Path, preview: bool = True) -> list[Path]:
    """Save each candidate as .npz and .bvh, plus one preview PNG; returns the written paths."""
    from server.data.bvh import motion_to_bvh, write_bvh

    out.mkdir(parents=True, exist_ok=True)
    name = slug(prompt)
    written, motions = [], []
    for k in range(rotations.shape[0]):
        motion = Motion(rotations[k], translation[k], fps)
        motions.append(motion)
        motion.save(out / f"{name}_{k}.npz")
        write_bvh(motion_to_bvh(motion), out / f"{name}_{k}.bvh")
        written += [out / f"{name}_{k}.npz", out / f"{name}_{k}.bvh"]
    if preview:
        from server.render_motion import render_strip

        written.append(render_strip(motions, out / f"{name}.png", frames=8,
                                    titles=[f"{prompt} [{k}]" for k in range(len(motions))]))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Text to motion: writes .npz, .bvh and a preview PNG.")
    parser.add_argument("prompt")
    parser.add_argument("-n", type=int, default=4, help="candidates (default 4)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    parser.add_argument("--out", default="out", help="output folder (default ./out)")
    parser.add_argument("--no-preview", action="store_true", help="skip the PNG preview")
    args = parser.parse_args(argv)

    try:
        gen = MotionGenerator.load(args.checkpoint or default_checkpoint_dir(), device=args.device)
        gen.text.encoder()  # load the text encoder outside the timed part
        t0 = time.perf_counter()
        [(rotations, translation)] = gen.generate([GenerationRequest(args.prompt, n=args.n, seconds=args.seconds,
                                                                     seed=args.seed, guidance=args.guidance,
                                                                     steps=args.steps)])
        dt = time.perf_counter() - t0
    except (CheckpointError, RequestError) as exc:
        print(f"generate.py: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(args.prompt, rotations, translation, gen.fps, Path(args.out), preview=not args.no_preview)
    print(f"{gen.model_id} ({gen.family}): {args.n} x {rotations.shape[1] / gen.fps:.2f} s in {dt:.2f} s, "
          f"seed {gen.last_seeds[0]}")
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
