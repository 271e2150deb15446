"""Rotation conversions with numpy only (the Blender add-on imports this module).

Conventions, fixed team-wide:
- Quaternions are (w, x, y, z) on the last axis, Hamilton product, active rotations:
  ``quat_apply(q, v)`` is ``q v q*``, and ``quat_to_matrix(q) @ v`` gives the same vector.
- Every function is vectorised over any leading shape, computes in float64 and returns
  float64; float32 input is accepted.
- 6D rotations are the first two COLUMNS of the matrix, concatenated:
  ``d6 = concat(R[..., :, 0], R[..., :, 1])``, shape (..., 6). (PyTorch3D uses the first
  two rows instead: its 6D vectors are not ours.) ``sixd_to_matrix`` re-orthogonalises
  with Gram-Schmidt, so any pair of non-parallel 3-vectors is accepted.
- Euler angles follow BVH: intrinsic rotations applied in channel order. For the order
  "ZYX" (channels Zrotation Yrotation Xrotation) R = Rz(a0) @ Ry(a1) @ Rx(a2), which is
  scipy's ``Rotation.from_euler("ZYX", ...)`` (uppercase = intrinsic). Only the six
  Tait-Bryan orders (three distinct uppercase letters) are accepted.
- Axis-angle vectors are axis * angle in radians (SMPL's pose format).
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12
_TAIT_BRYAN = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def _last_axis(x, size: int, name: str) -> np.ndarray:
    """Return x as float64 after checking its last axis has `size` entries."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != size:
        raise ValueError(f"{name}: expected shape (..., {size}), got {arr.shape}")
    return arr


def _matrices(R, name: str = "R") -> np.ndarray:
    arr = np.asarray(R, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: expected shape (..., 3, 3), got {arr.shape}")
    return arr


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    """Normalise the last axis; raise on (near) zero vectors."""
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm < _EPS):
        first = np.argwhere(norm[..., 0] < _EPS)[0] if norm.ndim > 1 else ()
        raise ValueError(f"{name}: zero-length vector at index {tuple(int(i) for i in first)}")
    return v / norm


# --- quaternion algebra ---------------------------------------------------------------

def quat_identity(shape=()) -> np.ndarray:
    """Identity quaternions of the given leading shape: (*shape, 4)."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    q = np.zeros(shape + (4,), dtype=np.float64)
    q[..., 0] = 1.0
    return q


def quat_normalize(q) -> np.ndarray:
    """Unit quaternions (..., 4); zero quaternions raise ValueError."""
    return _unit(_last_axis(q, 4, "quat_normalize"), "quat_normalize")


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a); broadcasts (..., 4)."""
    a = _last_axis(a, 4, "quat_multiply a")
    b = _last_axis(b, 4, "quat_multiply b")
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q) -> np.ndarray:
    """(w, -x, -y, -z)."""
    q = _last_axis(q, 4, "quat_conjugate").copy()
    q[..., 1:] *= -1.0
    return q


def quat_inverse(q) -> np.ndarray:
    """Multiplicative inverse conj(q) / |q|^2 (equals the conjugate for unit quaternions)."""
    q = _last_axis(q, 4, "quat_inverse")
    norm2 = np.sum(q * q, axis=-1, keepdims=True)
    if np.any(norm2 < _EPS * _EPS):
        raise ValueError("quat_inverse: zero quaternion has no inverse")
    return quat_conjugate(q) / norm2


def quat_apply(q, v) -> np.ndarray:
    """Rotate vectors v (..., 3) by quaternions q (..., 4) (normalised first); broadcasts."""
    q = quat_normalize(q)
    v = _last_axis(v, 3, "quat_apply v")
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


# --- matrices -------------------------------------------------------------------------

def quat_to_matrix(q) -> np.ndarray:
    """(..., 4) -> (..., 3, 3) rotation matrices (q is normalised first)."""
    w, x, y, z = np.moveaxis(quat_normalize(q), -1, 0)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    R = np.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        axis=-1,
    )
    return R.reshape(R.shape[:-1] + (3, 3))


