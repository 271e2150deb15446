"""The artist's SMPL body in real bpy: the add-on (enabled from source) reads the model file named in
its preferences, builds the candidates' armatures from that body's rest joints, skins the mesh with
the file's weights, and falls back to capsules with a warning when the file is bad.

Candidates are built through `session._import_result`, the path a server's result takes, with a
result message made here (no server: these tests take seconds).
"""
from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest

from bpy_support import bpy, evaluated_vertices, linear_blend_skinning, reset_blender, smooth_motion

import addon_utils
from shared import protocol as P
from shared import skeleton
from shared.motion import forward_kinematics
from synthetic_body import expected_joints, synthetic_model

MODULE = "addon"  # the source package, enabled as a legacy add-on
BETAS = (1.0, 0.5)


def body_file(path):
    """A synthetic SMPL .npz whose first shape component makes the body 10% bigger, with blended
    weights: each joint's vertices 0.6 on it and 0.4 on its parent; the hands' (joints 22, 23)
    0.7 on the hand, which the add-on must fold into the wrist."""
    model = synthetic_model(seed=11)
    parents = np.r_[skeleton.PARENTS, 20, 21]
    model["shapedirs"][:, :, 0] = 0.1 * model["v_template"]
    weights = np.zeros_like(model["weights"])
    for j in range(24):
        rows = slice(4 * j, 4 * j + 4)
        share = 1.0 if j == 0 else (0.7 if j >= 22 else 0.6)
        weights[rows, j] = share
        if j:
            weights[rows, parents[j]] += 1.0 - share
    weights[96:, 0] = 1.0
    model["weights"] = weights
    np.savez(path, **model)
    weights22 = weights[:, :22].copy()
    weights22[:, 20] += weights[:, 22]
    weights22[:, 21] += weights[:, 23]
    betas = np.r_[BETAS, np.zeros(8)]
    return model, model["v_template"] + model["shapedirs"] @ betas, weights22


@pytest.fixture
def addon(monkeypatch, tmp_path):
    reset_blender()
    # Outside an installed extension there is no extension user folder: give the outbox a temp one.
    monkeypatch.setattr(bpy.utils, "extension_path_user", lambda *a, **k: str(tmp_path / "user"))
    (tmp_path / "user").mkdir()
    assert addon_utils.enable(MODULE, default_set=True, handle_error=None) is not None
    import addon.session as session
    prefs = bpy.context.preferences.addons[MODULE].preferences
    yield prefs, session
    addon_utils.disable(MODULE, default_set=True)


def build(session, q, t, request_id="req"):
    """Candidates from a server's result message, as the poll applies it."""
    reply = P.result(request_id, q, t, fps=20.0, model="tiny")
    info = {"scene": bpy.context.scene.name, "prompt": "a person waves", "sent": time.monotonic()}
    session._import_result(reply, info)
    return bpy.context.scene.sopo_motion.candidates


def mesh_weights(obj) -> np.ndarray:
    """(V, 22) the mesh's vertex-group weights by bone."""
    names = {g.index: g.name for g in obj.vertex_groups}
    out = np.zeros((len(obj.data.vertices), skeleton.NUM_JOINTS))
    for v in obj.data.vertices:
        for g in v.groups:
            out[v.index, skeleton.JOINT_INDEX[names[g.group]]] = g.weight
    return out


