"""The prompt-following suite (white box, after KPG and T2MBench): load prompts, generate, check, score, print.

A suite is a versioned JSON file (`prompt_suite_v1.json`): prompts, each with a category, a
seconds value, a `wording` tag ("train": train-half wording of `server.data.paraphrase`;
"heldout": only held-out-half words) and one or more steps checked on the generated motion by
`server.eval.checkers` (the evaluation's own thresholds are documented there).

    suite = load_suite()                                              # the bundled v1 file
    gen = motion_generator_fn(MotionGenerator.load(default_checkpoint_dir()))
    result = score_suite(gen, suite, seeds=(0, 1, 2), n=4)            # one ladder rung: one call
    real = score_real(Corpus("data/corpus"))                          # the Real rung / checker check
    print(markdown_table([real, result]))

A generator is `generator_fn(prompts, seconds, seed, n) -> [(rotations (n, T_i, 22, 4), translation
(n, T_i, 3)) per prompt]` (wire format, 20 fps). Pass rates: per prompt the mean over seeds x
candidates; per category, overall and per wording the mean over prompts (each prompt weighs the
same), with a 95% percentile bootstrap interval over prompts (2,000 resamples: candidates of one
prompt are not independent). Real clips (`score_real`): every corpus clip whose source captions
name a category (`checkers.CAPTION_CATEGORIES`) is checked against it; 95% Wilson interval over
clips. The physical metrics (`server.eval.physics`) are measured on the same motions.
"""
from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from server.eval import physics
from server.eval.checkers import (
    BY_LABEL,
    CAPTION_CATEGORIES,
    CHECKER_NOTES,
    CHECKS,
    DEFAULT_SUITE_THRESHOLDS,
    EVAL_OVERRIDES,
    EVAL_THRESHOLDS,
    SIDED,
    SOURCE_CAPTIONS,
    Sample,
    SuiteThresholds,
    caption_labels,
    check_prompt,
)
from shared.motion import forward_kinematics
from shared.skeleton import FPS

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_SUITE = SUITE_DIR / "prompt_suite_v1.json"
WORDINGS = ("train", "heldout")
GeneratorFn = Callable[[list[str], list[float], int, int], list[tuple[np.ndarray, np.ndarray]]]
GATE = 0.9  # real clips must pass their category's checker at least this often
MIN_REAL_CLIPS = 10  # categories with fewer real clips are left out of the Real-comparable mean


class SuiteError(ValueError):
    """A suite file or a prompt in it is malformed; the message names the prompt and the field."""


# --- the suite file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    category: str
    seconds: float
    wording: str
    steps: tuple[dict, ...]


@dataclass
class Suite:
    version: str
    prompts: list[Prompt]
    path: str = ""

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(p.category for p in self.prompts))


def _step(raw, where: str) -> dict:
    if not isinstance(raw, dict) or raw.get("check") not in CHECKS:
        raise SuiteError(f"{where}: step {raw!r} must be an object whose 'check' is one of {CHECKS}")
    unknown = set(raw) - {"check", "side", "count"}
    if unknown:
        raise SuiteError(f"{where}: unknown step fields {sorted(unknown)}")
    side = raw.get("side")
    if side not in SIDED.get(raw["check"], (None,)):
        raise SuiteError(f"{where}: check {raw['check']!r} takes side in {SIDED.get(raw['check'], (None,))}, got {side!r}")
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SuiteError(f"{where}: count must be an integer >= 1, got {count!r}")
    return dict(raw)