def matrix_to_quat(R) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternions with w >= 0.

    Shepperd's method: of the four candidate formulas, use the one whose square root is
    largest, so the result stays accurate near 180 degrees.
    """
    R = _matrices(R, "matrix_to_quat")
    r00, r11, r22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    trace = r00 + r11 + r22
    cands = np.stack([1 + trace, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22], -1)
    case = np.argmax(cands, axis=-1)  # (...)
    s = np.sqrt(np.maximum(np.take_along_axis(cands, case[..., None], -1)[..., 0], _EPS)) * 2.0  # 4 * largest
    d21, d02, d10 = R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]
    s01, s02, s12 = R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1]
    q = np.stack(
        [
            np.choose(case, [s * 0.25, d21 / s, d02 / s, d10 / s]),
            np.choose(case, [d21 / s, s * 0.25, s01 / s, s02 / s]),
            np.choose(case, [d02 / s, s01 / s, s * 0.25, s12 / s]),
            np.choose(case, [d10 / s, s02 / s, s12 / s, s * 0.25]),
        ],
        axis=-1,
    )
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


# --- axis-angle -----------------------------------------------------------------------

def axis_angle_to_quat(aa) -> np.ndarray:
    """(..., 3) axis * angle -> (..., 4); exact to first order near zero."""
    aa = _last_axis(aa, 3, "axis_angle_to_quat")
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    small = angle < 1e-6
    safe = np.where(small, 1.0, angle)
    scale = np.where(small, 0.5 - angle * angle / 48.0, np.sin(angle * 0.5) / safe)  # sin(a/2)/a
    return np.concatenate([np.cos(angle * 0.5), aa * scale], axis=-1)


def quat_to_axis_angle(q) -> np.ndarray:
    """(..., 4) -> (..., 3) axis * angle with angle in [0, pi]."""
    q = quat_normalize(q)
    q = np.where(q[..., :1] < 0, -q, q)
    w = q[..., :1]
    xyz = q[..., 1:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)  # sin(angle / 2)
    angle = 2.0 * np.arctan2(s, w)
    small = s < 1e-6  # then w ~ 1: angle / s = 2/w (1 - (s/w)^2 / 3)
    safe_s = np.where(small, 1.0, s)
    scale = np.where(small, (2.0 / w) * (1.0 - (s / w) ** 2 / 3.0), angle / safe_s)
    return xyz * scale


def axis_angle_to_matrix(aa) -> np.ndarray:
    """(..., 3) -> (..., 3, 3)."""
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(R) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) with angle in [0, pi]."""
    return quat_to_axis_angle(matrix_to_quat(R))


# --- 6D ---------------------------------------------------------------------------------

def matrix_to_6d(R) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): first column, then second column."""
    R = _matrices(R, "matrix_to_6d")
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def sixd_to_matrix(d6) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns; parallel columns raise."""
    d6 = _last_axis(d6, 6, "sixd_to_matrix")
    b1 = _unit(d6[..., :3], "sixd_to_matrix first column")
    a2 = d6[..., 3:]
    b2 = _unit(a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1,
               "sixd_to_matrix second column (parallel to the first)")
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def quat_to_6d(q) -> np.ndarray:
    """(..., 4) -> (..., 6)."""
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6) -> np.ndarray:
    """(..., 6) -> (..., 4) with w >= 0."""
    return matrix_to_quat(sixd_to_matrix(d6))


# --- Euler (BVH convention) -------------------------------------------------------------

def _check_order(order) -> tuple[int, int, int]:
    if not isinstance(order, str) or order not in _TAIT_BRYAN:
        raise ValueError(
            f"Euler order must be one of {_TAIT_BRYAN} (intrinsic, BVH channel order), got {order!r}"
        )
    return tuple("XYZ".index(c) for c in order)


