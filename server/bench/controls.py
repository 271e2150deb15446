"""Artist controls (constraints): how exactly and how smoothly each holds, the text still followed, and latency.

    python server/bench/controls.py                          # the bundled default, its default method
    python server/bench/controls.py --methods encode optimise final --clips 8
    python server/bench/controls.py --latency-only --threads 2
    python server/bench/controls.py --kinds loop --no-latency                # one kind of case only
    python server/bench/controls.py --clips 2 --no-latency --no-text --pictures docs   # docs/controls_<kind>.png

Poses come from real corpus clips (data/corpus, test split): each case takes a 6 s window of a
clip, prompts with the clip's caption and pins poses of that window (start, end, in-between with
a keyframe, arms-only keyframe), or asks for a loop, a path (walking prompts, drawn paths), or
keeps half a body of a generated walk. Printed per case and method (means over clips x 4 candidates):

- raw_cm: joint position error at the pinned frames before the final fix-up, in the body's own
  frame (what the sampler's steering achieved; the root's place is exact by construction), and
  err_cm after it (the result, in the world for rooted poses; the bar is <= 2 cm);
- join_speed / join_acc: the largest joint speed (m/s) and acceleration (m/s^2) on the steps
  touching a pinned frame, with the share of candidates within the corpus' 95th percentile of
  the same per-frame statistic (free_*: the same frames of the same request without constraints);
- loop: the seam's step in root-relative joint positions (and its excess over the steps either
  side: a fast joint's natural step is no jump), the velocity change across it (m per frame), the
  root's heading-frame velocity jump, each against the corpus' median frame-to-frame change;
- path: mean root distance to the path (cm) and facing error (degrees) while walking (> 0.5 m/s);
- keep: the largest difference of kept joints from the source (0 means identical);
- text: the evaluator's text-motion cosine with the constraints and without (same seeds).
Latency: 4 candidates x 10 s with each control and without (text encoding included), median of
--repeats, with the thread count and the machine's load average (a loaded machine gives an upper bound),
and the process's CPU time (with one thread, close to the wall time on a quiet machine).
A JSON object with everything is the last line of stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: import from the repository root, not from server/bench
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.model.constraint_fixup import local_positions, path_arc, path_facing, root_heading
from server.model.constraints import DEFAULT_METHOD, METHODS
from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir
from shared.constraints import LOWER_BODY, UPPER_BODY, Constraints, KeepJoints, PoseKey, RootPath
from shared.motion import forward_kinematics

REPO = Path(__file__).resolve().parents[2]
SECONDS = 6.0   # each case's length (--seconds)
FPS = 20.0
WALK_PROMPTS = ("a person walks forward", "a person walks slowly", "a person jogs forward")
LOOP_PROMPTS = ("a person walks forward", "a person runs forward", "a person waves both hands energetically",
                "a person waves the left hand", "a person walks forward as if exhausted", "a person jumps")
PATHS = {  # ground points (x, z), metres
    "line": [[0.0, 0.0], [0.0, 5.0]],
    "arc": [[2.5 * (1 - np.cos(a)), 2.5 * np.sin(a)] for a in np.linspace(0, np.pi / 2, 12)],
    "corner": [[0.0, 0.0], [0.0, 3.0], [2.5, 3.0]],
}
WALKING_SPEED = 0.5   # m/s: facing is measured where the root moves faster than this


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# --- geometry ---------------------------------------------------------------------------------

def root_velocity(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(T-1, 3): per step, the heading change (rad) and the ground step in the heading frame of t-1 (m)."""
    yaw = root_heading(q)
    d = np.diff(p[:, [0, 2]], axis=0)
    c, s = np.cos(-yaw[:-1]), np.sin(-yaw[:-1])
    return np.stack([np.diff(yaw), c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], -1)


