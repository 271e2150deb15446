"""A simulated artist: real `generate` and `pick` messages to a running server, for experiments and tests.

    python server/simulate_picks.py --server tcp://127.0.0.1:5555 --captions 200 --corpus data/corpus
    python server/simulate_picks.py --in-process --checkpoint CKPT --db picks.db --captions 200   # no server/pyzmq

It needs the corpus (`python server/prepare_data.py --shared ../shared/data --out data/corpus`)
and, without --in-process, a running server (`python server/serve.py`). CKPT is a name from the
models folder (DATA/models), a bundled name, `default`, or a checkpoint folder.

For each of N captions drawn from the corpus (train split by default: the test split stays
for the evaluator), it asks for `--n` candidates at the clip's duration, scores each with a
rule that is NOT the evaluator (`--taste`):

    plausibility (default): score = r(x, c) - skate_weight * foot skating (m/s)
                                    - penetration_weight * ground penetration (m)
    arm-energy:             score = mean wrist speed relative to the pelvis (m/s, smoothed over 0.25 s)

(r: the reward model, cos/2 + 1/2; foot skating and penetration: `server/data/retarget.py`'s
metrics on the forward-kinematics joints; arm-energy needs no reward model), picks the best
candidate, or "none are good" when even the best scores below `--none-below` (default 0.4 for
plausibility, 0.15 m/s for arm-energy), and sends the pick (every other candidate rejected).
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

from server.align.artist import NONE_BELOW, TASTES, ArtistRule, corpus_prompts, simulate_in_process, simulate_server
from server.data.corpus import Corpus, CorpusError
from shared import protocol as P

PROG = "simulate_picks.py"


class UserError(Exception):
    """A mistake this CLI reports in one line (exit 2)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from server.eval.evaluator import DEFAULT_REWARD_DIR

    d = ArtistRule()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--taste", choices=TASTES, default=d.taste, help="the artist's rule (see above)")
    p.add_argument("--none-below", type=float, default=None,
                   help=f"'none are good' when the best score is below this (default {NONE_BELOW})")
    p.add_argument("--device", default="cpu", help="device of the reward model (and --in-process generator)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--server-key", type=Path)
    p.add_argument("--client-secret", type=Path)
    p.add_argument("--in-process", action="store_true", help="no server: generate here, write --db directly")
    p.add_argument("--checkpoint", help="--in-process: the generator (a name in DATA/models or server/checkpoints, "
                   "'default', or a folder)")
    p.add_argument("--data", type=Path, default=None, help="--in-process: data folder whose models/ holds named "
                   "checkpoints (default ~/.local/share/sopo-motion)")
    p.add_argument("--db", type=Path, help="--in-process: the picks database to write")
    p.add_argument("--log", type=Path, help="write the per-caption log (JSON) here")
    return p.parse_args(argv)


def prompts_from_corpus(args: argparse.Namespace) -> list[tuple[str, float]]:
    try:
        return corpus_prompts(Corpus(args.corpus), args.captions, args.split, args.seed)
    except CorpusError as exc:
        raise UserError(f"{exc}; run first: python server/prepare_data.py --shared ../shared/data "
                        f"--out {args.corpus}") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    none_below = NONE_BELOW[args.taste] if args.none_below is None else args.none_below
    rule = ArtistRule(args.skate_weight, args.penetration_weight, none_below, args.taste)
    try:
        summary = run(args, rule)
    except UserError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    if args.log:
        args.log.write_text(json.dumps({"rule": asdict(rule), **summary}, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}))
    return 0


def run(args: argparse.Namespace, rule: ArtistRule) -> dict:
    """Check everything a user can get wrong (fast), then load the reward model and simulate."""
    from server.model.device import DeviceError, resolve_device
    from server.service.models_folder import CheckpointNameError, default_models_dir, locate_checkpoint

    if args.in_process and not (args.checkpoint and args.db):
        raise UserError("--in-process needs --checkpoint and --db")
    if (args.server_key is None) != (args.client_secret is None):
        raise UserError("--server-key and --client-secret go together (CURVE needs both)")
    from server.model.limits import check_generate

    try:
        check_generate(P.Limits(), "a caption", n=args.n, steps=args.steps, guidance=args.guidance)
        device = resolve_device(args.device)
        checkpoint = locate_checkpoint(args.checkpoint, default_models_dir(args.data)) if args.in_process else None
    except (P.ProtocolError, DeviceError, CheckpointNameError) as exc:
        raise UserError(str(exc)) from None
    prompts = prompts_from_corpus(args)
    if rule.needs_reward and not (args.reward / "model.safetensors").is_file():
        raise UserError(f"no reward model at {args.reward} (python server/train_evaluator.py --kind reward)")
    if not args.in_process:
        check_server(args)
    reward = None
    if rule.needs_reward:
        from server.eval.reward import RewardModel

        reward = RewardModel.load(args.reward, device, text_cache=args.text_cache)
    say = lambda k, total: print(f"\r{k}/{total} captions", end="", file=sys.stderr, flush=True)  # noqa: E731
    if args.in_process:
        from server.align.preference_data import CachedTextConditioner
        from server.model.inference import MotionGenerator

        gen = MotionGenerator.load(checkpoint, device)
        if reward is not None:
            gen.text = CachedTextConditioner(reward.text_cache, gen.device)
        summary = simulate_in_process(gen, args.db, prompts, reward, rule, args.n, args.steps, args.guidance,
                                      args.seed, progress=say)
    else:
        from server.service.client import ServerError, ServerUnavailable

        try:
            summary = simulate_server(args.server, prompts, reward, rule, args.n, args.steps, args.guidance,
                                      args.seed, args.timeout, args.server_key, args.client_secret, progress=say)
        except ServerUnavailable as exc:
            raise UserError(f"the server at {args.server} stopped answering: {exc}") from None
        except (ServerError, P.ProtocolError) as exc:
            raise UserError(f"the server at {args.server} refused: {exc}") from None
    return summary


def check_server(args: argparse.Namespace) -> None:
    """UserError unless a server answers hello at --server within seconds."""
    import zmq

    from server.service.client import ServerError, ServerUnavailable
    from server.service.oneshot import connect
    from server.service.security import KeysError

    try:
        connect(args.server, args.timeout, args.server_key, args.client_secret).close()
    except ServerUnavailable:
        raise UserError(f"no server answers at {args.server}: start one with `python server/serve.py` (or pass "
                        f"--server tcp://HOST:PORT, or --in-process --checkpoint CKPT --db picks.db)") from None
    except (ServerError, KeysError, OSError, zmq.ZMQError) as exc:
        raise UserError(f"cannot talk to {args.server}: {exc}") from None


if __name__ == "__main__":
    raise SystemExit(main())
