"""The SoPo experiment: base, SFT, offline DPO, online DPO and SoPo fine-tuned with equal budgets, scored, tabled.

Every run is scored on the prompt-following suite (pass rate overall and per wording, the physical
metrics of the same motions; `--suite-seeds` x `--suite-candidates`, the same noise for every model)
and with the evaluator (R-precision standard and hard pools, FID, MM-Dist; paired per seed), and
tabled with paired differences against the base. `--grid` runs each method once per setting (a
sweep in one table); `--curve-steps` also scores the suite during fine-tuning (the plot of pass
rate and foot skating against steps, `server/align/experiment_plot.py`).
The CLI is `python server/sopo_experiment.py` (its docstring has the commands)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


from server.eval import evaluation
from server.eval import metrics
from server.align.sopo import METHODS

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("corpus", "picks")
TABLE_METRICS = ("top1", "top2", "top3", "fid", "mm_dist", "diversity")
METHOD_NAMES = {"base": "Base", "sft": "SFT", "offline-dpo": "Offline DPO", "online-dpo": "Online DPO",
                "sopo": "SoPo"}
GRID_KEYS = {"scale": float, "beta": float, "k": int, "lr": float, "steps": int, "tau": float, "tau_quantile": float,
             "batch_size": int, "C": float}


class ExperimentError(ValueError):
    """An experiment was asked for something it cannot do; the message says what."""


def parse_grid(text: str) -> list[tuple[str, dict]]:
    """'scale=100;k=2,lr=3e-4' -> [('scale100', {'scale': 100.0}), ('k2-lr0.0003', {'k': 2, 'lr': 0.0003})];
    '' -> [('', {})] (the command's own settings)."""
    out = []
    for spec in [t.strip() for t in text.split(";") if t.strip()] or [""]:
        over, label = {}, []
        for part in [t.strip() for t in spec.split(",") if t.strip()]:
            key, _, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if key not in GRID_KEYS or not value:
                raise ExperimentError(f"--grid: {part!r} is not KEY=VALUE with KEY one of {sorted(GRID_KEYS)}")
            over[key] = GRID_KEYS[key](value)
            label.append(f"{key.replace('_', '')}{over[key]:g}")
        out.append(("-".join(label), over))
    return out


def record_command(out: Path, command: str) -> None:
    """Append `command` to <out>/commands.txt (once): the tables list every command that made their rows."""
    if not command:
        return
    path = Path(out) / "commands.txt"
    done = path.read_text().splitlines() if path.exists() else []
    if command not in done:
        path.write_text("\n".join(done + [command]) + "\n")


def commands_note(out: Path) -> list[str]:
    path = Path(out) / "commands.txt"
    lines = [c for c in path.read_text().splitlines() if c.strip()] if path.exists() else []
    return (["Commands:"] + [f"    {c}" for c in lines]) if lines else []


def checkpoint_id(folder: Path) -> str | None:
    """The first 12 hex digits of the sha256 of a model folder's weights (which reward / evaluator a run used)."""
    import hashlib

    f = Path(folder) / "model.safetensors"
    return hashlib.sha256(f.read_bytes()).hexdigest()[:12] if f.is_file() else None


def method_name(label: str) -> str:
    """'sopo' -> 'SoPo'; 'sopo-tau0.95' -> 'SoPo (tau 0.95)'; 'sopo@scale100' -> 'SoPo (scale100)'."""
    method, _, setting = label.partition("@")
    if method.startswith("sopo-tau"):
        return f"SoPo (tau {method[len('sopo-tau'):]})" + (f" ({setting})" if setting else "")
    return METHOD_NAMES.get(method, method) + (f" ({setting})" if setting else "")


def parse_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def pack_cmd(args) -> int:
    from server.model.train_pack import pack

    out = pack(args.corpus, args.out, text_cache=args.text_cache, splits=("train", "val", "test"))
    size = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 20
    print(f"pack {out}: {size:.1f} MiB (train, val and test clips + every caption's text embedding)")
    return 0


def _seed_means(row: dict | None) -> dict[str, float]:
    """A row's per-metric mean over its repeats ({} when the evaluator did not score it)."""
    if not row:
        return {}
    return {k: float(np.mean(v)) for k, v in row["metrics"].items() if len(v)}


@dataclass
class _Setup:
    """What every run of the experiment shares: where it writes, the base model, the evaluation context."""
    out: Path
    device: str
    base: Path
    text_cache: object  # TextCache
    settings: object  # finetune_report.EvalSettings (its seed is set per run)
    context: tuple  # finetune_report.load_eval_context(settings)
    base_model: object
    info: object
    t_start: float
    suite: object = None  # server.eval.suite.Suite (None: --suite-seeds empty)
    suite_seeds: tuple = (0,)
    suite_n: int = 4

    def out_of_time(self, max_minutes: float) -> bool:
        return bool(max_minutes) and time.time() - self.t_start > 60 * max_minutes


def _apply_quick(args) -> None:
    """--quick (a CPU check) and the simulated artist's default threshold."""
    if args.quick:
        args.steps, args.batch_size, args.sim_captions, args.sim_n = 2, 4, 8, 2
        args.eval_repeats, args.seeds = 1, args.seeds if args.seeds_given else "0"
        args.eval_max_clips = args.eval_max_clips or 32
        args.corpus_clips = args.corpus_clips or 64
        args.suite_candidates = min(args.suite_candidates, 1)
        if args.sim_none_below is None:
            args.sim_none_below = -1e9
    if args.sim_none_below is None:
        from server.align.artist import ArtistRule
        args.sim_none_below = ArtistRule().none_below


def _plan(args) -> tuple[list[int], list[str], list[tuple[str, float, str, dict]]]:
    """Seeds, sources and (method, tau, label, overrides) variants: SoPo once per --sopo-taus value, every method
    once per --grid setting."""
    seeds = [int(s) for s in parse_list(args.seeds)]
    methods = parse_list(args.methods)
    sources = parse_list(args.sources)
    bad = [m for m in methods if m not in METHODS] + [s for s in sources if s not in SOURCES]
    if bad:
        raise ExperimentError(f"unknown methods/sources {bad}")
    variants = []
    for setting, over in parse_grid(args.grid):
        tag = f"@{setting}" if setting else ""
        for method in methods:
            if method == "sopo" and args.sopo_taus:
                variants += [(method, float(t), f"sopo-tau{float(t):g}{tag}", over) for t in parse_list(args.sopo_taus)]
            else:
                variants.append((method, over.get("tau", args.tau), method + tag, over))
    return seeds, sources, variants


def _set_up(args) -> _Setup:
    """Output folder, device, base checkpoint, text cache, the evaluation context and the suite."""
    import torch

    from server.align.finetune_report import EvalSettings, load_eval_context
    from server.eval.suite import load_suite
    from server.model.checkpoint import load_checkpoint
    from server.model.inference import default_checkpoint_dir
    from server.model.text_encoder import DEFAULT_ENCODER, TextCache, default_cache_path

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = Path(args.base) if args.base else default_checkpoint_dir()
    text_cache = TextCache(DEFAULT_ENCODER, args.text_cache or default_cache_path(DEFAULT_ENCODER))
    t_start = time.time()
    settings = EvalSettings(evaluator=Path(args.evaluator), corpus=Path(args.corpus), text_cache=text_cache,
                            repeats=args.eval_repeats, max_clips=args.eval_max_clips, device=device)
    context = None
    if args.eval_repeats > 0:  # 0: the suite only (the evaluator's numbers later, with --rescore)
        context = load_eval_context(settings)
        test = context[1]
        print(f"test split: {len(test)} clips, R-precision batches of {test.r_batch}; device {device}", flush=True)
    base_model, info = load_checkpoint(base, device)
    suite = None
    if args.suite_seeds:
        suite = load_suite(args.suite_file) if args.suite_file else load_suite()
    return _Setup(out, device, base, text_cache, settings, context, base_model, info, t_start, suite,
                  tuple(args.suite_seeds), args.suite_candidates)


def suite_scores(setup: _Setup, model, name: str) -> dict | None:
    """The suite's pass rates (overall, per wording, per prompt) and physical metrics of `model` (JSON-ready)."""
    import torch

    from server.align.finetune_report import in_memory_generator
    from server.eval.suite import motion_generator_fn, score_suite

    if setup.suite is None:
        return None
    gen = in_memory_generator(model, setup.info, torch.device(setup.device), name, setup.text_cache)
    r = score_suite(motion_generator_fn(gen), setup.suite, setup.suite_seeds, setup.suite_n, name=name)

    def row(x):
        return [x.rate, x.low, x.high] if x is not None else None

    return {"overall": row(r.overall), "heldout": row(r.row("heldout wording")), "train": row(r.row("train wording")),
            "physics": r.physics, "rates": {pid: float(np.mean(v)) for pid, v in r.passes.items()},
            "wording": {p.id: p.wording for p in setup.suite.prompts},
            "seeds": list(setup.suite_seeds), "n": setup.suite_n, "seconds": r.seconds}


def _score_real_and_base(setup: _Setup, seeds: list[int], repeats: int) -> None:
    """results/real.json, results/base-s<seed>.json (the base scored with each seed's captions and noise) and
    results/base-suite.json (the suite's noise does not depend on the seed)."""
    from server.align.finetune_report import evaluate_models

    real_path = setup.out / "results" / "real.json"
    if setup.context is not None and not real_path.exists():
        row = evaluation.evaluate_real(setup.context[0], setup.context[1], max(repeats, 2), 0, setup.context[2])
        real_path.write_text(json.dumps(row))
    for seed in seeds:
        path = setup.out / "results" / f"base-s{seed}.json"
        if setup.context is not None and not path.exists():
            setup.settings.seed = seed
            row = evaluate_models([("base", setup.base_model)], setup.info, setup.settings, setup.device,
                                  context=setup.context)[0]
            path.write_text(json.dumps({"source": "-", "method": "base", "seed": seed, "row": row}))
    path = setup.out / "results" / "base-suite.json"
    if setup.suite is not None and not path.exists():
        path.write_text(json.dumps(suite_scores(setup, setup.base_model, "base"), default=float))


def _simulate_picks(setup: _Setup, args) -> Path:
    """<out>/picks.db: the simulated artist's picks on the base model, made in-process (once)."""
    import torch

    from server.align.artist import ArtistRule, corpus_prompts, simulate_in_process
    from server.align.preference_data import CachedTextConditioner
    from server.data.corpus import Corpus
    from server.eval.reward import RewardModel
    from server.model.inference import MotionGenerator

    out, device = setup.out, setup.device
    db = out / "picks.db"
    if db.exists():
        return db
    reward = RewardModel.load(args.reward, device, text_cache=setup.text_cache)
    gen = MotionGenerator(setup.base_model, setup.info, torch.device(device), setup.base)
    gen.text = CachedTextConditioner(setup.text_cache, device)
    prompts = corpus_prompts(Corpus(args.corpus), args.sim_captions, "train", seed=1234)
    t0 = time.time()
    tmp = db.with_suffix(".tmp.db")
    for f in out.glob("picks.tmp.db*"):
        f.unlink()
    rule = ArtistRule(none_below=args.sim_none_below)
    summary = simulate_in_process(gen, tmp, prompts, reward, rule, n=args.sim_n, seed=1234)
    tmp.rename(db)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    summary.pop("log")
    (out / "simulated_picks.json").write_text(json.dumps({**summary, "rule": asdict(rule),
                                                          "seconds": round(time.time() - t0, 1)}, indent=1))
    print(f"simulated picks: {summary}", flush=True)
    return db


def _picks_db(setup: _Setup, args) -> Path:
    return Path(args.picks_db) if getattr(args, "picks_db", None) else setup.out / "picks.db"


def _run_one(setup: _Setup, args, source: str, method: str, tau: float, label: str, over: dict, seed: int,
             name: str, path: Path) -> None:
    """Fine-tune one (source, method, setting, seed), score it, write results/<name>.json."""
    import torch

    from server.align.finetune_report import evaluate_models
    from server.align.preference_training import FinetuneConfig, FinetuneInputs, finetune

    settings = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "beta": args.beta, "C": args.C,
                "scale": args.scale, "k": args.k, "tau_quantile": args.tau_quantile, **over, "tau": tau}
    cfg = FinetuneConfig(method=method, warmup=args.warmup, corpus_clips=args.corpus_clips, seed=seed,
                         device=setup.device, progress=False, log_every=max(1, settings["steps"] // 20), **settings)
    inputs = FinetuneInputs(base=setup.base, picks=_picks_db(setup, args) if source == "picks" else None,
                            corpus=Path(args.corpus), corpus_clips=source == "corpus",
                            reward=Path(args.reward), text_cache=Path(setup.text_cache.path),
                            models_dirs=[setup.base.parent])
    curve, curve_s = [], [0.0]
    steps_to_score = set(args.curve_steps) if seed in args.curve_seeds else set()

    def on_step(step: int, policy) -> None:
        if step in steps_to_score and step != cfg.steps:
            t = time.time()
            at = f"{name}@{step}"
            row_ = None if setup.context is None else evaluate_models([(at, policy)], setup.info, setup.settings,
                                                                      setup.device, context=setup.context)[0]
            curve.append({"step": step, "suite": _curve_point(suite_scores(setup, policy, at), row_)})
            curve_s[0] += time.time() - t

    t0 = time.time()
    setup.settings.seed = seed
    res = finetune(cfg, inputs, setup.out / "checkpoints" / name, command=f"sopo_experiment {name}",
                   log=None, keep_models=True, on_step=on_step)
    train_s = time.time() - t0 - curve_s[0]
    row = None if setup.context is None else evaluate_models([(name, res.policy)], setup.info, setup.settings,
                                                             setup.device, context=setup.context)[0]
    suite = suite_scores(setup, res.policy, name)
    if suite is not None and steps_to_score:
        curve.append({"step": cfg.steps, "suite": _curve_point(suite, row)})
    path.write_text(json.dumps({"source": source, "method": label, "seed": seed, "row": row, "suite": suite,
                                "curve": curve, "train_seconds": round(train_s, 3),
                                "eval_seconds": round(time.time() - t0 - train_s, 1),
                                "reward_id": checkpoint_id(args.reward), "evaluator_id": checkpoint_id(args.evaluator),
                                "final": res.history[-1], "summary": res.summary}, default=float))
    print(f"{name}: {train_s:.0f} s training; " + ", ".join(
        f"{k} {v:.4f}" for k, v in _seed_means(row).items() if k in TABLE_METRICS)
        + (f", suite {100 * suite['overall'][0]:.1f}%" if suite else ""), flush=True)
    del res
    if setup.device.startswith("cuda"):
        torch.cuda.empty_cache()


def _curve_point(suite: dict | None, row: dict | None = None) -> dict | None:
    """The suite's pass rates and physics at one step, with the evaluator's FID ([mean, low, high] over its
    repeats) when the run is scored by the evaluator."""
    from server.eval.metrics import mean_and_interval

    if suite is None:
        return None
    point = {"overall": suite["overall"], "heldout": suite["heldout"], "skate_ratio": suite["physics"]["skate_ratio"],
             "jerk": suite["physics"]["jerk"]}
    fid = (row or {}).get("metrics", {}).get("fid", [])
    if len(fid):
        m, half = mean_and_interval(fid)
        point["fid"] = [m, m - half, m + half]
    return point


def run_cmd(args) -> int:
    """Set up, score Real and the base, simulate picks, then fine-tune + score every (source, method, seed)."""
    _apply_quick(args)
    try:
        seeds, sources, variants = _plan(args)
    except ExperimentError as exc:
        print(f"sopo_experiment.py: {exc}", file=sys.stderr)
        return 2
    setup = _set_up(args)
    _score_real_and_base(setup, seeds, args.eval_repeats)
    if "picks" in sources and not getattr(args, "picks_db", None):
        _simulate_picks(setup, args)
    left = []
    for source in sources:
        for method, tau, label, over in variants:
            for seed in seeds:
                name = f"{source}-{label.replace('@', '-')}-s{seed}"
                path = setup.out / "results" / f"{name}.json"
                if path.exists():
                    continue
                if setup.out_of_time(args.max_minutes):
                    left.append(name)
                    continue
                _run_one(setup, args, source, method, tau, label, over, seed, name, path)
    table = write_table(setup.out, getattr(args, "command", ""))
    print(table)
    if left:
        print(f"out of time: {len(left)} runs left ({', '.join(left[:6])}{' ...' if len(left) > 6 else ''}); "
              "run the same command again", flush=True)
    return 0


def rescore_cmd(args) -> int:
    """The evaluator's numbers again (Real, the base per seed, every finished run from its saved checkpoint) with the
    evaluator and corpus there are now; rewrites results.md. The suite's numbers stay."""
    from server.align.finetune_report import evaluate_models
    from server.model.checkpoint import load_checkpoint

    _apply_quick(args)
    args.eval_repeats = max(1, args.eval_repeats)
    setup = _set_up(args)
    res = setup.out / "results"
    for f in [res / "real.json"] + sorted(res.glob("base-s*.json")):
        f.unlink(missing_ok=True)
    seeds = sorted({json.loads(f.read_text())["seed"] for f in res.glob("*.json")
                    if f.name not in ("real.json", "base-suite.json")})
    _score_real_and_base(setup, seeds, args.eval_repeats)
    for f in sorted(res.glob("*.json")):
        obj = json.loads(f.read_text())
        if f.name in ("real.json", "base-suite.json") or obj.get("method") == "base":
            continue
        model, _ = load_checkpoint(setup.out / "checkpoints" / f.stem, setup.device)
        setup.settings.seed = obj["seed"]
        obj["row"] = evaluate_models([(f.stem, model)], setup.info, setup.settings, setup.device,
                                     context=setup.context)[0]
        obj["evaluator_id"] = checkpoint_id(args.evaluator)
        f.write_text(json.dumps(obj, default=float))
        print(f"{f.stem}: " + ", ".join(f"{k} {v:.4f}" for k, v in _seed_means(obj["row"]).items()
                                         if k in TABLE_METRICS), flush=True)
    print(write_table(setup.out, getattr(args, "command", "")))
    return 0


# --- the table ---------------------------------------------------------------------------------------------

def collect(out: Path) -> tuple[dict | None, dict[tuple[str, str], list[dict]]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    real = None
    for f in sorted((out / "results").glob("*.json")):
        obj = json.loads(f.read_text())
        if f.name == "real.json":
            real = obj
            continue
        if f.name == "base-suite.json":
            continue
        groups.setdefault((obj["source"], obj["method"]), []).append(obj)
    return real, groups


def mean_cell(values: list[float], digits: int = 3, scale: float = 1.0, signed: bool = False) -> str:
    """A table cell: the mean of `values` (x scale) and, for more than one, ± its 95% interval."""
    if not values:
        return "-"
    mean, ci = metrics.mean_and_interval(values)
    m = f"{scale * mean:{'+' if signed else ''}.{digits}f}"
    return f"{m}±{scale * ci:.{digits}f}" if len(values) > 1 else m


def suite_paired(runs: list[dict], base: dict, wording: str | None = None) -> tuple[float, float, float] | None:
    """Suite pass-rate difference to the base (points): per prompt, the run's rate averaged over its seeds minus the
    base's; mean and 95% bootstrap interval over prompts."""
    from server.eval.physics import bootstrap_interval

    suites = [r["suite"] for r in runs if r.get("suite")]
    if not suites or not base:
        return None
    ids = [pid for pid in base["rates"] if wording is None or base["wording"].get(pid) == wording]
    d = np.array([np.mean([s["rates"][pid] for s in suites]) - base["rates"][pid] for pid in ids])
    return tuple(100 * x for x in bootstrap_interval(d, None))


def _paired_rel(runs: list[dict], base_runs: dict, metric: str) -> str:
    rel = [(m[metric] - base_runs[r["seed"]][metric]) / base_runs[r["seed"]][metric]
           for r, m in ((r, _seed_means(r["row"])) for r in runs)
           if metric in m and metric in base_runs.get(r["seed"], {})]
    return "-" if not rel else mean_cell(rel, 2, 100.0, signed=True) + "%"


def _interval(t) -> str:
    return "-" if t is None else f"{t[0]:+.1f} [{t[1]:+.1f}, {t[2]:+.1f}]"


def write_table(out: Path, command: str = "") -> str:
    out = Path(out)
    real, groups = collect(out)
    base_suite_path = out / "results" / "base-suite.json"
    base_suite = json.loads(base_suite_path.read_text()) if base_suite_path.exists() else None
    head = ["Preferences", "Method", "seeds", "Suite pass % ↑", "Δ suite pts [95%]", "Δ held-out wording pts",
            "Foot skate %", "Top-1 ↑", "Hard top-1 ↑", "FID ↓", "MM-Dist ↓", "MM-Dist vs base", "FID vs base",
            "losers r>=tau", "train min/run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if real is not None:
        s = _seed_means(real)
        lines.append("| - | Real | - | - | - | - | - | " + " | ".join(
            f"{s[k]:.3f}" if k in s else "-" for k in ("top1", "hard1", "fid", "mm_dist")) + " | - | - | - | - |")
    base_runs = {r["seed"]: _seed_means(r["row"]) for r in groups.get(("-", "base"), [])}
    rank = {"sft": 0, "offline-dpo": 1, "online-dpo": 2}

    def order_key(k):
        method, _, setting = k[1].partition("@")
        return (SOURCES.index(k[0]) if k[0] in SOURCES else 9, rank.get(method.split("-tau")[0], 3), method, setting)

    order = [("-", "base")] + sorted((k for k in groups if k[0] != "-"), key=order_key)
    for key in order:
        runs = groups.get(key) or ([] if key[1] == "base" and base_suite else None)
        if runs is None:
            continue
        means = [_seed_means(r["row"]) for r in runs]
        if key[1] == "base":
            suites = [base_suite] if base_suite else []
        else:
            suites = [r["suite"] for r in runs if r.get("suite")]
        suite_cell = mean_cell([s["overall"][0] for s in suites], 1, 100.0) if suites else "-"
        skate_cell = mean_cell([s["physics"]["skate_ratio"][0] for s in suites], 1, 100.0) if suites else "-"
        is_base = key[1] == "base"
        train_s = [r.get("train_seconds") for r in runs if r.get("train_seconds") is not None]
        frac = [r["final"]["frac_loser_above_tau"] for r in runs if "frac_loser_above_tau" in r.get("final", {})]
        cells = [key[0], method_name(key[1]), str(len(runs)), suite_cell,
                 "-" if is_base else _interval(suite_paired(runs, base_suite)),
                 "-" if is_base else _interval(suite_paired(runs, base_suite, "heldout")), skate_cell,
                 *(mean_cell([m[k] for m in means if k in m]) for k in ("top1", "hard1", "fid", "mm_dist")),
                 "-" if is_base else _paired_rel(runs, base_runs, "mm_dist"),
                 "-" if is_base else _paired_rel(runs, base_runs, "fid"),
                 f"{np.mean(frac):.2f}" if frac else "-", f"{np.mean(train_s) / 60:.1f}" if train_s else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    runs_ = [(k, r) for k, runs in groups.items() if k[1] != "base" for r in runs]
    plain = [(k, r) for k, r in runs_ if "@" not in k[1]]  # a run at the command's own settings, if any
    example_key, example = (plain or runs_ or [(None, None)])[0]
    notes = ["", "Evaluator cells: mean over fine-tuning seeds (each seed: the mean over its evaluation repeats) ± 95% "
             "interval over seeds (1.96 std / sqrt(n)); vs base: mean paired relative change (same captions and noise "
             "per seed). Suite: pass rate of the run (mean over seeds); Δ: per prompt, the run's pass rate (mean over "
             "seeds) minus the base's, same noise, mean [95% bootstrap over prompts], in points. Foot skate: the "
             "suite's motions (server/eval/physics.py). Same optimizer steps and batch size for every method unless "
             "the row names another setting. losers r>=tau: share of online losers whose reward is >= tau in the "
             "last logging window (SoPo trains those pairs on the preferred term only)."]
    if base_suite:
        notes.append(f"Suite budget: seeds {base_suite['seeds']} x {base_suite['n']} candidates per prompt "
                     f"({len(base_suite['rates'])} prompts).")
    if example is not None:
        hp = example["summary"]["hyperparameters"]
        which = "Settings" if "@" not in example_key[1] else f"Settings of the {method_name(example_key[1])} rows"
        notes.append(f"{which}: {hp['steps']} steps x batch {hp['batch_size']}, lr {hp['lr']:g}, beta {hp['beta']:g}, "
                     f"tau {hp['tau']:g}" + (f" (quantile {hp['tau_quantile']:g})" if hp.get("tau_quantile") else "")
                     + f", C {hp['C']:g}, T*w(t) {hp['scale']:g}, K {example['summary']['k']}, "
                     f"device {example['summary']['device']}, base {example['summary']['base_name']}, reward "
                     f"{example['summary'].get('reward_model')}.")
    ids = sorted({f"reward {r.get('reward_id')}, evaluator {r.get('evaluator_id')}" for runs in groups.values()
                  for r in runs if r.get("reward_id")})
    if ids:
        notes.append("Models (sha256 of the weights): " + "; ".join(ids) + ".")
    sim = out / "simulated_picks.json"
    if sim.exists():
        s = json.loads(sim.read_text())
        notes.append(f"Simulated picks: {s['captions']} captions, {s['chosen']} chosen, {s['none_good']} none-good "
                     f"(rule: {json.dumps(s['rule'])}).")
    record_command(out, command)
    notes += commands_note(out)
    text = "\n".join(lines + notes) + "\n"
    (out / "results.md").write_text(text)
    return text
