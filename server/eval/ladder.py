"""The separation test (DESIGN.md section 6): a ladder of generators whose order is known, scored by the suite and the evaluator.

    python server/evaluate.py --ladder

Rungs, best first: Real; the default model; the default with 1 sampling step; the default without
guidance (guidance 1: the conditional model alone); the default ignoring the text (guidance 0: the
unconditional model); a weaker model (a small MLD trained briefly on a CPU, `--weak`); Real with
noise (smooth random drift of every joint and of the path, `NOISE_RAD`, `NOISE_M`). Each rung gets the prompt-following suite's pass rate (`suite.py`: generators on the suite's
prompts, seeds x candidates; the Real rungs on the corpus clips whose captions name a category;
all compared as the mean over the categories with >= 10 real clips, 95% bootstrap interval
stratified by category) and the evaluator's retrieval metrics on the test split
(`evaluation.py`: R-precision, hard-pool R-precision, FID, MM-Dist; mean and 95% interval over
repeats). A measure separates the ladder when Real >= default, the default's interval lies above
every weaker rung's without overlap, and Real + noise comes last. One table, one verdict per
measure, one plot (`docs/ladder.png`).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from server.eval import evaluation, suite
from shared.motion import Motion

REAL, NOISE, GENERATOR = "real", "noise", "generator"
# The weak rung: a 1.9 M-parameter MLD trained for 800 + 800 steps on this CPU (its config.json has the command),
# bundled so that the ladder reruns from a fresh clone.
WEAK_CHECKPOINT = Path(__file__).resolve().parent / "weak-mld"
# Real + noise: smooth random drift (0.5 s correlation) of every joint rotation (std, rad) and of the pelvis path (m);
# at this level poses and paths wander far enough that most clips no longer show their captions' facts. Independent
# per-frame jitter would not do: the checkers smooth it away (0.1 rad jitter still passes 95% of the real clips).
NOISE_RAD, NOISE_M = 1.0, 0.5
MEASURES = (  # (key, label, higher is better)
    ("suite", "Suite pass %", True), ("top3", "R-precision top-3", True), ("hard1", "Hard-pool top-1", True),
    ("hard3", "Hard-pool top-3", True), ("fid", "FID", False), ("mm_dist", "MM-Dist", False))


@dataclass
class Rung:
    """One generator of the ladder: the real clips, the real clips with noise, or a checkpoint at some settings."""

    name: str
    kind: str  # REAL | NOISE | GENERATOR
    checkpoint: str = ""  # folder (GENERATOR)
    steps: int | None = None  # None: the checkpoint's default
    guidance: float | None = None  # None: the checkpoint's default
    weaker: bool = True  # below the default on purpose (False for Real and the default itself)


def default_rungs(default: Path, weak: Path | None, noise_rad: float = NOISE_RAD, noise_m: float = NOISE_M
                  ) -> list[Rung]:
    rungs = [Rung("Real", REAL, weaker=False), Rung("default", GENERATOR, str(default), weaker=False),
             Rung("default, 1 sampling step", GENERATOR, str(default), steps=1),
             Rung("default, guidance 1 (no guidance)", GENERATOR, str(default), guidance=1.0),
             Rung("default, guidance 0 (text ignored)", GENERATOR, str(default), guidance=0.0)]
    if weak is not None:
        name = Path(weak).parent.name if Path(weak).name == "checkpoint" else Path(weak).name
        rungs.append(Rung(f"weak model ({name})", GENERATOR, str(weak)))
    rungs.append(Rung(evaluation.noise_name(noise_rad, noise_m, "drift"), NOISE))
    return rungs


class NoisyCorpus:
    """A corpus whose motions come back with smooth random drift of every joint rotation and the pelvis (seeded per
    clip, `evaluation.degrade(kind="drift")`): the Real + noise rung of the suite (`suite.score_real` reads
    `indices`, `clips`, `motion`)."""

    def __init__(self, corpus, noise_rad: float, noise_m: float, seed: int = 0):
        self.corpus, self.noise_rad, self.noise_m, self.seed = corpus, noise_rad, noise_m, seed
        self.clips, self.fps, self.path = corpus.clips, corpus.fps, corpus.path

    def indices(self, split: str) -> list[int]:
        return self.corpus.indices(split)

    def motion(self, i: int) -> Motion:
        m = self.corpus.motion(i)
        rng = np.random.default_rng([self.seed, int(i)])
        (r, t), = evaluation.degrade([(m.rotations, m.translation)], "drift", rng, self.noise_rad, self.noise_m)
        return Motion(r, t, m.fps)


# --- scoring -------------------------------------------------------------------------------------------

@dataclass
class RungResult:
    rung: Rung
    suite: suite.Row  # pass rate: mean over the shared categories, [low, high]
    retrieval: dict  # evaluation row: {"summary": {metric: [mean, half-width]}, "metrics": {metric: [per repeat]}}
    seconds: float
    suite_result: suite.SuiteResult | None = None  # the whole suite result (per category, per prompt)

    def interval(self, key: str) -> tuple[float, float, float]:
        """(mean, low, high) of a measure."""
        if key == "suite":
            return self.suite.rate, self.suite.low, self.suite.high
        mean, half = self.retrieval["summary"].get(key, (float("nan"), float("nan")))
        return mean, mean - half, mean + half


def _suite_real(corpus, progress, name: str = "Real") -> suite.SuiteResult:
    return suite.score_real(corpus, progress=progress, name=name)


def score_rung(rung: Rung, ctx: dict, progress: Callable | None, log: Callable) -> tuple[suite.SuiteResult, dict]:
    """The suite result and the retrieval row of one rung."""
    ev, test, texts, repeats, seed = ctx["evaluator"], ctx["test"], ctx["texts"], ctx["repeats"], ctx["seed"]
    if rung.kind == REAL:
        result = _suite_real(ctx["corpus"], progress)
        row = evaluation.evaluate_real(ev, test, repeats, seed, texts, progress)
    elif rung.kind == NOISE:
        result = _suite_real(NoisyCorpus(ctx["corpus"], ctx["noise"][0], ctx["noise"][1], seed), progress, rung.name)
        row = evaluation.evaluate_degraded(ev, test, repeats, seed, texts, progress, *ctx["noise"], kinds=("drift",))[0]
    elif rung.kind == GENERATOR:
        from server.model.inference import MotionGenerator

        gen = MotionGenerator.load(rung.checkpoint, device=ctx["device"])
        fn = suite.motion_generator_fn(gen, guidance=rung.guidance, steps=rung.steps)
        result = suite.score_suite(fn, ctx["suite"], ctx["seeds"], ctx["candidates"], name=rung.name, progress=progress)
        row = evaluation.evaluate_generator(rung.name, ev, evaluation.generator_fn(gen, 32, rung.guidance, rung.steps),
                                            test, repeats, seed, mm_repeats=0, texts=texts, progress=progress)
    else:
        raise ValueError(f"unknown rung kind {rung.kind!r}")
    row["name"] = rung.name
    return result, row


def paired_difference(default: RungResult, other: RungResult, key: str, categories: Sequence[str],
                      resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """default - other on one measure, paired: the suite per prompt (both generators answer the same prompts; mean
    over `categories` of the per-category mean difference, 95% bootstrap stratified by category), a retrieval
    metric per repeat (same captions and batches; mean +- 1.96 std / sqrt(n)). NaN when they cannot be paired."""
    if key == "suite":
        a, b = default.suite_result, other.suite_result
        if a is None or b is None or other.rung.kind != GENERATOR or set(a.passes) != set(b.passes):
            return float("nan"), float("nan"), float("nan")
        diffs = {c: [] for c in categories}
        for pid, grid in a.passes.items():
            c = a.category_of.get(pid)
            if c in diffs:
                diffs[c].append(float(np.mean(grid)) - float(np.mean(b.passes[pid])))
        arrays = [np.array(v) for v in diffs.values() if v]
        if not arrays:
            return float("nan"), float("nan"), float("nan")
        rng = np.random.default_rng(seed)
        boot = np.mean([v[rng.integers(0, len(v), (resamples, len(v)))].mean(1) for v in arrays], axis=0)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return float(np.mean([v.mean() for v in arrays])), float(lo), float(hi)
    x = np.asarray(default.retrieval.get("metrics", {}).get(key, []), dtype=np.float64)
    y = np.asarray(other.retrieval.get("metrics", {}).get(key, []), dtype=np.float64)
    if len(x) == 0 or len(x) != len(y):
        return float("nan"), float("nan"), float("nan")
    from server.eval.metrics import mean_and_interval

    m, half = mean_and_interval(x - y)
    return m, m - half, m + half


def verdicts(results: Sequence[RungResult], categories: Sequence[str] = ()) -> dict[str, dict]:
    """Per measure: does it order the ladder (Real >= default; default's interval above every weaker rung's;
    Real + noise last)? With each comparison's outcome."""
    out = {}
    default = next((r for r in results if r.rung.kind == GENERATOR and not r.rung.weaker), None)
    real = next((r for r in results if r.rung.kind == REAL), None)
    noise = next((r for r in results if r.rung.kind == NOISE), None)
    for key, _label, higher in MEASURES:
        sign = 1.0 if higher else -1.0
        if default is None or not np.isfinite(default.interval(key)[0]):
            continue
        d_mean, d_lo, d_hi = default.interval(key)
        checks, paired = {}, {}
        for r in results:
            m, lo, hi = r.interval(key)
            if r.rung.weaker and np.isfinite(m):
                checks[r.rung.name] = bool(d_lo > hi) if higher else bool(d_hi < lo)
                diff = paired_difference(default, r, key, categories)
                if np.isfinite(diff[0]):
                    paired[r.rung.name] = {"difference": diff, "clear": bool(diff[1] > 0 if higher else diff[2] < 0)}
        real_ok = real is None or not np.isfinite(real.interval(key)[0]) or \
            sign * real.interval(key)[0] >= sign * d_mean
        noise_m = noise.interval(key)[0] if noise is not None else float("nan")
        noise_last = not np.isfinite(noise_m) or all(sign * noise_m < sign * r.interval(key)[0] for r in results
                                                     if r is not noise and np.isfinite(r.interval(key)[0]))
        out[key] = {"separated": checks, "real_at_least_default": bool(real_ok), "noise_last": bool(noise_last),
                    "holds": bool(all(checks.values()) and real_ok and noise_last), "paired": paired}
    return out


