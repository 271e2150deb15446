"""server/model/foot_cleanup.py on synthetic motions, through the generator, and through a real server."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from server.model.foot_cleanup import (CONTACT_SPEED, CleanupConfig, clean_foot_contacts, foot_contacts,
                                       skate_metrics, two_bone_ik, _fk)
from shared import protocol as P
from shared import rotations as rot
from shared.motion import forward_kinematics
from shared.skeleton import FOOT_JOINTS, rest_offsets

LEFT = [0, 2]  # contact columns of the left ankle and toe (FOOT_JOINTS order)


def standing(T: int, z=None, dy=None) -> tuple[np.ndarray, np.ndarray]:
    """A still standing pose with its lowest foot joint on the floor (raised by dy), carried along z."""
    q = np.tile(rot.quat_identity(), (T, 22, 1))
    q[:, 4, :] = rot.axis_angle_to_quat(np.array([0.15, 0.0, 0.0]))  # knees a little bent, as people stand
    q[:, 5, :] = q[:, 4, :]
    t = np.zeros((T, 3))
    t[:, 1] = -forward_kinematics(q[0], np.zeros(3))[list(FOOT_JOINTS), 1].min() + (0.0 if dy is None else dy)
    if z is not None:
        t[:, 2] = z
    return q.astype(np.float32), t.astype(np.float32)


def sliding_contact() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The body slides 10 cm during frames 20-39 while the left foot is predicted in contact."""
    T = 60
    z = np.clip((np.arange(T) - 20) / 20.0, 0.0, 1.0) * 0.10
    q, t = standing(T, z)
    contacts = np.zeros((T, 4), np.float32)
    contacts[20:40, LEFT] = 0.9
    return q, t, contacts


def horizontal_drift(points: np.ndarray) -> float:
    """Largest horizontal distance of (T, 3) points from their first one."""
    return float(np.linalg.norm(points[:, [0, 2]] - points[0, [0, 2]], axis=-1).max())


def test_contact_speed_is_the_features_one():
    from server.model.features import CONTACT_SPEED as FEATURES_SPEED

    assert CONTACT_SPEED == FEATURES_SPEED


def test_two_bone_ik_reaches_targets_and_bends_the_knee_forward():
    rng = np.random.default_rng(0)
    N = 500
    aa = np.zeros((N, 22, 3))
    aa[:, 1] = rng.normal(scale=0.5, size=(N, 3))  # hips anywhere
    aa[:, 4, 0] = rng.uniform(0.0, 1.7, N)  # knees from straight to deeply bent
    q = rot.axis_angle_to_quat(aa)
    t = np.tile([0.0, 1.0, 0.0], (N, 1))
    G, Pos = _fk(q, t, rest_offsets())
    hip, knee, ankle = Pos[:, 1], Pos[:, 4], Pos[:, 7]
    target = ankle + rng.normal(scale=0.1, size=(N, 3))
    r_hip, r_knee, new_ankle = two_bone_ik(hip, knee, ankle, target, G[:, 4, :, 0])
    reach = np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1)
    reachable = np.linalg.norm(target - hip, axis=-1) < reach - 0.01  # a hinge knee stops mm short of straight
    assert reachable.sum() > 300
    assert np.abs(new_ankle - target)[reachable].max() < 1e-9
    # through forward kinematics: the new local rotations put the ankle there
    q2 = q.copy()
    G_hip = r_hip @ G[:, 1]
    q2[:, 1] = rot.matrix_to_quat(np.swapaxes(G[:, 0], -1, -2) @ G_hip)
    q2[:, 4] = rot.matrix_to_quat(np.swapaxes(G_hip, -1, -2) @ (r_hip @ r_knee @ G[:, 4]))
    assert np.abs(forward_kinematics(q2, t)[:, 7] - new_ankle).max() < 1e-9
    # a straight leg asked to shorten bends its knee forward (+z), not sideways or backwards
    q0 = np.tile(rot.quat_identity(), (1, 22, 1))
    G0, P0 = _fk(q0, np.array([[0.0, 1.0, 0.0]]), rest_offsets())
    r_hip, _, _ = two_bone_ik(P0[:, 1], P0[:, 4], P0[:, 7], P0[:, 7] + [0.0, 0.2, 0.0], G0[:, 4, :, 0])
    knee_moved = (r_hip @ (P0[:, 4] - P0[:, 1])[..., None])[..., 0] + P0[:, 1] - P0[:, 4]
    assert knee_moved[0, 2] > 0.15 and abs(knee_moved[0, 0]) < 0.03


def test_a_foot_sliding_in_contact_is_pinned():
    q, t, contacts = sliding_contact()
    before = forward_kinematics(q, t)
    q2, t2 = clean_foot_contacts(q, t, contacts)
    after = forward_kinematics(q2, t2)
    for joint in (7, 10):  # left ankle and toe
        assert horizontal_drift(before[20:40, joint]) > 0.09
        assert horizontal_drift(after[20:40, joint]) < 0.01
    assert np.array_equal(q2[:, [2, 5, 8]], q[:, [2, 5, 8]])  # the right leg was not in contact
    assert q2.dtype == np.float32 and q2.shape == q.shape and t2.shape == t.shape


