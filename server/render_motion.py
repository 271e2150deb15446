"""Render a motion (.npz, or a corpus clip) as a stick-figure PNG strip or an animated GIF.

    python server/render_motion.py in.npz --out strip.png|anim.gif [--frames 8] [--title T]
    python server/render_motion.py CLIP_ID --corpus data/corpus --out clip.gif

The renderer itself is `server/eval/render.py`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.eval.render import render_gif, render_strip  # noqa: E402
from shared.motion import Motion, MotionError  # noqa: E402

PROG = "render_motion.py"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("motion", help=".npz written by Motion.save, or a clip id with --corpus")
    parser.add_argument("--corpus", type=Path, default=None, help="read clip MOTION from this corpus folder")
    parser.add_argument("--out", type=Path, required=True, help="output .png (strip) or .gif (animation)")
    parser.add_argument("--frames", type=int, default=8, help="frames in a PNG strip (default 8)")
    parser.add_argument("--title", default=None, help="title (default: the input file name)")
    parser.add_argument("--step", type=int, default=1, help="GIF: draw every step-th frame")
    args = parser.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".gif"):
        print(f"{PROG}: --out must end in .png or .gif, got {args.out}", file=sys.stderr)
        return 2
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
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    title = default_title if args.title is None else args.title
    try:
        if suffix == ".png":
            render_strip(motion, args.out, frames=args.frames, titles=[title])
        else:
            render_gif(motion, args.out, step=args.step, title=title)
    except (OSError, ValueError) as exc:   # an unwritable --out, --frames 0, --step 0
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({motion.num_frames} frames, {motion.duration:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
