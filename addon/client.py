"""A non-blocking ZeroMQ client for the motion server (no bpy: tests drive it directly).

One DEALER socket; `send()` queues a request and returns at once; `poll_once()` reads whatever
has arrived without waiting and returns it as events. Lazy Pirate (zguide): a request that
hears nothing for `timeout` seconds (a `progress` counts as life) gets the socket closed and
reopened and every outstanding request sent again with the same id, up to `retries` times;
then it fails with an event. Resending is safe: the server answers a repeated `generate` id from
its running job or its store, and stores a pick's idempotency key once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import zmq

from .vendored import protocol as P


class ClientError(RuntimeError):
    """A request that cannot be sent (bad address, bad keys, a message the protocol refuses)."""


@dataclass
class Pending:
    message: P.Message
    frames: list
    deadline: float
    tries: int = 1


@dataclass
class Event:
    """What `poll_once` found: a reply to `request` (kind "reply"), or kind "failed" with `error`."""

    kind: str
    request: P.Message
    reply: P.Message | None = None
    error: str = ""

    @property
    def type(self) -> str:
        return self.reply.type if self.reply is not None else self.kind


@dataclass
class Curve:
    """CURVE keys (Z85 or raw bytes): the server's public key and this client's key pair."""

    server_public: bytes
    public: bytes
    secret: bytes = field(repr=False)


def check_endpoint(endpoint: str) -> None:
    """Raise ClientError unless `endpoint` looks like a ZeroMQ tcp/ipc endpoint."""
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("tcp", "ipc") or not rest:
        raise ClientError(f"bad server address {endpoint!r}: expected tcp://HOST:PORT")
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ClientError(f"bad server address {endpoint!r}: expected tcp://HOST:PORT")


class Client:
    """Requests in flight on one DEALER socket; every call returns without blocking."""

    def __init__(self, endpoint: str, timeout: float = 10.0, retries: int = 2, curve: Curve | None = None,
                 limits: P.Limits | None = None, context: zmq.Context | None = None):
        check_endpoint(endpoint)
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.limits = limits or P.Limits()
        self.curve = curve
        self._context = context or zmq.Context.instance()
        self._pending: dict[str, Pending] = {}
        self._socket: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, self.limits.max_message_bytes + self.limits.max_header_bytes)
        try:
            if self.curve is not None:
                socket.curve_serverkey = self.curve.server_public
                socket.curve_publickey = self.curve.public
                socket.curve_secretkey = self.curve.secret
            socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            socket.close(linger=0)
            raise ClientError(f"cannot connect to {self.endpoint}: {exc}") from None
        self._socket = socket

    def _reconnect(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._open()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._pending.clear()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def in_flight(self, msg_id: str) -> bool:
        return msg_id in self._pending

    def _write(self, frames: list) -> None:
        try:
            self._socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # the pipe is full: the request counts as unanswered and is resent on timeout

    def send(self, message: P.Message, expect_reply: bool = True, now: float | None = None) -> None:
        """Queue `message`; with `expect_reply` it is tracked (and resent) until answered."""
        try:
            frames = message.encode(self.limits)
        except P.ProtocolError as exc:
            raise ClientError(f"cannot send {message.type}: {exc.message}") from None
        if self._socket is None:
            self._open()
        self._write(frames)
        if expect_reply:
            now = time.monotonic() if now is None else now
            self._pending[message.id] = Pending(message, frames, now + self.timeout)

    def forget(self, msg_id: str) -> None:
        """Stop waiting for the reply to `msg_id` (a later reply is ignored)."""
        self._pending.pop(msg_id, None)

    def poll_once(self, now: float | None = None) -> list[Event]:
        """Everything that arrived, plus requests that ran out of tries; never blocks."""
        events: list[Event] = []
        if self._socket is None:
            return events
        while True:
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            event = self._on_frames(frames)
            if event is not None:
                events.append(event)
        events.extend(self._check_timeouts(time.monotonic() if now is None else now))
        return events

    def _on_frames(self, frames: list) -> Event | None:
        try:
            reply = P.decode_message(frames, self.limits)
        except P.ProtocolError as exc:
            pending = self._pending.pop(exc.msg_id, None) if exc.msg_id else None
            if pending is None:
                return None  # undecodable and unattributable: nothing to tell anyone
            return Event("failed", pending.message, error=f"bad reply from the server: {exc.message}")
        request_id = reply.fields.get("request_id")
        pending = self._pending.get(request_id) if request_id else None
        if pending is None:
            return None  # a late reply to a request given up on or forgotten
        if reply.type == "progress":
            pending.deadline = time.monotonic() + self.timeout
        else:
            del self._pending[request_id]
        return Event("reply", pending.message, reply)

    def _check_timeouts(self, now: float) -> list[Event]:
        expired = [p for p in self._pending.values() if now >= p.deadline]
        if not expired:
            return []
        events = []
        for pending in expired:
            if pending.tries > self.retries:
                del self._pending[pending.message.id]
                events.append(Event("failed", pending.message, error=(
                    f"no reply from {self.endpoint} after {pending.tries} tries of {self.timeout:g} s "
                    "(is the server running?)")))
        expired_ids = {p.message.id for p in expired}
        self._reconnect()  # Lazy Pirate: a fresh socket, then everything still wanted again
        for pending in self._pending.values():
            if pending.message.id in expired_ids:
                pending.tries += 1
            pending.deadline = now + self.timeout
            self._write(pending.frames)
        return events
