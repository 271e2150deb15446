"""The add-on's live link to the server: one client, the requests in flight, the pick outbox.

Operators call `generate`, `cancel` and `pick`, which return at once. `poll_once()` is a
plain function: `bpy.app.timers` calls it (through `_timer`) in Blender, tests call it
directly (the bpy module runs no timers). It reads the client's events on the main thread
and applies them to the scene: progress and errors go to the status line (and, with a UI, to
the report area), a result becomes the candidates' collection, a `pick_ok` empties the pick
out of the outbox. Status lives here, not in the .blend: it describes this session only.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import bpy

from . import body, candidates, preferences
from .client import Client, ClientError, Event
from .outbox import FILE_NAME, Outbox, OutboxError
from .vendored import protocol as P

BUSY_INTERVAL = 0.1  # seconds between polls while requests are in flight
IDLE_RETRY = 15.0  # seconds between attempts to deliver waiting picks
# Pick errors that will not change by sending again: the pick is kept under `failed`.
FINAL_PICK_ERRORS = (P.UNKNOWN_REQUEST, P.BAD_INDEX, P.DUPLICATE_KEY, P.BAD_FIELD)


@dataclass
class Status:
    text: str = "Ready"
    level: str = 'INFO'  # 'INFO', 'WARNING' or 'ERROR'
    progress: float | None = None  # 0..1 while generating


@dataclass
class State:
    client: Client | None = None
    client_config: tuple = ()
    generate_id: str | None = None  # the one generate request in flight
    generate_info: dict = field(default_factory=dict)
    picks_in_flight: dict = field(default_factory=dict)  # message id -> idempotency key
    hello: dict | None = None  # fields of the server's last hello_ok
    status: Status = field(default_factory=Status)
    outbox: Outbox | None = None
    next_flush: float = 0.0


_state = State()


def state() -> State:
    return _state


def server_models() -> list[str]:
    return list((_state.hello or {}).get("models", []))


# --- status and reports -----------------------------------------------------------------------

def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()


def set_status(text: str, level: str = 'INFO', progress: float | None = None) -> None:
    """Show `text` on the panel's status line; with a UI, new warnings and errors also become reports."""
    repeated = (_state.status.text, _state.status.level) == (text, level)
    _state.status = Status(text, level, progress)
    if level != 'INFO' and not repeated:
        print(f"SoPo Motion {level.lower()}: {text}")
        if not bpy.app.background:
            _report(level, text)
    _redraw()


def _report(level: str, text: str) -> None:
    # bpy.ops hands an ERROR report back to its Python caller as RuntimeError; the report itself
    # still reaches the status bar and Info editor, which is all that is wanted here.
    try:
        bpy.ops.sopo.notify(level=level, message=text)
    except RuntimeError:
        pass


# --- the client -------------------------------------------------------------------------------

def _client() -> Client:
    """The client for the current preferences (a new one when they changed and nothing is in flight)."""
    prefs = preferences.get()
    config = (prefs.server_address.strip(), prefs.timeout, prefs.retries, prefs.server_key, prefs.client_key_file)
    if _state.client is not None and (config == _state.client_config or _state.client.busy):
        return _state.client
    client = Client(config[0], timeout=prefs.timeout, retries=prefs.retries, curve=preferences.curve_keys(prefs))
    if _state.client is not None:
        _state.client.close()
    _state.client, _state.client_config = client, config
    _state.hello = None
    _state.picks_in_flight.clear()
    client.send(P.hello(client="sopo-blender"))
    return client


def outbox() -> Outbox | None:
    """The pick outbox in the extension's user folder (None, with an error status, if unreadable)."""
    if _state.outbox is None:
        folder = bpy.utils.extension_path_user(__package__, path="", create=True)
        try:
            _state.outbox = Outbox(os.path.join(folder, FILE_NAME))
        except OutboxError as exc:
            set_status(str(exc), 'ERROR')
    return _state.outbox


def _ensure_timer() -> None:
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=BUSY_INTERVAL, persistent=True)


# --- what operators call ------------------------------------------------------------------------

def generate(scene: bpy.types.Scene, prompt: str, n: int, seconds: float, seed: int, guidance: float,
             model: str = "") -> str:
    """Send a generate request; returns its id. Raises ClientError when it cannot be sent."""
    if _state.generate_id is not None:
        raise ClientError("a generation is already running: cancel it first")
    client = _client()
    message = P.generate(prompt, n=n, seconds=float(seconds), seed=int(seed), guidance=float(guidance),
                         model=model or None)
    client.send(message)
    _state.generate_id = message.id
    _state.generate_info = {"scene": scene.name, "prompt": prompt, "sent": time.monotonic()}
    set_status(f"Sent to {client.endpoint}: waiting for the server", progress=0.0)
    _ensure_timer()
    return message.id


def generating() -> bool:
    return _state.generate_id is not None


def cancel() -> bool:
    """Stop waiting for the running generation and ask the server to drop it."""
    request_id = _state.generate_id
    if request_id is None:
        return False
    _state.generate_id = None
    client = _state.client
    if client is not None:
        client.forget(request_id)
        try:
            client.send(P.cancel(request_id), expect_reply=False)
        except ClientError:
            pass  # nothing to cancel on a server we cannot reach
    set_status("Cancelled")
    return True


def pick(request_id: str, chosen: int | None, count: int) -> dict:
    """Record a pick in the outbox (so it survives anything), then try to send it.

    chosen: the candidate index, or None for "none are good"; every other candidate is rejected."""
    box = outbox()
    if box is None:
        raise ClientError(_state.status.text)
    rejected = [i for i in range(count) if i != chosen]
    entry = box.add(request_id, chosen, rejected, server=preferences.get().server_address)
    flush_outbox()
    return entry


