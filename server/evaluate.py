"""Text-to-motion metrics (Guo et al.'s protocol) for the Real test set and any generator checkpoints.

    python server/evaluate.py --checkpoint default --repeats 20 --degrade
    python server/evaluate.py --checkpoint runs/a runs/b --repeats 20 --out runs/eval

Prints a Markdown table (mean ± 95% interval over repeats) and writes `<out>/metrics.md` and
`<out>/metrics.json`. Without --checkpoint only the Real row (and --degrade rows) is computed.
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

from server.eval import evaluation  # noqa: E402
from server.data.corpus import Corpus  # noqa: E402
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, Evaluator  # noqa: E402
from server.model.text_embeddings import open_cache  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", default=[], help="generator checkpoint folders ('default' = bundled)")
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
    args = p.parse_args(argv)

    t0 = time.time()
    evaluator = Evaluator.load(args.evaluator, args.device)
    corpus = Corpus(args.corpus)
    test = evaluation.load_test_set(corpus, args.split, max_clips=args.max_clips, seed=args.seed,
                                    r_batch=args.r_batch)
    cache = open_cache(args.text_cache, evaluator.cfg.text_encoder)
    texts = evaluation._TextEmbedder(evaluator, [c for caps in test.captions for c in caps], cache=cache)
    print(f"{len(test)} {args.split} clips, {len(texts.texts)} distinct captions; evaluator {args.evaluator}")
    bar = lambda it, desc: tqdm(it, desc=desc, dynamic_ncols=True)  # noqa: E731

    rows = [evaluation.evaluate_real(evaluator, test, args.repeats, args.seed, texts, bar)]
    if args.degrade:
        rows += evaluation.evaluate_degraded(evaluator, test, args.repeats, args.seed, texts, bar)
    for ckpt in args.checkpoint:
        from server.model.inference import MotionGenerator, default_checkpoint_dir

        path = default_checkpoint_dir() if ckpt == "default" else Path(ckpt)
        generator = MotionGenerator.load(path, device=args.device)
        gen = evaluation.generator_fn(generator, args.batch_size, args.guidance, args.steps)
        rows.append(evaluation.evaluate_generator(
            f"default ({path.name})" if ckpt == "default" else str(ckpt), evaluator, gen, test, args.repeats, args.seed, args.mm_repeats, args.mm_captions,
            args.mm_generations, texts=texts, progress=bar))
        del generator
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    table = evaluation.markdown_table(rows)
    print(table)
    floor = rows[0].get("fid_floor_two_halves")
    note = (f"\n\n{len(test)} {args.split} clips; R-precision over batches of {test.r_batch} distinct captions "
            f"({rows[0]['items_per_repeat']} clips per repeat; chance top-3 = {min(3, test.r_batch) / test.r_batch:.3f}); {args.repeats} repeats, mean ± 95% interval. "
            f"FID noise floor (two random halves of the real test set): {evaluation.format_cell(floor)}.")
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


if __name__ == "__main__":
    raise SystemExit(main())
