"""Run the motion server: ``python server/serve.py [--bind tcp://HOST:PORT] [--checkpoint NAME] ...``.

Loads the bundled default checkpoint (or ``--checkpoint``: a name from the data folder's
``models/`` or ``server/checkpoints/``, ``default``, or a checkpoint folder, which then serves
from its parent folder), keeps its picks store in the data folder, and serves ZeroMQ on
``tcp://127.0.0.1:5555`` until Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import zmq

from server.model.checkpoint import CheckpointError
from server.model.device import DeviceError, resolve_device
from server.service.models_folder import CheckpointNameError, default_data_dir, serving_name
from server.service.security import InsecureBindError, KeysError
from server.service.service import DEFAULT_BIND, MotionService, ServiceConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=DEFAULT_BIND,
                        help=f"ZeroMQ endpoint (default {DEFAULT_BIND}; tcp://127.0.0.1:* picks a free port)")
    parser.add_argument("--checkpoint", help="a name in DATA/models or server/checkpoints, 'default', or a checkpoint "
                        "folder (default: the bundled default)")
    parser.add_argument("--data", type=Path, default=None,
                        help=f"data folder for picks.db and models/ (default {default_data_dir()})")
    parser.add_argument("--models", type=Path, default=None,
                        help="folder of checkpoints that --checkpoint and reload may name (default DATA/models)")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--watch", action="store_true", help="load new checkpoints that appear in DATA/models")
    parser.add_argument("--watch-interval", type=float, default=2.0, help="seconds between --watch scans")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback bind without CURVE keys (anyone who can reach it may use it)")
    parser.add_argument("--keys", type=Path, default=None,
                        help="CURVE key folder made by server/make_keys.py (required beyond loopback)")
    parser.add_argument("--max-batch", type=int, default=16,
                        help="most requests run as one batch (1 turns batching off)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = args.data or default_data_dir()
    try:
        device = resolve_device(args.device)
        checkpoint, models = serving_name(args.checkpoint, args.models or data_dir / "models",
                                          models_given=args.models is not None)
        config = ServiceConfig(bind=args.bind, data_dir=data_dir, checkpoint=checkpoint, models=models,
                               device=device, watch=args.watch, watch_interval_s=args.watch_interval,
                               insecure=args.insecure, keys_dir=args.keys, max_batch_requests=max(1, args.max_batch))
        service = MotionService(config)
    except (InsecureBindError, KeysError, CheckpointNameError, CheckpointError, DeviceError) as exc:
        print(f"serve.py: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop())
    try:
        service.run()
    except zmq.ZMQError as exc:   # the address is taken or malformed
        print(f"serve.py: cannot serve on {args.bind}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
