"""The taste experiment: does fine-tuning on a simulated artist's picks move the model toward the artist's taste?

One command (`python server/sopo_experiment.py taste`, its docstring has the options) runs, resumably:
1. a real server (`serve.py` in a child process, data folder `<out>/server`, the base checkpoint) and the
   simulated artist (`server/align/artist.py`, taste "arm-energy": it likes big, energetic arm movement,
   a rule on FK positions that is neither the evaluator nor the reward model) picking among `n`
   candidates for `picks` distinct training captions with real `generate` / `pick` messages, pressing
   "none are good" when the best candidate's arm energy is below the threshold;
2. per method, fine-tuning seed and number of picks (the first N the artist made), a fine-tune of the
   base on those picks; the corpus (default data/corpus) gives "none are good" picks the motion of
   their caption, and adds no other clips;
3. held-out prompts, none of them among the training captions: the prompt suite's 172 prompts and
   distinct test-split captions; each model generates `eval_seeds` x `n` candidates per prompt from
   the same noise as the base; per (fine-tuned, base) pair the artist prefers the higher arm energy;
   the win rate with its 95% bootstrap interval over prompts, the suite pass rate (overall, held-out
   wording) and its paired difference to the base, the physical metrics of the same motions, and
   (eval_repeats > 0) the evaluator's FID / MM-Dist / R-precision on the test split;
4. `<out>/results/<name>.json` per run and `<out>/taste.md` with the table.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from server.align import taste
from server.align.artist import ArtistRule
from server.align.experiment import ExperimentError, checkpoint_id, commands_note, mean_cell, record_command
from server.eval.metrics import normalize_caption

METHOD_ORDER = ("sft", "offline-dpo", "online-dpo", "sopo")


def distinct_captions(corpus, split: str, count: int, seed: int, exclude: set[str] = frozenset(),
                      min_seconds: float = 2.0, max_seconds: float = 10.0) -> list[tuple[str, float]]:
    """Up to `count` (caption, seconds) of `split`: random clips, one random caption each, no caption twice
    (compared normalised) and none in `exclude` (normalised captions)."""
    rng = np.random.default_rng(seed)
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions]
    out, seen = [], set(exclude)
    for i in rng.permutation(idx):
        clip = corpus.clips[int(i)]
        caption = clip.captions[int(rng.integers(len(clip.captions)))].text
        key = normalize_caption(caption)
        if key in seen:
            continue
        seen.add(key)
        out.append((caption, float(np.clip(clip.frames / corpus.fps, min_seconds, max_seconds))))
        if len(out) == count:
            break
    return out


@dataclass
class HeldOut:
    """The held-out prompts: the suite's and test captions; `motions` of the base, generated once per session."""
    suite: object  # server.eval.suite.Suite
    test_prompts: list[str]
    test_seconds: list[float]
    seeds: tuple[int, ...]
    n: int

    @property
    def suite_texts(self) -> list[str]:
        return [p.text for p in self.suite.prompts]

    @property
    def heldout_ids(self) -> list[str]:
        return [p.id for p in self.suite.prompts if p.wording == "heldout"]


def generate_held_out(gen, held: HeldOut) -> dict:
    """Motions of one generator on both prompt sets: {"suite": Motions, "test": Motions}."""
    return {"suite": taste.held_out_motions(gen, held.suite_texts, [p.seconds for p in held.suite.prompts],
                                            held.seeds, held.n),
            "test": taste.held_out_motions(gen, held.test_prompts, held.test_seconds, held.seeds, held.n)}


@dataclass
class Scored:
    """One model's held-out scores (kept in memory for the base; the pairs need them)."""
    suite_result: object  # SuiteResult
    taste_suite: np.ndarray  # (P, S n)
    taste_test: np.ndarray  # (Q, S n)
    evaluator_row: dict | None


def score_model(gen, model, info, held: HeldOut, eval_settings, eval_context, name: str, fps: float) -> Scored:
    from server.align.finetune_report import evaluate_models
    from server.eval.suite import score_suite

    motions = generate_held_out(gen, held)
    result = score_suite(taste.replay(motions["suite"]), held.suite, held.seeds, held.n, name=name)
    row = None
    if eval_settings is not None and eval_settings.repeats > 0:
        row = evaluate_models([(name, model)], info, eval_settings, str(gen.device), context=eval_context)[0]
    return Scored(result, taste.taste_matrix(motions["suite"], held.suite_texts, held.seeds, fps),
                  taste.taste_matrix(motions["test"], held.test_prompts, held.seeds, fps), row)


