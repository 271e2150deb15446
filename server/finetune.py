"""Fine-tune a checkpoint on artists' picks (and/or the corpus) with SoPo or a baseline.

    python server/finetune.py --picks ~/.local/share/sopo-motion/picks.db          # SoPo on the picks
    python server/finetune.py --picks picks.db --corpus data/corpus --method sopo --server tcp://127.0.0.1:5555
    python server/finetune.py --corpus data/corpus --method offline-dpo --steps 500 --batch-size 64
    torchrun --nproc_per_node 2 server/finetune.py --picks picks.db ...             # DistributedDataParallel
    python server/finetune.py --server tcp://127.0.0.1:5555 --reload NAME           # only tell a server to load NAME

Methods: sopo (offline preferred vs online lowest-reward sample), offline-dpo (chosen vs
rejected), online-dpo (best vs worst policy sample), sft (the preferred motions). The new
checkpoint goes to --out (default: the server's models folder, so `reload` finds it by its
folder name) with report.md, curves.png and finetune_log.json beside the weights.
See server/align/sopo.py for the losses and server/align/preference_training.py for the loop.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.model.checkpoint import CheckpointError  # noqa: E402
from server.data.corpus import CorpusError  # noqa: E402
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR  # noqa: E402
from server.align.preference_data import PreferenceDataError  # noqa: E402
from server.align.preference_training import FinetuneConfig, FinetuneInputs  # noqa: E402
from server.align.sopo import METHODS  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_models_dir() -> Path:
    """The models folder of a server started with the default data folder (reload finds names there)."""
    try:
        from server.service.service import default_data_dir
    except ImportError:  # no pyzmq on this machine: the same rule as server.service.service.default_data_dir
        if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
            return Path(os.environ["LOCALAPPDATA"]) / "sopo-motion" / "models"
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "sopo-motion" / "models"
    return default_data_dir() / "models"


def parse_args(argv):
    d = FinetuneConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--picks", type=Path, help="the server's picks.db")
    p.add_argument("--corpus", type=Path, help="corpus folder: its train clips become preferred motions too")
    p.add_argument("--method", choices=METHODS, default="sopo")
    p.add_argument("--base", type=Path, help="checkpoint folder to start from (default: the bundled default)")
    p.add_argument("--out", type=Path, help="new checkpoint folder (default: <server models folder>/<method>-<time>)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=16, help="pairs per step (the paper: 64; picks DBs are small)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--beta", type=float, default=d.beta)
    p.add_argument("--tau", type=float, default=d.tau)
    p.add_argument("--C", type=float, default=d.C)
    p.add_argument("--scale", type=float, default=d.scale, help="the constant T*w(t) of Diffusion-DPO (see sopo.py)")
    p.add_argument("--k", type=int, default=d.k, help="online samples per caption (0: 4 for MDM, 2 for MLD)")
    p.add_argument("--sample-steps", type=int, default=d.sample_steps, help="0: the model's default")
    p.add_argument("--guidance", type=float, default=d.guidance, help="< 0: the model's default")
    p.add_argument("--cond-drop", type=float, default=d.cond_drop)
    p.add_argument("--vel-weight", type=float, default=d.vel_weight)
    p.add_argument("--picks-fraction", type=float, default=d.picks_fraction,
                   help="share of each batch from picks when --corpus adds dataset motions")
    p.add_argument("--corpus-clips", type=int, default=0, help="at most this many corpus clips (0: all)")
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


def reload_server(endpoint: str, name: str, server_key=None, client_secret=None, timeout: float = 120.0) -> str:
    """Send `reload name`; returns the loaded model id. Raises ServerError / ServerUnavailable."""
    from server.service.client import MotionClient

    with MotionClient(endpoint, timeout=timeout, retries=0, server_key=server_key, client_secret=client_secret) as c:
        return c.reload(name, timeout=timeout).fields["model"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.reload:
        if not args.server:
            sys.exit("finetune.py: --reload needs --server tcp://HOST:PORT")
        return _reload(args, args.reload)

    from server.align.finetune_report import evaluate_result, write_report
    from server.model.inference import default_checkpoint_dir
    from server.align.preference_training import finetune

    base = args.base or default_checkpoint_dir()
    models_dir = default_models_dir()
    out = args.out or models_dir / f"{args.method}-{time.strftime('%Y%m%d-%H%M%S')}"
    cfg = FinetuneConfig(method=args.method, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         warmup=args.warmup, weight_decay=args.weight_decay, beta=args.beta, tau=args.tau, C=args.C,
                         scale=args.scale, k=args.k, sample_steps=args.sample_steps, guidance=args.guidance,
                         cond_drop=args.cond_drop, vel_weight=args.vel_weight, picks_fraction=args.picks_fraction,
                         corpus_clips=args.corpus_clips, seed=args.seed, device=args.device, amp=not args.no_amp,
                         log_every=args.log_every, progress=not args.no_progress)
    search = list(args.models) or [models_dir]
    search += [Path(out).parent, REPO_ROOT / "server" / "checkpoints"]
    inputs = FinetuneInputs(base=base, picks=args.picks, corpus=args.corpus,
                            reward=args.reward if args.method != "sft" else None, text_cache=args.text_cache,
                            models_dirs=search, skip_family_check=args.skip_family_check,
                            corpus_clips=not args.no_corpus_clips,
                            feature_cache_dir=args.feature_cache)
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
    name = result.checkpoint.name
    if args.server:
        return _reload(args, name, result.checkpoint)
    print(f"to use it: restart the server with `python server/serve.py --checkpoint {name}` (it looks in "
          f"{models_dir}), or load it into a running one with\n  python server/finetune.py --server "
          f"tcp://127.0.0.1:5555 --reload {name}")
    return 0


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
