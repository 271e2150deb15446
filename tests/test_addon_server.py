"""The built extension installed in real bpy, against a real `server/serve.py` subprocess.

Generate through the operator and the poll function, check the armatures against the stored
result, pick into the server's store, pick while the server is down (outbox, delivery after
the server and Blender restart, exactly once), and errors reaching the user as reports.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bpy_support import MODULE, ROOT, Addon, addon, bpy, free_port, server  # noqa: F401 (fixtures)

from server.service.picks import PicksStore, export_preferences
from server.align.preference_data import items_from_picks
from server.service.server_process import ServerProcess
from shared.motion import Motion

PROMPT = "a person walks forward"


def _generate(addon: Addon, endpoint: str, count: int = 3, seconds: float = 1.0):
    addon.prefs.server_address = endpoint
    addon.prefs.timeout = 60.0
    props = bpy.context.scene.sopo_motion
    props.prompt, props.count, props.seconds = PROMPT, count, seconds
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    addon.poll_until(lambda: not addon.session.generating())
    collection = props.candidates
    assert collection is not None, addon.session.state().status
    return collection


def test_installed_extension_generates_fk_exact_candidates(addon, server):
    assert (Path(bpy.utils.user_resource('EXTENSIONS')) / ".local" / "lib").is_dir()  # pyzmq wheel installed
    collection = _generate(addon, server.endpoint, count=3)
    assert addon.session.state().status.level == 'INFO'
    assert "tiny" in addon.session.server_models()  # from hello_ok: the panel's model search lists them
    assert f"{MODULE}.shared.protocol" in sys.modules  # the vendored copy of shared/
    request_id = collection[addon.candidates.REQUEST_KEY]
    with PicksStore(server.data_dir / "picks.db") as store:
        stored = store.get_result(request_id)
    assert stored is not None and stored.n == 3 and stored.prompt == PROMPT
    objects = addon.candidates.candidate_objects(collection)
    assert len(objects) == 3
    scene = bpy.context.scene
    scene_fps = scene.render.fps / scene.render.fps_base
    assert scene_fps == 24.0  # not the motion's 20: keys are resampled onto the scene's frames
    armature = sys.modules[f"{MODULE}.armature"]
    keyframes = sys.modules[f"{MODULE}.keyframes"]
    for i, obj in enumerate(objects):
        expected = Motion(stored.rotations[i], stored.translation[i], stored.fps).resample(scene_fps).positions()
        for fcurve in keyframes.action_fcurves(obj):
            frames = np.array([k.co[0] for k in fcurve.keyframe_points])
            np.testing.assert_array_equal(frames, scene.frame_start + np.arange(len(frames)))  # whole frames
            assert abs(len(frames) - 1 - (stored.rotations.shape[1] - 1) * scene_fps / stored.fps) <= 0.5
        for k in range(0, len(expected), 4):
            scene.frame_set(scene.frame_start + k)
            got = armature.joint_positions_y_up(obj, bpy.context.evaluated_depsgraph_get())
            np.testing.assert_allclose(got, expected[k], atol=1e-5, rtol=0)


def test_pick_reaches_the_store_and_hides_the_others(addon, server):
    collection = _generate(addon, server.endpoint, count=2)
    objects = addon.candidates.candidate_objects(collection)
    assert bpy.ops.sopo.pick(index=1) == {'FINISHED'}
    box = addon.session.outbox()
    key = box.pending[0]["idempotency_key"] if len(box) else None
    addon.poll_until(lambda: len(box) == 0)
    request_id = collection[addon.candidates.REQUEST_KEY]
    with PicksStore(server.data_dir / "picks.db") as store:
        assert key in store.pick_keys()
        stored = store.get_result(request_id)
    # what finetune.py reads from the add-on's pick: candidate 1 preferred over candidate 0
    items, _ = items_from_picks([r for r in export_preferences(server.data_dir / "picks.db")
                                 if r.request_id == request_id])
    assert len(items) == 1 and items[0].source == "pick" and items[0].captions == [PROMPT]
    np.testing.assert_allclose(items[0].preferred.rotations, stored.rotations[1], atol=1e-6)
    np.testing.assert_allclose(items[0].rejected[0].rotations, stored.rotations[0], atol=1e-6)
    assert objects[0].hide_get() and not objects[1].hide_get()
    assert not bpy.ops.sopo.pick.poll()  # answered once per request


RESTARTED_BLENDER = """
import json, sys, time
import bpy, addon_utils
addon_utils.enable({module!r}, default_set=True)
bpy.context.preferences.addons[{module!r}].preferences.server_address = {endpoint!r}
session = sys.modules[{module!r} + ".session"]
box = session.outbox()
waiting = len(box)
deadline = time.monotonic() + 120
while len(box) and time.monotonic() < deadline:
    session.poll_once()
    time.sleep(0.02)