def corpus_statistics(motions: list) -> dict:
    """Per-frame statistics of real clips, the references for 'no pop' and 'seamless'."""
    speed, acc, step, vstep, rstep = [], [], [], [], []
    for m in motions:
        q, p = m.rotations.astype(np.float64), m.translation.astype(np.float64)
        P = forward_kinematics(q, p)
        v = np.diff(P, axis=0)
        speed.append(np.linalg.norm(v, axis=-1).max(-1) * FPS)
        acc.append(np.linalg.norm(np.diff(v, axis=0), axis=-1).max(-1) * FPS * FPS)
        L = local_positions(q, p)
        dL = np.diff(L, axis=0)
        step.append(np.linalg.norm(dL, axis=-1).max(-1))
        vstep.append(np.linalg.norm(np.diff(dL, axis=0), axis=-1).max(-1))
        rstep.append(np.linalg.norm(np.diff(root_velocity(q, p)[:, 1:], axis=0), axis=-1))
    cat = np.concatenate
    return {"speed_p95": float(np.percentile(cat(speed), 95)), "acc_p95": float(np.percentile(cat(acc), 95)),
            "step_median": float(np.median(cat(step))), "vstep_median": float(np.median(cat(vstep))),
            "root_vstep_median": float(np.median(cat(rstep)))}


def pose_error(q: np.ndarray, p: np.ndarray, key: PoseKey, world: bool | None = None) -> float:
    """Mean joint position error (m) at the key's frame (the pose with its pinned joints set against the pose
    as it is), in the world for rooted keys (or ``world``), in the body's own frame otherwise."""
    target_q = q[key.frame].copy()
    target_q[key.joint_mask] = key.rotations[key.joint_mask]
    target_p = p[key.frame].copy()
    if key.joint_mask[0]:
        target_p[1] = key.translation[1]
    if key.root if world is None else world:
        target_p[[0, 2]] = key.translation[[0, 2]]
        got = forward_kinematics(q[key.frame], p[key.frame])
        want = forward_kinematics(target_q, target_p)
    else:
        got = local_positions(q[key.frame:key.frame + 1], p[key.frame:key.frame + 1])[0]
        want = local_positions(target_q[None], target_p[None])[0]
    return float(np.linalg.norm(got - want, axis=-1).mean())


def join_speed(q: np.ndarray, p: np.ndarray, frame: int) -> tuple[float, float]:
    """Largest joint speed (m/s) and acceleration (m/s^2) on the steps touching `frame`."""
    P = forward_kinematics(q, p)
    T = len(P)
    a, b = max(frame - 1, 0), min(frame + 1, T - 1)
    v = np.diff(P[a:b + 1], axis=0)
    speed = float(np.linalg.norm(v, axis=-1).max() * FPS)
    lo, hi = max(frame - 1, 1), min(frame + 1, T - 2)
    accs = [np.linalg.norm(P[t + 1] - 2 * P[t] + P[t - 1], axis=-1).max() for t in range(lo, hi + 1)]
    return speed, float(max(accs) * FPS * FPS) if accs else 0.0


def loop_seam(q: np.ndarray, p: np.ndarray) -> dict:
    """The seam (last frame -> frame 0) in root-relative joint positions: its step (the issue's 'position
    jump'), how much it exceeds the steps either side (a jump shows as an excess, a fast joint does not),
    the velocity change across it (max over joints, m per frame), and the root's heading-frame velocity jump."""
    L = local_positions(q, p)
    step = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    seam = step(L[0], L[-1])
    excess = np.maximum(seam - np.maximum(step(L[-1], L[-2]), step(L[1], L[0])), 0.0).max()
    v_before, v_seam, v_after = L[-1] - L[-2], L[0] - L[-1], L[1] - L[0]
    vjump = max(np.linalg.norm(v_seam - v_before, axis=-1).max(), np.linalg.norm(v_after - v_seam, axis=-1).max())
    r = root_velocity(q, p)[:, 1:]
    return {"seam_step": float(seam.max()), "seam_excess": float(excess), "seam_vjump": float(vjump),
            "root_vjump": float(np.linalg.norm(r[0] - r[-1]) / 2)}   # two steps apart across the seam