def load_suite(path: str | Path = DEFAULT_SUITE) -> Suite:
    """Read and validate a suite file: {"version", "prompts": [{"id", "text", "category", "seconds", "wording", "steps"}]}."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("prompts"), list) or not raw.get("version"):
        raise SuiteError(f"{path}: expected an object with 'version' and a 'prompts' list")
    prompts, ids = [], set()
    for i, p in enumerate(raw["prompts"]):
        where = f"{path.name}: prompt {i} ({p.get('id', '?') if isinstance(p, dict) else '?'})"
        if not isinstance(p, dict) or set(p) != {"id", "text", "category", "seconds", "wording", "steps"}:
            raise SuiteError(f"{where}: needs exactly the fields id, text, category, seconds, wording, steps")
        if p["id"] in ids:
            raise SuiteError(f"{where}: duplicate id")
        ids.add(p["id"])
        if p["wording"] not in WORDINGS:
            raise SuiteError(f"{where}: wording must be one of {WORDINGS}, got {p['wording']!r}")
        if not isinstance(p["seconds"], (int, float)) or not 1.0 <= p["seconds"] <= 10.0:
            raise SuiteError(f"{where}: seconds must be a number in [1, 10], got {p['seconds']!r}")
        if not isinstance(p["text"], str) or not p["text"].strip():
            raise SuiteError(f"{where}: empty text")
        if not isinstance(p["steps"], list) or not p["steps"]:
            raise SuiteError(f"{where}: steps must be a non-empty list")
        prompts.append(Prompt(p["id"], p["text"].strip(), p["category"], float(p["seconds"]), p["wording"],
                              tuple(_step(s, where) for s in p["steps"])))
    if not prompts:
        raise SuiteError(f"{path}: no prompts")
    return Suite(str(raw["version"]), prompts, str(path))


# --- generators ---------------------------------------------------------------------------------


def prompt_seed(seed: int, text: str) -> int:
    """The sampling seed of one prompt in one suite seed: independent of batching and prompt order."""
    return (int(seed) * 1_000_003 + zlib.crc32(text.encode("utf-8"))) % (2 ** 31 - 1)


def motion_generator_fn(generator, batch_size: int = 32, guidance: float | None = None,
                        steps: int | None = None) -> GeneratorFn:
    """Adapt `server.model.inference.MotionGenerator` to `GeneratorFn` (`batch_size` prompts per call)."""
    from server.model.inference import GenerationRequest

    def generate(prompts: list[str], seconds: list[float], seed: int, n: int):
        out = []
        for s in range(0, len(prompts), batch_size):
            reqs = [GenerationRequest(prompt=p, n=n, seconds=min(float(sec), generator.max_seconds),
                                      seed=prompt_seed(seed, p), guidance=guidance, steps=steps)
                    for p, sec in zip(prompts[s:s + batch_size], seconds[s:s + batch_size])]
            out += [(np.asarray(r), np.asarray(t)) for r, t in generator.generate(reqs)]
        return out

    return generate


# --- scoring ----------------------------------------------------------------------------------------


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of k successes in n trials."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(mid - half, 0.0)), float(min(mid + half, 1.0))


@dataclass
class Row:
    """One line of a suite table: a pass rate with its 95% interval over `units` prompts (or clips)."""

    name: str
    units: int
    samples: int
    rate: float
    low: float
    high: float


@dataclass
class SuiteResult:
    """Scores of one generator (or the Real clips) on a suite."""

    name: str
    suite_version: str
    interval: str  # how the intervals were made
    categories: list[Row]
    overall: Row
    wordings: list[Row]
    physics: dict[str, list[float]]
    passes: dict[str, list[list[bool]]] = field(default_factory=dict)  # prompt id (or label|clip id) -> [seed][candidate]
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    near_miss: list[Row] = field(default_factory=list)  # Real only: clips of a near-miss label passing the checker
    category_of: dict[str, str] = field(default_factory=dict)  # key of `passes` -> category
    real: bool = False  # the Real rung: rows come from captioned corpus clips, not from the suite's prompts

    def row(self, name: str) -> Row | None:
        return next((r for r in self.categories + [self.overall] + self.wordings if r.name == name), None)

    def to_dict(self) -> dict:
        return asdict(self)


def _prompt_rows(suite: Suite, rate: dict[str, float], counts: dict[str, int], seed: int) -> tuple[list[Row], Row, list[Row]]:
    def row(name: str, prompts: list[Prompt]) -> Row:
        v = np.array([rate[p.id] for p in prompts])
        m, lo, hi = physics.bootstrap_interval(v, seed=seed)
        return Row(name, len(prompts), sum(counts[p.id] for p in prompts), m, lo, hi)

    cats = [row(c, [p for p in suite.prompts if p.category == c]) for c in suite.categories]
    words = [row(f"{w} wording", [p for p in suite.prompts if p.wording == w]) for w in WORDINGS
             if any(p.wording == w for p in suite.prompts)]
    return cats, row("overall", suite.prompts), words


def _jumps(sample: Sample) -> np.ndarray:
    """(T,) frames of the sample's jumps and hops (widened by the landing window): airborne there is no floating."""
    fps = sample.signals.fps
    return physics.flights_to_mask([(f.start, f.end) for f in sample.facts.of_kind("jump", "hop")], sample.frames,
                                   int(round(EVAL_THRESHOLDS.landing_window_s * fps)))


