"""The SoPo experiment: base, SFT, offline DPO, online DPO and SoPo fine-tuned with equal budgets, scored, tabled.

The CLI is `python server/sopo_experiment.py` (its docstring has the commands)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
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


def method_name(label: str) -> str:
    if label.startswith("sopo-tau"):
        return f"SoPo (tau {label[len('sopo-tau'):]})"
    return METHOD_NAMES.get(label, label)


def parse_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def pack_cmd(args) -> int:
    from server.model.train_pack import pack

    out = pack(args.corpus, args.out, text_cache=args.text_cache, splits=("train", "val", "test"))
    size = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 20
    print(f"pack {out}: {size:.1f} MiB (train, val and test clips + every caption's text embedding)")
    return 0


def _seed_means(row: dict) -> dict[str, float]:
    """A row's per-metric mean over its repeats."""
    return {k: float(np.mean(v)) for k, v in row["metrics"].items() if len(v)}


def run_cmd(args) -> int:
    import torch

    from server.model.checkpoint import load_checkpoint
    from server.align.finetune_report import EvalSettings, evaluate_models, load_eval_context
    from server.model.inference import default_checkpoint_dir
    from server.align.preference_training import FinetuneConfig, FinetuneInputs, finetune
    from server.simulate_picks import ArtistRule, corpus_prompts, simulate_in_process
    from server.model.text_encoder import DEFAULT_ENCODER, TextCache, default_cache_path

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.batch_size, args.sim_captions, args.sim_n = 2, 4, 8, 2
        args.eval_repeats, args.seeds = 1, args.seeds if args.seeds_given else "0"
        args.eval_max_clips = args.eval_max_clips or 32
        args.corpus_clips = args.corpus_clips or 64
        if args.sim_none_below is None:
            args.sim_none_below = -1e9
    if args.sim_none_below is None:
        args.sim_none_below = ArtistRule().none_below
    seeds = [int(s) for s in parse_list(args.seeds)]
    methods = parse_list(args.methods)
    sources = parse_list(args.sources)
    bad = [m for m in methods if m not in METHODS] + [s for s in sources if s not in SOURCES]
    if bad:
        sys.exit(f"sopo_experiment.py: unknown methods/sources {bad}")
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = Path(args.base) if args.base else default_checkpoint_dir()
    text_cache = TextCache(DEFAULT_ENCODER, args.text_cache or default_cache_path(DEFAULT_ENCODER))
    t_start = time.time()

    def out_of_time() -> bool:
        return bool(args.max_minutes) and time.time() - t_start > 60 * args.max_minutes

    settings = EvalSettings(evaluator=Path(args.evaluator), corpus=Path(args.corpus), text_cache=text_cache,
                            repeats=args.eval_repeats, max_clips=args.eval_max_clips, device=device)
    context = load_eval_context(settings)
    test = context[1]
    print(f"test split: {len(test)} clips, R-precision batches of {test.r_batch}; device {device}", flush=True)
    base_model, info = load_checkpoint(base, device)

    real_path = out / "results" / "real.json"
    if not real_path.exists():
        row = evaluation.evaluate_real(context[0], test, max(args.eval_repeats, 2), 0, context[2])
        real_path.write_text(json.dumps(row))

    for seed in seeds:  # the base model, scored with each seed's captions and noise
        path = out / "results" / f"base-s{seed}.json"
        if not path.exists():
            settings.seed = seed
            row = evaluate_models([("base", base_model)], info, settings, device, context=context)[0]
            path.write_text(json.dumps({"source": "-", "method": "base", "seed": seed, "row": row}))

    db = out / "picks.db"
    if "picks" in sources and not db.exists():
        from server.align.preference_data import CachedTextConditioner
        from server.data.corpus import Corpus
        from server.model.inference import MotionGenerator
        from server.eval.reward import RewardModel

        reward = RewardModel.load(args.reward, device, text_cache=text_cache)
        gen = MotionGenerator(base_model, info, torch.device(device), base)
        gen.text = CachedTextConditioner(text_cache, device)
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

    variants = []  # (method, tau, label): SoPo once per --sopo-taus value
    for method in methods:
        if method == "sopo" and args.sopo_taus:
            variants += [(method, float(t), f"sopo-tau{float(t):g}") for t in parse_list(args.sopo_taus)]
        else:
            variants.append((method, args.tau, method))
    left = []
    for source in sources:
        for method, tau, label in variants:
            for seed in seeds:
                name = f"{source}-{label}-s{seed}"
                path = out / "results" / f"{name}.json"
                if path.exists():
                    continue
                if out_of_time():
                    left.append(name)
                    continue
                cfg = FinetuneConfig(method=method, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                     warmup=args.warmup, beta=args.beta, tau=tau, C=args.C, scale=args.scale,
                                     k=args.k, corpus_clips=args.corpus_clips, seed=seed, device=device,
                                     progress=False, log_every=max(1, args.steps // 20))
                inputs = FinetuneInputs(base=base, picks=db if source == "picks" else None,
                                        corpus=Path(args.corpus), corpus_clips=source == "corpus",
                                        reward=Path(args.reward), text_cache=Path(text_cache.path),
                                        models_dirs=[base.parent])
                t0 = time.time()
                res = finetune(cfg, inputs, out / "checkpoints" / name, command=f"sopo_experiment {name}",
                               log=None, keep_models=True)
                train_s = time.time() - t0
                settings.seed = seed
                row = evaluate_models([(name, res.policy)], info, settings, device, context=context)[0]
                path.write_text(json.dumps({"source": source, "method": label, "seed": seed, "row": row,
                                            "train_seconds": round(train_s, 1),
                                            "eval_seconds": round(time.time() - t0 - train_s, 1),
                                            "final": res.history[-1], "summary": res.summary}, default=str))
                print(f"{name}: {train_s:.0f} s training; " + ", ".join(
                    f"{k} {v:.4f}" for k, v in _seed_means(row).items() if k in TABLE_METRICS), flush=True)
                del res
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    table = write_table(out, args)
    print(table)
    if left:
        print(f"out of time: {len(left)} runs left ({', '.join(left[:6])}{' ...' if len(left) > 6 else ''}); "
              "run the same command again", flush=True)
    return 0


def collect(out: Path) -> tuple[dict | None, dict[tuple[str, str], list[dict]]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    real = None
    for f in sorted((out / "results").glob("*.json")):
        obj = json.loads(f.read_text())
        if f.name == "real.json":
            real = obj
            continue
        groups.setdefault((obj["source"], obj["method"]), []).append(obj)
    return real, groups


def _cell(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    mean, ci = metrics.mean_and_interval(values)
    return f"{mean:.{digits}f}±{ci:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def write_table(out: Path, args=None) -> str:
    real, groups = collect(out)
    head = ["Preferences", "Method", "seeds", "Top-1 ↑", "Top-2 ↑", "Top-3 ↑", "FID ↓", "MM-Dist ↓", "Diversity →",
            "MM-Dist vs base", "losers r>=tau", "train s/run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if real is not None:
        s = _seed_means(real)
        lines.append("| - | Real | - | " + " | ".join(f"{s[k]:.3f}" if k in s else "-" for k in TABLE_METRICS)
                     + " | - | - | - |")
    base_runs = {r["seed"]: _seed_means(r["row"]) for r in groups.get(("-", "base"), [])}
    rank = {"sft": 0, "offline-dpo": 1, "online-dpo": 2}
    order = [("-", "base")] + sorted((k for k in groups if k[0] != "-"),
                                     key=lambda k: (SOURCES.index(k[0]) if k[0] in SOURCES else 9, rank.get(k[1], 3), k[1]))
    for key in order:
        runs = groups.get(key)
        if not runs:
            continue
        means = [_seed_means(r["row"]) for r in runs]
        cells = [_cell([m[k] for m in means if k in m]) for k in TABLE_METRICS]
        rel = [(m["mm_dist"] - base_runs[r["seed"]]["mm_dist"]) / base_runs[r["seed"]]["mm_dist"]
               for r, m in zip(runs, means) if r["seed"] in base_runs and key[1] != "base"]
        rel_cell = "-" if not rel else f"{100 * np.mean(rel):+.2f}%"
        train_s = [r.get("train_seconds") for r in runs if r.get("train_seconds") is not None]
        train_cell = f"{np.mean(train_s):.0f}" if train_s else "-"
        frac = [r["final"]["frac_loser_above_tau"] for r in runs if "frac_loser_above_tau" in r.get("final", {})]
        frac_cell = f"{np.mean(frac):.2f}" if frac else "-"
        lines.append(f"| {key[0]} | {method_name(key[1])} | {len(runs)} | " + " | ".join(cells)
                     + f" | {rel_cell} | {frac_cell} | {train_cell} |")
    example = next((r for k, runs in groups.items() if k[1] != "base" for r in runs), None)
    notes = ["", "Each cell: mean over fine-tuning seeds (each seed: the mean over its evaluation repeats) ± 95% "
             "interval over seeds (1.96 std / sqrt(n)). MM-Dist vs base: mean paired relative change (same "
             "captions and noise per seed). Same optimizer steps and batch size for every method. losers r>=tau: "
             "share of online losers whose reward is >= tau in the last logging window (SoPo trains those pairs on "
             "the preferred term only)."]
    if example is not None:
        hp = example["summary"]["hyperparameters"]
        notes.append(f"Settings: {hp['steps']} steps x batch {hp['batch_size']}, lr {hp['lr']:g}, beta {hp['beta']:g}, "
                     f"tau {hp['tau']:g} (SoPo rows may name another), C {hp['C']:g}, T*w(t) {hp['scale']:g}, K {example['summary']['k']}, "
                     f"device {example['summary']['device']}, base {example['summary']['base_name']}.")
    sim = out / "simulated_picks.json"
    if sim.exists():
        s = json.loads(sim.read_text())
        notes.append(f"Simulated picks: {s['captions']} captions, {s['chosen']} chosen, {s['none_good']} none-good "
                     f"(rule: reward - skate/penetration penalties, {json.dumps(s['rule'])}).")
    if args is not None:
        notes.append("Command: python server/sopo_experiment.py " + " ".join(sys.argv[1:]))
    text = "\n".join(lines + notes) + "\n"
    (out / "results.md").write_text(text)
    return text
