"""The add-on's live link to the server: one client, the connection state, the requests in
flight, the pick outbox.

Operators call `generate`, `cancel` and `pick`, which return at once. `poll_once()` is a
plain function: `bpy.app.timers` calls it (through `_timer`) in Blender, tests call it
directly (the bpy module runs no timers). It reads the client's events on the main thread
and applies them to the scene: progress and errors go to the status line (and, with a UI, to
the report area), a result becomes the candidates' collection, a `pick_ok` empties the pick
out of the outbox. Status lives here, not in the .blend: it describes this session only.

Connection state (the panel's first row): a short `hello` every `IDLE_PROBE` seconds (every
`BUSY_PROBE` while a generation runs) says whether the server answers, which model it has
loaded and how long it takes to answer. A server that says nothing within the preferences'
"answer within" (1.5 s by default) is reported unreachable: a Generate sent to it fails then,
a Pick stays in the outbox with a note. A server that sends progress is alive however long the
generation takes. The client follows the preferences: a corrected address is used by the next
request (a new client as soon as no generation runs on the old one).

Older servers: a protocol 1.0 server refuses a `generate` carrying fields it does not know
(`want_confidence`, `foot_cleanup`) with `bad_field`, and its `hello_ok` says `protocol` 1 like a 1.1
one. When the refusal names only such optional fields, the generation is sent again without them
(no confidence shown; the server's own foot handling) and the fields are remembered for that address,
so the next Generate leaves them out at once.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import body, candidates, keyframes, preferences, shaping
from .client import Client, ClientError, Event
from .outbox import FILE_NAME, Outbox, OutboxError
from .vendored import protocol as P

BUSY_INTERVAL = 0.1  # seconds between polls while requests are in flight
IDLE_INTERVAL = 0.5  # seconds between polls otherwise
IDLE_PROBE = 5.0  # seconds between hellos while idle
BUSY_PROBE = 2.0  # seconds between hellos while a generation runs
IDLE_RETRY = 15.0  # seconds between attempts to deliver waiting picks
# Pick errors that will not change by sending again: the pick is kept under `failed`.
FINAL_PICK_ERRORS = (P.UNKNOWN_REQUEST, P.BAD_INDEX, P.DUPLICATE_KEY, P.BAD_FIELD)
# `generate` fields newer than protocol 1.0 that a request may do without: a server that does not know
# them answers as it always did (no prompt confidence; its own foot handling).
OPTIONAL_GENERATE_FIELDS = ("want_confidence", "foot_cleanup")
_UNKNOWN_FIELDS = re.compile(r"has unknown fields \[([^\]]*)\]")


@dataclass
class Status:
    text: str = "Ready"
    level: str = 'INFO'  # 'INFO', 'WARNING' or 'ERROR'
    progress: float | None = None  # 0..1 while generating


@dataclass
class Connection:
    """What the last hellos said about the server at `endpoint`."""

    endpoint: str = ""
    reachable: bool | None = None  # None: not known yet
    model: str = ""
    device: str = ""
    latency: float | None = None  # seconds from hello to hello_ok
    checked: float | None = None  # monotonic time of the last answer or silence
    error: str = ""


@dataclass
class State:
    client: Client | None = None
    client_config: tuple = ()
    generate_id: str | None = None  # the one generate request in flight
    generate_info: dict = field(default_factory=dict)
    generate_params: dict = field(default_factory=dict)  # P.generate's arguments, to send it again
    unknown_fields: dict = field(default_factory=dict)  # endpoint -> generate fields its server refused
    picks_in_flight: dict = field(default_factory=dict)  # message id -> idempotency key
    hello: dict | None = None  # fields of the server's last hello_ok
    connection: Connection = field(default_factory=Connection)
    status: Status = field(default_factory=Status)
    outbox: Outbox | None = None
    next_flush: float = 0.0
    next_probe: float = 0.0


_state = State()


def state() -> State:
    return _state


def server_models() -> list[str]:
    return list((_state.hello or {}).get("models", []))


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def connection_row() -> tuple[str, str]:
    """(text, icon) for the panel's connection row."""
    c = _state.connection
    where = c.endpoint or "(no address)"
    if c.error and c.reachable is None:
        return c.error, 'ERROR'
    if c.reachable is None:
        return f"Checking {where}", 'SORTTIME'
    if not c.reachable:
        return f"Not reachable: {where}", 'UNLINKED'
    latency = "" if c.latency is None else f" \u00b7 {1000.0 * c.latency:.0f} ms"
    device = f" ({c.device})" if c.device else ""
    return f"{c.model or 'server'}{device}{latency}", 'LINKED'


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

