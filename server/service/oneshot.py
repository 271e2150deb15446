"""One generate request from the command line (generate.py): run in-process or on a running server, written as files, picked.

    result = generate_in_process(request, checkpoint_dir, device)          # the model runs here
    result = generate_on_server(request, "tcp://127.0.0.1:5555")           # a running serve.py answers
    paths = write_candidates(request.prompt, result, Path("out"))          # .npz, .bvh, preview .png
    send_pick("tcp://127.0.0.1:5555", result.request_id, 2)                # or None: "none are good"

In-process requests are checked against the same ``shared.protocol`` limits the server uses
(``server.model.limits``), so a request either way is refused with the same message. Server
requests hello first (with a short timeout, so a server that is not running is reported in
seconds) and then use the server's own limits.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shared import protocol as P
from shared.constraints import Constraints
from shared.motion import Motion

HELLO_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Request:
    prompt: str
    n: int = P.DEFAULT_N
    seconds: float = P.DEFAULT_SECONDS
    seed: int | None = None
    guidance: float | None = None
    steps: int | None = None
    constraints: Constraints | None = None   # artist controls (shared/constraints.py), None: text only
    foot_cleanup: bool = True                # False: the raw sampled motion, no foot pinning


@dataclass(frozen=True)
class Result:
    rotations: np.ndarray     # (n, T, 22, 4) float32 wxyz, local
    translation: np.ndarray   # (n, T, 3) float32
    fps: float
    model: str                # the model id that made them
    seed: int | None
    seconds_taken: float      # generation only (in-process: text encoder loaded beforehand)
    request_id: str | None = None   # the server's request id (None in-process: nothing to pick)


def slug(text: str, limit: int = 40) -> str:
    """A file-name stem from a prompt: lowercase words joined by '_', at most ``limit`` characters."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:limit].rstrip("_") or "motion"


def write_candidates(prompt: str, result: Result, out: Path, preview: bool = True) -> list[Path]:
    """Save candidate k as ``<slug>_<k>.npz`` (wire format) and ``.bvh``, plus one ``<slug>.png`` preview."""
    from server.data.bvh import motion_to_bvh, write_bvh

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = slug(prompt)
    written, motions = [], []
    for k in range(result.rotations.shape[0]):
        motion = Motion(np.array(result.rotations[k]), np.array(result.translation[k]), result.fps)
        motions.append(motion)
        motion.save(out / f"{name}_{k}.npz")
        write_bvh(motion_to_bvh(motion), out / f"{name}_{k}.bvh")
        written += [out / f"{name}_{k}.npz", out / f"{name}_{k}.bvh"]
    if preview:
        from server.eval.render import render_strip

        written.append(render_strip(motions, out / f"{name}.png", frames=8,
                                    titles=[f"{prompt} [{k}]" for k in range(len(motions))]))
    return written


def check_request(request: Request, limits: P.Limits | None = None) -> None:
    """ProtocolError (the server's message) if ``request`` is beyond ``limits`` (default: the protocol's)."""
    from server.model.limits import check_generate

    check_generate(limits or P.Limits(), request.prompt, request.n, request.seconds, request.seed,
                   request.guidance, request.steps)


def generate_in_process(request: Request, checkpoint_dir: Path, device: str | None = None,
                        base_limits: P.Limits | None = None) -> Result:
    """Load the checkpoint here and generate. Raises CheckpointError, ProtocolError (limits), RequestError."""
    from server.model.inference import GenerationRequest, MotionGenerator
    from server.model.limits import generator_limits

    check_request(request, base_limits)   # before the model loads: most mistakes show here
    generator = MotionGenerator.load(checkpoint_dir, device=device)
    check_request(request, generator_limits(generator, base_limits))   # the model's seconds and steps
    generator.text.encoder()  # load the text encoder outside the timed part
    t0 = time.perf_counter()
    [(rotations, translation)] = generator.generate([GenerationRequest(
        request.prompt, n=request.n, seconds=request.seconds, seed=request.seed, guidance=request.guidance,
        steps=request.steps, constraints=request.constraints, foot_cleanup=request.foot_cleanup)])
    return Result(rotations, translation, generator.fps, generator.model_id, generator.last_seeds[0],
                  time.perf_counter() - t0)


def connect(endpoint: str, timeout: float = 120.0, server_key: Path | None = None,
            client_secret: Path | None = None, retries: int = 3):
    """A MotionClient that has said hello (so it holds the server's limits); ServerUnavailable within
    ``HELLO_TIMEOUT_S`` when nothing answers. Later requests wait ``timeout`` seconds of silence per try and
    are resent ``retries`` times (safe: the server answers a repeated id once)."""
    from server.service.client import MotionClient

    client = MotionClient(endpoint, timeout=min(timeout, HELLO_TIMEOUT_S), retries=0, server_key=server_key,
                          client_secret=client_secret)
    try:
        client.hello("generate.py")
    except BaseException:
        client.close()
        raise
    client.timeout, client.retries = timeout, retries
    return client


def generate_on_server(request: Request, endpoint: str, timeout: float = 120.0, server_key: Path | None = None,
                       client_secret: Path | None = None,
                       on_progress: Callable[[int, int], None] | None = None) -> Result:
    """Ask a running server. Raises ServerUnavailable, ServerError, ProtocolError (the server's limits)."""
    with connect(endpoint, timeout, server_key, client_secret) as client:
        t0 = time.perf_counter()
        reply = client.generate(request.prompt, n=request.n, seconds=request.seconds, seed=request.seed,
                                guidance=request.guidance, steps=request.steps, on_progress=on_progress,
                                constraints=request.constraints, foot_cleanup=request.foot_cleanup)
        return Result(np.array(reply.rotations), np.array(reply.translation), reply.fps, reply.model, reply.seed,
                      time.perf_counter() - t0, reply.request_id)


def send_pick(endpoint: str, request_id: str, chosen: int | None, timeout: float = 30.0,
              server_key: Path | None = None, client_secret: Path | None = None) -> bool:
    """Store a pick for ``request_id`` (``chosen=None``: none are good; every other candidate is rejected).

    The idempotency key is made from the request and the choice, so sending the same pick again stores it
    once. Returns whether the server already had it. Raises ServerUnavailable, ServerError (unknown request,
    index out of range...).
    """
    key = f"shell-{request_id}-{'none' if chosen is None else chosen}"
    if len(key) > P.MAX_ID_CHARS:
        key = "shell-" + hashlib.sha256(key.encode()).hexdigest()
    with connect(endpoint, timeout, server_key, client_secret) as client:
        reply = client.pick(request_id, chosen, idempotency_key=key)
        return bool(reply.fields["duplicate"])