def path_errors(q: np.ndarray, p: np.ndarray, path: RootPath) -> dict:
    """Root distance to the path polyline (exact, per frame) and facing error against the path's direction at the
    nearest point, while the root moves faster than WALKING_SPEED."""
    points = np.asarray(path.points, dtype=np.float64)
    arc = path_arc(points)
    a, b = points[:-1], points[1:]                                  # (S, 2) segments
    xz = p[:, [0, 2]]
    seg = b - a
    length2 = np.maximum((seg ** 2).sum(-1), 1e-12)
    u = np.clip(((xz[:, None] - a[None]) * seg[None]).sum(-1) / length2, 0.0, 1.0)   # (T, S)
    nearest = a[None] + u[..., None] * seg[None]
    d = np.linalg.norm(xz[:, None] - nearest, axis=-1)
    best = d.argmin(1)
    at = arc[best] + u[np.arange(len(xz)), best] * np.sqrt(length2[best])
    facing = path_facing(points, arc, at)
    err = np.degrees(np.abs((root_heading(q) - facing + np.pi) % (2 * np.pi) - np.pi))
    speed = np.r_[0.0, np.linalg.norm(np.diff(xz, axis=0), axis=-1) * FPS]
    walking = speed > WALKING_SPEED
    return {"distance_cm": float(d.min(1).mean() * 100),
            "facing_deg": float(err[walking].mean()) if walking.any() else float("nan"),
            "facing_p95_deg": float(np.percentile(err[walking], 95)) if walking.any() else float("nan"),
            "walking_share": float(walking.mean())}


# --- cases -------------------------------------------------------------------------------------

def pose_key(m, a: int, frame: int, root: bool, joints=None) -> PoseKey:
    return PoseKey(m.rotations[a].astype(np.float64), m.translation[a].astype(np.float64), frame, joints, root)


def build_cases(corpus, clips: int, seed: int, seconds: float = SECONDS) -> list[dict]:
    """Pose cases from real clips (6 s windows of test clips); loops on periodic prompts; paths on walking ones."""
    frames = int(round(seconds * FPS))
    rng = np.random.default_rng(seed)
    pool = [i for i in corpus.indices("test") if corpus.clips[i].frames >= frames + 1 and corpus.clips[i].captions
            and not corpus.clips[i].mirrored]
    chosen = rng.choice(pool, size=min(clips, len(pool)), replace=False)
    cases = []
    for i in chosen:
        clip, m = corpus.clips[int(i)], corpus.motion(int(i))
        a = int(rng.integers(0, m.num_frames - frames + 1))
        prompt = clip.captions[0].text
        last, mid = frames - 1, frames // 2
        cases += [
            {"kind": "start", "prompt": prompt, "c": Constraints(start_pose=pose_key(m, a, 0, True))},
            {"kind": "end", "prompt": prompt, "c": Constraints(end_pose=pose_key(m, a + last, last, True))},
            {"kind": "inbetween", "prompt": prompt, "c": Constraints(
                start_pose=pose_key(m, a, 0, True), end_pose=pose_key(m, a + last, last, True),
                keyframes=[pose_key(m, a + mid, mid, False)])},
            {"kind": "arms_keyframe", "prompt": prompt, "c": Constraints(
                keyframes=[pose_key(m, a + mid, mid, False, tuple(range(16, 22)))])},
        ]
    cases += [{"kind": "loop", "prompt": prompt, "c": Constraints(loop=True)} for prompt in LOOP_PROMPTS]
    for k, (name, points) in enumerate(PATHS.items()):
        for prompt in WALK_PROMPTS:
            cases.append({"kind": "path", "prompt": prompt, "path": name,
                          "c": Constraints(root_path=RootPath(np.array(points, dtype=np.float64)))})
            cases.append({"kind": "path_speed", "prompt": prompt, "path": name,
                          "c": Constraints(root_path=RootPath(np.array(points, dtype=np.float64), speed=1.2))})
    return [{**case, "seconds": seconds} for case in cases]


def keep_cases(gen: MotionGenerator, seed: int, seconds: float = SECONDS) -> list[dict]:
    """Keep half a body of a generated walk; the other half follows a new prompt."""
    [(r, t)] = gen.generate([GenerationRequest("a person walks forward", n=1, seconds=seconds, seed=seed)])
    out = []
    for half, joints, prompt in (("lower", LOWER_BODY, "a person walks and waves with the right hand"),
                                 ("upper", UPPER_BODY, "a person runs forward")):
        out.append({"kind": f"keep_{half}", "prompt": prompt,
                    "c": Constraints(keep_joints=KeepJoints(joints, r[0].astype(np.float64), t[0].astype(np.float64)))})
    return [{**case, "seconds": seconds} for case in out]


# --- running --------------------------------------------------------------------------------

