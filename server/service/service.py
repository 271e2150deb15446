"""The motion service: a ZeroMQ ROUTER loop on one thread, batched generation on another.

The socket thread (``MotionService.run``) decodes every message, answers ``hello``,
``pick``, ``cancel`` and protocol errors at once, and queues ``generate`` jobs. A worker
thread takes whatever jobs are queued together (up to a batch budget), runs them as one
``MotionGenerator.generate`` call, stores each result, and hands progress, results and
errors back through an inproc PUSH/PULL pipe; the socket thread routes them to whichever
client currently owns the request. ``reload`` loads the new checkpoint on its own thread
and swaps it in; a batch already running finishes on the generator it started with.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import zmq
import zmq.auth.thread
from zmq.utils.monitor import recv_monitor_message

from shared import protocol as P
from shared.constraints import FIELDS as CONSTRAINT_FIELDS, ConstraintError, clip_frames
from shared.skeleton import JOINT_NAMES, PARENTS
from server.service.models_folder import (BUNDLED_DIR, CheckpointNameError, ModelsWatcher, check_name,
                                  default_checkpoint_name, list_checkpoints, resolve_checkpoint)
from server.service.picks import PickError, PicksStore
from server.service.security import authorized_dir, check_bind, server_keypair

log = logging.getLogger("sopo.server")

SERVER_VERSION = "0.1.0"
DEFAULT_BIND = "tcp://127.0.0.1:5555"
OUTBOX = "inproc://sopo-outbox-{}"
ROUTE_JOB, ROUTE_PEER = b"job", b"peer"   # outbox routes: by request id, or straight to a peer identity

Loader = Callable[[Path, str | None], Any]  # (checkpoint dir, device) -> MotionGenerator


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/sopo-motion``, else ``~/.local/share/sopo-motion`` (``%LOCALAPPDATA%`` on Windows)."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "sopo-motion"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sopo-motion"


def peer_on_this_machine(peer_address: str | None, bind: str) -> bool:
    """Whether a client runs on the server's machine: an ipc/inproc bind, or a loopback peer address."""
    import ipaddress
    if bind.startswith(("ipc://", "inproc://")):
        return True
    try:
        address = ipaddress.ip_address((peer_address or "").strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _confidence_fields(params: dict[str, Any], wanted: bool) -> dict[str, Any]:
    """The result's confidence fields kept in a job's (stored) params, for a generate that asked for them."""
    return dict(params.get("prompt_confidence") or {}) if wanted else {}


def _prompt_confidences(gen: Any, prompts: list[str]) -> list[Any]:
    """gen.prompt_confidence(prompts), or None per prompt when the generator cannot tell (or fails to)."""
    score = getattr(gen, "prompt_confidence", None)
    if score is None:
        return [None] * len(prompts)
    try:
        return list(score(prompts))
    except Exception:  # a confidence failure must not cost the user the motions
        log.exception("prompt confidence failed")
        return [None] * len(prompts)


def _constraints_of(msg: P.Message) -> tuple[Any, str | None]:
    """(Constraints or None, a digest of their fields and arrays) of a decoded generate (protocol v1.1)."""
    constraints = P.generate_constraints(msg)
    if constraints is None:
        return None, None
    digest = hashlib.sha256(json.dumps({k: msg.fields.get(k) for k in CONSTRAINT_FIELDS}, sort_keys=True).encode())
    for name, array in msg.arrays.items():
        digest.update(name.encode())
        digest.update(array.tobytes())
    return constraints, digest.hexdigest()[:16]


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_generator(checkpoint_dir: Path, device: str | None) -> Any:
    """The real loader: ``server.model.inference.MotionGenerator.load``, warmed up so the first request is not slow."""
    from server.model.inference import MotionGenerator
    generator = MotionGenerator.load(checkpoint_dir, device=device)
    generator.warm_up()
    return generator


@dataclass
class ServiceConfig:
    bind: str = DEFAULT_BIND
    data_dir: Path = field(default_factory=default_data_dir)
    checkpoint: str | None = None          # a name in data_dir/models or server/checkpoints; None: bundled default
    device: str | None = None              # None: CUDA when present, else CPU
    watch: bool = False
    watch_interval_s: float = 2.0
    insecure: bool = False
    keys_dir: Path | None = None
    limits: P.Limits = field(default_factory=P.Limits)
    max_batch_requests: int = 16           # 1 turns batching off
    max_batch_candidates: int = 64
    batch_window_s: float = 0.01           # wait this long after the first job for others to join
    max_queue: int = 256
    max_inbound_bytes: int = 1024 * 1024   # ZMQ_MAXMSGSIZE: bigger frames drop the connection
    bundled_dir: Path = BUNDLED_DIR
    models: Path | None = None             # models folder; None: data_dir/models

    @property
    def models_dir(self) -> Path:
        return Path(self.models) if self.models is not None else Path(self.data_dir) / "models"

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "picks.db"


@dataclass(frozen=True)
class LoadedModel:
    checkpoint: str
    generator: Any
    limits: P.Limits


class Job:
    """One generate request between the socket thread and the worker."""

    def __init__(self, request_id: str, identity: bytes, fields: dict[str, Any]):
        self.request_id = request_id
        self.identity = identity               # socket thread only: who gets the replies now
        self.fields = fields
        self.n = int(fields.get("n") or P.DEFAULT_N)
        self.cancelled = threading.Event()     # explicit cancel
        self.orphaned = threading.Event()      # its client is unreachable
        self.state = "queued"                  # queued -> running -> done, under lock
        self.lock = threading.Lock()
        self.params: dict[str, Any] = {}       # resolved n/seconds/seed/guidance/steps, set by the worker
        self.constraints: Any = None           # shared.constraints.Constraints of a v1.1 generate, or None
        self.constraints_digest: str | None = None

    def stopped(self) -> bool:
        return self.cancelled.is_set() or self.orphaned.is_set()

    def same_request(self, fields: dict[str, Any]) -> bool:
        return self.fields == fields


class MotionService:
    """The server. ``run()`` blocks on the calling thread; ``stop()`` may be called from any thread."""

    def __init__(self, config: ServiceConfig, loader: Loader = load_generator):
        self.config = config
        self._loader = loader
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.endpoint: str | None = None
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=config.max_queue)
        self._jobs: dict[str, Job] = {}
        self._peers: OrderedDict[bytes, str] = OrderedDict()
        self._reload_lock = threading.Lock()
        self._outbox = OUTBOX.format(id(self))
        self.stats: Counter[str] = Counter()   # batches, requests, max_batch, cancelled, stopped_batches, failed
        check_bind(config.bind, config.keys_dir, config.insecure)
        if config.keys_dir is not None:   # missing keys fail now, before the model loads
            server_keypair(config.keys_dir)
            authorized_dir(config.keys_dir)
        config.models_dir.mkdir(parents=True, exist_ok=True)
        self.device = config.device or default_device()
        name = config.checkpoint or default_checkpoint_name(config.bundled_dir)
        self.model = self._load(name)
        self.store = PicksStore(config.db_path)
        # Checkpoints present now are known; --watch loads those that appear or change later.
        self._watcher = ModelsWatcher(config.models_dir) if config.watch else None
        log.info("model %s (%s) on %s; data in %s", self.model.generator.model_id, name, self.device,
                 config.data_dir)

    # --- models -------------------------------------------------------------------------

    def _load(self, name: str) -> LoadedModel:
        path = resolve_checkpoint(name, self.config.models_dir, self.config.bundled_dir)
        generator = self._loader(path, self.device)
        base = self.config.limits
        limits = replace(base, max_seconds=min(base.max_seconds, float(generator.max_seconds)),
                         max_steps=min(base.max_steps, int(generator.max_steps)))
        return LoadedModel(name, generator, limits)

    def _reload(self, name: str, identity: bytes | None, msg_id: str | None) -> None:
        """Load ``name`` and swap it in (own thread); reply reload_ok or error to ``identity``."""
        push = self._push_socket()
        try:
            with self._reload_lock:
                try:
                    loaded = self._load(name)
                except Exception as exc:  # any failure to load is the client's bad checkpoint
                    log.warning("reload of %r failed: %s", name, exc)
                    reply = P.error(P.BAD_CHECKPOINT, f"cannot load checkpoint {name!r}: {exc}", msg_id)
                else:
                    self.model = loaded   # one reference assignment: the swap is atomic
                    log.info("reloaded: model %s from checkpoint %s", loaded.generator.model_id, name)
                    reply = P.reload_ok(msg_id or P.new_id(), name, loaded.generator.model_id)
            if identity is not None:
                push.send_multipart([ROUTE_PEER, identity, b"1", *reply.encode(self.model.limits)], copy=False)
        finally:
            push.close(linger=1000)

    def _start_reload(self, name: str, identity: bytes | None, msg_id: str | None) -> None:
        threading.Thread(target=self._reload, args=(name, identity, msg_id), name="sopo-reload",
                         daemon=True).start()

    # --- socket thread ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Bind, serve until stop(), then close everything (sockets, worker, store)."""
        self._ctx = zmq.Context()
        auth = None
        router = self._ctx.socket(zmq.ROUTER)
        outbox = self._ctx.socket(zmq.PULL)
        monitor = None
        worker = threading.Thread(target=self._worker, name="sopo-worker", daemon=True)
        try:
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.setsockopt(zmq.MAXMSGSIZE, self.config.max_inbound_bytes)
            router.setsockopt(zmq.SNDHWM, 1000)
            router.setsockopt(zmq.RCVHWM, 1000)
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.HEARTBEAT_IVL, 2000)
            router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
            if self.config.keys_dir is not None:
                auth = zmq.auth.thread.ThreadAuthenticator(self._ctx, log=logging.getLogger("sopo.auth"))
                auth.start()
                auth.configure_curve(domain="*", location=str(authorized_dir(self.config.keys_dir)))
                public, secret = server_keypair(self.config.keys_dir)
                router.curve_secretkey, router.curve_publickey, router.curve_server = secret, public, True
            monitor = router.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
                                                | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
            router.bind(self.config.bind)
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            outbox.bind(self._outbox)
            worker.start()
            log.info("listening on %s%s", self.endpoint, " (CURVE)" if auth else "")
            self.ready.set()
            self._loop(router, outbox, monitor)
        finally:
            self._stop.set()
            if worker.is_alive():
                worker.join(timeout=30)
            if monitor is not None:
                router.disable_monitor()
            for sock in (monitor, outbox):
                if sock is not None:
                    sock.close(linger=0)
            router.close(linger=0)
            if auth is not None:
                auth.stop()
            self._ctx.term()
            self.store.close()
            self.ready.set()
            log.info("stopped")

    def _loop(self, router: zmq.Socket, outbox: zmq.Socket, monitor: zmq.Socket) -> None:
        poller = zmq.Poller()
        for sock in (router, outbox, monitor):
            poller.register(sock, zmq.POLLIN)
        watcher = self._watcher
        next_watch = time.monotonic() + self.config.watch_interval_s
        while not self._stop.is_set():
            events = dict(poller.poll(100))
            if outbox in events:
                for _ in range(1000):
                    try:
                        self._forward(router, outbox.recv_multipart(zmq.NOBLOCK, copy=False))
                    except zmq.Again:
                        break
            if router in events:
                for _ in range(1000):
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._handle(router, frames)
            if monitor in events:
                self._log_monitor(monitor)
            if watcher is not None and time.monotonic() >= next_watch:
                next_watch = time.monotonic() + self.config.watch_interval_s
                changed = watcher.poll()
                if changed:
                    log.info("watch: checkpoint %s appeared or changed; reloading", changed)
                    self._start_reload(changed, None, None)

    def _log_monitor(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            name = {zmq.EVENT_ACCEPTED: "connection accepted", zmq.EVENT_DISCONNECTED: "disconnected",
                    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "authentication FAILED",
                    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed"}.get(event["event"], "event")
            log.info("%s on %s", name, event["endpoint"].decode(errors="replace"))

    def _send(self, router: zmq.Socket, identity: bytes, frames: list) -> bool:
        """Send to a peer; False only when the peer is gone. A peer not keeping up loses the message."""
        try:
            router.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return False
            if exc.errno != zmq.EAGAIN:
                raise
            log.warning("client %s is not reading; a message to it was dropped", identity.hex())
        return True

    def _reply(self, router: zmq.Socket, identity: bytes, message: P.Message) -> None:
        self._send(router, identity, message.encode(self.model.limits))

    def _forward(self, router: zmq.Socket, frames: list) -> None:
        """Route one outbox message: [ROUTE_JOB, request id, final, *payload] or [ROUTE_PEER, identity, ...]."""
        route, target, final = frames[0].bytes, frames[1].bytes, frames[2].bytes == b"1"
        payload = frames[3:]
        if route == ROUTE_PEER:
            self._send(router, target, payload)
            return
        request_id = target.decode()
        job = self._jobs.get(request_id)
        if job is None:
            return
        if final:
            del self._jobs[request_id]
        if not self._send(router, job.identity, payload) and not final:
            job.orphaned.set()   # the client vanished: stop spending work on it

    def _note_peer(self, identity: bytes, frame: zmq.Frame) -> None:
        if identity in self._peers:
            self._peers.move_to_end(identity)
            return
        try:
            address = frame.get("Peer-Address")
        except zmq.ZMQError:
            address = "?"
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:
            user = ""
        self._peers[identity] = address
        if len(self._peers) > 4096:
            self._peers.popitem(last=False)
        log.info("client %s connected from %s%s", identity.hex(), address, f" (key {user})" if user else "")

    def _handle(self, router: zmq.Socket, frames: list) -> None:
        identity, payload = frames[0].bytes, frames[1:]
        if payload:
            self._note_peer(identity, payload[0])
        limits = self.model.limits
        try:
            msg = P.decode_message(payload, limits, accept=P.CLIENT_TYPES)
        except P.ProtocolError as exc:
            self.stats["bad_messages"] += 1
            log.debug("bad message from %s: %s", identity.hex(), exc)
            self._reply(router, identity, P.error(exc.code, exc.message, exc.msg_id))
            return
        try:
            getattr(self, f"_on_{msg.type}")(router, identity, msg)
        except Exception as exc:  # the server keeps serving whatever one handler does
            log.exception("failed to handle %s %s", msg.type, msg.id)
            self._reply(router, identity, P.error(P.INTERNAL, f"{type(exc).__name__}: {exc}", msg.id))

    def _on_hello(self, router: zmq.Socket, identity: bytes, msg: P.Message) -> None:
        model = self.model
        if msg.get("client"):
            log.info("hello from %s: %s", self._peers.get(identity, identity.hex()), msg.fields["client"])
        skeleton = {"joints": list(JOINT_NAMES), "parents": [int(p) for p in PARENTS],
                    "fps": float(model.generator.fps)}
        names = list_checkpoints(self.config.models_dir, self.config.bundled_dir)
        models_dir = None   # told only to a client on this machine that asks (finetune.py writes there)
        if msg.get("want_models_dir") and peer_on_this_machine(self._peers.get(identity), self.config.bind):
            models_dir = str(Path(self.config.models_dir).resolve())
        self._reply(router, identity, P.hello_ok(msg.id, SERVER_VERSION, names, model.generator.model_id,
                                                 model.limits, skeleton, self.device, models_dir=models_dir))

    def _on_generate(self, router: zmq.Socket, identity: bytes, msg: P.Message) -> None:
        model = self.model
        wanted = msg.get("model")
        if wanted is not None and wanted not in (model.checkpoint, model.generator.model_id):
            self._reply(router, identity, P.error(
                P.UNKNOWN_MODEL, f"model {wanted!r} is not loaded (loaded: {model.generator.model_id}); "
                "send 'reload' first", msg.id))
            return
        constraints, digest = _constraints_of(msg)
        job = self._jobs.get(msg.id)
        if job is not None:   # a resend (Lazy Pirate): replies now go to the resending socket
            if not job.same_request(msg.fields) or job.constraints_digest != digest:
                self._reply(router, identity, P.error(P.DUPLICATE_ID, f"request id {msg.id} is in use", msg.id))
                return
            job.identity = identity
            job.orphaned.clear()
            return
        stored = self.store.get_result(msg.id)
        if stored is not None:
            if stored.prompt != msg.fields["prompt"] or stored.params.get("constraints_digest") != digest:
                self._reply(router, identity, P.error(P.DUPLICATE_ID, f"request id {msg.id} is in use", msg.id))
                return
            self._reply(router, identity, P.result(
                msg.id, stored.rotations, stored.translation, stored.fps, stored.model_id, stored.seed,
                stored.params.get("steps"), stored.params.get("guidance"),
                **_confidence_fields(stored.params, msg.get("want_confidence", False))))
            return
        job = Job(msg.id, identity, msg.fields)
        job.constraints, job.constraints_digest = constraints, digest
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._reply(router, identity, P.error(P.BUSY, "the server's queue is full; retry later", msg.id))
            return
        self._jobs[msg.id] = job

    def _on_cancel(self, router: zmq.Socket, identity: bytes, msg: P.Message) -> None:
        job = self._jobs.get(msg.fields["request_id"])
        peer = self._peers.get(identity, identity.hex())
        if job is None:
            log.info("cancel of %s from %s: not running (finished or unknown)", msg.fields["request_id"], peer)
            return  # already finished or never known: nothing to stop, and cancel has no reply
        with job.lock:
            queued = job.state == "queued"
            job.state = "done" if queued else job.state
            job.cancelled.set()
        log.info("cancel of %s from %s: %s", job.request_id, peer, "dropped from the queue" if queued else "stopping")
        if queued:   # the worker will skip it; answer now
            self.stats["cancelled"] += 1
            del self._jobs[job.request_id]
            self._send(router, job.identity, P.error(P.CANCELLED, "cancelled", job.request_id).encode())

    def _on_pick(self, router: zmq.Socket, identity: bytes, msg: P.Message) -> None:
        f = msg.fields
        try:
            outcome = self.store.record_pick(f["idempotency_key"], f["request_id"], f["chosen"],
                                             f.get("rejected"), client=self._peers.get(identity))
        except PickError as exc:
            self._reply(router, identity, P.error(exc.code, str(exc), msg.id))
            return
        self._reply(router, identity, P.pick_ok(msg.id, f["idempotency_key"], outcome.duplicate))

    def _on_reload(self, router: zmq.Socket, identity: bytes, msg: P.Message) -> None:
        name = msg.fields["checkpoint"]
        try:
            check_name(name)
            resolve_checkpoint(name, self.config.models_dir, self.config.bundled_dir)
        except CheckpointNameError as exc:
            self._reply(router, identity, P.error(P.BAD_CHECKPOINT, str(exc), msg.id))
            return
        self._start_reload(name, identity, msg.id)

    # --- worker thread ------------------------------------------------------------------

    def _push_socket(self) -> zmq.Socket:
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(self._outbox)
        return push

    def _worker(self) -> None:
        push = self._push_socket()
        carry: Job | None = None
        try:
            while not self._stop.is_set():
                batch, carry = self._next_batch(carry)
                try:
                    self._run_batch(push, batch)
                except Exception as exc:  # a bug here must not end the worker or strand the clients
                    log.exception("batch failed")
                    for job in batch:
                        if job.state == "running":
                            self._emit(push, job, P.error(P.INTERNAL, f"{type(exc).__name__}: {exc}",
                                                          job.request_id), self.model.limits, True)
        finally:
            push.close(linger=1000)

    def _next_batch(self, carry: Job | None) -> tuple[list[Job], Job | None]:
        """Jobs queued together: the first, then whatever arrives within the batch window, up to the budget."""
        if carry is None:
            try:
                carry = self._queue.get(timeout=0.1)
            except queue.Empty:
                return [], None
        batch, candidates = [carry], carry.n
        deadline = time.monotonic() + self.config.batch_window_s
        while len(batch) < self.config.max_batch_requests:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if candidates + job.n > self.config.max_batch_candidates:
                return batch, job
            batch.append(job)
            candidates += job.n
        return batch, None

    def _emit(self, push: zmq.Socket, job: Job, message: P.Message | list, limits: P.Limits, final: bool) -> None:
        """Hand a message (or its encoded frames) for ``job`` to the socket thread; ``final`` ends the job."""
        frames = message.encode(limits) if isinstance(message, P.Message) else message
        if final:
            with job.lock:
                job.state = "done"
        push.send_multipart([ROUTE_JOB, job.request_id.encode(), b"1" if final else b"0", *frames], copy=False)

    def _run_batch(self, push: zmq.Socket, batch: list[Job]) -> None:
        from server.model.inference import GenerationRequest, RequestError
        if not batch:
            return
        running = []
        for job in batch:
            with job.lock:
                if job.state == "queued":
                    job.state = "running"
                    running.append(job)
        model = self.model     # this batch finishes on this model, whatever reload does meanwhile
        gen, limits = model.generator, model.limits
        requests, jobs = [], []
        for job in running:
            f = job.fields
            seconds = float(f.get("seconds") or P.DEFAULT_SECONDS)
            steps = f.get("steps")
            if seconds > limits.max_seconds or (steps is not None and steps > limits.max_steps):
                self._emit(push, job, P.error(P.BAD_FIELD, f"seconds/steps exceed model {gen.model_id}'s limits "
                                              f"({limits.max_seconds} s, {limits.max_steps} steps)",
                                              job.request_id), limits, True)
                continue
            if job.constraints is not None:   # checked at 20 fps on decoding; again at this model's rate
                try:
                    job.constraints.check(clip_frames(seconds, gen.fps), gen.fps)
                except ConstraintError as exc:
                    self._emit(push, job, P.error(exc.code, f"constraints: {exc}", job.request_id), limits, True)
                    continue
            seed = f.get("seed")
            job.params = {"n": job.n, "seconds": seconds,
                          "seed": secrets.randbelow(2**31) if seed is None else int(seed),
                          "guidance": float(gen.default_guidance if f.get("guidance") is None else f["guidance"]),
                          "steps": int(gen.default_steps if steps is None else steps),
                          "foot_cleanup": f.get("foot_cleanup") is not False}
            requests.append(GenerationRequest(prompt=f["prompt"], **job.params, constraints=job.constraints))
            jobs.append(job)
        if not jobs:
            return
        last = [0.0]

        def progress(step: int, total: int) -> None:
            now = time.monotonic()
            if total < 1 or not 0 <= step <= total or (step < total and now - last[0] < 0.05):
                return
            last[0] = now
            for job in jobs:
                if not job.stopped():
                    self._emit(push, job, P.progress(job.request_id, int(step), int(total)), limits, False)

        def should_stop() -> bool:
            return self._stop.is_set() or all(job.stopped() for job in jobs)

        started = time.monotonic()
        try:
            outputs = gen.generate(requests, progress=progress, should_stop=should_stop)
            failure = None
        except Exception as exc:  # a model failure fails this batch, not the server
            outputs, failure = None, exc
        self.stats["batches"] += 1
        self.stats["requests"] += len(jobs)
        self.stats["max_batch"] = max(self.stats["max_batch"], len(jobs))
        if should_stop():
            self.stats["stopped_batches"] += 1
            for job in jobs:
                self._emit(push, job, P.error(P.CANCELLED, "cancelled", job.request_id), limits, True)
            return
        if failure is not None:
            self.stats["failed_batches"] += 1
            log.error("generation failed for %d requests", len(jobs), exc_info=failure)
            code = P.BAD_FIELD if isinstance(failure, RequestError) else P.INTERNAL
            for job in jobs:
                self._emit(push, job, P.error(code, f"generation failed: {failure}", job.request_id), limits, True)
            return
        log.info("batch of %d requests (%d candidates) in %.2f s on %s", len(jobs), sum(j.n for j in jobs),
                 time.monotonic() - started, gen.model_id)
        for job, confidence in zip(jobs, _prompt_confidences(gen, [job.fields["prompt"] for job in jobs])):
            if confidence is not None:   # stored with the result, so a resent request gets it again
                job.params["prompt_confidence"] = {"confidence": confidence.confidence,
                                                   "nearest_caption": confidence.nearest_caption,
                                                   "low_confidence": confidence.low}
        for job, (rotations, translation) in zip(jobs, outputs):
            self._finish(push, job, gen, limits, rotations, translation)

    def _finish(self, push: zmq.Socket, job: Job, gen: Any, limits: P.Limits, rotations, translation) -> None:
        """Store, then send, one job's result (or say why not)."""
        if job.cancelled.is_set():
            self.stats["cancelled"] += 1
            self._emit(push, job, P.error(P.CANCELLED, "cancelled", job.request_id), limits, True)
            return
        p = job.params
        message = P.result(job.request_id, rotations, translation, float(gen.fps), gen.model_id,
                           p["seed"], p["steps"], p["guidance"],
                           **_confidence_fields(p, job.fields.get("want_confidence") or False))
        try:
            frames = message.encode(limits)
            stored = {**p, "family": gen.family} if getattr(gen, "family", None) else p  # finetune.py checks it
            if job.constraints is not None:   # constrained results are told apart (and resends checked)
                stored = {**stored, "constraints": job.constraints.names(), "constraints_digest": job.constraints_digest}
            self.store.save_result(job.request_id, job.fields["prompt"], stored, gen.model_id, p["seed"],
                                   rotations, translation, float(gen.fps))
        except (P.ProtocolError, PickError) as exc:
            log.error("result %s not sent: %s", job.request_id, exc)
            self._emit(push, job, P.error(P.INTERNAL, f"result could not be stored or encoded: {exc}",
                                          job.request_id), limits, True)
            return
        self._emit(push, job, frames, limits, True)
