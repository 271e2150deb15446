"""A blocking Python client for the motion server (tests, benchmarks, scripts).

Lazy Pirate (zguide): every receive is bounded by a poll timeout; when a reply does not
come, the DEALER socket is closed and reopened and the same message (same id) is sent
again, a bounded number of times. Resending is safe: the server answers a repeated
``generate`` id from its running job or its store, and a repeated pick's idempotency
key is stored once. The Blender add-on has its own non-blocking client; this one blocks.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import zmq

from shared import protocol as P
from server.service.security import configure_client_curve

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


class ServerUnavailable(TimeoutError):
    """No reply after every retry."""


class ServerError(RuntimeError):
    """The server answered with an ``error`` message."""

    def __init__(self, code: str, message: str, request_id: str | None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.request_id = code, message, request_id


@dataclass(frozen=True)
class GenerationResult:
    request_id: str
    rotations: np.ndarray    # (n, T, 22, 4) float32, read-only view of the received frame
    translation: np.ndarray  # (n, T, 3) float32, read-only
    fps: float
    model: str
    seed: int | None
    steps: int | None
    guidance: float | None


class MotionClient:
    """One DEALER connection; ``timeout`` is seconds of silence allowed per try (progress counts as life)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout: float = 30.0, retries: int = 3,
                 server_key: str | Path | None = None, client_secret: str | Path | None = None,
                 limits: P.Limits | None = None, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.retries = retries
        self.limits = limits or P.Limits()
        self._curve = (Path(server_key), Path(client_secret)) if server_key and client_secret else None
        self._ctx = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self.stray = 0   # replies that answered none of this client's current requests
        self._connect()

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes + self.limits.max_header_bytes)
        if self._curve:
            configure_client_curve(sock, *self._curve)
        sock.connect(self.endpoint)
        self._socket = sock

    def reconnect(self) -> None:
        """Drop the socket (and anything queued on it) and open a fresh one."""
        if self._socket is not None:
            self._socket.close(linger=0)
        self._connect()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> "MotionClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- raw access ---------------------------------------------------------------------

    def send(self, message: P.Message) -> None:
        self._socket.send_multipart(message.encode(self.limits), copy=False)

    def send_frames(self, frames: list[bytes]) -> None:
        """Send arbitrary frames (for fuzzing: the server must answer whatever this sends)."""
        self._socket.send_multipart(frames)

    def receive(self, timeout: float | None = None) -> P.Message | None:
        """The next message from the server, or None after ``timeout`` seconds of silence."""
        wait = self.timeout if timeout is None else timeout
        if not self._socket.poll(int(wait * 1000), zmq.POLLIN):
            return None
        return P.decode_message(self._socket.recv_multipart(copy=False), self.limits, accept=P.SERVER_TYPES)

    # --- requests -----------------------------------------------------------------------

    def request(self, message: P.Message, timeout: float | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> P.Message:
        """Send ``message`` and return its reply; retries on silence, raises ServerError on ``error``."""
        wait = self.timeout if timeout is None else timeout
        for attempt in range(self.retries + 1):
            if attempt:
                self.reconnect()
            self.send(message)
            deadline = time.monotonic() + wait
            while True:
                reply = self.receive(max(0.0, deadline - time.monotonic()))
                if reply is None:
                    break
                if reply.fields.get("request_id") != message.id:
                    self.stray += 1   # a late reply to an earlier request
                    continue
                if reply.type == "progress":
                    deadline = time.monotonic() + wait
                    if on_progress is not None:
                        on_progress(reply.fields["step"], reply.fields["total"])
                    continue
                if reply.type == "error":
                    raise ServerError(reply.fields["code"], reply.fields["message"], message.id)
                return reply
        raise ServerUnavailable(f"no reply from {self.endpoint} to {message.type} after "
                                f"{self.retries + 1} tries of {wait} s")

    def hello(self, client: str = "sopo-python-client") -> P.Message:
        reply = self.request(P.hello(client))
        self.limits = P.Limits.from_dict(reply.fields["limits"])
        return reply

    def generate(self, prompt: str, n: int | None = None, seconds: float | None = None,
                 seed: int | None = None, guidance: float | None = None, steps: int | None = None,
                 model: str | None = None, request_id: str | None = None, timeout: float | None = None,
                 on_progress: Callable[[int, int], None] | None = None, constraints=None,
                 foot_cleanup: bool | None = None) -> GenerationResult:
        """``constraints``: artist controls (shared/constraints.py); ``foot_cleanup`` False: raw sampled motion."""
        message = P.generate(prompt, n, seconds, seed, guidance, steps, model, msg_id=request_id,
                             constraints=constraints, foot_cleanup=foot_cleanup)
        reply = self.request(message, timeout, on_progress)
        f = reply.fields
        return GenerationResult(message.id, reply.arrays["rotations"], reply.arrays["translation"], f["fps"],
                                f["model"], f.get("seed"), f.get("steps"), f.get("guidance"))

    def pick(self, request_id: str, chosen: int | None, rejected: list[int] | None = None,
             idempotency_key: str | None = None) -> P.Message:
        """Store a pick; the same ``idempotency_key`` may be sent again safely."""
        key = idempotency_key or uuid.uuid4().hex
        return self.request(P.pick(request_id, chosen, key, rejected))

    def reload(self, checkpoint: str, timeout: float | None = None) -> P.Message:
        return self.request(P.reload(checkpoint), timeout)

    def cancel(self, request_id: str) -> None:
        """Ask the server to stop ``request_id``; its ``generate`` then ends with error 'cancelled'."""
        self.send(P.cancel(request_id))