def run_case(gen: MotionGenerator, case: dict, stats: dict, seed: int, n: int, free: dict) -> dict:
    """One request with the case's constraints; `free` holds the same request's motions without them."""
    c = case["c"]
    [(rot, trans)] = gen.generate([GenerationRequest(case["prompt"], n=n, seconds=case["seconds"], seed=seed,
                                                     constraints=c)])
    plan = gen.last_plan
    out: dict = {"raw_cm": [], "err_cm": [], "join_speed": [], "join_acc": [], "free_speed": [], "free_acc": [],
                 "loop": [], "free_loop": [], "path": [], "keep": []}
    for k in range(n):
        q, p = rot[k].astype(np.float64), trans[k].astype(np.float64)
        raw_q, raw_p = (a.astype(np.float64) for a in plan.unfixed[k])
        free_q, free_p = (np.asarray(a, dtype=np.float64) for a in free["motions"][k])
        for _, key in c.poses():
            out["raw_cm"].append(100 * pose_error(raw_q, raw_p, key, world=False))   # the body's pose only
            out["err_cm"].append(100 * pose_error(q, p, key))
            for prefix, (mq, mp) in (("join", (q, p)), ("free", (free_q, free_p))):
                s, a = join_speed(mq, mp, key.frame)
                out[f"{prefix}_speed"].append(s)
                out[f"{prefix}_acc"].append(a)
        if c.loop:
            out["loop"].append(loop_seam(q, p))
            out["free_loop"].append(loop_seam(free_q, free_p))
        if c.root_path is not None:
            out["path"].append(path_errors(q, p, c.root_path))
        if c.keep_joints is not None:
            kept = list(c.keep_joints.joints)
            diff = np.abs(rot[k][:, kept] - c.keep_joints.rotations[:, kept].astype(np.float32)).max()
            if 0 in kept:
                diff = max(diff, np.abs(trans[k] - c.keep_joints.translation.astype(np.float32)).max())
            out["keep"].append(float(diff))
    out["motions"] = [(rot[k], trans[k]) for k in range(n)]
    return out


def summarise(results: list[dict], stats: dict) -> dict:
    def mean(key):
        vals = [v for r in results for v in r[key]]
        return float(np.mean(vals)) if vals else None
    row: dict = {}
    if any(r["raw_cm"] for r in results):
        def values(key):
            return np.array([v for r in results for v in r[key]])
        speeds, accs, free_speeds, free_accs = values("join_speed"), values("join_acc"), values("free_speed"), \
            values("free_acc")
        row.update(raw_cm=mean("raw_cm"), err_cm=float(values("err_cm").max()),
                   join_speed=float(np.median(speeds)), join_speed_max=float(np.max(speeds)),
                   join_speed_ok=float(np.mean(speeds <= stats["speed_p95"])),
                   free_speed_ok=float(np.mean(free_speeds <= stats["speed_p95"])),
                   join_acc=float(np.median(accs)), join_acc_ok=float(np.mean(accs <= stats["acc_p95"])),
                   free_acc=float(np.median(free_accs)), free_acc_ok=float(np.mean(free_accs <= stats["acc_p95"])))
    loops = [v for r in results for v in r["loop"]]
    if loops:
        for key in ("seam_step", "seam_excess", "seam_vjump", "root_vjump"):
            row[key] = float(np.median([v[key] for v in loops]))
        free_loops = [v for r in results for v in r["free_loop"]]
        row["free_seam_step"] = float(np.median([v["seam_step"] for v in free_loops]))
        row["free_seam_vjump"] = float(np.median([v["seam_vjump"] for v in free_loops]))
        row["seam_ok"] = float(np.mean([v["seam_step"] <= stats["step_median"] for v in loops]))
        row["seam_excess_ok"] = float(np.mean([v["seam_excess"] <= stats["step_median"] for v in loops]))
        row["seam_v_ok"] = float(np.mean([v["seam_vjump"] <= stats["vstep_median"] for v in loops]))
        row["root_v_ok"] = float(np.mean([v["root_vjump"] <= stats["root_vstep_median"] for v in loops]))
    paths = [v for r in results for v in r["path"]]
    if paths:
        row["distance_cm"] = float(np.mean([v["distance_cm"] for v in paths]))
        row["facing_deg"] = float(np.nanmean([v["facing_deg"] for v in paths]))
        row["facing_p95_deg"] = float(np.nanmean([v["facing_p95_deg"] for v in paths]))
    keeps = [v for r in results for v in r["keep"]]
    if keeps:
        row["keep_max_diff"] = float(max(keeps))
    return row