def test_smpl_body_from_the_preferences_sits_on_its_bones_and_deforms_by_lbs(addon, tmp_path):
    from addon import armature, body as addon_body, candidates

    prefs, session = addon
    model, rest_vertices, weights22 = body_file(tmp_path / "SMPL_FEMALE.npz")
    prefs.smpl_model_path = str(tmp_path)  # a folder: the gender picks the file
    prefs.smpl_gender = 'FEMALE'
    prefs.smpl_betas = ", ".join(map(str, BETAS))
    assert addon_body.describe(prefs)[1] == 'CHECKMARK'  # read at once when set (the preferences show it)

    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 20, 1.0
    q, t = smooth_motion(2, 20, seed=3)
    collection = build(session, q, t)
    assert session.state().status.level == 'INFO', session.state().status
    assert collection["sopo_body"] == "smpl"

    joints = expected_joints(model, BETAS)  # the body's rest joints: 10% bigger than the template
    assert np.abs(joints - skeleton.REST_JOINTS).max() > 0.05
    objects = candidates.candidate_objects(collection)
    bodies = [obj.children[0] for obj in objects]
    assert len(objects) == 2 and bodies[0].data is bodies[1].data and bodies[0].data["sopo_body"] == "smpl"
    heads = np.array([objects[0].data.bones[n].head_local for n in skeleton.JOINT_NAMES])
    np.testing.assert_allclose(heads, joints - joints[0], atol=1e-6)  # the armature is the body's
    for obj, mesh_obj in zip(objects, bodies):
        modifier = mesh_obj.modifiers[0]
        assert modifier.type == 'ARMATURE' and modifier.object is obj and mesh_obj.parent is obj
    mesh = bodies[0].data
    assert len(mesh.vertices) == len(rest_vertices) and len(mesh.polygons) == len(model["f"])
    np.testing.assert_allclose([v.co for v in mesh.vertices], rest_vertices - joints[0], atol=1e-6)
    np.testing.assert_allclose(mesh_weights(bodies[0]), weights22, atol=1e-6)  # the file's weights, hands folded

    for k in (0, 9, 19):
        scene.frame_set(1 + k)
        for i, (obj, mesh_obj) in enumerate(zip(objects, bodies)):
            got = armature.joint_positions_y_up(obj, bpy.context.evaluated_depsgraph_get())
            np.testing.assert_allclose(got, forward_kinematics(q[i, k], t[i, k], joints), atol=1e-5)
            expected = linear_blend_skinning(q[i, k], t[i, k], rest_vertices, weights22, joints)
            np.testing.assert_allclose(evaluated_vertices(mesh_obj), expected, atol=1e-5)

    build(session, q, t, request_id="again")  # the same body again: the file is not re-read, the mesh reused
    assert len([m for m in bpy.data.meshes if m.get("sopo_body") == "smpl"]) == 1


def _assert_capsules(session, collection, match: str):
    status = session.state().status
    assert status.level == 'WARNING' and "capsules instead" in status.text, status
    assert match in status.text, status.text
    assert collection["sopo_body"] == "mannequin"
    from addon import candidates

    obj = candidates.candidate_objects(collection)[0]
    heads = np.array([obj.data.bones[n].head_local for n in skeleton.JOINT_NAMES])
    np.testing.assert_allclose(heads, skeleton.REST_JOINTS - skeleton.REST_JOINTS[0], atol=1e-6)


def test_bad_files_and_settings_fall_back_to_capsules_with_a_warning(addon, tmp_path):
    from addon import body as addon_body

    prefs, session = addon
    q, t = smooth_motion(1, 8, seed=4)
    path = tmp_path / "SMPL_NEUTRAL.npz"
    body_file(path)
    prefs.smpl_model_path = str(path)
    prefs.smpl_betas = "tall"
    _assert_capsules(session, build(session, q, t, "bad-betas"), "betas must be numbers")

    prefs.smpl_betas = ""
    path.write_bytes(b"PK\x03\x04 a damaged download")  # corrupt: read again, not the cached body
    _assert_capsules(session, build(session, q, t, "corrupt"), "not a readable .npz")
    assert addon_body.describe(prefs)[1] == 'ERROR'

    prefs.smpl_model_path = str(tmp_path / "nowhere.npz")
    _assert_capsules(session, build(session, q, t, "missing"), "not found")

    # A .pkl is a pickle: refused unopened (this one would make a folder if it were unpickled).
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    pkl = tmp_path / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"
    pkl.write_bytes(pickle.dumps(Payload()))
    prefs.smpl_model_path = str(pkl)
    _assert_capsules(session, build(session, q, t, "pickle"), "--to-npz")
    assert not marker.exists()

    prefs.smpl_model_path = ""  # no file: capsules, and nothing to warn about
    collection = build(session, q, t, "none")
    assert session.state().status.level == 'INFO' and collection["sopo_body"] == "mannequin"
