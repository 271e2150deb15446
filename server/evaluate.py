"""Text-to-motion metrics (Guo et al.'s protocol) for the Real test set and any generator checkpoints.

    python server/evaluate.py --checkpoint default --repeats 20 --degrade
    python server/evaluate.py --checkpoint runs/a runs/b --repeats 20 --out runs/eval

Prints a Markdown table (mean ± 95% interval over repeats) and writes `<out>/metrics.md` and
`<out>/metrics.json`. Without --checkpoint only the Real row (and --degrade rows) is computed.
Each --checkpoint is a name from the models folder (DATA/models), a bundled name, `default`
(the bundled default), or a checkpoint folder. Evaluation v2 (server/eval/):

    python server/evaluate.py --checkpoint default --heldout        # + rows in held-out wording
    python server/evaluate.py --ladder   # the separation ladder
    python server/evaluate.py --reward-auc --checkpoint default      # reward AUCs vs hard negatives
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from server.data.corpus import Corpus, CorpusError  # noqa: E402
from server.eval import evaluation, ladder  # noqa: E402
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR, Evaluator  # noqa: E402
from server.model.checkpoint import CheckpointError  # noqa: E402
from server.model.device import DeviceError, resolve_device  # noqa: E402
from server.model.text_embeddings import open_cache  # noqa: E402
from server.service.models_folder import (CheckpointNameError, default_data_dir, default_models_dir,  # noqa: E402
                                          locate_checkpoint)

PROG = "evaluate.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", default=[],
                   help="generator checkpoints: names in DATA/models or server/checkpoints, 'default', or folders")
    p.add_argument("--data", type=Path, default=None,
                   help=f"data folder whose models/ holds named checkpoints (default {default_data_dir()})")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--evaluator", type=Path, default=DEFAULT_EVALUATOR_DIR)
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--split", default="test")
    p.add_argument("--max-clips", type=int, default=None, help="evaluate on a random subset of the split")
    p.add_argument("--degrade", action="store_true", help="also score noisy, time-reversed and text-shuffled real motions")
    p.add_argument("--mm-repeats", type=int, default=None, help="repeats that also compute MultiModality (default all)")
    p.add_argument("--mm-captions", type=int, default=100)
    p.add_argument("--mm-generations", type=int, default=30)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=32, help="generation requests per call")
    p.add_argument("--r-batch", type=int, default=32, help="R-precision batch size (Guo et al.: 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--text-cache", type=Path, default=None,
                   help="text cache file (default data/cache/text/all-MiniLM-L6-v2.safetensors)")
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    # the prompt-following suite and the physical metrics (server/eval/suite.py)
    p.add_argument("--suite", action="store_true", help="score the prompt-following suite and physical metrics instead")
    p.add_argument("--check-checkers", action="store_true", help="with or without --suite: the checkers on real clips")
    p.add_argument("--suite-file", type=Path, default=None, help="default server/eval/prompt_suite_v1.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="suite seeds (default 0 1 2)")
    p.add_argument("--candidates", type=int, default=4, help="suite candidates per prompt and seed (default 4)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default torch's)")
    # evaluation v2 (server/eval/evaluation.py, ladder.py, reward_report.py)
    p.add_argument("--heldout", action="store_true", help="also rows with the test captions in held-out wording")
    p.add_argument("--pool-size", type=int, default=32, help="clips per hard retrieval pool (default 32)")
    p.add_argument("--ladder", action="store_true", help="the separation ladder instead (suite + retrieval per rung)")
    p.add_argument("--weak", type=Path, default=ladder.WEAK_CHECKPOINT,
                   help="--ladder: the weak model's checkpoint folder (default: the bundled server/eval/weak-mld)")
    p.add_argument("--noise", type=float, nargs=2, default=None, metavar=("RAD", "M"),
                   help="--ladder: the Real + noise rung's rotation (rad) and pelvis (m) drift (default 1.0 0.5)")
    p.add_argument("--plot", type=Path, default=Path("docs/ladder.png"), help="--ladder: where the plot goes")
    p.add_argument("--reward-auc", action="store_true",
                   help="the reward model's (and evaluator's) AUC against hard negatives and --checkpoint's samples")
    p.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR, help="--reward-auc: the reward model folder")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    if args.suite or args.check_checkers:  # prompt-following suite + physical metrics: one call into server/eval/suite.py
        from server.eval import suite

        if args.threads:
            torch.set_num_threads(args.threads)
        try:
            paths = [locate_checkpoint(c, default_models_dir(args.data)) for c in args.checkpoint]
            named = [(f"default ({p.name})" if c == "default" else c, p) for c, p in zip(args.checkpoint, paths)]
            suite.report(named, args.corpus, args.suite_file or suite.DEFAULT_SUITE, args.seeds, args.candidates, args.out,
                         resolve_device(args.device), args.steps, args.guidance, args.check_checkers,
                         lambda it, desc: tqdm(it, desc=desc, dynamic_ncols=True),
                         " ".join(["python", "server/evaluate.py"] + (argv if argv is not None else sys.argv[1:])))
        except (DeviceError, CheckpointNameError, CheckpointError, CorpusError, suite.SuiteError) as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.ladder or args.reward_auc:  # evaluation v2: one call into server/eval/ladder.py or reward_report.py
        return _v2(args, argv)
    try:   # every user mistake shows here, before the slow part
        args.device = resolve_device(args.device)
        checkpoints = [locate_checkpoint(c, default_models_dir(args.data)) for c in args.checkpoint]
        evaluator = Evaluator.load(args.evaluator, args.device)
        corpus = Corpus(args.corpus)
        test = evaluation.load_test_set(corpus, args.split, max_clips=args.max_clips, seed=args.seed,
                                        r_batch=args.r_batch, pool_size=args.pool_size)
    except (DeviceError, CheckpointNameError, CorpusError, FileNotFoundError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    cache = open_cache(args.text_cache, evaluator.cfg.text_encoder)
    texts = evaluation.text_embedder(evaluator, test, cache=cache)
    print(f"{len(test)} {args.split} clips, {len(texts.texts)} distinct captions; evaluator {args.evaluator}")
    bar = lambda it, desc: tqdm(it, desc=desc, dynamic_ncols=True)  # noqa: E731

    rows = [evaluation.evaluate_real(evaluator, test, args.repeats, args.seed, texts, bar)]
    if args.heldout:
        rows.append(evaluation.evaluate_real(evaluator, test, args.repeats, args.seed, texts, bar, wording="heldout"))
    if args.degrade:
        rows += evaluation.evaluate_degraded(evaluator, test, args.repeats, args.seed, texts, bar)
    for spec, path in zip(args.checkpoint, checkpoints):
        from server.model.inference import MotionGenerator

        try:
            generator = MotionGenerator.load(path, device=args.device)
        except CheckpointError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 2
        gen = evaluation.generator_fn(generator, args.batch_size, args.guidance, args.steps)
        name = f"default ({path.name})" if spec == "default" else str(spec)
        rows.append(evaluation.evaluate_generator(
            name, evaluator, gen, test, args.repeats, args.seed, args.mm_repeats, args.mm_captions,
            args.mm_generations, texts=texts, progress=bar))
        rows[-1]["settings"] = {"checkpoint": str(path), "steps": args.steps or generator.default_steps,
                                "guidance": generator.default_guidance if args.guidance is None else args.guidance,
                                "foot_cleanup": True}
        if args.heldout:
            rows.append(evaluation.evaluate_generator(name, evaluator, gen, test, args.repeats, args.seed, 0,
                                                      texts=texts, progress=bar, wording="heldout"))
        del generator
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    table = evaluation.markdown_table(rows)
    print(table)
    floor = rows[0].get("fid_floor_two_halves")
    note = (f"\n\n{len(test)} {args.split} clips; R-precision over batches of {test.r_batch} distinct captions "
            f"({rows[0]['items_per_repeat']} clips per repeat; chance top-3 = {min(3, test.r_batch) / test.r_batch:.3f}); {args.repeats} repeats, mean ± 95% interval. "
            f"FID noise floor (two random halves of the real test set): {evaluation.format_cell(floor)}.")
    if test.pool_families():
        note += (f" Hard pools: {test.pool_size} clips of one action family {test.pool_families()}, same-key clips "
                 f"not competing.")
    for row in rows:
        if row.get("settings"):
            note += (f" {row['name']}: {row['settings']['steps']} steps, guidance {row['settings']['guidance']:g}, "
                     f"foot cleanup on.")
    print(note.strip())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.md").write_text(table + note + "\n")
    result = {"rows": rows, "evaluator": str(args.evaluator), "evaluator_meta": evaluator.meta,
              "corpus": str(args.corpus), "corpus_fingerprint": corpus.fingerprint, "split": args.split,
              "clips": len(test), "repeats": args.repeats, "seconds": round(time.time() - t0, 1),
              "command": " ".join(["python", "server/evaluate.py"] + (argv if argv is not None else sys.argv[1:]))}
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out / 'metrics.md'} and {args.out / 'metrics.json'}")
    return 0


def _v2(args: argparse.Namespace, argv: list[str] | None) -> int:
    """--ladder (server/eval/ladder.py) or --reward-auc (server/eval/reward_report.py)."""
    from server.eval import reward_report
    from server.eval.suite import DEFAULT_SUITE, SuiteError

    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(["python", "server/evaluate.py"] + (argv if argv is not None else sys.argv[1:]))
    bar = lambda it, desc: tqdm(it, desc=desc, dynamic_ncols=True)  # noqa: E731
    try:
        device = resolve_device(args.device)
        paths = [locate_checkpoint(c, default_models_dir(args.data)) for c in (args.checkpoint or ["default"])]
        if args.ladder:
            weak = locate_checkpoint(str(args.weak), default_models_dir(args.data)) if args.weak else None
            noise = tuple(args.noise or (ladder.NOISE_RAD, ladder.NOISE_M))
            ladder.run(ladder.default_rungs(paths[0], weak, *noise), args.corpus, args.evaluator,
                       args.suite_file or DEFAULT_SUITE, args.seeds, args.candidates, args.repeats, args.seed, device,
                       args.text_cache, noise, args.out, args.plot, bar, command, r_batch=args.r_batch,
                       pool_size=args.pool_size)
        else:
            name = f"default ({paths[0].name})" if not args.checkpoint or args.checkpoint[0] == "default" else str(paths[0])
            reward_report.report([("reward", args.reward), ("evaluator", args.evaluator)], args.corpus, (name, paths[0]),
                                 args.split, args.seed, device, args.text_cache, args.out, bar, command)
    except (DeviceError, CheckpointNameError, CheckpointError, CorpusError, SuiteError, FileNotFoundError,
            ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
