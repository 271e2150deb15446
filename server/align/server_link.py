"""How a fine-tuned checkpoint reaches a running server: where to write it (asked in hello), then `reload`.

    where = ask_models_dir("tcp://127.0.0.1:5555")   # ServerFolder(models_dir=Path(...) or None, model=...)
    out = new_checkpoint_dir(where.models_dir or default_models_dir(), "sopo")   # service.models_folder
    ... fine-tune into `out` ...
    reload_server("tcp://127.0.0.1:5555", out.name)

A server tells its models folder only to a client on its own machine (hello's `models_dir`);
for a server elsewhere (or an older one) `models_dir` is None: the checkpoint stays here and
`copy_instructions` says how to get it there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


def new_checkpoint_dir(models_dir: Path, method: str) -> Path:
    """`models_dir/<method>-<time>`, with a suffix when that name is taken."""
    stem = f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = Path(models_dir) / stem, 2
    while out.exists():
        out, n = Path(models_dir) / f"{stem}-{n}", n + 1
    return out


@dataclass(frozen=True)
class ServerFolder:
    model: str  # the model the server serves now
    models_dir: Path | None  # its models folder when it is on this machine, else None
    told: str | None = None  # the folder the server named, when it does not exist here (not this machine)


def ask_models_dir(endpoint: str, server_key=None, client_secret=None, timeout: float = 10.0) -> ServerFolder:
    """Hello asking for the models folder. Raises ServerUnavailable (no answer) or ServerError."""
    from server.service.client import MotionClient, ServerError
    from shared import protocol as P

    with MotionClient(endpoint, timeout=timeout, retries=0, server_key=server_key, client_secret=client_secret) as c:
        try:
            reply = c.request(P.hello("finetune.py", want_models_dir=True))
        except ServerError as exc:
            if exc.code != P.BAD_FIELD:
                raise
            reply = c.request(P.hello("finetune.py"))  # a server older than `want_models_dir`
    told = reply.fields.get("models_dir")
    if told and Path(told).is_dir():
        return ServerFolder(reply.fields["model"], Path(told))
    return ServerFolder(reply.fields["model"], None, told)


def reload_server(endpoint: str, name: str, server_key=None, client_secret=None, timeout: float = 120.0) -> str:
    """Send `reload name`; returns the loaded model id. Raises ServerError / ServerUnavailable."""
    from server.service.client import MotionClient

    with MotionClient(endpoint, timeout=timeout, retries=0, server_key=server_key, client_secret=client_secret) as c:
        return c.reload(name, timeout=timeout).fields["model"]


def copy_instructions(endpoint: str, folder: Path, told: str | None = None) -> str:
    """What to do when the server cannot see `folder` (it runs on another machine)."""
    why = (f"its models folder {told} is not on this machine" if told else
           "it did not tell its models folder: it runs on another machine (or is older)")
    target = told or "DATA/models"
    return (f"the server at {endpoint} cannot load the new checkpoint from here: {why}. To serve it, copy the "
            f"folder {folder} into the server's models folder, DATA/models (DATA: its serve.py --data, by default "
            f"~/.local/share/sopo-motion), e.g. `scp -r {folder} HOST:{target}/`, then load it with\n"
            f"  python server/finetune.py --server {endpoint} --reload {Path(folder).name}")