def _axis_matrix(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    i, j = (axis + 1) % 3, (axis + 2) % 3
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def euler_to_matrix(angles, order: str, degrees: bool = False) -> np.ndarray:
    """(..., 3) angles in channel order -> (..., 3, 3) = R_order[0] @ R_order[1] @ R_order[2]."""
    axes = _check_order(order)
    angles = _last_axis(angles, 3, "euler_to_matrix")
    if degrees:
        angles = np.deg2rad(angles)
    R0, R1, R2 = (_axis_matrix(ax, angles[..., n]) for n, ax in enumerate(axes))
    return R0 @ R1 @ R2


def matrix_to_euler(R, order: str, degrees: bool = False) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) angles in channel order; middle angle in [-pi/2, pi/2].

    At gimbal lock (middle angle +-90 degrees) the third angle is set to 0, as scipy does.
    """
    i, j, k = _check_order(order)
    R = _matrices(R, "matrix_to_euler")
    sign = 1.0 if (j - i) % 3 == 1 else -1.0  # +1 for cyclic orders XYZ, YZX, ZXY
    cos_b = np.hypot(R[..., i, i], R[..., i, j])
    b = np.arctan2(sign * R[..., i, k], cos_b)
    locked = cos_b < 1e-7
    a = np.where(
        locked,
        np.arctan2(sign * R[..., k, j], R[..., j, j]),
        np.arctan2(-sign * R[..., j, k], R[..., k, k]),
    )
    c = np.where(locked, 0.0, np.arctan2(-sign * R[..., i, j], R[..., i, i]))
    out = np.stack([a, b, c], axis=-1)
    return np.rad2deg(out) if degrees else out


def euler_to_quat(angles, order: str, degrees: bool = False) -> np.ndarray:
    """(..., 3) -> (..., 4) with w >= 0."""
    return matrix_to_quat(euler_to_matrix(angles, order, degrees))


def quat_to_euler(q, order: str, degrees: bool = False) -> np.ndarray:
    """(..., 4) -> (..., 3)."""
    return matrix_to_euler(quat_to_matrix(q), order, degrees)


# --- interpolation and utilities -------------------------------------------------------

def quat_slerp(q0, q1, t) -> np.ndarray:
    """Shortest-path spherical interpolation: (..., 4), (..., 4), t -> (..., 4).

    t broadcasts against the leading shape q.shape[:-1] (for q (T, 22, 4) pass t (T, 1)).

    Falls back to normalised lerp when the quaternions are nearly equal.
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    near = dot > 1.0 - 1e-9
    sin_theta = np.where(near, 1.0, np.sin(theta))
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / sin_theta)
    w1 = np.where(near, t, np.sin(t * theta) / sin_theta)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def quat_fix_continuity(q, axis: int = 0) -> np.ndarray:
    """Flip signs so consecutive quaternions along `axis` (a leading axis) have dot >= 0."""
    q = _last_axis(q, 4, "quat_fix_continuity")
    lead = q.ndim - 1
    if not -lead <= axis < lead:
        raise ValueError(f"quat_fix_continuity: axis {axis} out of range for quaternions of shape {q.shape}")
    q = np.moveaxis(q, axis % lead, 0)
    if q.shape[0] < 2:
        return np.moveaxis(q.copy(), 0, axis % lead)
    dots = np.sum(q[1:] * q[:-1], axis=-1)  # (T-1, ...)
    flips = np.cumsum(dots < 0, axis=0) % 2
    sign = np.concatenate([np.ones((1,) + dots.shape[1:]), 1.0 - 2.0 * flips], axis=0)
    return np.moveaxis(q * sign[..., None], 0, axis % lead)


def quat_between(u, v) -> np.ndarray:
    """Minimal rotation taking direction u to direction v, (..., 3) -> (..., 4).

    Opposite directions give a half turn about an axis perpendicular to u.
    """
    u = _unit(_last_axis(u, 3, "quat_between u"), "quat_between u")
    v = _unit(_last_axis(v, 3, "quat_between v"), "quat_between v")
    u, v = np.broadcast_arrays(u, v)
    q = np.concatenate([1.0 + np.sum(u * v, axis=-1, keepdims=True), np.cross(u, v)], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    opposite = norm < 1e-6
    if np.any(opposite):
        helper = np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
        perp = np.cross(u, helper)
        perp /= np.linalg.norm(perp, axis=-1, keepdims=True)
        half_turn = np.concatenate([np.zeros_like(norm), perp], axis=-1)
        q = np.where(opposite, half_turn, q)
        norm = np.where(opposite, 1.0, norm)
    return q / norm
