"""SoPo and its baselines, measured: the taste experiment, and SFT / offline DPO / online DPO / SoPo on the suite.

    python server/sopo_experiment.py taste --out runs/taste ...    # does the model learn a simulated artist's taste?
    python server/sopo_experiment.py run --out runs/exp ...        # methods x sources x settings x seeds, tabled
    python server/sopo_experiment.py plot --out runs/exp --png docs/sopo_steps.png     # (run --curve-steps)
    python server/sopo_experiment.py plot --taste --out runs/taste --png docs/sopo_taste.png
    python server/sopo_experiment.py table --out runs/exp           # rewrite results.md / taste.md

`taste` (server/align/taste_experiment.py): a simulated artist who likes energetic arm movement
picks among 4 candidates for `--picks` training captions through a real server; every method
fine-tunes on the picks; held out (the suite's prompts, test captions), the artist's win rate
of fine-tuned over base from the same noise, the suite pass rate, physics, FID / MM-Dist.

`run` (server/align/experiment.py): preferences from (a) the corpus (the paper's setting:
dataset motions preferred; the DPO losers from the model) and (b) picks (`--picks-db`, e.g. the
taste experiment's, or simulated in-process); equal budgets for every method; `--grid` runs
each method once per setting; every run is scored on the prompt suite (`--suite-seeds` x
`--suite-candidates`, paired with the base) and by the evaluator (paired per seed), written to
`<out>/results/*.json` (an interrupted run resumes) and tabled in `<out>/results.md`.
`--eval-repeats 0` skips the evaluator; `--rescore` (run or taste) recomputes its numbers from
the saved checkpoints after the evaluator or the corpus changed.

The commands behind the README's tables are in the README. A CPU check that everything runs:

    python server/sopo_experiment.py run --quick --out runs/sopo_quick

On a GPU box without diffusers, MiniLM or pyzmq (text embeddings travel in a file):

    python server/sopo_experiment.py pack --corpus data/corpus --out data/sopo_pack       # here
    # carry data/sopo_pack and .whl (diffusers wheel) to the GPU machine, then there:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
    python3 server/model/train_pack.py unpack --pack data/sopo_pack --out data/corpus
    python3 server/sopo_experiment.py run --text-cache data/sopo_pack/text_cache.safetensors --out runs/sopo_exp \
        --steps 300 --batch-size 64 --seeds 0,1,2 --max-minutes 9    # again until nothing is left
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.align.experiment import REPO_ROOT, ExperimentError, pack_cmd, rescore_cmd, run_cmd, write_table
from server.align.preference_data import PreferenceDataError
from server.data.corpus import CorpusError
from server.eval.suite import SuiteError
from server.align.artist import NONE_BELOW
from server.eval.evaluator import DEFAULT_EVALUATOR_DIR, DEFAULT_REWARD_DIR


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _finetune_options(p: argparse.ArgumentParser) -> None:
    """The fine-tuning settings every run of an experiment shares (server/align/preference_training.py)."""
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--tau", type=float, default=0.45)
    p.add_argument("--tau-quantile", type=float, default=0.0, help="> 0: SoPo's tau = this quantile of the reference "
                   "samples' rewards on the training captions")
    p.add_argument("--C", type=float, default=2.0)
    p.add_argument("--scale", type=float, default=1.0, help="the constant T*w(t)")
    p.add_argument("--k", type=int, default=4)


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
    r.add_argument("--tau-quantile", type=float, default=0.0, help="> 0: SoPo's tau = this quantile of the reference "
                   "samples' rewards on the training captions (calibrated per run)")
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
    r.add_argument("--grid", default="", help="settings to sweep, one run of every method each: 'scale=100;k=2,"
                   "lr=3e-4' (keys: scale, beta, k, lr, steps, tau, tau_quantile, batch_size, C)")
    r.add_argument("--picks-db", type=Path, default=None, help="source picks: this picks DB (e.g. the taste "
                   "experiment's <out>/server/picks.db) instead of simulating picks")
    r.add_argument("--suite-seeds", type=_ints, default=[0], help="prompt-suite seeds per model ('' skips the suite)")
    r.add_argument("--suite-candidates", type=int, default=4)
    r.add_argument("--suite-file", type=Path, default=None)
    r.add_argument("--curve-steps", type=_ints, default=[], help="also score the suite at these steps (the plot)")
    r.add_argument("--curve-seeds", type=_ints, default=[0], help="fine-tuning seeds whose runs get --curve-steps")
    r.add_argument("--eval-repeats", type=int, default=5)
    r.add_argument("--eval-max-clips", type=int, default=None)
    r.add_argument("--device", default=None)
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--max-minutes", type=float, default=0.0, help="start no new run after this long (resume later)")
    r.add_argument("--quick", action="store_true", help="a CPU check: 2 steps, batch 4, 1 seed, 32 test clips")
    r.add_argument("--rescore", action="store_true", help="only recompute the evaluator's numbers of Real, the base "
                   "and every finished run (after the evaluator or corpus changed)")
    ta = sub.add_parser("taste", help="the simulated-artist taste experiment (server/align/taste_experiment.py)")
    ta.add_argument("--base", type=Path, default=None, help="default: the bundled default checkpoint")
    ta.add_argument("--corpus", type=Path, default=REPO_ROOT / "data" / "corpus")
    ta.add_argument("--text-cache", type=Path, default=None)
    ta.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR)
    ta.add_argument("--evaluator", type=Path, default=DEFAULT_EVALUATOR_DIR)
    ta.add_argument("--suite-file", type=Path, default=None, help="default: server/eval/prompt_suite_v1.json")
    ta.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "taste")
    ta.add_argument("--picks", type=int, default=200, help="distinct training captions the artist picks on")
    ta.add_argument("--pick-counts", type=_ints, default=[], help="also fine-tune on the first N picks, e.g. 50,100")
    ta.add_argument("--count-methods", type=_names, default=[], help="methods run at --pick-counts")
    ta.add_argument("--n", type=int, default=4, help="candidates per prompt (picks and held-out)")
    ta.add_argument("--none-below", type=float, default=NONE_BELOW["arm-energy"],
                    help="'none are good' when the best candidate's arm energy (m/s) is below this")
    ta.add_argument("--test-captions", type=int, default=150, help="held-out test-split captions")
    ta.add_argument("--eval-seeds", type=_ints, default=[0], help="held-out generation seeds")
    ta.add_argument("--eval-repeats", type=int, default=2, help="evaluator repeats (FID, MM-Dist); 0 skips")
    ta.add_argument("--eval-max-clips", type=int, default=256)
    ta.add_argument("--methods", default="sft,offline-dpo,online-dpo,sopo")
    ta.add_argument("--grid", default="", help="settings to sweep, every method once each (as for run)")
    ta.add_argument("--seeds", type=_ints, default=[0], help="fine-tuning seeds")
    ta.add_argument("--seed", type=int, default=0, help="seed of the prompts and the artist's requests")
    _finetune_options(ta)
    ta.add_argument("--device", default=None)
    ta.add_argument("--threads", type=int, default=1)
    ta.add_argument("--max-minutes", type=float, default=0.0, help="start no new run after this long (resume later)")
    ta.add_argument("--rescore", action="store_true", help="only recompute the evaluator's numbers of the finished "
                    "runs (after the evaluator or corpus changed)")
    pl = sub.add_parser("plot", help="suite pass rate and foot skating against steps (run --curve-steps), or with "
                        "--taste the artist's win rate against picks")
    pl.add_argument("--out", type=Path, required=True, help="the experiment's --out folder")
    pl.add_argument("--png", type=Path, required=True)
    pl.add_argument("--taste", action="store_true")
    pl.add_argument("--title", default="")
    t = sub.add_parser("table", help="rewrite results.md (taste.md for a taste experiment) from the results folder")
    t.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "sopo_experiment")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        return pack_cmd(args)
    args.command = " ".join(["python", "server/sopo_experiment.py"] + (sys.argv[1:] if argv is None else list(argv)))
    if args.cmd == "taste":
        from server.align.taste_experiment import rescore, run as run_taste

        try:
            return (rescore if args.rescore else run_taste)(args, log=lambda *a: print(*a, flush=True))
        except (ExperimentError, PreferenceDataError, CorpusError, SuiteError) as exc:
            print(f"sopo_experiment.py: {exc}", file=sys.stderr)
            return 2
    if args.cmd == "plot":
        from server.align.experiment_plot import plot_steps, plot_taste

        try:
            path = (plot_taste if args.taste else plot_steps)(args.out, args.png, args.title)
        except (ValueError, OSError) as exc:
            print(f"sopo_experiment.py: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {path}")
        return 0
    if args.cmd == "table":
        if (args.out / "results" / "base.json").exists():  # a taste experiment
            from server.align.taste_experiment import write_table as taste_table

            print(taste_table(args.out))
        else:
            print(write_table(args.out))
        return 0
    args.seeds_given = args.seeds is not None
    args.seeds = args.seeds or "0,1,2"
    try:
        return rescore_cmd(args) if args.rescore else run_cmd(args)
    except (ExperimentError, CorpusError, SuiteError) as exc:
        print(f"sopo_experiment.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
