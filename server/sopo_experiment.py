"""SoPo vs its baselines on our evaluator: base, SFT, offline DPO, online DPO, SoPo; equal budgets; 3 seeds.

Preferences come from (a) the corpus (the paper's setting: dataset motions preferred; the
DPO losers from the model) and (b) simulated picks (server/simulate_picks.py's rule, made
in-process from the base model: the same DB rows a server writes). Every method gets the
same number of optimizer steps and pairs per step; each (source, method, seed) run is
fine-tuned, then scored on the test split with the evaluator (the same captions and noise
seeds for every row of a seed: paired), and written to `<out>/results/*.json` so an
interrupted run resumes where it stopped. `<out>/results.md` holds the table: per method
the mean over seeds of each metric (each seed: the mean over `--eval-repeats` repeats) ±
the 95% interval over seeds.

On a CPU, a check that everything runs (minutes; numbers meaningless):

    python server/sopo_experiment.py run --quick --out runs/sopo_quick

On the GPU box (no diffusers, MiniLM or pyzmq there; text embeddings travel in a file):

    python server/sopo_experiment.py pack --corpus data/corpus --out data/sopo_pack       # here, ~40 MB
    # carry data/sopo_pack and .whl (diffusers wheel) to the GPU machine, then there:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 server/model/train_pack.py unpack --pack data/sopo_pack --out data/corpus
    python3 server/sopo_experiment.py run --text-cache data/sopo_pack/text_cache.safetensors \
        --out runs/sopo_exp --steps 300 --batch-size 64 --seeds 0,1,2 --max-minutes 9
    # (re-run the same command until it reports nothing left; then copy runs/sopo_exp/results.md back)

`--tau/--beta/--scale/--k/--lr` change the loss for every method (a sweep: another --out).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.align.experiment import REPO_ROOT, pack_cmd, run_cmd, write_table
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="corpus (all splits) + text cache for the GPU box")
    pk.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    pk.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "sopo_pack")
    pk.add_argument("--text-cache", type=Path, default=None)
    r = sub.add_parser("run", help="fine-tune and evaluate (resumable)")
    r.add_argument("--base", type=Path, default=None, help="default: the bundled default checkpoint")
    r.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    r.add_argument("--text-cache", type=Path, default=None)
    r.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR)
    r.add_argument("--evaluator", type=Path, default=DEFAULT_EVALUATOR_DIR)
    r.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "sopo_experiment")
    r.add_argument("--methods", default="sft,offline-dpo,online-dpo,sopo")
    r.add_argument("--sources", default="corpus,picks")
    r.add_argument("--seeds", default=None)
    r.add_argument("--steps", type=int, default=300)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=float, default=1e-5)
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--beta", type=float, default=1.0)
    r.add_argument("--tau", type=float, default=0.45)
    r.add_argument("--sopo-taus", default="", help="run SoPo once per tau, e.g. 0.45,0.95 (our reward's scale: "
                   "matched text-motion pairs score ~0.98, mismatched ~0.5)")
    r.add_argument("--C", type=float, default=2.0)
    r.add_argument("--scale", type=float, default=1.0)
    r.add_argument("--k", type=int, default=0)
    r.add_argument("--corpus-clips", type=int, default=0)
    r.add_argument("--sim-captions", type=int, default=512)
    r.add_argument("--sim-n", type=int, default=4)
    r.add_argument("--sim-none-below", type=float, default=None,
                   help="simulated artist: 'none are good' below this score (default 0.4; --quick: never)")
    r.add_argument("--eval-repeats", type=int, default=5)
    r.add_argument("--eval-max-clips", type=int, default=None)
    r.add_argument("--device", default=None)
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--max-minutes", type=float, default=0.0, help="start no new run after this long (resume later)")
    r.add_argument("--quick", action="store_true", help="a CPU check: 2 steps, batch 4, 1 seed, 32 test clips")
    t = sub.add_parser("table", help="rewrite results.md from the results folder")
    t.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "sopo_experiment")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        return pack_cmd(args)
    if args.cmd == "table":
        print(write_table(args.out))
        return 0
    args.seeds_given = args.seeds is not None
    args.seeds = args.seeds or "0,1,2"
    return run_cmd(args)


if __name__ == "__main__":
    raise SystemExit(main())
