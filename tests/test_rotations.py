"""shared.rotations against scipy.spatial.transform.Rotation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from shared import rotations as rot

N = 2000
ORDERS = ["".join(p) for p in itertools.permutations("XYZ")]


def to_wxyz(r: Rotation) -> np.ndarray:
    return np.roll(r.as_quat(), 1, axis=-1)


def from_wxyz(q: np.ndarray) -> Rotation:
    return Rotation.from_quat(np.roll(q, -1, axis=-1))


def same_rotation(q1: np.ndarray, q2: np.ndarray, atol: float = 1e-9) -> None:
    """Quaternions equal up to sign."""
    dots = np.abs(np.sum(q1 * q2, axis=-1))
    np.testing.assert_allclose(dots, 1.0, atol=atol)


def random_axes(rng, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def rotvecs() -> np.ndarray:
    """Generic random rotations plus angles near 0 and near pi (and exactly 0 and pi)."""
    rng = np.random.default_rng(0)
    generic = Rotation.random(N, random_state=1).as_rotvec()
    small = random_axes(rng, 300) * 10.0 ** rng.uniform(-12, -2, size=(300, 1))
    near_pi = random_axes(rng, 300) * (np.pi - 10.0 ** rng.uniform(-12, -2, size=(300, 1)))
    exact = np.concatenate([np.zeros((1, 3)), random_axes(rng, 20) * np.pi, np.eye(3) * np.pi])
    return np.concatenate([generic, small, near_pi, exact])


def test_identity_and_shapes():
    assert rot.quat_identity().tolist() == [1.0, 0.0, 0.0, 0.0]
    q = rot.quat_identity((5, 22))
    assert q.shape == (5, 22, 4)
    assert rot.quat_identity(3).shape == (3, 4)
    np.testing.assert_allclose(rot.quat_to_matrix(q), np.broadcast_to(np.eye(3), (5, 22, 3, 3)))


def test_multiply_apply_inverse_match_scipy():
    a = Rotation.random(N, random_state=2)
    b = Rotation.random(N, random_state=3)
    qa, qb = to_wxyz(a), to_wxyz(b)
    same_rotation(rot.quat_multiply(qa, qb), to_wxyz(a * b))
    v = np.random.default_rng(4).normal(size=(N, 3))
    np.testing.assert_allclose(rot.quat_apply(qa, v), a.apply(v), atol=1e-12)
    same_rotation(rot.quat_inverse(qa), to_wxyz(a.inv()))
    same_rotation(rot.quat_conjugate(qa), to_wxyz(a.inv()))
    same_rotation(rot.quat_multiply(qa, rot.quat_inverse(qa)), rot.quat_identity(N))
    # non-unit quaternion: the inverse is conj / |q|^2
    q = np.array([2.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(rot.quat_multiply(q, rot.quat_inverse(q)), [1, 0, 0, 0])


def test_apply_broadcasts_and_accepts_float32():
    q = to_wxyz(Rotation.random(7, random_state=5)).astype(np.float32)
    v = np.ones((4, 1, 3), dtype=np.float32)
    out = rot.quat_apply(q, v)
    assert out.shape == (4, 7, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out[2], Rotation.from_quat(np.roll(q, -1, -1)).apply(np.ones(3)), atol=1e-6)


def test_normalize():
    q = np.array([[2.0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(rot.quat_normalize(q), [[1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match="zero-length"):
        rot.quat_normalize(np.zeros((2, 4)))


def test_matrix_round_trip_matches_scipy(rotvecs):
    r = Rotation.from_rotvec(rotvecs)
    q = to_wxyz(r)
    R = rot.quat_to_matrix(q)
    np.testing.assert_allclose(R, r.as_matrix(), atol=1e-12)
    q_back = rot.matrix_to_quat(r.as_matrix())
    assert np.all(q_back[..., 0] >= 0)
    same_rotation(q_back, q, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(q_back, axis=-1), 1.0, atol=1e-12)


def test_matrix_to_quat_near_pi_is_accurate():
    rng = np.random.default_rng(6)
    axes = random_axes(rng, 500)
    angles = np.pi - 10.0 ** rng.uniform(-15, -3, size=(500, 1))
    R = Rotation.from_rotvec(axes * angles).as_matrix()
    np.testing.assert_allclose(rot.quat_to_matrix(rot.matrix_to_quat(R)), R, atol=1e-12)


def test_axis_angle_matches_scipy(rotvecs):
    r = Rotation.from_rotvec(rotvecs)
    same_rotation(rot.axis_angle_to_quat(rotvecs), to_wxyz(r), atol=1e-12)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(rotvecs), r.as_matrix(), atol=1e-12)

    aa = rot.quat_to_axis_angle(to_wxyz(r))
    angle = np.linalg.norm(aa, axis=-1)
    assert np.all((angle >= 0) & (angle <= np.pi + 1e-12))
    # away from pi the axis-angle vector is unique: compare directly
    generic = np.linalg.norm(rotvecs, axis=-1) < np.pi - 1e-3
    np.testing.assert_allclose(aa[generic], r.as_rotvec()[generic], atol=1e-10)
    # everywhere (incl. pi, where +-axis are both right) compare the rotations
    np.testing.assert_allclose(rot.axis_angle_to_matrix(aa), r.as_matrix(), atol=1e-10)
    np.testing.assert_allclose(
        rot.axis_angle_to_matrix(rot.matrix_to_axis_angle(r.as_matrix())), r.as_matrix(), atol=1e-10
    )


def test_axis_angle_tiny_angles_are_exact():
    aa = np.array([[1e-10, -2e-10, 3e-10], [0.0, 0.0, 0.0], [1e-7, 0.0, 0.0]])
    np.testing.assert_allclose(rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa)), aa, rtol=1e-9, atol=1e-20)


def test_axis_angle_beyond_pi_wraps():
    """AMASS stores angles > pi; the round trip returns the equivalent angle in [0, pi]."""
    aa = np.array([0.0, 0.0, 1.5 * np.pi])
    back = rot.quat_to_axis_angle(rot.axis_angle_to_quat(aa))
    np.testing.assert_allclose(back, [0.0, 0.0, -0.5 * np.pi], atol=1e-12)


def test_6d_convention_is_first_two_columns(rotvecs):
    R = Rotation.from_rotvec(rotvecs).as_matrix()
    d6 = rot.matrix_to_6d(R)
    assert d6.shape == (len(R), 6)
    np.testing.assert_allclose(d6[:, :3], R[:, :, 0])
    np.testing.assert_allclose(d6[:, 3:], R[:, :, 1])
    np.testing.assert_allclose(rot.sixd_to_matrix(d6), R, atol=1e-12)
    q = to_wxyz(Rotation.from_matrix(R))
    np.testing.assert_allclose(rot.quat_to_6d(q), d6, atol=1e-12)
    same_rotation(rot.sixd_to_quat(d6), q, atol=1e-12)


def test_6d_gram_schmidt_of_noisy_input():
    rng = np.random.default_rng(7)
    R = Rotation.random(N, random_state=8).as_matrix()
    d6 = rot.matrix_to_6d(R) * rng.uniform(0.5, 2.0, size=(N, 1)) + rng.normal(scale=1e-3, size=(N, 6))
    out = rot.sixd_to_matrix(d6)
    np.testing.assert_allclose(out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(out), 1.0, atol=1e-12)
    # the first column keeps its direction
    first = d6[:, :3] / np.linalg.norm(d6[:, :3], axis=-1, keepdims=True)
    np.testing.assert_allclose(out[:, :, 0], first, atol=1e-12)
    with pytest.raises(ValueError, match="parallel"):
        rot.sixd_to_matrix(np.array([1.0, 0, 0, 2.0, 0, 0]))


@pytest.mark.parametrize("order", ORDERS)
def test_euler_matches_scipy_intrinsic(order):
    rng = np.random.default_rng(9)
    angles = rng.uniform(-np.pi, np.pi, size=(N, 3))
    angles[:, 1] /= 2.0  # middle angle in (-pi/2, pi/2): the unique representation
    expected = Rotation.from_euler(order, angles).as_matrix()
    R = rot.euler_to_matrix(angles, order)
    np.testing.assert_allclose(R, expected, atol=1e-12)
    np.testing.assert_allclose(rot.matrix_to_euler(R, order), angles, atol=1e-9)
    np.testing.assert_allclose(rot.matrix_to_euler(R, order), Rotation.from_matrix(R).as_euler(order), atol=1e-9)
    # degrees and quaternion forms
    np.testing.assert_allclose(rot.euler_to_matrix(np.rad2deg(angles), order, degrees=True), expected, atol=1e-12)
    same_rotation(rot.euler_to_quat(angles, order), to_wxyz(Rotation.from_euler(order, angles)), atol=1e-12)
    np.testing.assert_allclose(rot.quat_to_euler(rot.euler_to_quat(angles, order), order, degrees=True),
                               np.rad2deg(angles), atol=1e-7)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_gimbal_lock_round_trips(order):
    rng = np.random.default_rng(10)
    angles = rng.uniform(-np.pi, np.pi, size=(200, 3))
    angles[:, 1] = rng.choice([-np.pi / 2, np.pi / 2], size=200) + rng.normal(scale=1e-10, size=200)
    R = rot.euler_to_matrix(angles, order)
    back = rot.matrix_to_euler(R, order)
    np.testing.assert_allclose(rot.euler_to_matrix(back, order), R, atol=1e-8)
    assert np.all(np.abs(back[:, 1]) <= np.pi / 2 + 1e-12)


def test_euler_bvh_semantics():
    """Channels "Zrotation Xrotation Yrotation" mean R = Rz(a0) @ Rx(a1) @ Ry(a2)."""
    a = np.deg2rad([30.0, -45.0, 60.0])

    def axis(ax: str, angle: float) -> np.ndarray:
        return Rotation.from_rotvec(angle * np.eye(3)["XYZ".index(ax)]).as_matrix()

    expected = axis("Z", a[0]) @ axis("X", a[1]) @ axis("Y", a[2])
    np.testing.assert_allclose(rot.euler_to_matrix(a, "ZXY"), expected, atol=1e-12)
    np.testing.assert_allclose(rot.euler_to_matrix(np.rad2deg(a), "ZXY", degrees=True), expected, atol=1e-12)
    # a child vector is rotated by the last channel first
    v = np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(rot.euler_to_matrix(a, "ZXY") @ v,
                               axis("Z", a[0]) @ (axis("X", a[1]) @ (axis("Y", a[2]) @ v)), atol=1e-12)


def test_euler_rejects_bad_orders():
    for order in ("zyx", "XYX", "XY", "ABC", 3):
        with pytest.raises(ValueError, match="Euler order"):
            rot.euler_to_matrix(np.zeros(3), order)
        with pytest.raises(ValueError, match="Euler order"):
            rot.matrix_to_euler(np.eye(3), order)


def test_slerp_endpoints_midpoint_and_scipy():
    from scipy.spatial.transform import Slerp

    r0 = Rotation.random(N, random_state=11)
    r1 = Rotation.random(N, random_state=12)
    q0, q1 = to_wxyz(r0), to_wxyz(r1)
    same_rotation(rot.quat_slerp(q0, q1, 0.0), q0, atol=1e-12)
    same_rotation(rot.quat_slerp(q0, q1, 1.0), q1, atol=1e-12)
    mid = rot.quat_slerp(q0, q1, 0.5)
    # the midpoint is half the relative rotation from q0
    rel = (r0.inv() * r1).as_rotvec()
    expected = r0 * Rotation.from_rotvec(rel / 2)
    same_rotation(mid, to_wxyz(expected), atol=1e-10)
    # against scipy's Slerp for a few t
    ts = np.array([0.1, 0.3, 0.7])
    for i in range(5):
        s = Slerp([0.0, 1.0], Rotation.concatenate([r0[i], r1[i]]))(ts)
        same_rotation(rot.quat_slerp(np.broadcast_to(q0[i], (3, 4)), np.broadcast_to(q1[i], (3, 4)), ts),
                      to_wxyz(s), atol=1e-10)


def test_slerp_shortest_path_and_near_equal():
    q0 = rot.axis_angle_to_quat(np.array([0.0, 0.0, 0.2]))
    q1 = -rot.axis_angle_to_quat(np.array([0.0, 0.0, 0.4]))  # same rotation as +q, far on the sphere
    same_rotation(rot.quat_slerp(q0, q1, 0.5), rot.axis_angle_to_quat(np.array([0.0, 0.0, 0.3])), atol=1e-12)
    q2 = rot.axis_angle_to_quat(np.array([0.0, 1e-12, 0.2]))
    out = rot.quat_slerp(q0, q2, 0.5)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(np.linalg.norm(out), 1.0)
    same_rotation(out, q0, atol=1e-12)
    same_rotation(rot.quat_slerp(q0, q0, 0.3), q0, atol=1e-15)
    # per-frame t broadcasting over joints
    qa = np.broadcast_to(q0, (6, 22, 4))
    qb = np.broadcast_to(rot.axis_angle_to_quat(np.array([0.0, 0.0, 0.4])), (6, 22, 4))
    out = rot.quat_slerp(qa, qb, np.linspace(0, 1, 6)[:, None])
    assert out.shape == (6, 22, 4)
    np.testing.assert_allclose(rot.quat_to_axis_angle(out)[:, 3, 2], np.linspace(0.2, 0.4, 6), atol=1e-12)


def test_fix_continuity():
    rng = np.random.default_rng(13)
    aa = np.cumsum(rng.normal(scale=0.05, size=(50, 4, 3)), axis=0)
    q = rot.axis_angle_to_quat(aa)  # smooth
    signs = rng.choice([-1.0, 1.0], size=(50, 4, 1))
    fixed = rot.quat_fix_continuity(q * signs, axis=0)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) >= 0)
    # same rotations, same first frame
    same_rotation(fixed, q, atol=1e-12)
    np.testing.assert_allclose(fixed[0], (q * signs)[0])
    # another axis
    fixed_t = rot.quat_fix_continuity(np.swapaxes(q * signs, 0, 1), axis=1)
    np.testing.assert_allclose(fixed_t, np.swapaxes(fixed, 0, 1))
    np.testing.assert_allclose(rot.quat_fix_continuity(np.swapaxes(q * signs, 0, 1), axis=-1), fixed_t)
    assert rot.quat_fix_continuity(q[:1]).shape == (1, 4, 4)
    with pytest.raises(ValueError, match="axis"):
        rot.quat_fix_continuity(q, axis=2)


def test_quat_between():
    rng = np.random.default_rng(14)
    u = rng.normal(size=(N, 3))
    v = rng.normal(size=(N, 3))
    q = rot.quat_between(u, v)
    un = u / np.linalg.norm(u, axis=-1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    np.testing.assert_allclose(rot.quat_apply(q, un), vn, atol=1e-12)
    # minimal: the angle equals the angle between the directions
    angle = np.linalg.norm(rot.quat_to_axis_angle(q), axis=-1)
    np.testing.assert_allclose(angle, np.arccos(np.clip(np.sum(un * vn, -1), -1, 1)), atol=1e-7)
    # scipy agrees on the rotation (align_vectors gives the minimal one for a single pair)
    for i in range(3):
        r, _ = Rotation.align_vectors(vn[i : i + 1], un[i : i + 1])
        same_rotation(q[i], to_wxyz(r), atol=1e-9)


def test_quat_between_opposite_and_equal():
    dirs = np.concatenate([np.eye(3), -np.eye(3), random_axes(np.random.default_rng(15), 50)])
    for u_scale in (1.0, 3.0):
        q = rot.quat_between(dirs * u_scale, -dirs)
        np.testing.assert_allclose(rot.quat_apply(q, dirs), -dirs, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0)
    # nearly opposite
    v = -dirs + 1e-9 * random_axes(np.random.default_rng(16), len(dirs))
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    np.testing.assert_allclose(rot.quat_apply(rot.quat_between(dirs, v), dirs), vn, atol=1e-8)
    same_rotation(rot.quat_between(dirs, dirs), rot.quat_identity(len(dirs)), atol=1e-15)
    with pytest.raises(ValueError, match="zero-length"):
        rot.quat_between(np.zeros(3), np.ones(3))


@pytest.mark.parametrize(
    "func, arg",
    [
        (rot.quat_to_matrix, np.zeros((5, 3))),
        (rot.matrix_to_quat, np.zeros((5, 3))),
        (rot.axis_angle_to_quat, np.zeros((5, 4))),
        (rot.sixd_to_matrix, np.zeros((5, 9))),
        (rot.matrix_to_6d, np.zeros((5, 2, 3))),
        (rot.quat_multiply, np.zeros(3)),
    ],
)
def test_shape_errors_name_the_shape(func, arg):
    args = (arg, arg) if func is rot.quat_multiply else (arg,)
    with pytest.raises(ValueError, match=r"expected shape .* got \("):
        func(*args)


def test_module_imports_numpy_only():
    import subprocess
    import sys

    code = (
        "import sys, shared.rotations, shared.motion; "
        "bad = [m for m in ('scipy', 'torch', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