def compare(tuned: Scored, base: Scored, held: HeldOut) -> dict:
    """The paired numbers of a fine-tuned model against the base (JSON-ready)."""
    ids = [p.id for p in held.suite.prompts]
    out = {
        "win_suite": taste.win_rate(tuned.taste_suite, base.taste_suite),
        "win_test": taste.win_rate(tuned.taste_test, base.taste_test),
        "arm_energy_suite": [float(base.taste_suite.mean()), float(tuned.taste_suite.mean())],
        "arm_energy_test": [float(base.taste_test.mean()), float(tuned.taste_test.mean())],
        "suite_overall": _row(tuned.suite_result.overall),
        "suite_heldout": _row(tuned.suite_result.row("heldout wording")),
        "suite_train": _row(tuned.suite_result.row("train wording")),
        "suite_diff": taste.suite_difference(tuned.suite_result, base.suite_result, ids),
        "suite_diff_heldout": taste.suite_difference(tuned.suite_result, base.suite_result, held.heldout_ids),
        "physics": tuned.suite_result.physics,
    }
    if tuned.evaluator_row is not None and base.evaluator_row is not None:
        t, b = tuned.evaluator_row["metrics"], base.evaluator_row["metrics"]
        out["evaluator"] = {k: float(np.mean(v)) for k, v in t.items() if len(v)}
        out["mm_dist_rel"] = float(np.mean([(x - y) / y for x, y in zip(t["mm_dist"], b["mm_dist"])]))
        out["fid_rel"] = float(np.mean([(x - y) / y for x, y in zip(t["fid"], b["fid"])]))
    return out


def _row(r) -> list[float]:
    return [r.rate, r.low, r.high] if r is not None else [float("nan")] * 3


def base_summary(base: Scored) -> dict:
    out = {"arm_energy_suite": float(base.taste_suite.mean()), "arm_energy_test": float(base.taste_test.mean()),
           "suite_overall": _row(base.suite_result.overall),
           "suite_heldout": _row(base.suite_result.row("heldout wording")),
           "suite_train": _row(base.suite_result.row("train wording")), "physics": base.suite_result.physics,
           "suite_prompts": len(base.suite_result.passes), "test_prompts": int(base.taste_test.shape[0])}
    if base.evaluator_row is not None:
        out["evaluator"] = {k: float(np.mean(v)) for k, v in base.evaluator_row["metrics"].items() if len(v)}
    return out


# --- the steps of one experiment -------------------------------------------------------------------------

def collect_picks(out: Path, base: Path, prompts: list[tuple[str, float]], rule: ArtistRule, n: int, seed: int,
                  log=print) -> Path:
    """<out>/server/picks.db: the artist's picks through a real server on the base model (made once)."""
    from server.align.artist import simulate_server
    from server.service.server_process import ServerProcess

    data = (out / "server").resolve()  # absolute: serve.py runs in that folder
    db, done = data / "picks.db", out / "picks.json"
    if done.exists() and db.exists():
        return db
    for f in data.glob("picks.db*"):
        f.unlink()
    t0 = time.time()
    with ServerProcess(data, "--checkpoint", str(base), "--log-level", "INFO") as server:
        log(f"server {server.endpoint} (pid {server.pid}) serving {base.name}; {len(prompts)} prompts x {n} candidates")
        summary = simulate_server(server.endpoint, prompts, None, rule, n=n, seed=seed, timeout=600.0)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["rule"] = asdict(rule)
    done.write_text(json.dumps(summary, indent=1))
    log(f"picks: {summary['chosen']} chosen, {summary['none_good']} none are good ({summary['seconds']:.0f} s)")
    return db


@dataclass
class _Context:
    out: Path
    base: Path
    info: object
    held: HeldOut
    base_scored: Scored
    eval_settings: object
    eval_context: object
    text_cache: object
    device: str
    fps: float