def _config(prefs) -> tuple:
    return (prefs.server_address.strip(), prefs.timeout, prefs.retries, prefs.server_key, prefs.client_key_file,
            getattr(prefs, "reach_timeout", 1.5))


def _client() -> Client:
    """The client for the current preferences: a new one when they changed, unless a generation is
    still running on the old one (picks in flight are simply sent again from the outbox)."""
    prefs = preferences.get()
    config = _config(prefs)
    if _state.client is not None and (config == _state.client_config or _state.generate_id is not None):
        return _state.client
    _drop_client()
    _state.connection = Connection(endpoint=config[0])
    try:
        client = Client(config[0], timeout=prefs.timeout, retries=prefs.retries, curve=preferences.curve_keys(prefs),
                        reach_timeout=config[5])
    except ClientError as exc:
        _state.connection.error = str(exc)
        raise
    _state.client, _state.client_config = client, config
    client.probe()
    _state.next_probe = time.monotonic() + IDLE_PROBE
    return client


def _drop_client() -> None:
    if _state.client is not None:
        _state.client.close(linger=500)  # a cancel just sent still gets out
    _state.client, _state.client_config = None, ()
    _state.hello = None
    _state.picks_in_flight.clear()


def address_changed() -> None:
    """The preferences changed: check the (new) server now, unless a generation runs on the old one."""
    if _state.generate_id is None:
        _drop_client()
        _state.connection = Connection(endpoint=preferences.get().server_address.strip())
        _state.next_probe = 0.0
    _ensure_timer()
    _redraw()


def check_connection() -> bool:
    """Say hello now (the panel's refresh button); False when the address is unusable."""
    try:
        client = _client()
    except ClientError:
        _redraw()
        return False
    client.probe()
    _state.next_probe = time.monotonic() + IDLE_PROBE
    _ensure_timer()
    return True


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
             model: str = "", steps: int | None = None, *, constraints=None, foot_cleanup: bool = True,
             first_frame: float | None = None, anchor=None, pinned_seconds=()) -> str:
    """Send a generate request; returns its id. Raises ClientError when it cannot be sent.

    constraints: the artist controls (shared.constraints.Constraints, checked); foot_cleanup: the server's foot
    contact cleanup; the prompt's confidence is always asked for. first_frame: the scene frame the candidates'
    keys begin at (None: the scene's start); anchor: (4, 4) world matrix the candidates get (None: a new row);
    pinned_seconds: motion times of poses pinned from a rig (kept there by Apply to rig)."""
    if _state.generate_id is not None:
        raise ClientError("a generation is already running: cancel it first")
    client = _client()
    params = dict(prompt=prompt, n=n, seconds=float(seconds), seed=int(seed), guidance=float(guidance),
                  model=model or None, steps=steps, constraints=constraints, foot_cleanup=bool(foot_cleanup),
                  want_confidence=True)
    message = _send_generate(client, params)
    _state.generate_id = message.id
    _state.generate_params = params
    _state.generate_info = {"scene": scene.name, "prompt": prompt, "sent": time.monotonic(), "n": n,
                            "first_frame": first_frame,
                            "anchor": None if anchor is None else [float(v) for v in np.ravel(anchor)],
                            "controls": [] if constraints is None else constraints.names(),
                            "pinned_seconds": [float(x) for x in pinned_seconds]}
    _state.next_probe = time.monotonic() + BUSY_PROBE
    set_status(f"Sent to {client.endpoint}: waiting for the server", progress=0.0)
    _ensure_timer()
    return message.id


def _send_generate(client: Client, params: dict) -> P.Message:
    """Build and send a generate from P.generate's `params`, leaving out the optional fields this server refused."""
    refused = _state.unknown_fields.get(client.endpoint, ())
    try:
        message = P.generate(**{k: v for k, v in params.items() if k not in refused})
    except P.ProtocolError as exc:
        raise ClientError(f"cannot send generate: {exc.message}") from None
    client.send(message)
    return message


