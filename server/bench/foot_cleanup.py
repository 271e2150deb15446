"""Foot-contact cleanup, before and after: foot skating, ground penetration, joint change and time.

    python server/bench/foot_cleanup.py                       # bundled default, 20 prompts x 4, corpus test clips
    python server/bench/foot_cleanup.py --checkpoint runs/mld/checkpoint --seconds 8 --clips 100

Generated motions: each prompt is sampled once with `foot_cleanup=False` (seed --seed, 4 candidates);
the cleanup then runs on exactly those motions with the model's predicted foot contacts.
Real motions: the corpus' test clips, cleaned with their own contact labels (the features' rule,
what the model learns to predict). Measures (server/model/foot_cleanup.py `skate_samples`, the
definitions of server/eval/physics.py), pooled over all motions of a row:
skate % = share of foot-joint samples within 5 cm of the floor sliding faster than 0.5 m/s (GMD);
strict m/s = median horizontal foot-joint speed within 2 cm of the floor; pen % = frames with a
joint more than 3 cm below y = 0; low cm = the lowest foot joint over all frames; change cm =
joint displacement the cleanup causes (mean over all joints and frames, 99th percentile, max).
One line per prompt, then the totals; --json also writes them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: import from the repository root, and not from server/
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.model.foot_cleanup import CleanupConfig, clean_foot_contacts, skate_samples
from shared.motion import forward_kinematics
from shared.skeleton import FOOT_JOINTS

PROMPTS = [
    "a person walks forward", "a person walks slowly", "someone walks in a circle", "a person walks backwards",
    "a person walks to the left", "a person runs forward", "someone is jogging", "a person runs and turns left",
    "a person sits down", "a person sits down on the floor", "a person kicks with the right leg",
    "a person kicks a ball", "a person throws a ball", "someone throws a punch",
    "a person crawls on hands and knees", "a person jumps forward", "a person jumps in place",
    "a person squats", "a person dances", "a person waves with the right hand",
]


class Row:
    """Pooled measures of a set of motions, before and after the cleanup."""

    def __init__(self, name: str):
        self.name = name
        self.samples = {"before": ([], []), "after": ([], [])}
        self.penetrating = {"before": [], "after": []}
        self.lowest = {"before": np.inf, "after": np.inf}
        self.change: list[np.ndarray] = []
        self.frames = 0

    def add(self, before: np.ndarray, after: np.ndarray, fps: float) -> None:
        """before, after (T, 22, 3) positions of one motion."""
        for key, pos in (("before", before), ("after", after)):
            touch, strict = skate_samples(pos, fps)
            self.samples[key][0].append(touch)
            self.samples[key][1].append(strict)
            self.penetrating[key].append(pos[..., 1].min(axis=1) < -0.03)
            self.lowest[key] = min(self.lowest[key], float(pos[:, list(FOOT_JOINTS), 1].min()))
        self.change.append(np.linalg.norm(after - before, axis=-1).ravel())
        self.frames += len(before)

    def summary(self) -> dict:
        out = {"name": self.name, "frames": self.frames}
        for key in ("before", "after"):
            touch = np.concatenate(self.samples[key][0])
            strict = np.concatenate(self.samples[key][1])
            out[key] = {"skate_ratio": float((touch > 0.5).mean()) if touch.size else 0.0,
                        "strict_speed": float(np.median(strict)) if strict.size else float("nan"),
                        "strict_samples": int(strict.size),
                        "penetration_share": float(np.concatenate(self.penetrating[key]).mean()),
                        "lowest_foot": self.lowest[key]}
        change = np.concatenate(self.change)
        out["change_cm"] = {"mean": float(change.mean() * 100), "p99": float(np.percentile(change, 99) * 100),
                            "max": float(change.max() * 100)}
        return out


def format_row(s: dict) -> str:
    b, a, c = s["before"], s["after"], s["change_cm"]
    return (f"{s['name'][:36]:36s} {s['frames']:6d}  skate% {100 * b['skate_ratio']:5.1f} -> {100 * a['skate_ratio']:5.1f}"
            f"  strict m/s {b['strict_speed']:5.3f} -> {a['strict_speed']:5.3f}"
            f"  pen% {100 * b['penetration_share']:4.1f} -> {100 * a['penetration_share']:4.1f}"
            f"  low cm {100 * b['lowest_foot']:6.1f} -> {100 * a['lowest_foot']:5.1f}"
            f"  change cm {c['mean']:4.2f} / {c['p99']:4.1f} / {c['max']:4.1f}")


def bench_generated(args, config: CleanupConfig) -> tuple[list[dict], dict, list[float]]:
    from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir

    gen = MotionGenerator.load(args.checkpoint or default_checkpoint_dir(), device=args.device)
    print(f"# generated: {gen.model_id} ({gen.family}), {len(args.prompts)} prompts x {args.n}, "
          f"{args.seconds} s, seed {args.seed}", flush=True)
    rows, total, times = [], Row(f"generated ({gen.model_id})"), []
    for prompt in args.prompts:
        [(rot, trans)] = gen.generate([GenerationRequest(prompt, n=args.n, seconds=args.seconds, seed=args.seed,
                                                         foot_cleanup=False)])
        contacts = gen.last_contacts[0]
        t0 = time.perf_counter()
        rot2, trans2 = clean_foot_contacts(rot, trans, contacts, config)
        times.append((time.perf_counter() - t0) / len(rot))
        row = Row(prompt)
        for k in range(len(rot)):
            before, after = forward_kinematics(rot[k], trans[k]), forward_kinematics(rot2[k], trans2[k])
            row.add(before, after, gen.fps)
            total.add(before, after, gen.fps)
        rows.append(row.summary())
        print(format_row(rows[-1]), flush=True)
    return rows, total.summary(), times


def bench_real(args, config: CleanupConfig) -> tuple[dict, list[float]]:
    from server.data.corpus import Corpus
    from server.model.features import FeatureLayout, motion_to_features

    corpus = Corpus(args.corpus)
    layout = FeatureLayout()
    clips = corpus.indices("test")[: args.clips or None]
    row, times = Row(f"real ({len(clips)} test clips)"), []
    for i in clips:
        motion = corpus.motion(i)
        contacts = motion_to_features(motion, layout)[:, layout.contacts]
        t0 = time.perf_counter()
        rot2, trans2 = clean_foot_contacts(motion.rotations, motion.translation, contacts, config)
        times.append(time.perf_counter() - t0)
        row.add(motion.positions(), forward_kinematics(rot2, trans2), motion.fps)
    return row.summary(), times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Skate ratio and penetration before/after the foot-contact cleanup.")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--prompts", nargs="+", default=PROMPTS)
    parser.add_argument("-n", type=int, default=4, help="candidates per prompt (default 4)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=0, help="real clips from the test split (0 = all)")
    parser.add_argument("--no-real", action="store_true", help="skip the corpus clips")
    parser.add_argument("--no-generated", action="store_true", help="skip the generated motions")
    parser.add_argument("--max-correction", type=float, default=CleanupConfig.max_correction)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    config = CleanupConfig(max_correction=args.max_correction)
    report: dict = {"config": config.__dict__, "seconds": args.seconds, "seed": args.seed, "n": args.n}
    try:
        if not args.no_generated:
            rows, total, times = bench_generated(args, config)
            print(format_row(total))
            print(f"# cleanup time per candidate ({args.seconds} s): median {1000 * np.median(times):.1f} ms")
            report.update(prompts=rows, generated=total, generated_ms=1000 * float(np.median(times)))
        if not args.no_real:
            real, times = bench_real(args, config)
            print(format_row(real))
            print(f"# cleanup time per real clip: median {1000 * np.median(times):.1f} ms")
            report.update(real=real, real_ms=1000 * float(np.median(times)))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"foot_cleanup bench: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
