"""Fine-tune a checkpoint on artists' picks (and/or the corpus): offline DPO by default, SoPo and the other baselines.

    python server/finetune.py --picks ~/.local/share/sopo-motion/picks.db --server tcp://127.0.0.1:5555
    python server/finetune.py --picks picks.db --corpus data/corpus --method sopo --server tcp://127.0.0.1:5555
    python server/finetune.py --corpus data/corpus --method offline-dpo --steps 500 --batch-size 64
    torchrun --nproc_per_node 2 server/finetune.py --picks picks.db ...             # DistributedDataParallel
    python server/finetune.py --server tcp://127.0.0.1:5555 --reload NAME           # only tell a server to load NAME

Methods: offline-dpo (the default with --picks: the artist's chosen candidate vs the ones
rejected), sopo (offline preferred vs online lowest-reward sample), online-dpo (best vs worst
policy sample), sft (the preferred motions; the default on the corpus alone). The defaults
(offline DPO, T*w(t) = 1000, lr 3e-5, 200 steps of batch 16) are what moved a simulated
artist's taste into the model without losing prompt following (README, "Does the model learn
an artist's taste?"); SoPo's tau defaults to the median reward of the model's own samples
(--tau-quantile 0.5), not the paper's 0.45. The new
checkpoint goes to --out with report.md, curves.png and finetune_log.json beside the weights.
Default --out: with --server, the models folder that server tells in hello when it runs on
this machine (then it reloads the new checkpoint by its folder name); for a server on another
machine the checkpoint stays in this machine's default models folder and finetune.py prints
how to copy it there and `--reload` it; without --server, the default server's models folder.
A batch is min(--batch-size, usable pairs): a handful of picks trains with a smaller batch.
See server/align/sopo.py for the losses and server/align/preference_training.py for the loop.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.model.checkpoint import CheckpointError  # noqa: E402
from server.data.corpus import CorpusError  # noqa: E402
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR  # noqa: E402
from server.align.preference_data import PreferenceDataError  # noqa: E402
from server.align.preference_training import FinetuneConfig, FinetuneInputs  # noqa: E402
from server.align.server_link import (ServerFolder, ask_models_dir, copy_instructions, new_checkpoint_dir,  # noqa: E402
                                      reload_server)
from server.service.models_folder import default_models_dir  # noqa: E402
from server.align.sopo import METHODS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT / "data" / "corpus"


def parse_args(argv):
    d = FinetuneConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--picks", type=Path, help="the server's picks.db")
    p.add_argument("--corpus", type=Path, help="corpus folder: its train clips become preferred motions too (default "
                   "with --picks: data/corpus when it exists, only to give 'none are good' picks whose prompt is a "
                   "corpus caption that caption's motion)")
    p.add_argument("--no-corpus", action="store_true", help="with --picks: use no corpus at all")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="default: offline-dpo with --picks (the only method that learned an artist's taste), sft on "
                   "the corpus alone (the best on the evaluator there); see the README")
    p.add_argument("--base", type=Path, help="checkpoint folder to start from (default: the bundled default)")
    p.add_argument("--out", type=Path, help="new checkpoint folder (default: <server models folder>/<method>-<time>)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=16,
                   help="pairs per step (the paper: 64; picks DBs are small); fewer when fewer pairs are usable")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--beta", type=float, default=d.beta)
    p.add_argument("--tau", type=float, default=None, help="SoPo's reward threshold (given: no calibration)")
    p.add_argument("--tau-quantile", type=float, default=0.5,
                   help="without --tau: SoPo's tau = this quantile of the rewards of K samples of the base model per "
                   "training caption (0: the paper's 0.45)")
    p.add_argument("--C", type=float, default=d.C)
    p.add_argument("--scale", type=float, default=1000.0,
                   help="the constant T*w(t) of Diffusion-DPO (see sopo.py; 1 leaves the sigmoid linear)")
    p.add_argument("--k", type=int, default=d.k, help="online samples per caption (0: 4 for MDM, 2 for MLD)")
    p.add_argument("--sample-steps", type=int, default=d.sample_steps, help="0: the model's default")
    p.add_argument("--guidance", type=float, default=d.guidance, help="< 0: the model's default")
    p.add_argument("--cond-drop", type=float, default=d.cond_drop)
    p.add_argument("--vel-weight", type=float, default=d.vel_weight)
    p.add_argument("--picks-fraction", type=float, default=d.picks_fraction,
                   help="share of each batch from picks when --corpus adds dataset motions")
    p.add_argument("--corpus-clips", type=int, default=0, help="at most this many corpus clips (0: all)")
    p.add_argument("--max-picks", type=int, default=None, help="use only the first (oldest) N picks")
    p.add_argument("--no-corpus-clips", action="store_true",
                   help="use --corpus only to find preferred motions for 'none are good' picks")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR, help="reward model folder")
    p.add_argument("--evaluator", type=Path, default=DEFAULT_EVALUATOR_DIR)
    p.add_argument("--eval-corpus", type=Path, help="corpus whose test split scores before/after (default: "
                   "--corpus, else data/corpus)")
    p.add_argument("--eval-repeats", type=int, default=2, help="0 skips the before/after evaluation")
    p.add_argument("--eval-max-clips", type=int, default=None)
    p.add_argument("--text-cache", type=Path, help="text-embedding cache file (default data/cache/text/...)")
    p.add_argument("--feature-cache", type=Path, help="corpus feature cache folder (default data/cache)")
    p.add_argument("--models", type=Path, action="append", default=[],
                   help="folders holding the checkpoints the picks were made on (default: the server's models folder)")
    p.add_argument("--skip-family-check", action="store_true")
    p.add_argument("--server", help="tell the server at this endpoint to reload the new checkpoint")
    p.add_argument("--reload", metavar="NAME", help="with --server: only send reload NAME, train nothing")
    p.add_argument("--server-key", type=Path, help="CURVE: the server's public key file")
    p.add_argument("--client-secret", type=Path, help="CURVE: this client's secret key file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.method is None:
        args.method = "offline-dpo" if args.picks is not None else "sft"
    if args.reload:
        if not args.server:
            sys.exit("finetune.py: --reload needs --server tcp://HOST:PORT")
        return _reload(args, args.reload)

    from server.align.finetune_report import evaluate_result, write_report
    from server.align.preference_training import finetune

    where = None
    if args.server:  # ask first: the checkpoint goes to the server's own models folder when it runs here
        where = _ask_server(args)
        if where is None:
            return 3
    models_dir = (where.models_dir if where and where.models_dir else None) or default_models_dir()
    out = args.out or new_checkpoint_dir(models_dir, args.method)
    if where and where.models_dir and Path(out).resolve().parent != where.models_dir.resolve():
        print(f"finetune.py: note: --out {out} is not in the server's models folder {where.models_dir}; the "
              "server can load it only once it is there", file=sys.stderr)
    cfg, inputs = _config_and_inputs(args, out, models_dir)
    command = "python server/finetune.py " + " ".join(argv)
    try:
        cfg.validate()
    except ValueError as exc:
        print(f"finetune.py: {exc}", file=sys.stderr)
        return 2
    if (Path(out) / "config.json").exists():
        print(f"finetune.py: refused: {out} already holds a checkpoint; choose another --out", file=sys.stderr)
        return 2
    try:
        result = finetune(cfg, inputs, out, command=command, keep_models=args.eval_repeats > 0)
    except (PreferenceDataError, CheckpointError, CorpusError) as exc:
        print(f"finetune.py: refused: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) != 0:
        return 0

    eval_corpus = args.eval_corpus or args.corpus or (REPO_ROOT / "data" / "corpus")
    rows, note = evaluate_result(result, args.evaluator, eval_corpus, args.text_cache, args.eval_repeats,
                                 args.eval_max_clips, args.seed, log=print)
    report = write_report(result.checkpoint, result.summary, result.history, rows, note)
    print(f"report {report}")
    print(f"checkpoint {result.checkpoint}")
    return _hand_over(args, where, result.checkpoint, models_dir)


def _config_and_inputs(args, out: Path, models_dir: Path) -> tuple[FinetuneConfig, FinetuneInputs]:
    from server.model.inference import default_checkpoint_dir

    cfg = FinetuneConfig(method=args.method, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         warmup=args.warmup, weight_decay=args.weight_decay, beta=args.beta,
                         tau=FinetuneConfig.tau if args.tau is None else args.tau,
                         tau_quantile=args.tau_quantile if args.tau is None else 0.0, C=args.C,
                         scale=args.scale, k=args.k, sample_steps=args.sample_steps, guidance=args.guidance,
                         cond_drop=args.cond_drop, vel_weight=args.vel_weight, picks_fraction=args.picks_fraction,
                         corpus_clips=args.corpus_clips, seed=args.seed, device=args.device, amp=not args.no_amp,
                         log_every=args.log_every, progress=not args.no_progress)
    search = list(args.models) or [models_dir]
    search += [Path(out).parent, REPO_ROOT / "server" / "checkpoints"]
    corpus, corpus_clips = args.corpus, not args.no_corpus_clips
    if corpus is None and args.picks is not None and not args.no_corpus and (DEFAULT_CORPUS / "clips.jsonl").is_file():
        corpus, corpus_clips = DEFAULT_CORPUS, False  # only for "none are good" picks on corpus captions
        print(f"corpus {DEFAULT_CORPUS}: gives 'none are good' picks on corpus captions their clip's motion "
              "(--no-corpus: none)")
    inputs = FinetuneInputs(base=args.base or default_checkpoint_dir(), picks=args.picks, corpus=corpus,
                            reward=args.reward if args.method != "sft" else None, text_cache=args.text_cache,
                            models_dirs=search, skip_family_check=args.skip_family_check,
                            corpus_clips=corpus_clips, feature_cache_dir=args.feature_cache, max_picks=args.max_picks)
    return cfg, inputs


def _hand_over(args, where: ServerFolder | None, checkpoint: Path, models_dir: Path) -> int:
    """Reload the server, or say how to get the checkpoint served."""
    name = checkpoint.name
    if where is not None and (where.models_dir is not None or args.out):
        return _reload(args, name, checkpoint)
    if where is not None:  # a server elsewhere: it cannot see this folder
        print(copy_instructions(args.server, checkpoint, where.told))
        return 0
    print(f"to use it: restart the server with `python server/serve.py --checkpoint {name}` (it looks in "
          f"{models_dir}), or load it into a running one with\n  python server/finetune.py --server "
          f"tcp://127.0.0.1:5555 --reload {name}")
    return 0


def _ask_server(args) -> ServerFolder | None:
    """The server's model and models folder (None after printing why it did not answer)."""
    from server.service.client import ServerError, ServerUnavailable
    try:
        return ask_models_dir(args.server, args.server_key, args.client_secret)
    except ServerUnavailable:
        print(f"finetune.py: no answer from {args.server}: start the server first, or leave out --server (then load "
              "the new checkpoint later with --server ... --reload NAME)", file=sys.stderr)
    except ServerError as exc:
        print(f"finetune.py: the server at {args.server} refused hello: {exc}", file=sys.stderr)
    return None


def _reload(args, name: str, folder: Path | None = None) -> int:
    from server.service.client import ServerError, ServerUnavailable
    try:
        model = reload_server(args.server, name, args.server_key, args.client_secret)
    except ServerError as exc:
        where = f" (copy {folder} into the server's models folder, DATA/models, first)" if folder else ""
        print(f"finetune.py: the server did not load {name!r}: {exc}{where}", file=sys.stderr)
        return 3
    except ServerUnavailable as exc:
        print(f"finetune.py: no answer from {args.server}: {exc}; restart the server with --checkpoint {name}",
              file=sys.stderr)
        return 3
    print(f"server {args.server} now serves {model} (checkpoint {name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