def unknown_optional_fields(error: P.Message) -> set[str]:
    """The optional generate fields an older server's `bad_field` error names as unknown; empty when it names
    any other field too (then leaving fields out would not help, or would change the request)."""
    if error.fields.get("code") != P.BAD_FIELD:
        return set()
    found = _UNKNOWN_FIELDS.search(error.fields.get("message") or "")
    names = set(re.findall(r"'([^']+)'", found.group(1))) if found else set()
    return names if names and names <= set(OPTIONAL_GENERATE_FIELDS) else set()


def _retry_without(fields: set[str]) -> bool:
    """The server refused optional generate fields: remember that for its address and send the running
    generation again without them. False when there is nothing left to leave out (or no client)."""
    client = _state.client
    if client is None or not fields:
        return False
    refused = _state.unknown_fields.setdefault(client.endpoint, set())
    if fields <= refused:
        return False  # already left out and refused again: something else is wrong
    refused |= fields
    try:
        message = _send_generate(client, _state.generate_params)
    except ClientError as exc:
        set_status(str(exc), 'ERROR')
        return False
    _state.generate_id = message.id
    set_status(f"Sent to {client.endpoint} again, without {', '.join(sorted(refused))} (an older server): "
               "waiting for the server", progress=0.0)
    return True


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
        set_status(f"{plural(len(box), 'pick')} waiting in the outbox: {exc}", 'WARNING')
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

def poll_once() -> float:
    """Apply whatever the server sent, say hello when it is time; returns seconds until the next poll."""
    try:
        client = _client()
    except ClientError:
        client = None  # a bad address or key: the connection row says why
    if client is not None:
        for event in client.poll_once():
            _apply(event)
        now = time.monotonic()
        if _state.client is client and now >= _state.next_probe:
            client.probe(now)
            _state.next_probe = now + (BUSY_PROBE if _state.generate_id is not None else IDLE_PROBE)
    box = _state.outbox
    if box is not None and len(box) and not _state.picks_in_flight and time.monotonic() >= _state.next_flush:
        flush_outbox()
    if _state.client is not None and (_state.client.busy or _state.client.probing):
        return BUSY_INTERVAL
    return IDLE_INTERVAL


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
    if event.reply is not None and _state.connection.reachable is False:
        _state.connection.reachable = True  # it speaks again
        _redraw()
    if request.type == "hello":
        _on_hello(event)
    elif request.type == "generate":
        if request.id == _state.generate_id:
            _on_generate(event)
    elif request.type == "pick":
        _on_pick(event)
    if event.reply is not None and event.reply.type != "error" and _state.outbox is not None \
            and len(_state.outbox) and not _state.picks_in_flight:
        flush_outbox()  # the server answers again: deliver what waited


def _on_hello(event: Event) -> None:
    c = _state.connection
    c.checked = time.monotonic()
    if event.type == "hello_ok":
        f = event.reply.fields
        _state.hello = dict(f)
        _state.client.limits = P.Limits.from_dict(f["limits"])
        c.reachable, c.model, c.device, c.latency, c.error = True, f.get("model", ""), f.get("device", ""), \
            event.latency, ""
    elif event.type == "unreachable":
        c.reachable, c.error = False, event.error
        if _state.generate_id is not None and _state.client is not None \
                and _state.client.in_flight(_state.generate_id):
            set_status("The server stopped answering: still waiting for it (Cancel to stop)", 'WARNING',
                       progress=_state.status.progress)
    elif event.type == "error":
        c.reachable, c.error = True, event.reply.fields.get("message", "")
    _redraw()


def progress_text(step: int, total: int) -> tuple[str, float]:
    """The status of a `progress`. The server counts one more step than it denoises (the last one
    turns features into motions), so the steps shown match the result's `steps`."""
    steps = total - 1 if total > 1 else total
    if step > steps:
        return "Generating: making the motions", 1.0
    return f"Generating: step {step} of {steps}", step / total


def _on_generate(event: Event) -> None:
    if event.type == "progress":
        text, fraction = progress_text(event.reply.fields["step"], event.reply.fields["total"])
        set_status(text, progress=fraction)
        return
    if event.type == "error" and _retry_without(unknown_optional_fields(event.reply)):
        return
    info = _state.generate_info
    _state.generate_id = None
    if event.type == "unreachable":
        set_status(f"Not generated: {event.error}", 'ERROR')
    elif event.type == "failed":
        set_status(event.error, 'ERROR')
    elif event.type == "error":
        f = event.reply.fields
        set_status(f"Server error ({f['code']}): {f['message']}", 'ERROR')
    elif event.type == "result":
        _import_result(event.reply, info)