def flush_outbox() -> int:
    """Send every waiting pick not already in flight; returns how many were sent."""
    box = outbox()
    if box is None or not len(box):
        return 0
    _state.next_flush = time.monotonic() + IDLE_RETRY
    _ensure_timer()
    try:
        client = _client()
    except ClientError as exc:
        set_status(f"{len(box)} pick(s) waiting: {exc}", 'WARNING')
        return 0
    waiting = set(_state.picks_in_flight.values())
    sent = 0
    for entry in box.pending:
        if entry["idempotency_key"] in waiting:
            continue
        message = P.pick(entry["request_id"], entry["chosen"], entry["idempotency_key"], entry["rejected"])
        client.send(message)
        _state.picks_in_flight[message.id] = entry["idempotency_key"]
        sent += 1
    return sent


# --- the poll ---------------------------------------------------------------------------------

def poll_once() -> float | None:
    """Apply whatever the server sent; returns seconds until the next poll, None when idle."""
    client = _state.client
    if client is not None:
        for event in client.poll_once():
            _apply(event)
    box = _state.outbox
    if box is not None and len(box) and not _state.picks_in_flight and time.monotonic() >= _state.next_flush:
        flush_outbox()
    if _state.client is not None and _state.client.busy:
        return BUSY_INTERVAL
    if box is not None and len(box):
        return max(BUSY_INTERVAL, min(IDLE_RETRY, _state.next_flush - time.monotonic()))
    return None


def _timer() -> float | None:
    try:
        return poll_once()
    except Exception as exc:  # a timer that raises is dropped by Blender: report and keep polling
        import traceback
        traceback.print_exc()
        set_status(f"Internal error while talking to the server: {exc}", 'ERROR')
        return 1.0


def _apply(event: Event) -> None:
    request = event.request
    if request.type == "hello":
        if event.type == "hello_ok":
            _state.hello = dict(event.reply.fields)
            _state.client.limits = P.Limits.from_dict(event.reply.fields["limits"])
    elif request.type == "generate":
        if request.id == _state.generate_id:
            _on_generate(event)
    elif request.type == "pick":
        _on_pick(event)
    if event.reply is not None and event.reply.type != "error" and _state.outbox is not None \
            and len(_state.outbox) and not _state.picks_in_flight:
        flush_outbox()  # the server answers again: deliver what waited


def _on_generate(event: Event) -> None:
    if event.type == "progress":
        step, total = event.reply.fields["step"], event.reply.fields["total"]
        set_status(f"Generating: step {step} of {total}", progress=step / total)
        return
    info = _state.generate_info
    _state.generate_id = None
    if event.type == "failed":
        set_status(event.error, 'ERROR')
    elif event.type == "error":
        f = event.reply.fields
        set_status(f"Server error ({f['code']}): {f['message']}", 'ERROR')
    elif event.type == "result":
        _import_result(event.reply, info)


def _import_result(reply: P.Message, info: dict) -> None:
    scene = bpy.data.scenes.get(info.get("scene", "")) or bpy.context.scene
    f = reply.fields
    smpl, problem = body.from_preferences(preferences.get())  # the artist's own body, read here
    notes = [] if smpl is None else list(smpl.get("notes", ()))
    build = dict(scene=scene, request_id=f["request_id"], prompt=info.get("prompt", ""),
                 rotations=reply.arrays["rotations"], translation=reply.arrays["translation"], fps=f["fps"],
                 model=f["model"])
    try:
        try:
            collection = candidates.import_candidates(**build, body=smpl)
        except ValueError as exc:
            if smpl is None:
                raise
            problem = f"the SMPL body does not fit ({exc})"
            collection = candidates.import_candidates(**build)
    except (ValueError, RuntimeError) as exc:
        set_status(f"Could not build the candidates: {exc}", 'ERROR')
        return
    scene.sopo_motion.candidates = collection
    n, frames = reply.arrays["rotations"].shape[:2]
    seconds = time.monotonic() - info.get("sent", time.monotonic())
    text = f"{n} candidates of {frames} frames ({seconds:.1f} s): play them, then pick the best"
    if problem:
        set_status(f"{text}. No SMPL body, capsules instead: {problem}", 'WARNING')
    elif notes:
        set_status(f"{text}. SMPL body: {'; '.join(notes)}", 'WARNING')
    else:
        set_status(text)
    if bpy.ops.ed.undo_push.poll():
        bpy.ops.ed.undo_push(message="Generate motion candidates")


def _on_pick(event: Event) -> None:
    key = _state.picks_in_flight.pop(event.request.id, None)
    box = _state.outbox
    if key is None or box is None:
        return
    if event.type == "pick_ok":
        box.delivered(key)
        set_status("Pick sent to the server" + (f"; {len(box)} still waiting" if len(box) else ""))
    elif event.type == "error" and event.reply.fields["code"] in FINAL_PICK_ERRORS:
        f = event.reply.fields
        box.refused(key, f"{f['code']}: {f['message']}")
        set_status(f"The server refused a pick ({f['code']}): {f['message']}", 'ERROR')
    else:
        reason = event.error if event.type == "failed" else event.reply.fields["message"]
        _state.next_flush = time.monotonic() + IDLE_RETRY
        set_status(f"{len(box)} pick(s) kept in the outbox, sent when the server is back ({reason})", 'WARNING')


# --- add-on lifetime ----------------------------------------------------------------------------

def start() -> None:
    """On register: load the outbox and, if picks wait there, start delivering them."""
    box = outbox()
    if box is not None and len(box):
        _state.next_flush = 0.0
        _ensure_timer()


def stop() -> None:
    """On unregister: stop polling and close the socket (waiting picks stay in the outbox file)."""
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _state.client is not None:
        _state.client.close()
    globals()["_state"] = State()
