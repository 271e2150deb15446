"""Make CURVE keys: ``python server/make_keys.py --keys DIR [--client NAME ...]``.

Creates the server's key pair in DIR (kept if present) and one key pair per ``--client``
under DIR/clients/, authorising each client's public key in DIR/authorized_clients/.
Give a client DIR/server.key and its own NAME.key_secret; start the server with
``serve.py --bind tcp://0.0.0.0:5555 --keys DIR``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.service.security import make_client_keys, make_server_keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path, required=True, help="key folder")
    parser.add_argument("--client", action="append", default=[], help="make a client key pair (repeatable)")
    args = parser.parse_args(argv)
    try:
        print(f"server public key: {make_server_keys(args.keys)}")
        for name in args.client:
            public, secret = make_client_keys(args.keys, name)
            print(f"client {name}: {secret} (secret, give to the client) and {public}")
    except (OSError, ValueError) as exc:
        print(f"make_keys.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