def score_suite(generator_fn: GeneratorFn, suite: Suite | None = None, seeds: Sequence[int] = (0, 1, 2), n: int = 4,
                name: str = "generator", fps: float = FPS, th: SuiteThresholds = DEFAULT_SUITE_THRESHOLDS,
                batch: int = 64, progress: Callable | None = None) -> SuiteResult:
    """Generate every prompt of `suite` for each seed (n candidates each), check and score them, and measure
    the physical metrics of the same motions (intervals: bootstrap over prompts)."""
    suite = suite or load_suite()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 or not len(seeds):
        raise SuiteError(f"need at least one seed and n >= 1 candidates, got seeds {list(seeds)} and n {n!r}")
    t0 = time.time()
    passes: dict[str, list[list[bool]]] = {p.id: [] for p in suite.prompts}
    phys: list[dict[str, float]] = []
    groups: list[int] = []
    index = {p.id: i for i, p in enumerate(suite.prompts)}
    chunks = [(seed, suite.prompts[i:i + batch]) for seed in seeds for i in range(0, len(suite.prompts), batch)]
    it = progress(chunks, desc=name) if progress else chunks
    for seed, chunk in it:
        motions = generator_fn([p.text for p in chunk], [p.seconds for p in chunk], int(seed), n)
        if len(motions) != len(chunk):
            raise SuiteError(f"generator returned {len(motions)} results for {len(chunk)} prompts")
        for prompt, (rot, trans) in zip(chunk, motions):
            pos = forward_kinematics(np.asarray(rot), np.asarray(trans))  # (n, T, 22, 3)
            row = []
            for k in range(pos.shape[0]):
                sample = Sample.of(pos[k], fps)
                row.append(bool(check_prompt(sample, prompt.steps, th)))
                phys.append(physics.clip_physics(pos[k], fps, _jumps(sample)))
                groups.append(index[prompt.id])
            passes[prompt.id].append(row)
    rate = {pid: float(np.mean(v)) for pid, v in passes.items()}
    counts = {pid: int(np.size(v)) for pid, v in passes.items()}
    cats, overall, words = _prompt_rows(suite, rate, counts, seed=0)
    return SuiteResult(name, suite.version, "95% percentile bootstrap over prompts (2,000 resamples)", cats, overall,
                       words, physics.summarize(phys, groups), passes, round(time.time() - t0, 1),
                       {"seeds": list(map(int, seeds)), "n": int(n), "prompts": len(suite.prompts)},
                       category_of={p.id: p.category for p in suite.prompts})


# --- real clips: the Real rung, and the check of the checkers ------------------------------------


def score_real(corpus, splits: Sequence[str] = ("train", "val", "test"), physics_split: str = "test",
               th: SuiteThresholds = DEFAULT_SUITE_THRESHOLDS, progress: Callable | None = None,
               name: str = "Real") -> SuiteResult:
    """The Real rung and the checkers' check: every clip of `splits` whose source captions name a label of
    `CAPTION_CATEGORIES` is checked with that label's steps (rows per category, 95% Wilson intervals over
    clips); clips of the label's near misses that do not name it must fail (the `near_miss` rows give how many
    pass). Physical metrics over the clips of `physics_split`."""
    t0 = time.time()
    hits: dict[str, list[tuple[str, bool]]] = {c.label: [] for c in CAPTION_CATEGORIES}
    misses: dict[str, list[bool]] = {c.label: [] for c in CAPTION_CATEGORIES}
    phys = []
    idx = [i for s in dict.fromkeys(list(splits) + [physics_split]) for i in corpus.indices(s)]
    for i in (progress(idx, desc=name) if progress else idx):
        clip = corpus.clips[i]
        labels = caption_labels(c.text for c in clip.captions if c.source in SOURCE_CAPTIONS) \
            if clip.split in splits else []
        if not labels and clip.split != physics_split:
            continue
        m = corpus.motion(i)
        pos = m.positions()
        sample = Sample.of(pos, m.fps)
        for c in CAPTION_CATEGORIES:
            if c.label in labels:
                hits[c.label].append((clip.id, bool(check_prompt(sample, c.steps, th))))
            elif any(x in labels for x in c.near_miss):
                misses[c.label].append(bool(check_prompt(sample, c.steps, th)))
        if clip.split == physics_split:
            phys.append(physics.clip_physics(pos, m.fps, _jumps(sample)))

    def row(name_: str, oks: list[bool]) -> Row:
        lo, hi = wilson(sum(oks), len(oks))
        return Row(name_, len(oks), len(oks), float(np.mean(oks)) if oks else float("nan"), lo, hi)

    cats = list(dict.fromkeys(c.category for c in CAPTION_CATEGORIES))
    of = lambda table, cat: [ok for c in CAPTION_CATEGORIES if c.category == cat for ok in table[c.label]]
    rows = [row(cat, [ok for _, ok in of(hits, cat)]) for cat in cats]
    near = [row(cat, of(misses, cat)) for cat in cats]
    overall = row("overall", [ok for h in hits.values() for _, ok in h])
    passes = {f"{label}|{cid}": [[ok]] for label, h in hits.items() for cid, ok in h}
    return SuiteResult(name, "captions", "95% Wilson interval over clips", rows, overall, [], physics.summarize(phys),
                       passes, round(time.time() - t0, 1), {"splits": list(splits), "physics_split": physics_split,
                                                            "physics_clips": len(phys)}, near,
                       {key: BY_LABEL[key.split("|", 1)[0]].category for key in passes}, real=True)