def text_scores(evaluator, cases: list[dict], results: list[dict], baseline: list[dict]) -> tuple[float, float]:
    """Mean evaluator cosine between each candidate and its prompt, with and without the constraints."""
    texts = evaluator.embed_texts([c["prompt"] for c in cases])
    with_c = [float(np.mean(evaluator.embed_motions(r["motions"]) @ texts[i])) for i, r in enumerate(results)]
    without = [float(np.mean(evaluator.embed_motions(r["motions"]) @ texts[i])) for i, r in enumerate(baseline)]
    return float(np.mean(with_c)), float(np.mean(without))


def latency(gen: MotionGenerator, repeats: int, seed: int) -> dict:
    """4 x 10 s with each control and without: median seconds over `repeats` (after one warm-up)."""
    frames = 200
    rng = np.random.default_rng(seed)
    q = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (22, 1))
    [(src_r, src_t)] = gen.generate([GenerationRequest("a person walks forward", n=1, seconds=10, seed=seed)])
    start = PoseKey(src_r[0, 0].astype(np.float64), src_t[0, 0].astype(np.float64), 0, None, True)
    end = PoseKey(src_r[0, -1].astype(np.float64), src_t[0, -1].astype(np.float64) + [0.5, 0, 0.5], frames - 1,
                  None, True)
    mid = PoseKey(q, np.array([0.0, 0.9, 0.0]), frames // 2, tuple(range(16, 22)), False)
    controls = {
        "none": None,
        "start+end+keyframe": Constraints(start_pose=start, end_pose=end, keyframes=[mid]),
        "loop": Constraints(loop=True),
        "path": Constraints(root_path=RootPath(np.array(PATHS["arc"], dtype=np.float64))),
        "keep_lower": Constraints(keep_joints=KeepJoints(LOWER_BODY, src_r[0].astype(np.float64),
                                                         src_t[0].astype(np.float64))),
    }
    out = {}
    for name, c in controls.items():
        req = [GenerationRequest("a person walks forward", n=4, seconds=10, seed=int(rng.integers(1 << 30)),
                                 constraints=c)]
        gen.generate(req)
        times, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            gen.generate(req)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[name] = {"median_s": statistics.median(times), "min_s": min(times), "cpu_s": statistics.median(cpu)}
        log(f"latency {name}: median {out[name]['median_s']:.3f} s (min {out[name]['min_s']:.3f}, "
            f"CPU {out[name]['cpu_s']:.3f} s)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the bundled one)")
    ap.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--clips", type=int, default=8, help="test clips to take poses from")
    ap.add_argument("--n", type=int, default=4, help="candidates per request")
    ap.add_argument("--seconds", type=float, default=SECONDS, help="length of each case (default 6)")
    ap.add_argument("--window", type=int, default=None, help="frames a pose correction fades over (default: "
                    "constraint_fixup.WINDOW)")
    ap.add_argument("--loop-window", type=int, default=None, help="frames a loop eases over (default: "
                    "constraint_fixup.LOOP_WINDOW)")
    ap.add_argument("--methods", nargs="+", default=None, help="steering methods to compare (default: the family's)")
    ap.add_argument("--kinds", nargs="+", default=None, help="only these case kinds (start end inbetween "
                    "arms_keyframe loop path path_speed keep_lower keep_upper; default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="latency repeats")
    ap.add_argument("--latency-only", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-text", action="store_true", help="skip the evaluator's text scores")
    ap.add_argument("--pictures", metavar="DIR", help="also draw one case per control: DIR/controls_<kind>.png "
                    "(the first method's first candidate, with and without the constraints)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from server.model import constraint_fixup
    constraint_fixup.WINDOW = args.window or constraint_fixup.WINDOW
    constraint_fixup.LOOP_WINDOW = args.loop_window or constraint_fixup.LOOP_WINDOW

    from server.data.corpus import Corpus

    gen = MotionGenerator.load(args.checkpoint or default_checkpoint_dir(), device="cpu")
    gen.warm_up()
    methods = args.methods or [DEFAULT_METHOD[gen.family]]
    bad = [m for m in methods if m not in METHODS[gen.family]]
    if bad:
        print(f"controls.py: methods {bad} do not apply to {gen.family}; choose from {METHODS[gen.family]}",
              file=sys.stderr)
        return 2
    report: dict = {"checkpoint": gen.model_id, "family": gen.family, "threads": args.threads,
                    "window": constraint_fixup.WINDOW, "loop_window": constraint_fixup.LOOP_WINDOW,
                    "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    if not args.latency_only:
        corpus = Corpus(args.corpus)
        stats = corpus_statistics([corpus.motion(i) for i in corpus.indices("test")])
        report["corpus"] = stats
        log("corpus:", json.dumps({k: round(v, 4) for k, v in stats.items()}))
        cases = build_cases(corpus, args.clips, args.seed, args.seconds) + keep_cases(gen, args.seed, args.seconds)
        if args.kinds:
            cases = [c for c in cases if c["kind"] in args.kinds]
        evaluator = None
        if not args.no_text:
            from server.eval.evaluator import Evaluator
            evaluator = Evaluator.load(device="cpu")
        gen.constraint_method = None
        baseline = [_plain(gen, case, args.seed + 1, args.n) for case in cases]
        report["methods"] = {}
        for method in methods:
            gen.constraint_method = method
            results = [run_case(gen, case, stats, args.seed + 1, args.n, free) for case, free in zip(cases, baseline)]
            rows = {}
            for kind in dict.fromkeys(c["kind"] for c in cases):
                picked = [r for r, c in zip(results, cases) if c["kind"] == kind]
                rows[kind] = summarise(picked, stats)
                if evaluator is not None:
                    sub = [c for c in cases if c["kind"] == kind]
                    base = [b for b, c in zip(baseline, cases) if c["kind"] == kind]
                    rows[kind]["text_cos"], rows[kind]["text_cos_free"] = text_scores(evaluator, sub, picked, base)
                log(f"{method:9s} {kind:14s} " + " ".join(f"{k}={v:.3g}" for k, v in rows[kind].items()
                                                          if isinstance(v, float)))
            report["methods"][method] = rows
            if args.pictures and method == methods[0]:
                draw(Path(args.pictures), cases, results, baseline)
        gen.constraint_method = None
    if not args.no_latency:
        report["latency_4x10s"] = latency(gen, args.repeats, args.seed)
        report["load_average_after"] = os.getloadavg()[0]
    print_table(report)
    print(json.dumps(report))
    return 0


def draw(folder: Path, cases: list[dict], results: list[dict], baseline: list[dict]) -> None:
    """One strip per control kind: candidate 0 with its constraints above the same seed without them."""
    from server.eval.render import render_strip
    from shared.motion import Motion

    folder.mkdir(parents=True, exist_ok=True)
    seen = set()
    for case, result, free in zip(cases, results, baseline):
        if case["kind"] in seen:
            continue
        seen.add(case["kind"])
        rows = [Motion(*result["motions"][0], FPS), Motion(*free["motions"][0], FPS)]
        titles = [f"{case['kind']}: \"{case['prompt'][:50]}\"", "the same seed without constraints"]
        log("wrote", render_strip(rows, folder / f"controls_{case['kind']}.png", frames=8, titles=titles))


def _plain(gen: MotionGenerator, case: dict, seed: int, n: int) -> dict:
    [(rot, trans)] = gen.generate([GenerationRequest(case["prompt"], n=n, seconds=case["seconds"], seed=seed)])
    return {"motions": [(rot[k], trans[k]) for k in range(n)]}


def print_table(report: dict) -> None:
    for method, rows in report.get("methods", {}).items():
        print(f"\n{report['checkpoint']} ({report['family']}), method {method}:")
        keys = sorted({k for r in rows.values() for k in r})
        for kind, row in rows.items():
            print(f"  {kind:14s} " + "  ".join(f"{k} {row[k]:.3g}" for k in keys if k in row and row[k] is not None))
    if "corpus" in report:
        print("corpus:", "  ".join(f"{k} {v:.3g}" for k, v in report["corpus"].items()))
    if "latency_4x10s" in report:
        print(f"latency, 4 x 10 s, {report['threads']} thread(s), load average {report['load_average']:.2f} "
              f"before / {report.get('load_average_after', float('nan')):.2f} after, {report['cpus']} CPUs:")
        for name, row in report["latency_4x10s"].items():
            print(f"  {name:20s} median {row['median_s']:.3f} s  min {row['min_s']:.3f} s  CPU {row['cpu_s']:.3f} s")


if __name__ == "__main__":
    sys.exit(main())
