"""A non-blocking ZeroMQ client for the motion server (no bpy: tests drive it directly).

One DEALER socket; `send()` queues a request and returns at once; `poll_once()` reads whatever
has arrived without waiting and returns it as events.

Two clocks decide when to give up:
- Reachability (`reach_timeout`, ~1.5 s): a request goes out with a short `hello` probe unless
  the server spoke very recently. If the server says nothing at all (no reply to anything) within
  `reach_timeout` of a probe, it is unreachable: every request it never acknowledged fails at
  once with an "unreachable" event, and the socket is reopened so nothing stale is delivered
  later. Any message from the server (a `progress`, a `hello_ok`) proves it alive.
- Lazy Pirate (zguide), for requests sent to a server that was alive: a request that hears
  nothing for `timeout` seconds (a `progress` counts as life) gets the socket closed and
  reopened and every outstanding request sent again with the same id, up to `retries` times;
  then it fails with a "failed" event. Resending is safe: the server answers a repeated
  `generate` id from its running job or its store, and stores a pick's idempotency key once.
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
    sent: float = 0.0  # when it was (last) written: the server is known to have it once it spoke since
    tries: int = 1


@dataclass
class Event:
    """What `poll_once` found: a reply to `request` (kind "reply"), or kind "failed" (no reply after
    every try) or "unreachable" (the server never answered) with `error`. `latency`: seconds from
    sending a probe to its `hello_ok`."""

    kind: str
    request: P.Message
    reply: P.Message | None = None
    error: str = ""
    latency: float | None = None

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
                 limits: P.Limits | None = None, context: zmq.Context | None = None, reach_timeout: float = 1.5,
                 name: str = "sopo-blender"):
        check_endpoint(endpoint)
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.reach_timeout = float(reach_timeout)
        self.limits = limits or P.Limits()
        self.curve = curve
        self.name = name  # sent in the first hello only: the server logs hellos that carry a name
        self.last_heard: float | None = None  # when the server last said anything
        self._context = context or zmq.Context.instance()
        self._pending: dict[str, Pending] = {}
        self._probes: dict[str, tuple[P.Message, float]] = {}  # hello id -> (message, sent)
        self._named = False
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

    def close(self, linger: int = 0) -> None:
        """Close the socket; messages not yet out are dropped after `linger` milliseconds."""
        if self._socket is not None:
            self._socket.close(linger=linger)
            self._socket = None
        self._pending.clear()
        self._probes.clear()

    @property
    def busy(self) -> bool:
        """Requests (not probes) still waiting for their reply."""
        return bool(self._pending)

    @property
    def probing(self) -> bool:
        return bool(self._probes)

    def heard_since(self, when: float) -> bool:
        return self.last_heard is not None and self.last_heard >= when

    def probe(self, now: float | None = None) -> str | None:
        """Send a `hello` (unless one is already out); its `hello_ok` says the server is alive, its
        silence for `reach_timeout` says it is not. Returns the probe's id, or None if one was out."""
        if self._probes:
            return None
        now = time.monotonic() if now is None else now
        message = P.hello(client=None if self._named else self.name)
        self._named = True
        if self._socket is None:
            self._open()
        self._write(message.encode(self.limits))
        self._probes[message.id] = (message, now)
        return message.id

    def in_flight(self, msg_id: str) -> bool:
        return msg_id in self._pending

    def _write(self, frames: list) -> None:
        try:
            self._socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # the pipe is full: the request counts as unanswered and is resent on timeout

    def send(self, message: P.Message, expect_reply: bool = True, now: float | None = None) -> None:
        """Queue `message`; with `expect_reply` it is tracked (and resent) until answered, and a probe
        goes with it unless the server spoke within the last `reach_timeout` / 2."""
        try:
            frames = message.encode(self.limits)
        except P.ProtocolError as exc:
            raise ClientError(f"cannot send {message.type}: {exc.message}") from None
        if self._socket is None:
            self._open()
        now = time.monotonic() if now is None else now
        self._write(frames)
        if expect_reply:
            self._pending[message.id] = Pending(message, frames, now + self.timeout, sent=now)
            if not self.heard_since(now - self.reach_timeout / 2):
                self.probe(now)

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
        now = time.monotonic() if now is None else now
        events.extend(self._check_reach(now))
        events.extend(self._check_timeouts(now))
        return events

    def _on_frames(self, frames: list) -> Event | None:
        now = time.monotonic()
        self.last_heard = now  # whatever it is, the server is alive
        try:
            reply = P.decode_message(frames, self.limits)
        except P.ProtocolError as exc:
            pending = self._pending.pop(exc.msg_id, None) if exc.msg_id else None
            if pending is None:
                return None  # undecodable and unattributable: nothing to tell anyone
            return Event("failed", pending.message, error=f"bad reply from the server: {exc.message}")
        request_id = reply.fields.get("request_id")
        probe = self._probes.pop(request_id, None) if request_id else None
        if probe is not None:
            return Event("reply", probe[0], reply, latency=now - probe[1])
        pending = self._pending.get(request_id) if request_id else None
        if pending is None:
            return None  # a late reply to a request given up on or forgotten
        if reply.type == "progress":
            pending.deadline = time.monotonic() + self.timeout
        else:
            del self._pending[request_id]
        return Event("reply", pending.message, reply)

    def _check_reach(self, now: float) -> list[Event]:
        """A probe unanswered for `reach_timeout` with nothing else heard since it went out: the
        server is unreachable. Requests it never acknowledged fail; the socket is reopened (dropping
        what waits in it, so a server that comes up later does not run them) and the acknowledged
        ones are sent again."""
        expired = [(m, sent) for m, sent in self._probes.values() if now >= sent + self.reach_timeout]
        if not expired:
            return []
        for message, _ in expired:
            del self._probes[message.id]
        sent = min(s for _, s in expired)
        if self.heard_since(sent):
            return []  # it spoke meanwhile (a progress, another reply): alive, the hello was just slow
        error = (f"the server at {self.endpoint} is not reachable: no answer in {self.reach_timeout:g} s "
                 + ("(is it running? are the address and the keys right?)" if self.curve is not None
                    else "(is it running? is the address right?)"))
        events = [Event("unreachable", message, error=error) for message, _ in expired]
        for pending in list(self._pending.values()):
            if not self.heard_since(pending.sent):
                del self._pending[pending.message.id]
                events.append(Event("unreachable", pending.message, error=error))
        self._reconnect()
        for pending in self._pending.values():
            pending.sent = now
            self._write(pending.frames)
        return events

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
        self._probes.clear()
        for pending in self._pending.values():
            if pending.message.id in expired_ids:
                pending.tries += 1
            pending.deadline = now + self.timeout
            pending.sent = now
            self._write(pending.frames)
        return events
