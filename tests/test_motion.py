"""shared.motion: validation, forward kinematics, resampling, mirroring, files, AMASS."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from shared import rotations as rot
from shared.motion import Motion, MotionError, forward_kinematics, global_rotations
from shared.skeleton import JOINT_INDEX, MIRROR_PERMUTATION, NUM_JOINTS, PARENTS, REST_JOINTS


def random_motion(T: int = 12, seed: int = 0, fps: float = 20.0) -> Motion:
    rng = np.random.default_rng(seed)
    aa = rng.normal(scale=0.5, size=(T, NUM_JOINTS, 3))
    trans = rng.normal(size=(T, 3)) + [0.0, 0.9, 0.0]
    return Motion(rot.axis_angle_to_quat(aa), trans, fps)


def still_motion(T: int = 5) -> Motion:
    return Motion(rot.quat_identity((T, NUM_JOINTS)), np.tile([0.1, 0.95, -0.2], (T, 1)))


def symmetric_rest() -> np.ndarray:
    mirrored = REST_JOINTS[MIRROR_PERMUTATION] * [-1.0, 1.0, 1.0]
    return 0.5 * (REST_JOINTS + mirrored)


# --- validation ------------------------------------------------------------------------

def test_arrays_become_float32_contiguous_and_unit():
    q = (rot.quat_identity((NUM_JOINTS, 3)) * (1 + 5e-4)).transpose(1, 0, 2)  # non-contiguous, |q| ~ 1
    assert not q.flags.c_contiguous
    m = Motion(q, np.zeros((3, 3), dtype=np.float64), fps=30)
    assert m.rotations.dtype == np.float32 and m.rotations.flags.c_contiguous
    assert m.translation.dtype == np.float32 and m.translation.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(m.rotations, axis=-1), 1.0, atol=1e-6)
    assert m.num_frames == 3 and m.fps == 30.0 and isinstance(m.fps, float)
    assert m.duration == pytest.approx(0.1)


@pytest.mark.parametrize(
    "rotations, translation, fps, message",
    [
        (np.zeros((4, 21, 4)), np.zeros((4, 3)), 20, r"rotations: expected shape \(T, 22, 4\), got \(4, 21, 4\)"),
        (np.zeros((22, 4)), np.zeros((4, 3)), 20, r"rotations: expected .* got \(22, 4\)"),
        (None, np.zeros((4, 2)), 20, r"translation: expected shape \(T, 3\), got \(4, 2\)"),
        (None, np.zeros(3), 20, r"translation: expected shape \(T, 3\), got \(3,\)"),
        (np.zeros((0, 22, 4)), np.zeros((0, 3)), 20, r"no frames"),
        (None, np.zeros((5, 3)), 20, r"rotations has 4 frames but translation has 5"),
        (None, np.zeros((4, 3)), 0, r"fps must be finite and > 0, got 0"),
        (None, np.zeros((4, 3)), -5, r"fps must be finite and > 0"),
        (None, np.zeros((4, 3)), float("nan"), r"fps must be finite"),
        (None, np.zeros((4, 3)), "fast", r"fps must be a number"),
        (np.full((4, 22, 4), "a"), np.zeros((4, 3)), 20, r"rotations: not a numeric array"),
    ],
)
def test_validation_errors_are_named(rotations, translation, fps, message):
    if rotations is None:
        rotations = rot.quat_identity((4, NUM_JOINTS))
    with pytest.raises(MotionError, match=message):
        Motion(rotations, translation, fps)


def test_nan_and_non_unit_errors_name_frame_and_joint():
    q = rot.quat_identity((6, NUM_JOINTS))
    t = np.zeros((6, 3))
    bad = q.copy()
    bad[3, 7, 1] = np.nan
    with pytest.raises(MotionError, match="rotations: NaN or inf at frame 3"):
        Motion(bad, t)
    bad_t = t.copy()
    bad_t[2, 0] = np.inf
    with pytest.raises(MotionError, match="translation: NaN or inf at frame 2"):
        Motion(q, bad_t)
    bad = q.copy()
    bad[4, 9] *= 1.01
    with pytest.raises(MotionError, match=r"frame 4, joint 9 has norm 1\.01"):
        Motion(bad, t)
    assert issubclass(MotionError, ValueError)


# --- kinematics ------------------------------------------------------------------------

def test_fk_rest_pose_is_the_template():
    m = still_motion()
    pos = m.positions()
    assert pos.shape == (5, NUM_JOINTS, 3) and pos.dtype == np.float64
    expected = REST_JOINTS - REST_JOINTS[0] + [0.1, 0.95, -0.2]
    np.testing.assert_allclose(pos, np.broadcast_to(expected, pos.shape), atol=1e-6)


def test_fk_hand_computed():
    """Root turned 90 deg about +Y, left hip bent 90 deg about +X."""
    q = rot.quat_identity((1, NUM_JOINTS))
    q[0, 0] = [np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0]  # Ry(90): (x, y, z) -> (z, y, -x)
    q[0, 1] = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0]  # Rx(90): (x, y, z) -> (x, -z, y)
    pos = forward_kinematics(q, np.array([[1.0, 2.0, 3.0]]))[0]
    # J1 - J0 = (0.0695, -0.0914, -0.0068) -> Ry90 -> (-0.0068, -0.0914, -0.0695)
    np.testing.assert_allclose(pos[1], [1.0 - 0.0068, 2.0 - 0.0914, 3.0 - 0.0695], atol=1e-12)
    # J4 - J1 = (0.0343, -0.3752, -0.0045) -> Rx90 -> (0.0343, 0.0045, -0.3752) -> Ry90 -> (-0.3752, 0.0045, -0.0343)
    np.testing.assert_allclose(pos[4], pos[1] + [-0.3752, 0.0045, -0.0343], atol=1e-12)
    # J7 - J4 = (-0.0136, -0.3980, -0.0437) -> Rx90 -> (-0.0136, 0.0437, -0.3980) -> Ry90 -> (-0.3980, 0.0437, 0.0136)
    np.testing.assert_allclose(pos[7], pos[4] + [-0.3980, 0.0437, 0.0136], atol=1e-12)
    # right hip: only the root turn. J2 - J0 = (-0.0677, -0.0906, -0.0043) -> (-0.0043, -0.0906, 0.0677)
    np.testing.assert_allclose(pos[2], [1.0 - 0.0043, 2.0 - 0.0906, 3.0 + 0.0677], atol=1e-12)


def test_fk_and_global_rotations_match_matrix_products():
    m = random_motion(T=4, seed=1)
    G = global_rotations(m.rotations)
    xyzw = np.roll(m.rotations.astype(np.float64), -1, -1).reshape(-1, 4)
    R = Rotation.from_quat(xyzw).as_matrix().reshape(4, NUM_JOINTS, 3, 3)
    pos = m.positions()
    for t in range(4):
        world = [None] * NUM_JOINTS
        for j in range(NUM_JOINTS):
            p = PARENTS[j]
            world[j] = R[t, j] if p < 0 else world[p] @ R[t, j]
            if p >= 0:
                np.testing.assert_allclose(pos[t, j], pos[t, p] + world[p] @ (REST_JOINTS[j] - REST_JOINTS[p]), atol=1e-6)
            np.testing.assert_allclose(rot.quat_to_matrix(G[t, j]), world[j], atol=1e-6)
    np.testing.assert_allclose(m.global_rotations(), G)


def test_fk_vectorised_over_leading_dims_and_custom_rest():
    m = random_motion(T=6, seed=2)
    batch = np.stack([m.rotations, m.rotations])  # (2, 6, 22, 4)
    trans = np.stack([m.translation, m.translation])
    rest = REST_JOINTS * 1.1
    out = forward_kinematics(batch, trans, rest)
    assert out.shape == (2, 6, NUM_JOINTS, 3)
    np.testing.assert_allclose(out[1], m.positions(rest))
    with pytest.raises(MotionError, match=r"translation: expected shape \(2, 6, 3\)"):
        forward_kinematics(batch, m.translation)
    with pytest.raises(ValueError, match=r"rest joints must have shape \(22, 3\)"):
        m.positions(np.zeros((21, 3)))


# --- editing ---------------------------------------------------------------------------

def spin_motion(T: int, fps: float) -> Motion:
    """Every joint turns about Y at 1 rad/s; the pelvis moves at (1, 0, 2) m/s."""
    time = np.arange(T) / fps
    aa = np.zeros((T, NUM_JOINTS, 3))
    aa[..., 1] = time[:, None]
    trans = np.outer(time, [1.0, 0.0, 2.0]) + [0.0, 0.9, 0.0]
    return Motion(rot.axis_angle_to_quat(aa), trans, fps)


def test_resample_40_to_20_takes_every_other_frame():
    m = spin_motion(41, 40.0)
    r = m.resample(20.0)
    assert r.fps == 20.0 and r.num_frames == 21
    np.testing.assert_allclose(r.rotations, m.rotations[::2], atol=1e-6)
    np.testing.assert_allclose(r.translation, m.translation[::2], atol=1e-6)
    assert spin_motion(40, 40.0).resample(20).num_frames == 20  # t = 0 .. 0.95 s


def test_resample_interpolates_between_frames():
    m = spin_motion(21, 20.0)  # 0 .. 1 s
    r = m.resample(30.0)
    assert r.num_frames == 31
    expected = spin_motion(31, 30.0)
    assert r.allclose(expected, atol=1e-5)
    with pytest.raises(MotionError, match="fps"):
        m.resample(0)


def test_mirror_positions_are_mirrored_positions():
    rest = symmetric_rest()
    m = random_motion(T=8, seed=3)
    mirrored = m.mirror().positions(rest)
    expected = m.positions(rest)[:, MIRROR_PERMUTATION] * [-1.0, 1.0, 1.0]
    np.testing.assert_allclose(mirrored, expected, atol=1e-5)
    assert m.mirror().mirror().allclose(m, atol=1e-7)
    # the left hand of the mirror is where the right hand was, reflected
    lw, rw = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    np.testing.assert_allclose(mirrored[:, lw, 0], -m.positions(rest)[:, rw, 0], atol=1e-5)


def test_slice_and_concatenate():
    m = random_motion(T=10, seed=4)
    a, b = m.slice(0, 4), m.slice(4, None)
    assert a.num_frames == 4 and b.num_frames == 6
    assert Motion.concatenate([a, b]).allclose(m, atol=0)
    assert m.slice(-3).num_frames == 3
    with pytest.raises(MotionError, match="no frames"):
        m.slice(5, 5)
    with pytest.raises(MotionError, match="motion 1 has fps 30.0"):
        Motion.concatenate([a, random_motion(T=2, fps=30.0)])
    with pytest.raises(MotionError, match="no motions"):
        Motion.concatenate([])


# --- files -----------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    m = random_motion(T=7, seed=5, fps=30.0)
    path = tmp_path / "clip.npz"
    m.save(path)
    loaded = Motion.load(path)
    np.testing.assert_array_equal(loaded.rotations, m.rotations)
    np.testing.assert_array_equal(loaded.translation, m.translation)
    assert loaded.fps == 30.0
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["fps", "rotations", "translation"]
    other = tmp_path / "no_suffix"
    m.save(other)
    assert other.exists() and Motion.load(str(other)).allclose(m, atol=0)


def test_load_errors_name_the_problem(tmp_path):
    m = random_motion(T=3)
    missing = tmp_path / "missing.npz"
    np.savez(missing, rotations=m.rotations, fps=20.0)
    with pytest.raises(MotionError, match="missing key 'translation'"):
        Motion.load(missing)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(MotionError, match="text.npz: not a readable .npz"):
        Motion.load(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(MotionError, match="not an .npz archive"):
        Motion.load(npy)
    bad = tmp_path / "bad.npz"
    np.savez(bad, rotations=m.rotations[:, :20], translation=m.translation, fps=20.0)
    with pytest.raises(MotionError, match=r"bad.npz: rotations: expected shape"):
        Motion.load(bad)
    with pytest.raises(FileNotFoundError):
        Motion.load(tmp_path / "nowhere.npz")


# --- AMASS -----------------------------------------------------------------------------

def test_amass_round_trip():
    m = random_motion(T=9, seed=6, fps=60.0)
    amass = m.to_amass()
    assert amass["poses"].shape == (9, 66) and amass["poses"].dtype == np.float32
    assert amass["trans"].shape == (9, 3) and amass["mocap_framerate"] == 60.0
    back = Motion.from_amass(amass["poses"], amass["trans"], amass["mocap_framerate"])
    assert back.allclose(m, atol=1e-5)
    np.testing.assert_allclose(back.positions(), m.positions(), atol=1e-5)
    # SMPL-H poses (156 columns): hands are ignored
    smplh = np.concatenate([amass["poses"], np.ones((9, 90), np.float32)], axis=1)
    assert Motion.from_amass(smplh, amass["trans"], 60.0).allclose(m, atol=1e-5)
    # another body shape and a Y-up source
    rest = REST_JOINTS * 0.9
    a2 = m.to_amass(rest, z_up=False)
    assert Motion.from_amass(a2["poses"], a2["trans"], 60.0, rest, z_up=False).allclose(m, atol=1e-5)


def test_amass_is_z_up():
    """Upright in Y-up means pelvis->head along +Z in the AMASS world."""
    m = still_motion(T=2)
    amass = m.to_amass()
    quats = rot.axis_angle_to_quat(amass["poses"].reshape(2, NUM_JOINTS, 3))
    world = forward_kinematics(quats, amass["trans"] + REST_JOINTS[0])  # SMPL: pelvis = trans + J0
    up = world[:, JOINT_INDEX["head"]] - world[:, JOINT_INDEX["pelvis"]]
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    assert np.all(up[:, 2] > 0.99)
    # the pelvis height (Y in our world) is Z there; our +Z (forward) is AMASS -Y
    np.testing.assert_allclose(world[:, 0], [[0.1, 0.2, 0.95]] * 2, atol=1e-6)
    # AMASS's usual upright root, Rx(+90 deg), is the identity in Y-up
    poses = np.zeros((1, 66))
    poses[0, 0] = np.pi / 2
    upright = Motion.from_amass(poses, np.zeros((1, 3)), 120.0)
    same = np.abs(np.sum(upright.rotations[0, 0] * [1.0, 0.0, 0.0, 0.0]))
    assert same == pytest.approx(1.0, abs=1e-6)
    x, y, z = REST_JOINTS[0]
    np.testing.assert_allclose(upright.translation[0], [x, z, -y], atol=1e-6)  # Rx(-90 deg) J0


def test_from_amass_errors():
    with pytest.raises(MotionError, match=r"poses: expected shape \(T, >= 66\), got \(3, 63\)"):
        Motion.from_amass(np.zeros((3, 63)), np.zeros((3, 3)), 30)
    with pytest.raises(MotionError, match=r"trans: expected shape \(T, 3\)"):
        Motion.from_amass(np.zeros((3, 66)), np.zeros((3, 2)), 30)
    with pytest.raises(MotionError, match="poses has 3 frames but trans has 4"):
        Motion.from_amass(np.zeros((3, 66)), np.zeros((4, 3)), 30)
