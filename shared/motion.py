"""The wire/disk motion format (DESIGN.md section 3) and SMPL-22 forward kinematics, numpy only.

A `Motion` holds per-joint local rotations (T, 22, 4) float32 unit quaternions (w, x, y, z),
each relative to its parent in the SMPL rest frame, and the pelvis world position
(T, 3) float32 in metres, Y-up. Forward kinematics: P_0 = translation,
P_i = P_parent + G_parent (J_i - J_parent), G_i = G_parent R_i.

AMASS (`to_amass` / `from_amass`): AMASS is Z-up and stores `trans` such that the pelvis
world position is trans + J0 (SMPL rotates about the rest pelvis J0). Y-up is reached by
Rx(-90 deg), (x, y, z) -> (x, z, -y), applied to the root rotation and the pelvis position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import rotations as rot
from .skeleton import MIRROR_PERMUTATION, NUM_JOINTS, PARENTS, rest_offsets

UNIT_TOLERANCE = 1e-3  # |norm - 1| above this is an error; below it (and above 1e-6) renormalised
AMASS_POSE_DIMS = NUM_JOINTS * 3  # 66: SMPL body pose without hands

# Z-up (AMASS) -> Y-up (ours): Rx(-90 deg), (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_Z_UP_TO_Y_UP_QUAT = rot.matrix_to_quat(Z_UP_TO_Y_UP)


class MotionError(ValueError):
    """A motion array, file or argument is malformed; the message names the problem."""


def _as_float(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MotionError(f"{name}: not a numeric array ({exc})") from None


def _first_bad_frame(bad: np.ndarray) -> int:
    """Index of the first frame (axis 0) where `bad` has any True."""
    return int(np.nonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0][0])


@dataclass(eq=False)
class Motion:
    """One SMPL-22 motion clip; arrays are validated and stored float32 C-contiguous."""

    rotations: np.ndarray  # (T, 22, 4) unit quaternions (w, x, y, z), local to parent
    translation: np.ndarray  # (T, 3) pelvis world position, metres, Y-up
    fps: float = 20.0

    def __post_init__(self) -> None:
        r = _as_float(self.rotations, "rotations")
        t = _as_float(self.translation, "translation")
        if r.ndim != 3 or r.shape[1:] != (NUM_JOINTS, 4):
            raise MotionError(f"rotations: expected shape (T, {NUM_JOINTS}, 4), got {r.shape}")
        if t.ndim != 2 or t.shape[1] != 3:
            raise MotionError(f"translation: expected shape (T, 3), got {t.shape}")
        if r.shape[0] == 0:
            raise MotionError("motion has no frames (T == 0)")
        if t.shape[0] != r.shape[0]:
            raise MotionError(
                f"rotations has {r.shape[0]} frames but translation has {t.shape[0]}"
            )
        for name, arr in (("rotations", r), ("translation", t)):
            bad = ~np.isfinite(arr)
            if bad.any():
                raise MotionError(f"{name}: NaN or inf at frame {_first_bad_frame(bad)}")
        norm = np.linalg.norm(r, axis=-1)  # (T, 22)
        off = np.abs(norm - 1.0) > UNIT_TOLERANCE
        if off.any():
            frame, joint = (int(i) for i in np.argwhere(off)[0])
            raise MotionError(
                f"rotations: quaternion at frame {frame}, joint {joint} has norm "
                f"{norm[frame, joint]:.6f}, not 1 (tolerance {UNIT_TOLERANCE})"
            )
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise MotionError(f"fps must be a number, got {self.fps!r}") from None
        if not np.isfinite(fps) or fps <= 0:
            raise MotionError(f"fps must be finite and > 0, got {fps}")
        # renormalise only what float32 rounding cannot explain, so re-validating is lossless
        norm = np.where(np.abs(norm - 1.0) > 1e-6, norm, 1.0)
        self.rotations = np.ascontiguousarray(r / norm[..., None], dtype=np.float32)
        self.translation = np.ascontiguousarray(t, dtype=np.float32)
        self.fps = fps

    # --- basic properties -----------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        """Seconds, T / fps."""
        return self.num_frames / self.fps

    def allclose(self, other: "Motion", atol: float = 1e-5) -> bool:
        """Same fps, frames and translation; rotations equal up to quaternion sign."""
        if not isinstance(other, Motion) or other.rotations.shape != self.rotations.shape:
            return False
        a = self.rotations.astype(np.float64)
        b = other.rotations.astype(np.float64)
        b = np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -b, b)
        return bool(
            np.isclose(self.fps, other.fps)
            and np.allclose(a, b, atol=atol, rtol=0.0)
            and np.allclose(self.translation, other.translation, atol=atol, rtol=0.0)
        )

    # --- kinematics --------------------------------------------------------------------

    def positions(self, rest_joints: np.ndarray | None = None) -> np.ndarray:
        """(T, 22, 3) float64 joint world positions."""
        return forward_kinematics(self.rotations, self.translation, rest_joints)

    def global_rotations(self) -> np.ndarray:
        """(T, 22, 4) float64 world rotation of each joint."""
        return global_rotations(self.rotations)

    # --- editing ---------------------------------------------------------------------

    def resample(self, fps: float) -> "Motion":
        """Resample at t = k / fps for every t within the clip (up to its last frame time).

        Rotations are slerped, translation linearly interpolated.
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise MotionError(f"resample: fps must be finite and > 0, got {fps}")
        T = self.num_frames
        count = int(np.floor((T - 1) * fps / self.fps + 1e-9)) + 1
        src = np.arange(count) * self.fps / fps  # fractional source frame indices
        snapped = np.round(src)
        src = np.where(np.abs(src - snapped) < 1e-9, snapped, src)
        i0 = np.minimum(np.floor(src).astype(np.int64), T - 1)
        i1 = np.minimum(i0 + 1, T - 1)
        alpha = src - i0  # (count,)
        rotations = rot.quat_slerp(self.rotations[i0], self.rotations[i1], alpha[:, None])
        translation = (1.0 - alpha[:, None]) * self.translation[i0] + alpha[:, None] * self.translation[i1]
        return Motion(rotations, translation, fps)

    def mirror(self) -> "Motion":
        """Swap left and right across the YZ plane (x -> -x).

        Positions of the result are exactly the mirrored positions for a left/right
        symmetric rest skeleton; the SMPL template is symmetric only to a few mm.
        """
        q = self.rotations.copy()
        q[..., 2:] *= -1.0  # (w, x, y, z) -> (w, x, -y, -z): S R S with S = diag(-1, 1, 1)
        t = self.translation.copy()
        t[:, 0] *= -1.0
        return Motion(q[:, MIRROR_PERMUTATION], t, self.fps)

    def slice(self, start: int | None = None, stop: int | None = None) -> "Motion":
        """Frames [start, stop) with Python slice semantics; an empty result raises."""
        return Motion(self.rotations[start:stop], self.translation[start:stop], self.fps)

    @classmethod
    def concatenate(cls, motions: Sequence["Motion"]) -> "Motion":
        """Join motions end to end; they must share one fps."""
        if len(motions) == 0:
            raise MotionError("concatenate: no motions given")
        fps = motions[0].fps
        for i, m in enumerate(motions):
            if not np.isclose(m.fps, fps):
                raise MotionError(f"concatenate: motion {i} has fps {m.fps}, motion 0 has {fps}")
        return cls(
            np.concatenate([m.rotations for m in motions]),
            np.concatenate([m.translation for m in motions]),
            fps,
        )

    # --- files -----------------------------------------------------------------------

    def save(self, path) -> None:
        """Write an .npz with keys rotations, translation, fps (exactly at `path`)."""
        with open(path, "wb") as f:
            np.savez(f, rotations=self.rotations, translation=self.translation,
                     fps=np.float64(self.fps))

    @classmethod
    def load(cls, path) -> "Motion":
        """Read a file written by `save`; MotionError names a bad file or missing key."""
        try:
            archive = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise MotionError(f"{path}: not a readable .npz motion file ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise MotionError(f"{path}: not an .npz archive (a plain .npy array?)")
        with archive:
            missing = [k for k in ("rotations", "translation", "fps") if k not in archive.files]
            if missing:
                raise MotionError(f"{path}: missing key {missing[0]!r} (has {sorted(archive.files)})")
            try:
                fps = archive["fps"]
                if fps.size != 1:
                    raise MotionError(f"fps: expected a scalar, got shape {fps.shape}")
                return cls(archive["rotations"], archive["translation"], float(fps.reshape(())))
            except MotionError as exc:
                raise MotionError(f"{path}: {exc}") from None
            except ValueError as exc:  # e.g. an object array refused by allow_pickle=False
                raise MotionError(f"{path}: unreadable array ({exc})") from None

    # --- AMASS / SMPL ----------------------------------------------------------------

    def to_amass(self, rest_joints: np.ndarray | None = None, z_up: bool = True) -> dict:
        """AMASS-style dict: poses (T, 66) SMPL axis-angle, trans (T, 3), mocap_framerate.

        With z_up (AMASS's convention) the root is rotated by Rx(+90 deg) back to Z-up;
        trans = pelvis position - J0 in that world.
        """
        j0 = rest_offsets(rest_joints)[0]
        root = self.rotations[:, 0].astype(np.float64)
        pelvis = self.translation.astype(np.float64)
        if z_up:
            root = rot.quat_multiply(rot.quat_conjugate(_Z_UP_TO_Y_UP_QUAT), root)
            pelvis = pelvis @ Z_UP_TO_Y_UP  # row vectors: C^T p
        local = self.rotations.astype(np.float64).copy()
        local[:, 0] = root
        poses = rot.quat_to_axis_angle(local).reshape(self.num_frames, AMASS_POSE_DIMS)
        return {
            "poses": poses.astype(np.float32),
            "trans": (pelvis - j0).astype(np.float32),
            "mocap_framerate": float(self.fps),
        }

    @classmethod
    def from_amass(cls, poses, trans, fps: float, rest_joints: np.ndarray | None = None,
                   z_up: bool = True) -> "Motion":
        """From AMASS/SMPL arrays: poses (T, >=66) axis-angle (SMPL-H's 156 columns are
        cut to the first 66), trans (T, 3). With z_up the world is rotated to Y-up."""
        poses = _as_float(poses, "poses")
        trans = _as_float(trans, "trans")
        if poses.ndim != 2 or poses.shape[1] < AMASS_POSE_DIMS:
            raise MotionError(f"poses: expected shape (T, >= {AMASS_POSE_DIMS}), got {poses.shape}")
        if trans.ndim != 2 or trans.shape[1] != 3:
            raise MotionError(f"trans: expected shape (T, 3), got {trans.shape}")
        if poses.shape[0] != trans.shape[0]:
            raise MotionError(f"poses has {poses.shape[0]} frames but trans has {trans.shape[0]}")
        if poses.shape[0] == 0:
            raise MotionError("motion has no frames (T == 0)")
        aa = poses[:, :AMASS_POSE_DIMS].reshape(-1, NUM_JOINTS, 3)
        quats = rot.axis_angle_to_quat(aa)  # (T, 22, 4)
        pelvis = trans + rest_offsets(rest_joints)[0]
        if z_up:
            quats[:, 0] = rot.quat_multiply(_Z_UP_TO_Y_UP_QUAT, quats[:, 0])
            pelvis = pelvis @ Z_UP_TO_Y_UP.T  # row vectors: C p
        return cls(rot.quat_fix_continuity(quats, axis=0), pelvis, fps)


def _check_rotations(rotations) -> np.ndarray:
    q = np.asarray(rotations, dtype=np.float64)
    if q.ndim < 2 or q.shape[-2:] != (NUM_JOINTS, 4):
        raise MotionError(f"rotations: expected shape (..., {NUM_JOINTS}, 4), got {q.shape}")
    return q


def global_rotations(rotations) -> np.ndarray:
    """(..., 22, 4) local -> (..., 22, 4) world rotations, G_i = G_parent R_i."""
    q = rot.quat_normalize(_check_rotations(rotations))
    out = np.empty_like(q)
    out[..., 0, :] = q[..., 0, :]
    for i in range(1, NUM_JOINTS):
        out[..., i, :] = rot.quat_multiply(out[..., PARENTS[i], :], q[..., i, :])
    return out


def forward_kinematics(rotations, translation, rest_joints: np.ndarray | None = None) -> np.ndarray:
    """(..., 22, 4) local rotations + (..., 3) pelvis position -> (..., 22, 3) float64 joints."""
    q = _check_rotations(rotations)
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != q.shape[:-2] + (3,):
        raise MotionError(f"translation: expected shape {q.shape[:-2] + (3,)}, got {t.shape}")
    offsets = rest_offsets(rest_joints)  # (22, 3), offsets[0] unused: the root sits at translation
    local = rot.quat_to_matrix(q)  # (..., 22, 3, 3)
    world = np.empty_like(local)
    positions = np.empty(q.shape[:-1] + (3,))
    world[..., 0, :, :] = local[..., 0, :, :]
    positions[..., 0, :] = t
    for i in range(1, NUM_JOINTS):
        p = PARENTS[i]
        positions[..., i, :] = positions[..., p, :] + world[..., p, :, :] @ offsets[i]
        world[..., i, :, :] = world[..., p, :, :] @ local[..., i, :, :]
    return positions