def _set_up(args, log) -> _Context:
    import torch

    from server.align.finetune_report import EvalSettings, in_memory_generator, load_eval_context
    from server.data.corpus import Corpus
    from server.eval.suite import load_suite
    from server.model.checkpoint import load_checkpoint
    from server.model.inference import default_checkpoint_dir
    from server.model.text_encoder import DEFAULT_ENCODER, TextCache, default_cache_path

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    base = Path(args.base) if args.base else default_checkpoint_dir()
    corpus = Corpus(args.corpus)
    suite = load_suite(args.suite_file) if args.suite_file else load_suite()
    suite_keys = {normalize_caption(p.text) for p in suite.prompts}
    done = out / "picks.json"
    if done.exists() and (out / "server" / "picks.db").exists():  # the prompts the artist picked on (the corpus may
        log_ = json.loads(done.read_text())["log"]                  # have changed since)
        train = [(e["prompt"], float(e.get("seconds", 0.0))) for e in log_]
    else:
        train = distinct_captions(corpus, "train", args.picks, args.seed, exclude=suite_keys)
    if len(train) < args.picks:
        raise ExperimentError(f"only {len(train)} distinct train captions outside the suite, {args.picks} asked")
    test = distinct_captions(corpus, "test", args.test_captions, args.seed + 1,
                             exclude=suite_keys | {normalize_caption(c) for c, _ in train})
    rule = ArtistRule(none_below=args.none_below, taste="arm-energy")
    collect_picks(out, base, train, rule, args.n, args.seed, log)
    (out / "prompts.json").write_text(json.dumps({"train": train, "test": test}, indent=0))

    device = args.device or "cpu"
    text_cache = TextCache(DEFAULT_ENCODER, args.text_cache or default_cache_path(DEFAULT_ENCODER))
    model, info = load_checkpoint(base, device)
    held = HeldOut(suite, [c for c, _ in test], [s for _, s in test], tuple(args.eval_seeds), args.n)
    settings = context = None
    if args.eval_repeats > 0:
        settings = EvalSettings(evaluator=Path(args.evaluator), corpus=Path(args.corpus), text_cache=text_cache,
                                repeats=args.eval_repeats, max_clips=args.eval_max_clips, device=device)
        context = load_eval_context(settings)
    t0 = time.time()
    gen = in_memory_generator(model, info, torch.device(device), "base", text_cache)
    base_scored = score_model(gen, model, info, held, settings, context, "base", info.model.fps)
    (out / "results" / "base.json").write_text(json.dumps(base_summary(base_scored), default=float))
    log(f"base scored in {time.time() - t0:.0f} s: arm energy {base_scored.taste_suite.mean():.3f} m/s (suite "
        f"prompts), suite pass {100 * base_scored.suite_result.overall.rate:.1f}%")
    return _Context(out, base, info, held, base_scored, settings, context, text_cache, device, info.model.fps)


