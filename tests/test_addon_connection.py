"""Connection state in real bpy with the installed extension and a real `server/serve.py`: the status
row (reachable, model, latency) from background hellos, an unreachable server reported at once
(Generate fails, a Pick waits in the outbox with a note), a live server under a long generation
never reported unreachable, a corrected address used by the very next Generate (also after
Cancel), progress that counts the steps the reply reports, and the server logging cancels.

No timed asserts: `server/bench/blender.py --measure connection` prints how long each takes.
"""
from __future__ import annotations

import re
import time

from bpy_support import addon, bpy, free_port, server  # noqa: F401 (fixtures)

PROMPT = "a person walks forward"


def _nobody() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def test_status_row_shows_the_server_its_model_and_latency(addon, server):
    session = addon.session
    addon.prefs.server_address = server.endpoint
    text, icon = session.connection_row()
    assert icon == 'SORTTIME' and server.endpoint in text  # checking, before any answer
    addon.poll_until(lambda: session.state().connection.reachable is not None, timeout=30)
    connection = session.state().connection
    assert connection.reachable and connection.endpoint == server.endpoint
    assert connection.model and connection.latency is not None and connection.latency > 0.0
    text, icon = session.connection_row()
    assert icon == 'LINKED' and connection.model in text and re.search(r"\d+ ms", text)
    assert "tiny" in session.server_models()

    addon.prefs.server_address = _nobody()  # a new address is checked at once, in the background
    assert session.state().connection.reachable is None
    addon.poll_until(lambda: session.state().connection.reachable is not None, timeout=30)
    text, icon = session.connection_row()
    assert session.state().connection.reachable is False and icon == 'UNLINKED' and "Not reachable" in text

    addon.prefs.server_address = server.endpoint  # back: reachable again without pressing anything
    addon.poll_until(lambda: session.state().connection.reachable, timeout=30)
    assert bpy.ops.sopo.check_server() == {'FINISHED'}


def test_unreachable_server_fails_generate_and_keeps_the_pick_with_a_note(addon):
    session = addon.session
    endpoint = _nobody()
    addon.prefs.server_address = endpoint  # nobody listens; default timeout (30 s) and retries (2)
    props = bpy.context.scene.sopo_motion
    props.prompt, props.count = PROMPT, 2
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    addon.poll_until(lambda: not session.generating(), timeout=60)
    status = session.state().status
    assert status.level == 'ERROR' and "not reachable" in status.text and endpoint in status.text, status
    assert props.candidates is None

    # A pick for candidates the server made earlier (imported here as a reply would be): kept in the outbox.
    protocol = addon.module("shared.protocol")
    from bpy_support import smooth_motion

    q, t = smooth_motion(2, 10)
    session._import_result(protocol.result("req-earlier", q, t, fps=20.0, model="tiny"),
                           {"scene": bpy.context.scene.name, "prompt": PROMPT, "sent": time.monotonic()})
    box = session.outbox()
    waiting = len(box)  # picks other tests left for servers now gone
    assert bpy.ops.sopo.pick(index=1) == {'FINISHED'}
    assert len(box) == waiting + 1 and box.pending[-1]["chosen"] == 1
    addon.poll_until(lambda: not session.state().picks_in_flight, timeout=60)
    status = session.state().status
    assert status.level == 'WARNING' and "kept in the outbox" in status.text and "not reachable" in status.text
    assert len(box) == waiting + 1  # still there, sent when the server is back
    assert session.state().connection.reachable is False


def test_a_live_server_under_a_long_generation_is_never_reported_unreachable(addon, server, monkeypatch):
    session = addon.session
    monkeypatch.setattr(session, "BUSY_PROBE", 0.2)  # many hellos while it works
    addon.prefs.server_address = server.endpoint
    addon.poll_until(lambda: session.state().hello is not None, timeout=30)
    steps = min(400, int(session.state().hello["limits"]["max_steps"]))
    start = time.monotonic()
    session.generate(bpy.context.scene, PROMPT, 8, 10.0, 3, 2.5, steps=steps)
    seen, texts = set(), []
    while session.generating():
        assert time.monotonic() - start < 300, session.state().status
        session.poll_once()
        seen.add(session.state().connection.reachable)
        texts.append(session.state().status.text)
        time.sleep(0.01)
    assert seen == {True}, seen  # never unreachable, never unknown
    assert not [t for t in texts if "not reachable" in t or "stopped answering" in t]
    status = session.state().status
    assert status.level == 'INFO' and f"{steps} steps" in status.text, status
    # The progress counts the steps the reply reports ("step k of 400", not "of 401").
    totals = {int(m.group(2)) for t in texts for m in [re.match(r"Generating: step (\d+) of (\d+)", t)] if m}
    assert totals == {steps}, totals
    assert "8 candidates" in status.text and bpy.context.scene.sopo_motion.candidates is not None


def test_a_corrected_address_is_used_by_the_next_generate_also_after_cancel(addon, server):
    session = addon.session
    props = bpy.context.scene.sopo_motion
    props.prompt, props.count, props.seconds = PROMPT, 1, 1.0
    addon.prefs.server_address = _nobody()  # the wrong port
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    session.poll_once()
    assert bpy.ops.sopo.cancel() == {'FINISHED'}
    addon.prefs.server_address = server.endpoint  # corrected right after Cancel
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    assert session.state().status.text.startswith(f"Sent to {server.endpoint}")
    addon.poll_until(lambda: not session.generating(), timeout=120)
    status = session.state().status
    assert status.level == 'INFO' and status.text.startswith("1 candidate of "), status  # and "1 candidate"
    assert len(addon.candidates.candidate_objects(props.candidates)) == 1


def test_the_server_logs_a_cancel(addon, server):
    session = addon.session
    addon.prefs.server_address = server.endpoint
    addon.poll_until(lambda: session.state().hello is not None, timeout=30)
    request_id = session.generate(bpy.context.scene, PROMPT, 8, 10.0, 5, 2.5,
                                  steps=int(session.state().hello["limits"]["max_steps"]))
    addon.poll_until(lambda: session.state().status.text.startswith("Generating"), timeout=60)
    assert bpy.ops.sopo.cancel() == {'FINISHED'}
    deadline = time.monotonic() + 30
    while f"cancel of {request_id}" not in server.log():
        assert time.monotonic() < deadline, server.log()[-2000:]
        session.poll_once()
        time.sleep(0.05)
    assert re.search(rf"cancel of {request_id} from .*: (stopping|dropped from the queue)", server.log())
