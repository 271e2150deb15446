"""Generate motions from text without Blender: .npz (wire format), .bvh and a stick-figure preview.

    python server/generate.py "a person jumps forward" -n 4 --seconds 6 --seed 1 --out out/
    python server/generate.py "a person walks in a circle" --checkpoint runs/mld/checkpoint
    python server/generate.py "a person waves" --server tcp://127.0.0.1:5555            # ask a running server
    python server/generate.py --server tcp://127.0.0.1:5555 --request ID --pick 2       # then pick (or: none)

Writes <out>/<slug>_<k>.npz (rotations, translation, fps; `shared.motion.Motion.load` reads it),
<out>/<slug>_<k>.bvh (SMPL-22 hierarchy, metres) for k = 0..n-1, and <out>/<slug>.png (one row
of frames per candidate). --checkpoint takes a name from the models folder (DATA/models), a
bundled name, `default`, or a folder. With --server the running server's model answers, the
request id is printed, and --pick N (or --pick none) stores the pick for fine-tuning, as the
Blender add-on does. Limits (candidates, seconds, guidance, prompt length) are the server's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from shared import protocol as P
from server.model.constraints import ConstraintArgumentError, add_constraint_arguments, constraints_from_args
from server.service.models_folder import default_data_dir
from server.service.oneshot import Request

PROG = "generate.py"
NOT_GIVEN = object()  # --pick absent (None means "none are good")


def pick_index(text: str) -> int | None:
    """--pick: a candidate index (0-based), or 'none' for "none are good"."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a candidate index (0, 1, ...) or 'none', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"candidate indices start at 0, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", nargs="?", help="what the motion shows (not needed with --request)")
    p.add_argument("-n", type=int, default=P.DEFAULT_N, help=f"candidates (default {P.DEFAULT_N})")
    p.add_argument("--seconds", type=float, default=P.DEFAULT_SECONDS, help=f"default {P.DEFAULT_SECONDS:g}")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--checkpoint", default=None,
                   help="a name in DATA/models, a bundled name, 'default' (the bundled default), or a folder")
    p.add_argument("--data", type=Path, default=None, help=f"data folder whose models/ holds named checkpoints "
                   f"(default {default_data_dir()})")
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--out", default="out", help="output folder (default ./out)")
    p.add_argument("--no-preview", action="store_true", help="skip the PNG preview")
    p.add_argument("--server", metavar="tcp://HOST:PORT", help="ask this running server instead of loading a model")
    p.add_argument("--server-key", type=Path, help="CURVE: the server's public key file (server.key)")
    p.add_argument("--client-secret", type=Path, help="CURVE: this client's secret key file (NAME.key_secret)")
    p.add_argument("--timeout", type=float, default=120.0, help="--server: seconds of silence allowed (default 120)")
    p.add_argument("--pick", type=pick_index, default=NOT_GIVEN, metavar="N|none",
                   help="--server: store this pick for the request (every other candidate rejected)")
    p.add_argument("--request", metavar="ID", help="--server --pick: pick for this earlier request, generate nothing")
    p.add_argument("--no-foot-cleanup", action="store_true",
                   help="keep the raw sampled motion (no foot pinning, no floor fix)")
    add_constraint_arguments(p)
    return p.parse_args(argv)


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with this combination of arguments, or None."""
    picking = args.pick is not NOT_GIVEN
    if args.prompt is None and args.request is None:
        return "give a prompt (or --server ... --request ID --pick N to pick for an earlier request)"
    if args.server is None and (picking or args.request):
        return "--pick and --request need --server tcp://HOST:PORT (the server stores picks)"
    if args.request is not None and (not picking or args.prompt is not None):
        return "--request ID picks for an earlier request: give --pick N (or none) and no prompt"
    if args.server is not None and (args.checkpoint or args.device or args.data):
        return "--checkpoint, --data and --device choose a model to run here; with --server the server's model answers"
    if (args.server_key is None) != (args.client_secret is None):
        return "--server-key and --client-secret go together (CURVE needs both)"
    if picking and args.pick is not None and args.request is None and args.pick >= args.n:
        return f"--pick {args.pick}: there are only {args.n} candidates (0..{args.n - 1})"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = usage_problem(args)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    try:
        constraints = constraints_from_args(args)
    except ConstraintArgumentError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    request = Request(args.prompt or "", args.n, args.seconds, args.seed, args.guidance, args.steps,
                      constraints=constraints, foot_cleanup=not args.no_foot_cleanup)
    return run_on_server(args, request) if args.server else run_here(args, request)


def run_here(args: argparse.Namespace, request: Request) -> int:
    from server.model.checkpoint import CheckpointError
    from server.model.device import DeviceError, resolve_device
    from server.model.inference import RequestError
    from server.service.models_folder import CheckpointNameError, default_models_dir, locate_checkpoint
    from server.service.oneshot import check_request, generate_in_process

    try:
        check_request(request)   # the protocol's limits first: the mistakes that cost nothing to find
        device = resolve_device(args.device)
        checkpoint = locate_checkpoint(args.checkpoint, default_models_dir(args.data))
        result = generate_in_process(request, checkpoint, device)
    except (DeviceError, CheckpointNameError, CheckpointError, P.ProtocolError, RequestError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not write(args, request, result):
        return 2
    return 0


def run_on_server(args: argparse.Namespace, request: Request) -> int:
    import zmq

    from server.service.client import ServerError, ServerUnavailable
    from server.service.oneshot import generate_on_server, send_pick
    from server.service.security import KeysError

    keys = dict(server_key=args.server_key, client_secret=args.client_secret)
    progress = lambda step, total: print(f"\rstep {step}/{total}", end="", file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.request is None:
            result = generate_on_server(request, args.server, args.timeout, on_progress=progress, **keys)
            print(file=sys.stderr)
            if not write(args, request, result):
                return 2
            request_id = result.request_id
            print(f"request {request_id}")
        else:
            request_id = args.request
        if args.pick is NOT_GIVEN:
            print(f"to pick: python server/generate.py --server {args.server} --request {request_id} --pick N|none")
            return 0
        duplicate = send_pick(args.server, request_id, args.pick, args.timeout, **keys)
    except P.ProtocolError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ServerUnavailable:
        print(f"{PROG}: no answer from {args.server}: is the server running (python server/serve.py), and are "
              f"the address and keys right?", file=sys.stderr)
        return 3
    except ServerError as exc:
        print(f"{PROG}: the server refused: {exc}", file=sys.stderr)
        return 3
    except (KeysError, OSError, zmq.ZMQError) as exc:
        print(f"{PROG}: cannot talk to {args.server}: {exc}", file=sys.stderr)
        return 2
    chosen = "none are good" if args.pick is None else f"candidate {args.pick}"
    print(f"pick stored: {chosen} for request {request_id}" + (" (already stored before)" if duplicate else ""))
    return 0


def write(args: argparse.Namespace, request: Request, result) -> bool:
    """Write the candidates and say what was made; False (after saying why) when the folder cannot be written."""
    from server.service.oneshot import write_candidates

    try:
        paths = write_candidates(request.prompt, result, Path(args.out), preview=not args.no_preview)
    except OSError as exc:
        print(f"{PROG}: cannot write to {args.out}: {exc}", file=sys.stderr)
        return False
    frames = result.rotations.shape[1]
    print(f"{result.model}: {result.rotations.shape[0]} x {frames / result.fps:.2f} s in "
          f"{result.seconds_taken:.2f} s, seed {result.seed}")
    for path in paths:
        print(path)
    return True


if __name__ == "__main__":
    sys.exit(main())
