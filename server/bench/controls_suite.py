"""The prompt-following suite's pass rate with artist controls against without (issue 16's "within 5 points").

    python server/bench/controls_suite.py --threads 1 --seeds 0 --candidates 4

Each control is applied to every suite prompt in a way that does not contradict the prompt:

- ``start``: start from a neutral standing pose (all 22 joint rotations and the pelvis height of the
  first frame of the test-split corpus clip captioned with "stand" that starts stillest), the body's pose only (``root``
  false: place and heading stay the model's, so "walks forward" / "turns left" keep their meaning);
- ``loop``: ``loop: true`` on every prompt (a turn's heading keeps turning, a walk keeps advancing: only
  the body's pose, height and root velocity are looped);
- ``keep``: keep half a body of another sample of the same prompt (the same request with another seed,
  no controls): its lower body for the upper-body categories (`UPPER_CATEGORIES`), its upper body for
  every other one (locomotion, jumps, kicks, turns, combinations), so the kept half does what the prompt asks.

Per control: the suite's overall pass rate with its 95% bootstrap interval over prompts (server/eval/suite.py),
the same without controls (same seeds, same noise), and the paired difference (per prompt, with minus without;
95% bootstrap over prompts). The last line of stdout is a JSON object with everything.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: import from the repository root, not from server/bench
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.eval.physics import bootstrap_interval
from server.eval.suite import load_suite, prompt_seed, score_suite
from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir
from shared.constraints import LOWER_BODY, UPPER_BODY, Constraints, KeepJoints, PoseKey
from shared.motion import forward_kinematics

REPO = Path(__file__).resolve().parents[2]
CONTROLS = ("start", "loop", "keep")
UPPER_CATEGORIES = {"raise_one_arm", "raise_both_arms", "wave_left", "wave_right", "punch_left", "punch_right",
                    "bend_forward"}
SOURCE_SEED = 7919   # the kept half comes from the same prompt sampled with this seed offset


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def standing_pose(corpus) -> tuple[PoseKey, str]:
    """The first frame of the stillest start (joint speed over the first half second) among the test clips
    captioned with "stand" (any test clip where none is), as a pose only (not place or heading)."""
    best = None
    test = [i for i in corpus.indices("test") if not corpus.clips[i].mirrored]
    standing = [i for i in test if any("stand" in c.text for c in corpus.clips[i].captions)]
    for i in standing or test:
        m = corpus.motion(i)
        P = forward_kinematics(m.rotations[:11].astype(np.float64), m.translation[:11].astype(np.float64))
        speed = float(np.linalg.norm(np.diff(P, axis=0), axis=-1).mean())
        if best is None or speed < best[0]:
            best = (speed, i, m)
    if best is None:
        raise SystemExit("controls_suite.py: the corpus has no test clip")
    _, i, m = best
    return (PoseKey(m.rotations[0].astype(np.float64), m.translation[0].astype(np.float64), 0, None, False),
            f"{corpus.clips[i].captions[0].text!r} (test clip {i}, frame 0)")


def generator_fn(gen: MotionGenerator, control: str | None, suite, start: PoseKey | None):
    """A suite GeneratorFn (server/eval/suite.py) that adds `control` to every request."""
    category = {p.text: p.category for p in suite.prompts}

    def constraints(prompt: str, frames: int, sources, k: int) -> Constraints | None:
        if control is None:
            return None
        if control == "start":
            return Constraints(start_pose=start)
        if control == "loop":
            return Constraints(loop=True)
        r, t = sources
        joints = LOWER_BODY if category[prompt] in UPPER_CATEGORIES else UPPER_BODY
        return Constraints(keep_joints=KeepJoints(joints, r[k].astype(np.float64), t[k].astype(np.float64)))

    def generate(prompts: list[str], seconds: list[float], seed: int, n: int):
        out = []
        for prompt, sec in zip(prompts, seconds):
            sec = min(float(sec), gen.max_seconds)
            s = prompt_seed(seed, prompt)
            sources = None
            if control == "keep":
                [sources] = gen.generate([GenerationRequest(prompt, n=n, seconds=sec, seed=s + SOURCE_SEED)])
            frames = int(round(sec * gen.fps))
            if control == "keep":   # one request per candidate: each keeps half of its own source
                rows = [gen.generate([GenerationRequest(prompt, n=1, seconds=sec, seed=s,
                                                        constraints=constraints(prompt, frames, sources, k))])[0]
                        for k in range(n)]
                out.append((np.concatenate([r for r, _ in rows]), np.concatenate([t for _, t in rows])))
            else:
                [(r, t)] = gen.generate([GenerationRequest(prompt, n=n, seconds=sec, seed=s,
                                                           constraints=constraints(prompt, frames, None, 0))])
                out.append((np.asarray(r), np.asarray(t)))
        return out

    return generate


def paired(with_c: dict, without: dict) -> tuple[float, float, float]:
    """Mean over prompts of (pass rate with - without) and its 95% bootstrap interval over prompts."""
    ids = sorted(without)
    d = np.array([np.mean(with_c[i]) - np.mean(without[i]) for i in ids])
    return bootstrap_interval(d, seed=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--suite-file", default=None, help="default server/eval/prompt_suite_v1.json")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="suite seeds (default 0; the suite's own: 0 1 2)")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--controls", nargs="+", default=list(CONTROLS), choices=CONTROLS)
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts (a quick look)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from server.data.corpus import Corpus

    suite = load_suite(args.suite_file) if args.suite_file else load_suite()
    if args.limit:
        suite.prompts = suite.prompts[:args.limit]
    gen = MotionGenerator.load(args.checkpoint or default_checkpoint_dir(), device="cpu")
    start, start_from = standing_pose(Corpus(args.corpus)) if "start" in args.controls else (None, None)
    report: dict = {"checkpoint": gen.model_id, "family": gen.family, "method": gen.constraint_method or "default",
                    "suite": suite.version, "prompts": len(suite.prompts), "seeds": args.seeds,
                    "candidates": args.candidates, "start_pose_from": start_from, "controls": {}}
    t0 = time.time()
    base = score_suite(generator_fn(gen, None, suite, start), suite, args.seeds, args.candidates, name="none")
    o = base.overall
    report["none"] = {"rate": o.rate, "low": o.low, "high": o.high}
    log(f"none: {o.rate:.3f} [{o.low:.3f}, {o.high:.3f}] ({time.time() - t0:.0f} s)")
    for control in args.controls:
        res = score_suite(generator_fn(gen, control, suite, start), suite, args.seeds, args.candidates, name=control)
        o = res.overall
        d, lo, hi = paired(res.passes, base.passes)
        cats = {c.name: round(c.rate - b.rate, 3) for c, b in zip(res.categories, base.categories)}
        report["controls"][control] = {"rate": o.rate, "low": o.low, "high": o.high, "diff": d, "diff_low": lo,
                                       "diff_high": hi, "category_diff": cats}
        log(f"{control}: {o.rate:.3f} [{o.low:.3f}, {o.high:.3f}]  with - without {d:+.3f} [{lo:+.3f}, {hi:+.3f}] "
            f"({time.time() - t0:.0f} s)")
    print(f"\n{report['checkpoint']} ({report['family']}), suite {report['suite']} ({report['prompts']} prompts), "
          f"seeds {args.seeds} x {args.candidates} candidates; overall pass rate, 95% bootstrap over prompts:")
    print(f"  {'none':6s} {report['none']['rate']:.3f} [{report['none']['low']:.3f}, {report['none']['high']:.3f}]")
    for control, row in report["controls"].items():
        print(f"  {control:6s} {row['rate']:.3f} [{row['low']:.3f}, {row['high']:.3f}]   with - without "
              f"{row['diff']:+.3f} [{row['diff_low']:+.3f}, {row['diff_high']:+.3f}]")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
