"""Stick-figure renders of SMPL-22 motions: a PNG strip of frames, or an animated GIF.

Uses matplotlib's Agg canvas directly (never pyplot), so importing this module does not
change anyone's backend. Our Y-up world is shown with matplotlib's Z as up: a point
(x, y, z) is drawn at (x, -z, y), a proper rotation, so left and right are not mirrored.
Left limbs are blue, right limbs red, the spine black; the pelvis leaves a trail on the
floor grid; every view is a 1:1:1 perspective box that follows the pelvis.

CLI:  python server/render_motion.py in.npz --out strip.png|anim.gif [--frames 8] [--title T]
"""
from __future__ import annotations

import argparse
from typing import Sequence

from shared.motion import Motion, MotionError
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.eval.render import render_gif, render_strip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render a motion .npz as a stick-figure PNG strip or GIF.")
    parser.add_argument("motion", help=".npz written by Motion.save, or a clip id with --corpus")
    parser.add_argument("--corpus", type=Path, default=None, help="read clip MOTION from this corpus folder")
    parser.add_argument("--out", type=Path, required=True, help="output .png (strip) or .gif (animation)")
    parser.add_argument("--frames", type=int, default=8, help="frames in a PNG strip (default 8)")
    parser.add_argument("--title", default=None, help="title (default: the input file name)")
    parser.add_argument("--step", type=int, default=1, help="GIF: draw every step-th frame")
    args = parser.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".gif"):
        parser.error(f"--out must end in .png or .gif, got {args.out}")
    try:
        if args.corpus is not None:
            from server.data.corpus import Corpus, CorpusError

            corpus = Corpus(args.corpus)
            index = {c.id: i for i, c in enumerate(corpus.clips)}
            if args.motion not in index:
                raise CorpusError(f"no clip {args.motion!r} in {args.corpus}")
            clip = corpus.clips[index[args.motion]]
            motion = corpus.motion(index[args.motion])
            default_title = f"{clip.id} ({clip.skeleton}): {clip.captions[0].text if clip.captions else ''}"
        else:
            motion = Motion.load(args.motion)
            default_title = Path(args.motion).stem
    except (MotionError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    title = default_title if args.title is None else args.title
    if suffix == ".png":
        render_strip(motion, args.out, frames=args.frames, titles=[title])
    else:
        render_gif(motion, args.out, step=args.step, title=title)
    print(f"wrote {args.out} ({motion.num_frames} frames, {motion.duration:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