def shape_of(scene, first: float | None = None) -> shaping.Shape:
    """The panel's timing, in place and trim settings as a Shape (trim in the motion's seconds, its frames
    counted as the motion first played: from `first`, default the scene's start)."""
    props = scene.sopo_motion
    trim = None
    if props.use_trim:
        fps = keyframes.scene_fps(scene)
        begin = scene.frame_start if first is None else first
        lo = max(0.0, (props.trim_start - begin) / fps)
        hi = (props.trim_end - begin) / fps
        trim = (lo, max(lo, hi))
    return shaping.Shape(whole_frames=props.timing == 'FRAMES', in_place=props.in_place, trim=trim)


CONFIDENCE_KEYS = ("confidence", "low_confidence", "nearest_caption")


def confidence_warning(collection) -> str | None:
    """The panel's warning for a request whose prompt the server found far from its training data, else None."""
    if collection is None or not collection.get("sopo_low_confidence"):
        return None
    confidence = collection.get("sopo_confidence")
    nearest = collection.get("sopo_nearest_caption")
    parts = [] if confidence is None else [f"confidence {float(confidence):.2f}"]
    if nearest:
        parts.append(f"nearest: '{nearest}'")
    return "Far from the training data" + (f" ({'; '.join(parts)})" if parts else "")


def _import_result(reply: P.Message, info: dict) -> None:
    scene = bpy.data.scenes.get(info.get("scene", "")) or bpy.context.scene
    f = reply.fields
    smpl, problem = body.from_preferences(preferences.get())  # the artist's own body, read here
    notes = [] if smpl is None else list(smpl.get("notes", ()))
    first = info.get("first_frame")
    anchor = info.get("anchor")
    build = dict(scene=scene, request_id=f["request_id"], prompt=info.get("prompt", ""),
                 rotations=reply.arrays["rotations"], translation=reply.arrays["translation"], fps=f["fps"],
                 model=f["model"], shape=shape_of(scene, first), hide_earlier=scene.sopo_motion.hide_earlier,
                 first_frame=first, anchor=None if anchor is None else np.reshape(anchor, (4, 4)))
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
    for key in CONFIDENCE_KEYS:
        if f.get(key) is not None:
            collection[f"sopo_{key}"] = f[key]
    if info.get("controls"):
        collection["sopo_controls"] = ", ".join(info["controls"])
    if info.get("pinned_seconds"):
        collection[candidates.PINNED_KEY] = list(info["pinned_seconds"])
    scene.sopo_motion.candidates = collection
    n, frames = reply.arrays["rotations"].shape[:2]
    seconds = time.monotonic() - info.get("sent", time.monotonic())
    steps = f", {plural(f['steps'], 'step')}" if f.get("steps") else ""
    text = (f"{plural(n, 'candidate')} of {frames / f['fps']:.1f} s ({seconds:.1f} s{steps}): play "
            + ("it" if n == 1 else "them, then pick the best"))
    if problem:
        set_status(f"{text}. No SMPL body, capsules instead: {problem}", 'WARNING')
    elif notes:
        set_status(f"{text}. SMPL body: {'; '.join(notes)}", 'WARNING')
    else:
        set_status(text)
    warning = confidence_warning(collection)
    if warning and not bpy.app.background:
        _report('WARNING', f"{warning}: the motions may not show the prompt")
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
    elif event.type == "unreachable":
        _state.next_flush = time.monotonic() + IDLE_RETRY
        set_status(f"{plural(len(box), 'pick')} kept in the outbox, sent when the server is back: {event.error}",
                   'WARNING')
    elif event.type == "error" and event.reply.fields["code"] in FINAL_PICK_ERRORS:
        f = event.reply.fields
        box.refused(key, f"{f['code']}: {f['message']}")
        set_status(f"The server refused a pick ({f['code']}): {f['message']}", 'ERROR')
    else:
        reason = event.error if event.type == "failed" else event.reply.fields["message"]
        _state.next_flush = time.monotonic() + IDLE_RETRY
        set_status(f"{plural(len(box), 'pick')} kept in the outbox, sent when the server is back ({reason})",
                   'WARNING')


# --- add-on lifetime ----------------------------------------------------------------------------

def start() -> None:
    """On register: load the outbox (picks waiting there are delivered as soon as the server answers)
    and start the background poll that keeps the connection row current."""
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