def test_no_pop_where_the_pin_blends_in_and_out():
    q, t, contacts = sliding_contact()
    before = forward_kinematics(q, t)

    def largest_step(config: CleanupConfig) -> float:
        pos = forward_kinematics(*clean_foot_contacts(q, t, contacts, config))
        return float(np.linalg.norm(np.diff(pos, axis=0), axis=-1).max())  # metres per frame, any joint

    assert np.linalg.norm(np.diff(before, axis=0), axis=-1).max() < 0.006
    # the pin lets go of a 5 cm correction: blended over 5 frames no joint (the knee is the fastest)
    # moves more than 3.5 cm per frame (0.7 m/s); without the blend the leg jumps in one frame
    assert largest_step(CleanupConfig()) < 0.035
    assert largest_step(CleanupConfig(blend_frames=0)) > 0.06


def jump(T: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stand, jump 60 cm forward (up to 45 cm high during frames 20-39), land; contacts say 1 throughout."""
    phase = np.clip((np.arange(T) - 20) / 20.0, 0.0, 1.0)
    q, t = standing(T, z=0.6 * phase * phase * (3 - 2 * phase), dy=0.45 * np.sin(np.pi * phase))
    return q, t, np.ones((T, 4), np.float32)


def test_a_jump_keeps_its_airborne_frames():
    q, t, contacts = jump()
    before = forward_kinematics(q, t)
    q2, t2 = clean_foot_contacts(q, t, contacts)
    after = forward_kinematics(q2, t2)
    config = CleanupConfig()
    airborne = ~foot_contacts(before, contacts, config).any(axis=1)  # the height gate, whatever the model says
    assert airborne[25:35].all() and not airborne[:18].any() and not airborne[42:].any()
    near = np.convolve(~airborne, np.ones(2 * config.blend_frames + 1), "same") > 0
    far = airborne & ~near  # airborne and beyond the blend of any contact
    assert far.sum() >= 5
    assert np.array_equal(q2[far], q[far]) and np.array_equal(t2[far], t[far])
    # near take-off and landing the pins of the last and first contact frames fade out: a few mm
    assert np.abs(after[airborne] - before[airborne]).max() < 0.005
    # the same jump with every frame pinned (no height gate) would drag the feet in the air
    dragged = clean_foot_contacts(q, t, contacts, CleanupConfig(toe_height=1.0, ankle_height=1.0))
    assert np.abs(forward_kinematics(*dragged)[far] - before[far]).max() > 0.05


def test_ground_penetration_is_lifted_and_nothing_sinks():
    T = 40
    dip = -0.25 * np.clip(np.sin(np.pi * (np.arange(T) - 10) / 20.0), 0.0, None)  # sinks up to 25 cm
    q, t = standing(T, dy=dip)
    assert forward_kinematics(q, t)[..., 1].min() < -0.2
    q2, t2 = clean_foot_contacts(q, t, np.zeros((T, 4), np.float32))
    after = forward_kinematics(q2, t2)
    assert after[:, list(FOOT_JOINTS), 1].min() > -1e-4
    assert (t2[:, 1] >= t[:, 1]).all() and np.array_equal(q2, q)  # lifted, not bent
    assert np.abs(np.diff(t2[:, 1] - t[:, 1])).max() < 0.05  # the lift is smooth (5 cm per frame at most)
    floating = standing(T, dy=0.3)  # above the floor, no contacts: returned as it was
    q3, t3 = clean_foot_contacts(*floating, np.zeros((T, 4), np.float32))
    assert np.array_equal(q3, floating[0]) and np.array_equal(t3, floating[1])


def test_without_predicted_contacts_slow_feet_near_the_floor_count():
    q, t, _ = sliding_contact()
    pos = forward_kinematics(q, t)
    contact = foot_contacts(pos, None)
    assert contact[:, 2:].all()  # toes on the floor, moving 0.5 cm per frame (< CONTACT_SPEED)
    pos_high = pos + np.array([0.0, 0.3, 0.0])
    assert not foot_contacts(pos_high, None).any()
    q2, t2 = clean_foot_contacts(q, t)  # a model without contact features
    after = forward_kinematics(q2, t2)
    assert horizontal_drift(after[:, 10]) < horizontal_drift(pos[:, 10])
    with pytest.raises(ValueError, match="contacts"):
        clean_foot_contacts(q, t, np.zeros((len(q), 3)))


def test_skate_metrics():
    q, t = standing(21, z=np.arange(21) * 0.05)  # carried at 1 m/s with the toes on the floor
    m = skate_metrics(forward_kinematics(q, t), 20.0)
    assert m["skate_ratio"] > 0.45 and abs(m["skate_speed"] - 1.0) < 1e-6  # the toes skate; ankles are higher
    still = skate_metrics(forward_kinematics(*standing(21)), 20.0)
    assert still["skate_ratio"] == 0.0 and still["skate_speed"] == 0.0 and still["penetration_share"] == 0.0


# --- the generator and the server ------------------------------------------------------------

@pytest.mark.parametrize("family", ["mld", "mdm"])
def test_generator_cleans_unless_asked_not_to(family, request):
    from server.model.inference import GenerationRequest, MotionGenerator, RequestError

    gen = MotionGenerator.load(request.getfixturevalue("tiny_checkpoint" if family == "mld" else "tiny_mdm_checkpoint"),
                               device="cpu")
    ask = dict(prompt="a person walks forward", n=2, seconds=2.0, seed=3, steps=2)
    [(raw_q, raw_t)] = gen.generate([GenerationRequest(**ask, foot_cleanup=False)])
    contacts = gen.last_contacts[0]
    assert contacts.shape == raw_q.shape[:2] + (4,)
    [(q, t)] = gen.generate([GenerationRequest(**ask)])  # on by default
    want_q, want_t = clean_foot_contacts(raw_q, raw_t, contacts)
    np.testing.assert_allclose(q, want_q, atol=1e-5)
    np.testing.assert_allclose(t, want_t, atol=1e-5)
    assert forward_kinematics(q, t)[..., list(FOOT_JOINTS), 1].min() > -1e-4
    with pytest.raises(RequestError, match="foot_cleanup"):
        gen.generate([GenerationRequest(**ask, foot_cleanup="yes")])


def test_protocol_foot_cleanup_field():
    for value in (True, False, None):
        frames = P.generate("a person walks", foot_cleanup=value).encode()
        assert P.decode_message(frames).get("foot_cleanup", True) is (value is not False)
    assert "foot_cleanup" not in P.generate("a person walks").fields  # old clients: absent means on
    for bad in ("yes", 1, 0, []):
        header = {"v": P.PROTOCOL_VERSION, "type": "generate", "id": "x1", "prompt": "a person walks", "foot_cleanup": bad}
        with pytest.raises(P.ProtocolError) as err:
            P.decode_message([json.dumps(header).encode()])
        assert err.value.code == P.BAD_FIELD and "foot_cleanup" in err.value.message
        with pytest.raises(P.ProtocolError):
            P.generate("a person walks", foot_cleanup=bad).encode()


def test_server_sends_raw_or_cleaned_motion(tmp_path, tiny_checkpoint):
    from server.model.inference import GenerationRequest, MotionGenerator
    from server.service.client import MotionClient
    from server.service.service import MotionService, ServiceConfig

    shutil.copytree(tiny_checkpoint, tmp_path / "models" / "tiny")
    service = MotionService(ServiceConfig(bind="tcp://127.0.0.1:*", data_dir=tmp_path, checkpoint="tiny", device="cpu"))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert service.ready.wait(60) and service.endpoint
        ask = dict(n=2, seconds=1.5, seed=21, steps=2)
        with MotionClient(service.endpoint, timeout=60.0) as client:
            raw = client.request(P.generate("a person jumps in place", foot_cleanup=False, **ask))
            cleaned = client.request(P.generate("a person jumps in place", foot_cleanup=True, **ask))
            default = client.request(P.generate("a person jumps in place", **ask))
        local = MotionGenerator.load(Path(tiny_checkpoint), device="cpu")
        [(q, t)] = local.generate([GenerationRequest("a person jumps in place", foot_cleanup=False, **ask)])
        np.testing.assert_allclose(raw.arrays["rotations"], q, atol=1e-5)
        np.testing.assert_allclose(raw.arrays["translation"], t, atol=1e-5)
        want_q, want_t = clean_foot_contacts(q, t, local.last_contacts[0])
        for reply in (cleaned, default):
            np.testing.assert_allclose(reply.arrays["rotations"], want_q, atol=1e-4)
            np.testing.assert_allclose(reply.arrays["translation"], want_t, atol=1e-4)
        assert not np.allclose(raw.arrays["translation"], cleaned.arrays["translation"], atol=1e-4) or \
            not np.allclose(raw.arrays["rotations"], cleaned.arrays["rotations"], atol=1e-4)
        assert "confidence" not in raw.fields  # not asked for
        stored = service.store.get_result(raw.fields["request_id"])
        assert stored.params["foot_cleanup"] is False
    finally:
        service.stop()
        thread.join(timeout=30)


def test_benchmark_script_prints_before_and_after(tmp_path, tiny_checkpoint, tiny_corpus, capsys):
    from server.bench.foot_cleanup import main

    out = tmp_path / "bench.json"
    assert main(["--checkpoint", str(tiny_checkpoint), "--corpus", str(tiny_corpus), "--prompts", "a person walks",
                 "-n", "2", "--seconds", "1.5", "--clips", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a person walks" in printed and "real (3 test clips)" in printed and "skate%" in printed
    report = json.loads(out.read_text())
    assert report["generated"]["frames"] == 2 * 30 and report["real"]["frames"] > 0
    for row in (report["generated"], report["real"]):
        assert 0.0 <= row["after"]["skate_ratio"] <= 1.0 and row["change_cm"]["max"] >= row["change_cm"]["mean"] >= 0.0