print(json.dumps({{"waiting_at_start": waiting, "left": len(box), "status": session.state().status.text}}))
addon_utils.disable({module!r}, default_set=True)  # as Blender does on quit
"""


def test_pick_while_the_server_is_down_is_delivered_once_after_restarts(addon, tiny_checkpoint, tmp_path):
    shutil.copytree(tiny_checkpoint, tmp_path / "models" / "tiny")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path, "--checkpoint", "tiny", bind=endpoint)
    try:
        collection = _generate(addon, endpoint, count=2)
    finally:
        server.stop()
    request_id = collection[addon.candidates.REQUEST_KEY]

    addon.prefs.timeout, addon.prefs.retries = 0.3, 1
    assert bpy.ops.sopo.pick(index=0) == {'FINISHED'}
    box = addon.session.outbox()
    key = box.pending[0]["idempotency_key"]
    addon.poll_until(lambda: not addon.session.state().picks_in_flight, timeout=30)
    assert addon.session.state().status.level == 'WARNING'
    on_disk = json.loads(box.path.read_text())
    assert [p["idempotency_key"] for p in on_disk["pending"]] == [key]
    assert on_disk["pending"][0]["request_id"] == request_id

    # Blender "restarts" (a new process, same user folder) while the server is back up.
    server = ServerProcess(tmp_path, "--checkpoint", "tiny", bind=endpoint)
    try:
        script = RESTARTED_BLENDER.format(module=MODULE, endpoint=endpoint)
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                             env=dict(os.environ), cwd=str(ROOT))
        assert run.returncode == 0, run.stderr[-3000:]
        report = json.loads(run.stdout.strip().splitlines()[-1])
        assert report["waiting_at_start"] == 1 and report["left"] == 0, report
        assert json.loads(box.path.read_text())["pending"] == []

        # This session still holds the pick in memory: sending it again stores nothing new.
        addon.prefs.timeout = 30.0
        addon.session.state().next_flush = 0.0
        addon.poll_until(lambda: len(box) == 0, timeout=60)
        with PicksStore(tmp_path / "picks.db") as store:
            assert store.pick_keys().count(key) == 1 and store.count("picks") == 1
    finally:
        server.stop()


def test_errors_reach_the_user_as_reports_and_status(addon, server):
    props = bpy.context.scene.sopo_motion
    props.prompt = PROMPT
    session = addon.session

    addon.prefs.server_address = "tcp://localhost"  # no port
    with pytest.raises(RuntimeError, match=r"^Error: bad server address") as raised:
        bpy.ops.sopo.generate()
    assert "Traceback" not in str(raised.value)
    assert session.state().status.level == 'ERROR' and not session.generating()

    addon.prefs.server_address = f"tcp://127.0.0.1:{free_port()}"  # nobody listens there
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    addon.poll_until(lambda: not session.generating(), timeout=30)
    status = session.state().status
    assert status.level == 'ERROR' and "not reachable" in status.text

    addon.prefs.server_address, addon.prefs.timeout = server.endpoint, 60.0
    props.model = "no-such-model"
    assert bpy.ops.sopo.generate() == {'FINISHED'}
    addon.poll_until(lambda: not session.generating())
    status = session.state().status
    assert status.level == 'ERROR' and "unknown_model" in status.text
    props.model = ""

    props.prompt = "x" * 1000  # beyond the server's prompt limit, refused before sending
    with pytest.raises(RuntimeError, match=r"^Error: cannot send generate"):
        bpy.ops.sopo.generate()
    assert props.candidates is None  # nothing was imported by any of these


def test_poll_guards(addon):
    assert not bpy.ops.sopo.pick.poll()  # no candidates yet
    assert not bpy.ops.sopo.apply_to_rig.poll()  # no rig selected
    assert not bpy.ops.sopo.cancel.poll()  # nothing running
    bpy.context.scene.sopo_motion.prompt = ""
    assert not bpy.ops.sopo.generate.poll()
    assert bpy.types.SOPO_MT_motion.bl_label == "SoPo Motion"  # F3 finds the operators through this menu
    assert bpy.context.scene.sopo_motion.count == 4


def test_curve_keys_from_the_preferences(addon, tiny_checkpoint, tmp_path):
    import zmq.auth
    from server.service.security import make_client_keys, make_server_keys

    keys = tmp_path / "keys"
    server_public = make_server_keys(keys)
    _, client_secret = make_client_keys(keys, "artist")
    shutil.copytree(tiny_checkpoint, tmp_path / "data" / "models" / "tiny")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", "--checkpoint", "tiny", "--keys", str(keys), bind=endpoint)
    try:
        addon.prefs.server_key = zmq.auth.load_certificate(str(server_public))[0].decode()
        addon.prefs.client_key_file = str(client_secret)
        collection = _generate(addon, endpoint, count=1)
        assert len(addon.candidates.candidate_objects(collection)) == 1

        addon.prefs.client_key_file = str(server_public)  # a public key file: no secret in it
        with pytest.raises(RuntimeError, match="holds no secret key"):
            bpy.ops.sopo.generate()
        addon.prefs.server_key = addon.prefs.client_key_file = ""  # plain: the server does not answer
        assert bpy.ops.sopo.generate() == {'FINISHED'}
        addon.poll_until(lambda: not addon.session.generating(), timeout=30)
        assert "not reachable" in addon.session.state().status.text
    finally:
        server.stop()