def category_mean(result: SuiteResult, categories: Sequence[str], name: str = "mean over categories",
                  resamples: int = 2000, seed: int = 0) -> Row:
    """Unweighted mean of the per-category pass rates over `categories`, comparable between generators and
    Real; 95% interval by a bootstrap stratified by category (prompts, or clips, resampled within each)."""
    rates = {c: [] for c in categories}
    for key, grid in result.passes.items():
        c = result.category_of.get(key)
        if c in rates:
            rates[c].append(float(np.mean(grid)))
    rates = {c: np.array(v) for c, v in rates.items() if len(v)}
    if not rates:
        return Row(name, 0, 0, float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boot = np.mean([v[rng.integers(0, len(v), (resamples, len(v)))].mean(1) for v in rates.values()], axis=0)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Row(name, sum(len(v) for v in rates.values()), sum(len(v) for v in rates.values()),
               float(np.mean([v.mean() for v in rates.values()])), float(lo), float(hi))


# --- tables ---------------------------------------------------------------------------------------------


def _cell(r: Row | None) -> str:
    if r is None or r.units == 0 or not np.isfinite(r.rate):
        return "-"
    return f"{100 * r.rate:.1f} [{100 * r.low:.1f}, {100 * r.high:.1f}]"


def markdown_table(results: Sequence[SuiteResult]) -> str:
    """Pass rates (%, [95% interval]) per category, overall and per wording, one column per result; a Real
    result's rows line up by category (its own extra rows, e.g. waves with both hands, come last)."""
    gens = [r for r in results if not r.real]
    order = list(dict.fromkeys([x.name for r in gens for x in r.categories]
                               + [x.name for r in results for x in r.categories if x.units]))
    tail = ["overall"] + [f"{w} wording" for w in WORDINGS if any(r.row(f"{w} wording") for r in results)]
    units = {n: next((str(r.row(n).units) for r in gens if r.row(n)), "") for n in order + tail}
    head = ["Category", "Prompts"] + [f"{r.name} pass % ↑" for r in results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in order + tail:
        label = f"**{n}**" if n in tail else n
        lines.append("| " + " | ".join([label, units[n]] + [_cell(r.row(n)) for r in results]) + " |")
    real = [r for r in results if r.real]
    if real and gens:
        shared = [n for n in dict.fromkeys(x.name for x in gens[0].categories)
                  if all((r.row(n) is not None and r.row(n).units >= MIN_REAL_CLIPS) for r in real)]
        cells = [_cell(category_mean(r, shared)) for r in results]
        lines.append("| " + " | ".join([f"**mean of the {len(shared)} categories with >= {MIN_REAL_CLIPS} real clips**",
                                        ""] + cells) + " |")
    return "\n".join(lines)


def checker_table(real: SuiteResult, gate: float = GATE) -> str:
    """The checkers' check: per category, real clips naming it and how many pass (>= gate wanted), and the
    near-miss clips (other labels, see `CAPTION_CATEGORIES`) that pass although they should not."""
    head = ["Category", "Clips", "Pass % [95% CI]", f">= {100 * gate:.0f}%", "Near-miss clips", "Near-miss passing %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    near = {r.name: r for r in real.near_miss}
    for r in real.categories + [real.overall]:
        ok = "-" if r.units == 0 else ("yes" if r.rate >= gate else "**no**")
        nm = near.get(r.name)
        lines.append("| " + " | ".join([r.name, str(r.units), _cell(r), ok, str(nm.units) if nm else "",
                                        _cell(nm) if nm else ""]) + " |")
    empty = [r.name for r in real.categories if r.units == 0 and r.name not in CHECKER_NOTES]
    notes = [f"- {name}: {note}" for name, note in CHECKER_NOTES.items()]
    if empty:
        notes.append(f"- {', '.join(empty)}: no real clip names these (with a side); their checkers are tested on "
                     "synthetic motions (tests/test_suite.py) and rest on facts tested in tests/test_kinematics.py.")
    return "\n".join(lines + [""] + notes)


def thresholds_note() -> str:
    lines = ["Evaluation thresholds that differ from the captions' (server/eval/checkers.py EVAL_OVERRIDES):"]
    lines += [f"- {k} = {v}: {why}" for k, (v, why) in EVAL_OVERRIDES.items()]
    return "\n".join(lines)


# --- the report `evaluate.py --suite` prints ----------------------------------------------------------------


def report(checkpoints: Sequence[tuple[str, Path]], corpus_path: Path | None, suite_path: Path = DEFAULT_SUITE,
           seeds: Sequence[int] = (0, 1, 2), n: int = 4, out: Path = Path("runs/eval"), device: str | None = None,
           steps: int | None = None, guidance: float | None = None, check_checkers: bool = False,
           progress: Callable | None = None, command: str = "", log: Callable = print) -> dict:
    """Score each (name, checkpoint folder) on the suite beside the Real clips of `corpus_path` (None: no Real
    rung), print the suite table, the physical metrics and, with `check_checkers`, the checkers' check; write
    `<out>/suite.md` and `<out>/suite.json`. Raises SuiteError, CorpusError, CheckpointError on bad input."""
    from server.data.corpus import Corpus

    t0 = time.time()
    if n < 1 or not len(seeds):
        raise SuiteError(f"need at least one seed and n >= 1 candidates, got seeds {list(seeds)} and n {n!r}")
    suite = load_suite(suite_path)
    corpus = Corpus(corpus_path) if corpus_path is not None else None
    loaded = []
    if checkpoints:
        from server.model.inference import MotionGenerator

        loaded = [(name, MotionGenerator.load(path, device=device)) for name, path in checkpoints]
    real = score_real(corpus, progress=progress) if corpus is not None else None
    results = [score_suite(motion_generator_fn(g, guidance=guidance, steps=steps), suite, seeds, n, name=name,
                           progress=progress) for name, g in loaded]
    held = sum(p.wording == "heldout" for p in suite.prompts)
    parts = [(f"Prompt-following suite {suite.version} ({suite_path}): {len(suite.prompts)} prompts in "
              f"{len(suite.categories)} categories, {held} with held-out wording; seeds {list(seeds)} x {n} candidates."),
             markdown_table(([real] if real else []) + results),
             ("Generators: pass rate per prompt = share of its seeds x candidates that pass; rows = mean over prompts, "
              "[95% percentile bootstrap over prompts]. Real: clips whose source captions name the category "
              "(all splits), [95% Wilson interval over clips].")]
    rows = ([(f"Real ({real.settings['physics_clips']} test clips)", real.physics)] if real else []) + \
        [(r.name, r.physics) for r in results]
    if rows:
        parts += [("Physical metrics (server/eval/physics.py; mean [95% bootstrap interval; generated motions "
                   "resampled by prompt]):"), physics.markdown_table(rows)]
    if check_checkers and real is not None:
        parts += ["Checkers on real clips (captions naming the category must pass; near-miss clips should not):",
                  checker_table(real)]
    parts += [thresholds_note(), f"{round(time.time() - t0)} s in all" + (f"; command: {command}" if command else "")]
    text = "\n\n".join(parts)
    log(text)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.md").write_text(text + "\n")
    result = {"suite": suite.version, "suite_file": str(suite_path), "command": command,
              "seconds": round(time.time() - t0, 1), "real": real.to_dict() if real else None,
              "generators": [r.to_dict() for r in results],
              "eval_overrides": {k: v for k, (v, _) in EVAL_OVERRIDES.items()},
              "suite_thresholds": asdict(DEFAULT_SUITE_THRESHOLDS), "physics_thresholds": asdict(physics.DEFAULT_PHYSICS)}
    (out / "suite.json").write_text(json.dumps(result, indent=1))
    log(f"wrote {out / 'suite.md'} and {out / 'suite.json'}")
    return result