def _run_one(ctx: _Context, args, method: str, setting: str, over: dict, count: int, seed: int, name: str,
             log) -> dict:
    import torch

    from server.align.finetune_report import in_memory_generator
    from server.align.preference_training import FinetuneConfig, FinetuneInputs, finetune

    settings = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "beta": args.beta, "tau": args.tau,
                "tau_quantile": args.tau_quantile, "C": args.C, "scale": args.scale, "k": args.k, **over}
    cfg = FinetuneConfig(method=method, warmup=args.warmup, seed=seed, device=ctx.device, progress=False,
                         log_every=max(1, settings["steps"] // 10), **settings)
    inputs = FinetuneInputs(base=ctx.base, picks=ctx.out / "server" / "picks.db", corpus=Path(args.corpus),
                            corpus_clips=False, max_picks=count,
                            reward=Path(args.reward) if method != "sft" else None,
                            text_cache=Path(ctx.text_cache.path), models_dirs=[ctx.base.parent])
    t0 = time.time()
    res = finetune(cfg, inputs, ctx.out / "checkpoints" / name, command=f"sopo_experiment taste {name}", log=None,
                   keep_models=True)
    train_s = time.time() - t0
    gen = in_memory_generator(res.policy, ctx.info, torch.device(ctx.device), name, ctx.text_cache)
    scored = score_model(gen, res.policy, ctx.info, ctx.held, ctx.eval_settings, ctx.eval_context, name, ctx.fps)
    row = {"method": method, "setting": setting, "picks": count, "seed": seed, "train_seconds": train_s,
           "eval_seconds": round(time.time() - t0 - train_s, 1), **compare(scored, ctx.base_scored, ctx.held),
           "reward_id": checkpoint_id(args.reward), "evaluator_id": checkpoint_id(args.evaluator),
           "final": res.history[-1], "summary": res.summary}
    w = row["win_suite"]
    log(f"{name}: {train_s:.0f} s training; artist win rate {taste.fmt_interval(w)} (suite prompts), "
        f"{taste.fmt_interval(row['win_test'])} (test captions); suite {100 * row['suite_overall'][0]:.1f}%")
    return row


def run(args, log=print) -> int:
    """Picks (once), base scores, then every (method, picks, seed) run not done yet; writes taste.md."""
    t_start = time.time()
    ctx = _set_up(args, log)
    from server.align.experiment import parse_grid

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    grid = parse_grid(args.grid)
    runs = [(m, g, args.picks, s) for g in grid for m in methods for s in args.seeds]
    runs += [(m, g, c, s) for g in grid for m in args.count_methods for c in args.pick_counts if c != args.picks
             for s in args.seeds]
    left = []
    for method, (setting, over), count, seed in runs:
        name = f"{method}{'-' + setting if setting else ''}-p{count}-s{seed}"
        path = ctx.out / "results" / f"{name}.json"
        if path.exists():
            continue
        if args.max_minutes and time.time() - t_start > 60 * args.max_minutes:
            left.append(name)
            continue
        row = _run_one(ctx, args, method, setting, over, count, seed, name, log)
        path.write_text(json.dumps(row, default=str))
    text = write_table(ctx.out, getattr(args, "command", ""))
    log(text)
    if left:
        log(f"out of time: {len(left)} runs left ({', '.join(left)}); run the same command again")
    return 0


def rescore(args, log=print) -> int:
    """Recompute the evaluator's numbers (FID, MM-Dist, R-precision) of the base and every finished run from their
    saved checkpoints, with the evaluator and corpus there are now (they were retrained); rewrites taste.md."""
    import torch

    from server.align.finetune_report import EvalSettings, evaluate_models, load_eval_context
    from server.model.checkpoint import load_checkpoint
    from server.model.inference import default_checkpoint_dir
    from server.model.text_encoder import DEFAULT_ENCODER, TextCache, default_cache_path

    if args.threads:
        torch.set_num_threads(args.threads)
    out, device = Path(args.out), args.device or "cpu"
    base_path = out / "results" / "base.json"
    if not base_path.exists():
        raise ExperimentError(f"no taste experiment in {out} (results/base.json is missing)")
    text_cache = TextCache(DEFAULT_ENCODER, args.text_cache or default_cache_path(DEFAULT_ENCODER))
    settings = EvalSettings(evaluator=Path(args.evaluator), corpus=Path(args.corpus), text_cache=text_cache,
                            repeats=max(1, args.eval_repeats), max_clips=args.eval_max_clips, device=device)
    context = load_eval_context(settings)
    base_model, info = load_checkpoint(Path(args.base) if args.base else default_checkpoint_dir(), device)
    b_row = evaluate_models([("base", base_model)], info, settings, device, context=context)[0]
    base = json.loads(base_path.read_text())
    base["evaluator"] = {k: float(np.mean(v)) for k, v in b_row["metrics"].items() if len(v)}
    base["evaluator_id"] = checkpoint_id(args.evaluator)
    base_path.write_text(json.dumps(base, default=float))
    for f in sorted((out / "results").glob("*.json")):
        if f.name == "base.json":
            continue
        r = json.loads(f.read_text())
        model, _ = load_checkpoint(out / "checkpoints" / f.stem, device)
        t = evaluate_models([(f.stem, model)], info, settings, device, context=context)[0]["metrics"]
        r["evaluator"] = {k: float(np.mean(v)) for k, v in t.items() if len(v)}
        b = b_row["metrics"]
        r["mm_dist_rel"] = float(np.mean([(x - y) / y for x, y in zip(t["mm_dist"], b["mm_dist"])]))
        r["fid_rel"] = float(np.mean([(x - y) / y for x, y in zip(t["fid"], b["fid"])]))
        r["evaluator_id"] = checkpoint_id(args.evaluator)
        f.write_text(json.dumps(r, default=str))
        log(f"{f.stem}: FID {r['evaluator']['fid']:.4f} ({100 * r['fid_rel']:+.1f}%), "
            f"MM-Dist {100 * r['mm_dist_rel']:+.2f}%")
    text = write_table(out, getattr(args, "command", ""))
    log(text)
    return 0


# --- the table ---------------------------------------------------------------------------------------------

def _interval_cell(rows: list[dict], key: str, signed: bool = False) -> str:
    """One seed: 'm [lo, hi]'; several: the mean over seeds ± 95% interval over seeds."""
    if len(rows) == 1:
        return taste.fmt_interval(rows[0][key], signed=signed)
    return mean_cell([r[key][0] for r in rows], 1, 100.0, signed)


def write_table(out: Path, command: str = "") -> str:
    from server.align.experiment import method_name

    out = Path(out)
    base = json.loads((out / "results" / "base.json").read_text())
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for f in sorted((out / "results").glob("*.json")):
        if f.name != "base.json":
            r = json.loads(f.read_text())
            groups.setdefault((r["method"], r.get("setting", ""), r["picks"]), []).append(r)
    head = ["Method", "Picks", "Seeds", "Train min", "Artist win % (suite prompts)", "Artist win % (test captions)",
            "Arm energy m/s", "Suite pass %", "Δ suite pts [95%]", "Δ held-out wording pts", "Foot skate %",
            "Jerk m/s³", "FID", "MM-Dist Δ%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ev = base.get("evaluator", {})
    phys = base["physics"]
    lines.append(f"| Base | - | - | - | 50 | 50 | {base['arm_energy_suite']:.3f} | "
                 f"{100 * base['suite_overall'][0]:.1f} "
                 f"| - | - | {100 * phys['skate_ratio'][0]:.1f} | {phys['jerk'][0]:.0f} | "
                 f"{ev.get('fid', float('nan')):.3f} | - |")
    order = sorted(groups, key=lambda k: (METHOD_ORDER.index(k[0]) if k[0] in METHOD_ORDER else 9, k[1], -k[2]))
    for key in order:
        rows = groups[key]
        energy = np.mean([r["arm_energy_suite"][1] for r in rows])
        fid = [r["evaluator"]["fid"] for r in rows if "evaluator" in r]
        mm = [r["mm_dist_rel"] for r in rows if "mm_dist_rel" in r]
        lines.append(" | ".join([
            f"| {method_name(key[0] + ('@' + key[1] if key[1] else ''))}", str(key[2]), str(len(rows)),
            f"{np.mean([r['train_seconds'] for r in rows]) / 60:.1f}",
            _interval_cell(rows, "win_suite"), _interval_cell(rows, "win_test"), f"{energy:.3f}",
            mean_cell([r["suite_overall"][0] for r in rows], 1, 100.0), _interval_cell(rows, "suite_diff", True),
            _interval_cell(rows, "suite_diff_heldout", True),
            mean_cell([r["physics"]["skate_ratio"][0] for r in rows], 1, 100.0),
            mean_cell([r["physics"]["jerk"][0] for r in rows], 0),
            mean_cell(fid, 3) if fid else "-", mean_cell(mm, 2, 100.0, True) if mm else "-"]) + " |")
    picks = json.loads((out / "picks.json").read_text()) if (out / "picks.json").exists() else {}
    example = next((r for k, rows in groups.items() if not k[1] for r in rows),  # the command's own settings
                   next((r for rows in groups.values() for r in rows), None))
    notes = ["", f"Artist: taste arm-energy (mean wrist speed relative to the pelvis, smoothed over 0.25 s), "
             f"{picks.get('captions', '?')} distinct train captions x 4 candidates through a real server, "
             f"{picks.get('chosen', '?')} chosen, {picks.get('none_good', '?')} 'none are good' (best below "
             f"{picks.get('rule', {}).get('none_below', '?')} m/s; their captions' corpus motions preferred). "
             f"Held out: the suite's {base.get('suite_prompts', '?')} prompts and "
             f"{base.get('test_prompts', '?')} test-split captions, none among the training captions; "
             "base and fine-tuned generate from the same noise. Win %: share of (fine-tuned, base) pairs whose "
             "arm energy is higher for the fine-tuned motion; one seed: [95% bootstrap over prompts]; several "
             "seeds: mean ± 95% interval over seeds. Δ: paired difference to the base (per-prompt pass rates)."]
    if example is not None:
        hp, s = example["summary"]["hyperparameters"], example["summary"]
        which = f"Settings of the ({example['setting']}) rows" if example.get("setting") else "Settings"
        notes.append(f"{which}: {hp['steps']} steps x batch {hp['batch_size']} (fewer when fewer picks are usable), "
                     f"lr {hp['lr']:g}, beta {hp['beta']:g}, T*w(t) {hp['scale']:g}, K {s['k']}, tau "
                     f"{hp['tau']:g} (quantile {hp.get('tau_quantile', 0):g}), device {s['device']}, base "
                     f"{s['base_name']}, reward {s.get('reward_model')}.")
    ids = sorted({f"reward {r.get('reward_id')}, evaluator {r.get('evaluator_id')}" for rows in groups.values()
                  for r in rows if r.get("reward_id") or r.get("evaluator_id")})
    if ids:
        notes.append("Models (sha256 of the weights): " + "; ".join(ids) + ".")
    record_command(out, command)
    notes += commands_note(out)
    text = "\n".join(lines + notes) + "\n"
    (out / "taste.md").write_text(text)
    return text
