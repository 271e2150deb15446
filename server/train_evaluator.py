"""Train the evaluator (metrics) or the reward model (SoPo) on a corpus.

    python server/train_evaluator.py --kind evaluator            # -> server/checkpoints/evaluator
    python server/train_evaluator.py --kind reward               # -> server/checkpoints/reward

The reward model trains with hard negatives (mirror, time reversal, x0.5 / x2 speed, another style
of the same action: server/eval/hard_negatives.py) unless `--hard-negatives` says otherwise; both
train on train-half wording only (captions with held-out-half words are left out).

Sentence embeddings come from the shared text cache (`server/model/text_encoder.py`; default
`data/cache/text/all-MiniLM-L6-v2.safetensors`, or --text-cache). Captions missing from it
are encoded with MiniLM where installed and saved into it. On a machine without MiniLM
(the GPU box), write the cache first where it is installed and carry the file:

    python server/model/text_encoder.py --corpus data/corpus
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from server.data.corpus import Corpus, CorpusError  # noqa: E402
from server.eval.contrastive import WORDINGS, TrainConfig, collect_texts, train, training_texts  # noqa: E402
from server.eval.hard_negatives import NEGATIVE_TYPES  # noqa: E402
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR  # noqa: E402
from server.model.device import DeviceError, resolve_device  # noqa: E402
from server.model.text_embeddings import open_cache  # noqa: E402
from server.model.text_encoder import TextEncoderError  # noqa: E402

PROG = "train_evaluator.py"

TINY = {"hidden": 32, "embed_dim": 32, "layers": 1, "heads": 2, "max_frames": 48, "dropout": 0.0}


def text_cache_for(corpus_path: Path, cache_path: Path | None, captions_per_clip: int | None = None):
    """The text cache holding every caption training reads (encoding and saving the missing ones).

    Raises CorpusError, or TextEncoderError saying how to make the cache elsewhere."""
    cache = open_cache(cache_path)
    try:
        corpus = Corpus(corpus_path)
        cache.ensure(collect_texts(corpus) if captions_per_clip is None else training_texts(corpus, captions_per_clip))
    except TextEncoderError as exc:
        raise TextEncoderError(f"{exc}; run `python server/model/text_encoder.py --corpus {corpus_path}` where "
                               f"MiniLM is installed and pass the file with --text-cache") from None
    saved = cache.save()
    if saved:
        print(f"text cache: {len(cache)} texts -> {saved}")
    return cache


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=("evaluator", "reward"), default="evaluator")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--out", type=Path, default=None, help="checkpoint folder (default server/checkpoints/<kind>)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="default: 1234 (evaluator), 271828 (reward)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--model", type=str, default=None, help='JSON overrides of the model config, e.g. \'{"hidden": 128}\'')
    p.add_argument("--tiny", action="store_true", help="tiny model (tests and smoke runs)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--text-cache", type=Path, default=None,
                   help="text cache file (default data/cache/text/all-MiniLM-L6-v2.safetensors)")
    p.add_argument("--hard-negatives", nargs="*", default=None, metavar="TYPE",
                   help=f"hard negatives among {' '.join(NEGATIVE_TYPES)} (none given: none; default: the reward "
                        f"model all, the evaluator none)")
    p.add_argument("--wording", choices=WORDINGS, default="train",
                   help="train: leave out captions with held-out-half words (default); all: keep every caption")
    p.add_argument("--captions-per-clip", type=int, default=None,
                   help="train on at most this many captions per clip (a subset fixed by the clip id; default all)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        overrides = json.loads(args.model) if args.model else {}
        cache = text_cache_for(args.corpus, args.text_cache, args.captions_per_clip)
    except json.JSONDecodeError as exc:
        print(f"{PROG}: --model is not JSON: {exc}", file=sys.stderr)
        return 2
    except (DeviceError, CorpusError, TextEncoderError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    cfg = TrainConfig(kind=args.kind, hard_negatives=args.hard_negatives, wording=args.wording,
                      captions_per_clip=args.captions_per_clip)
    for name in ("epochs", "batch_size", "lr", "seed", "max_steps"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    try:
        cfg.negative_types()
    except ValueError as exc:
        print(f"{PROG}: --hard-negatives: {exc}", file=sys.stderr)
        return 2
    cfg.model = {**(TINY if args.tiny else {}), **overrides}
    out = args.out or (DEFAULT_EVALUATOR_DIR if args.kind == "evaluator" else DEFAULT_REWARD_DIR)
    summary = train(args.corpus, out, cfg, text_cache=cache, device=device, progress=not args.no_progress)
    print(json.dumps({k: summary[k] for k in ("kind", "best_epoch", "best_val", "train_seconds", "device")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
