"""A simulated artist: real `generate` and `pick` messages to a running server, for experiments and tests.

    python server/simulate_picks.py --server tcp://127.0.0.1:5555 --captions 200 --corpus data/corpus
    python server/simulate_picks.py --in-process --checkpoint CKPT --db picks.db --captions 200   # no server/pyzmq

For each of N captions drawn from the corpus (train split by default: the test split stays
for the evaluator), it asks for `--n` candidates at the clip's duration, scores each with a
rule that is NOT the evaluator:

    score = r(x, c) - skate_weight * foot skating (m/s) - penetration_weight * ground penetration (m)

(r: the reward model, cos/2 + 1/2; foot skating and penetration: `server/data/retarget.py`'s
metrics on the forward-kinematics joints), picks the best candidate, or "none are good" when
even the best scores below `none_below`, and sends the pick (every other candidate rejected).
The server stores results and picks exactly as it does for Blender. `--in-process` makes the
same database rows without a server (the GPU box has no pyzmq): the generator runs here and
`PicksStore` records what the server would.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.align.artist import ArtistRule, corpus_prompts, simulate_in_process, simulate_server
from server.data.corpus import Corpus


def main(argv: list[str] | None = None) -> int:
    from server.eval.evaluator import DEFAULT_REWARD_DIR

    d = ArtistRule()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="tcp://127.0.0.1:5555")
    p.add_argument("--captions", type=int, default=50, help="how many generate + pick rounds")
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=4, help="candidates per caption")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reward", type=Path, default=DEFAULT_REWARD_DIR)
    p.add_argument("--text-cache", type=Path, default=None, help="text cache file for the reward model")
    p.add_argument("--skate-weight", type=float, default=d.skate_weight)
    p.add_argument("--penetration-weight", type=float, default=d.penetration_weight)
    p.add_argument("--none-below", type=float, default=d.none_below)
    p.add_argument("--device", default="cpu", help="device of the reward model (and --in-process generator)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--server-key", type=Path)
    p.add_argument("--client-secret", type=Path)
    p.add_argument("--in-process", action="store_true", help="no server: generate here, write --db directly")
    p.add_argument("--checkpoint", type=Path, help="--in-process: the generator checkpoint")
    p.add_argument("--db", type=Path, help="--in-process: the picks database to write")
    p.add_argument("--log", type=Path, help="write the per-caption log (JSON) here")
    args = p.parse_args(argv)

    from server.eval.reward import RewardModel

    if not (args.reward / "model.safetensors").is_file():
        sys.exit(f"simulate_picks.py: no reward model at {args.reward} (python server/train_evaluator.py --kind reward)")
    reward = RewardModel.load(args.reward, args.device, text_cache=args.text_cache)
    rule = ArtistRule(args.skate_weight, args.penetration_weight, args.none_below)
    prompts = corpus_prompts(Corpus(args.corpus), args.captions, args.split, args.seed)
    say = lambda k, total: print(f"\r{k}/{total} captions", end="", file=sys.stderr, flush=True)  # noqa: E731
    if args.in_process:
        if not args.checkpoint or not args.db:
            sys.exit("simulate_picks.py: --in-process needs --checkpoint and --db")
        from server.model.inference import MotionGenerator
        from server.align.preference_data import CachedTextConditioner

        gen = MotionGenerator.load(args.checkpoint, args.device)
        gen.text = CachedTextConditioner(reward.text_cache, gen.device)
        summary = simulate_in_process(gen, args.db, prompts, reward, rule, args.n, args.steps, args.guidance,
                                      args.seed, progress=say)
    else:
        summary = simulate_server(args.server, prompts, reward, rule, args.n, args.steps, args.guidance, args.seed,
                                  args.timeout, args.server_key, args.client_secret, progress=say)
    print(file=sys.stderr)
    if args.log:
        args.log.write_text(json.dumps({"rule": asdict(rule), **summary}, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