# --- output ------------------------------------------------------------------------------------------------

def _cell(mean: float, lo: float, hi: float, pct: bool = False) -> str:
    if not np.isfinite(mean):
        return "-"
    if pct:
        return f"{100 * mean:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{mean:.3f} ± {(hi - lo) / 2:.3f}"


def markdown_table(results: Sequence[RungResult]) -> str:
    head = ["Rung"] + [f"{label} {'↑' if hi else '↓'}" for _k, label, hi in MEASURES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [_cell(*r.interval(k), pct=(k == "suite")) for k, _l, _h in MEASURES]
        lines.append("| " + " | ".join([r.rung.name] + cells) + " |")
    return "\n".join(lines)


def paired_table(results: Sequence[RungResult], v: dict[str, dict]) -> str:
    """Default minus each weaker rung, paired (same prompts / same captions and batches), [95% interval]."""
    keys = [k for k, _l, _h in MEASURES if k in v]
    labels = {k: label for k, label, _ in MEASURES}
    higher = {k: hi for k, _l, hi in MEASURES}
    head = ["default minus"] + [f"{labels[k]} {'↑' if hi else '↓'}" for k, _l, hi in MEASURES if k in v]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if not r.rung.weaker:
            continue
        cells = []
        for k in keys:
            d = v[k]["paired"].get(r.rung.name)
            if d is None:
                cells.append("-")
            else:
                m, lo, hi = d["difference"]
                scale, digits = (100.0, 1) if k == "suite" else (1.0, 3)
                better = hi < 0 if higher[k] else lo > 0  # the rung is clearly better than the default
                note = "" if d["clear"] else (" (rung better)" if better else " (n.s.)")
                cells.append(f"{scale * m:+.{digits}f} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]{note}")
        lines.append("| " + " | ".join([r.rung.name] + cells) + " |")
    return "\n".join(lines)


def verdict_lines(v: dict[str, dict]) -> list[str]:
    labels = {k: label for k, label, _ in MEASURES}
    lines = []
    for key, res in v.items():
        bad = [name for name, ok in res["separated"].items() if not ok]
        parts = ["**holds**" if res["holds"] else "does not hold"]
        if bad:
            parts.append("overlaps the default: " + ", ".join(f'"{name}"' for name in bad))
        if not res["real_at_least_default"]:
            parts.append("default above Real")
        if not res["noise_last"]:
            parts.append("Real + noise not last")
        lines.append(f"- {labels[key]}: " + "; ".join(parts))
    return lines


def plot(results: Sequence[RungResult], path: Path, keys: Sequence[str] = ("suite", "top3", "hard1")) -> Path:
    """Horizontal bars with 95% intervals, one panel per measure, rungs top (best) to bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {k: label for k, label, _ in MEASURES}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 0.5 * len(results) + 1.4), sharey=True)
    axes = np.atleast_1d(axes)
    y = np.arange(len(results))[::-1]
    colors = {REAL: "#4c72b0", NOISE: "#c44e52", GENERATOR: "#55a868"}
    for ax, key in zip(axes, keys):
        scale = 100.0 if key == "suite" else 1.0
        for yi, r in zip(y, results):
            m, lo, hi = (v * scale for v in r.interval(key))
            if np.isfinite(m):
                c = colors[r.rung.kind] if r.rung.weaker or r.rung.kind == REAL else "#222222"
                ax.barh(yi, m, color=c, alpha=0.55)
                ax.errorbar(m, yi, xerr=[[m - lo], [hi - m]], fmt="o", color=c, capsize=3)
        ax.set_title("Suite pass rate (%)" if key == "suite" else labels[key])
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([r.rung.name for r in results])
    fig.suptitle("Separation ladder: mean and 95% interval per rung")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(rungs: Sequence[Rung], corpus_path: Path, evaluator_path: Path, suite_path: Path = suite.DEFAULT_SUITE,
        seeds: Sequence[int] = (0, 1, 2), candidates: int = 4, repeats: int = 5, seed: int = 0,
        device: str | None = None, text_cache=None, noise: tuple[float, float] = (NOISE_RAD, NOISE_M),
        out: Path = Path("runs/eval"), plot_path: Path | None = None, progress: Callable | None = None,
        command: str = "", log: Callable = print, r_batch: int = 32, pool_size: int = 32) -> dict:
    """Score every rung, print the ladder table and the verdicts, write `<out>/ladder.{md,json}` and the plot.
    Raises CorpusError, SuiteError, CheckpointError, FileNotFoundError on bad input."""
    from server.data.corpus import Corpus
    from server.eval.evaluator import Evaluator
    from server.model.text_embeddings import open_cache

    t0 = time.time()
    corpus = Corpus(corpus_path)
    evaluator = Evaluator.load(evaluator_path, device)
    test = evaluation.load_test_set(corpus, "test", seed=seed, r_batch=r_batch, pool_size=pool_size)
    texts = evaluation.text_embedder(evaluator, test, cache=open_cache(text_cache, evaluator.cfg.text_encoder))
    ctx = {"corpus": corpus, "evaluator": evaluator, "test": test, "texts": texts, "repeats": repeats, "seed": seed,
           "suite": suite.load_suite(suite_path), "seeds": list(seeds), "candidates": candidates, "device": device,
           "noise": noise}
    raw = []
    for rung in rungs:
        t1 = time.time()
        result, row = score_rung(rung, ctx, progress, log)
        raw.append((rung, result, row, round(time.time() - t1, 1)))
        log(f"{rung.name}: {raw[-1][3]} s")
    real = next((res for rung, res, _, _ in raw if rung.kind == REAL), None)
    gens = [res for rung, res, _, _ in raw if rung.kind == GENERATOR]
    shared = [c for c in ctx["suite"].categories
              if real is not None and real.row(c) is not None and real.row(c).units >= suite.MIN_REAL_CLIPS]
    which = f"those with >= {suite.MIN_REAL_CLIPS} real clips"
    if not shared:  # no category has enough real clips (a toy corpus): generators over every category, Real "-"
        shared, which = list(ctx["suite"].categories), f"all: none has {suite.MIN_REAL_CLIPS} real clips"
    results = [RungResult(rung, suite.category_mean(res, shared), row, sec, res) for rung, res, row, sec in raw]
    v = verdicts(results, shared)
    table = markdown_table(results)
    note = (f"Suite: {ctx['suite'].version}, seeds {list(seeds)} x {candidates} candidates for generators; pass rate = "
            f"mean over {len(shared)} categories ({which}: {', '.join(shared)}), "
            f"95% bootstrap interval stratified by category; Real rungs: corpus clips whose captions name the category. "
            f"Retrieval: {len(test)} test clips, evaluator {evaluator_path}, {repeats} repeats, mean ± 95% interval; "
            f"hard pools of {test.pool_size} clips in the families {test.pool_families()}. "
            f"Generators: {[g.name for g in gens]} at their default settings except as named.")
    text = "\n\n".join([table, "Separation (default's 95% interval clear of every weaker rung's; Real >= default; "
                               "Real + noise last):\n" + "\n".join(verdict_lines(v)),
                        "Paired differences, default minus rung (n.s.: the 95% interval reaches 0; rung better: the interval lies on the wrong side):",
                        paired_table(results, v), note, "Suite pass rates per category (% [95% interval]):",
                        suite.markdown_table([res for _, res, _, _ in raw]),
                        f"{round(time.time() - t0)} s in all" + (f"; command: {command}" if command else "")])
    log(text)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ladder.md").write_text(text + "\n")
    if plot_path is not None:
        log(f"plot: {plot(results, Path(plot_path))}")
    dump = {"rungs": [{"rung": asdict(r.rung), "suite": asdict(r.suite), "retrieval": r.retrieval,
                       "seconds": r.seconds, "suite_result": r.suite_result.to_dict()} for r in results],
            "suite_categories": shared, "verdicts": v, "corpus_fingerprint": corpus.fingerprint,
            "evaluator": str(evaluator_path), "evaluator_meta": evaluator.meta, "noise": list(noise),
            "command": command, "seconds": round(time.time() - t0, 1)}
    (out / "ladder.json").write_text(json.dumps(dump, indent=1, default=float))
    log(f"wrote {out / 'ladder.md'} and {out / 'ladder.json'}")
    return dump
