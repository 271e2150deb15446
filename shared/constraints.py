"""Artist controls on a `generate` request (protocol v1.1): their representation, checks and wire form.

A request may pin poses (``start_pose``, ``end_pose``, ``keyframes``), ask for a seamless
cycle (``loop``), make the root follow a ground path (``root_path``) or keep some joints of a
source motion exactly (``keep_joints``). Everything here is in the wire's terms: frames at 20 fps
(`WIRE_FPS`) counted from 0, Y-up metres, (w, x, y, z) local joint rotations (DESIGN.md section 3).

A pose constraint (`PoseKey`) pins, at one frame:
- the local rotations of ``joints`` (default all 22); the pelvis (joint 0) contributes its tilt
  relative to the heading and its height (translation y): the pose in the body's own frame;
- with ``root``, also the pelvis' place on the ground (translation x, z) and its heading (the yaw
  of the pelvis' X axis, `heading_yaw`).
`check` validates everything with an error naming the field (`ConstraintError`, whose ``code`` is
a protocol error code); `to_wire` / `from_wire` map a `Constraints` to the message's header
fields and arrays (docs/protocol.md). numpy and the standard library only: the add-on vendors it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .skeleton import NUM_JOINTS

WIRE_FPS = 20.0
MIN_FRAMES = 2
MAX_KEYFRAMES = 32
MAX_PATH_POINTS = 512
MAX_COORD = 1000.0          # metres: every position and path point lies within this of the origin
MAX_PATH_SPEED = 15.0       # metres per second
MIN_PATH_LENGTH = 0.01      # metres: a path must go somewhere
UNIT_TOLERANCE = 1e-3       # |norm - 1| allowed for a quaternion (as shared.motion)

# Body halves for keep_joints (SMPL-22 indices, shared/skeleton.py): the lower half carries the pelvis,
# and with it the root's path; the upper half is the spine from spine1 up, the head and the arms.
LOWER_BODY: tuple[int, ...] = (0, 1, 2, 4, 5, 7, 8, 10, 11)
UPPER_BODY: tuple[int, ...] = (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)

FIELDS = ("start_pose", "end_pose", "keyframes", "loop", "root_path", "keep_joints")
ARRAYS = ("pose_rotations", "pose_translation", "source_rotations", "source_translation")

# Protocol error codes (shared/protocol.py spells the same strings; a test checks they agree).
BAD_FIELD, BAD_SHAPE, BAD_FRAMES, BAD_DTYPE, NOT_FINITE, TOO_LARGE = (
    "bad_field", "bad_shape", "bad_frames", "bad_dtype", "not_finite", "too_large")


class ConstraintError(ValueError):
    """A constraint is malformed or impossible; ``code`` is a protocol error code, ``field`` names it."""

    def __init__(self, code: str, field_name: str, message: str):
        super().__init__(message)
        self.code = code
        self.field = field_name
        self.message = message


def clip_frames(seconds: float, fps: float = WIRE_FPS) -> int:
    """Frames of a clip of ``seconds`` (what the generator makes): round(seconds * fps), at least 2."""
    if not _is_number(seconds) or not math.isfinite(seconds) or seconds <= 0:
        raise ConstraintError(BAD_FIELD, "seconds", f"seconds must be a positive number, got {seconds!r}")
    return max(MIN_FRAMES, int(round(float(seconds) * float(fps))))


def heading_yaw(quaternion: np.ndarray) -> np.ndarray:
    """(..., 4) pelvis rotations -> (...,) heading: the yaw of the pelvis' X axis (server/model/features.py).

    Ry(yaw) turns +Z, the rest facing, into the body's facing on the ground.
    """
    w, x, y, z = np.moveaxis(np.asarray(quaternion, dtype=np.float64), -1, 0)
    x_axis_x = 1.0 - 2.0 * (y * y + z * z)
    x_axis_z = 2.0 * (x * z - w * y)
    return np.arctan2(-x_axis_z, x_axis_x)


# --- the representation --------------------------------------------------------------------

@dataclass
class PoseKey:
    """One pinned pose: rotations (22, 4) local wxyz, translation (3,) pelvis position, at ``frame``."""

    rotations: np.ndarray
    translation: np.ndarray
    frame: int = 0
    joints: tuple[int, ...] | None = None   # None: all 22 joints
    root: bool = False                       # also pin the pelvis' ground place (x, z) and heading

    @property
    def joint_mask(self) -> np.ndarray:
        """(22,) bool: the joints whose rotations are pinned."""
        mask = np.zeros(NUM_JOINTS, dtype=bool)
        mask[list(range(NUM_JOINTS)) if self.joints is None else list(self.joints)] = True
        return mask


@dataclass
class RootPath:
    """Ground points (P, 2) as (x, z); with ``times`` (P,) seconds, or a constant ``speed`` (m/s), or
    neither (the motion's own pace, scaled so the root reaches the last point at the clip's end)."""

    points: np.ndarray
    times: np.ndarray | None = None
    speed: float | None = None

    @property
    def length(self) -> float:
        p = np.asarray(self.points, dtype=np.float64)
        return float(np.linalg.norm(np.diff(p, axis=0), axis=-1).sum()) if len(p) > 1 else 0.0


@dataclass
class KeepJoints:
    """Joints copied exactly from a source motion (T = the clip's frames): rotations (T, 22, 4),
    translation (T, 3). Keeping the pelvis (0) keeps the root's path and heading too."""

    joints: tuple[int, ...]
    rotations: np.ndarray
    translation: np.ndarray

    @property
    def joint_mask(self) -> np.ndarray:
        mask = np.zeros(NUM_JOINTS, dtype=bool)
        mask[list(self.joints)] = True
        return mask


@dataclass
class Constraints:
    """The artist controls of one request; all optional (an empty one changes nothing)."""

    start_pose: PoseKey | None = None
    end_pose: PoseKey | None = None
    keyframes: list[PoseKey] = field(default_factory=list)
    loop: bool = False
    root_path: RootPath | None = None
    keep_joints: KeepJoints | None = None

    def is_empty(self) -> bool:
        return not (self.start_pose or self.end_pose or self.keyframes or self.loop or self.root_path
                    or self.keep_joints)

    def names(self) -> list[str]:
        """The controls in use, e.g. ["start_pose", "loop"]."""
        return [n for n in FIELDS if getattr(self, n)]

    def poses(self) -> list[tuple[str, PoseKey]]:
        """(field name, key) of every pose constraint: start, end, then keyframes (the wire's order)."""
        out = []
        if self.start_pose is not None:
            out.append(("start_pose", self.start_pose))
        if self.end_pose is not None:
            out.append(("end_pose", self.end_pose))
        out += [(f"keyframes[{i}]", k) for i, k in enumerate(self.keyframes)]
        return out

    def check(self, frames: int, fps: float = WIRE_FPS) -> "Constraints":
        """Validate against a clip of ``frames`` frames; returns self, or raises ConstraintError."""
        _check_constraints(self, frames, fps)
        return self

    def to_wire(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(header fields, arrays) for a `generate` message; arrays float32 in the wire's order."""
        fields: dict[str, Any] = {}
        poses = self.poses()
        for name, key in poses:
            entry: dict[str, Any] = {} if name == "start_pose" else {"frame": int(key.frame)}
            if key.joints is not None:
                entry["joints"] = [int(j) for j in key.joints]
            entry["root"] = bool(key.root)
            if name.startswith("keyframes"):
                fields.setdefault("keyframes", []).append(entry)
            else:
                fields[name] = entry
        if self.loop:
            fields["loop"] = True
        if self.root_path is not None:
            path = {"points": [[float(x), float(z)] for x, z in np.asarray(self.root_path.points, np.float64)]}
            if self.root_path.times is not None:
                path["times"] = [float(t) for t in np.asarray(self.root_path.times, np.float64)]
            if self.root_path.speed is not None:
                path["speed"] = float(self.root_path.speed)
            fields["root_path"] = path
        arrays: dict[str, np.ndarray] = {}
        if poses:
            arrays["pose_rotations"] = np.stack([np.asarray(k.rotations, np.float32) for _, k in poses])
            arrays["pose_translation"] = np.stack([np.asarray(k.translation, np.float32) for _, k in poses])
        if self.keep_joints is not None:
            fields["keep_joints"] = [int(j) for j in self.keep_joints.joints]
            arrays["source_rotations"] = np.asarray(self.keep_joints.rotations, np.float32)
            arrays["source_translation"] = np.asarray(self.keep_joints.translation, np.float32)
        return fields, arrays

    @classmethod
    def from_wire(cls, fields: dict[str, Any], arrays: dict[str, np.ndarray], frames: int,
                  fps: float = WIRE_FPS) -> "Constraints | None":
        """The constraints of a `generate` message's fields and arrays (validated), or None if it has none."""
        present = [n for n in FIELDS if fields.get(n) is not None and fields.get(n) is not False]
        extra = [n for n in arrays if n not in ARRAYS]
        if extra:
            raise ConstraintError(BAD_FRAMES, extra[0], f"'generate' carries no array named {extra[0]!r}; "
                                  f"constraint arrays are {list(ARRAYS)}")
        if not present:
            if arrays:
                raise ConstraintError(BAD_FRAMES, next(iter(arrays)), f"array {next(iter(arrays))!r} is sent "
                                      "but no constraint uses it")
            return None
        return _from_wire(fields, arrays, frames, fps)


# --- checks --------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _float_array(value: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A finite float64 copy of ``value`` with ``shape`` (None = any size on that axis)."""
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConstraintError(BAD_FIELD, name, f"{name} must be numbers, got {type(value).__name__}") from None
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ConstraintError(BAD_SHAPE, name, f"{name} must have shape {want}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ConstraintError(NOT_FINITE, name, f"{name} contains NaN or infinity")
    return a


def _check_rotations(q: np.ndarray, name: str) -> None:
    norm = np.linalg.norm(q, axis=-1)
    bad = np.abs(norm - 1.0) > UNIT_TOLERANCE
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConstraintError(BAD_FIELD, name, f"{name}: quaternion {list(where)} has norm "
                              f"{float(norm[where]):.6f}, not a unit quaternion (tolerance {UNIT_TOLERANCE})")


def _check_coords(a: np.ndarray, name: str) -> None:
    if a.size and float(np.abs(a).max()) > MAX_COORD:
        raise ConstraintError(TOO_LARGE, name, f"{name} lies {float(np.abs(a).max()):.1f} m from the origin; "
                              f"the limit is {MAX_COORD:g} m")


def _check_joints(joints: Any, name: str, allow_none: bool) -> tuple[int, ...] | None:
    if joints is None and allow_none:
        return None
    if isinstance(joints, np.ndarray):
        joints = joints.tolist()
    if not isinstance(joints, (list, tuple)) or not all(_is_int(j) for j in joints):
        raise ConstraintError(BAD_FIELD, name, f"{name} must be a list of joint indices (0..{NUM_JOINTS - 1}), "
                              f"got {joints!r}")
    if not joints:
        raise ConstraintError(BAD_FIELD, name, f"{name} is empty: name at least one joint")
    bad = [int(j) for j in joints if not 0 <= j < NUM_JOINTS]
    if bad:
        raise ConstraintError(BAD_FIELD, name, f"{name} has joint indices {bad} outside [0, {NUM_JOINTS - 1}]")
    if len(set(joints)) != len(joints):
        raise ConstraintError(BAD_FIELD, name, f"{name} repeats a joint: {list(joints)}")
    return tuple(sorted(int(j) for j in joints))


def _frame_text(frames: int, fps: float) -> str:
    return f"the clip has {frames} frames ({frames / fps:g} s at {fps:g} fps)"


def _check_pose(key: PoseKey, name: str, frames: int, fps: float) -> PoseKey:
    if not isinstance(key, PoseKey):
        raise ConstraintError(BAD_FIELD, name, f"{name} must be a PoseKey, got {type(key).__name__}")
    if not _is_int(key.frame):
        raise ConstraintError(BAD_FIELD, f"{name}.frame", f"{name}.frame must be an integer, got {key.frame!r}")
    lo = 0 if name != "end_pose" else 1
    if name == "start_pose" and key.frame != 0:
        raise ConstraintError(BAD_FIELD, f"{name}.frame", f"start_pose is at frame 0, got {key.frame}")
    if not lo <= key.frame <= frames - 1:
        raise ConstraintError(BAD_FIELD, f"{name}.frame", f"{name}.frame is {key.frame}, must be in "
                              f"[{lo}, {frames - 1}]: {_frame_text(frames, fps)}")
    if not isinstance(key.root, (bool, np.bool_)):
        raise ConstraintError(BAD_FIELD, f"{name}.root", f"{name}.root must be true or false, got {key.root!r}")
    key.joints = _check_joints(key.joints, f"{name}.joints", allow_none=True)
    key.rotations = _float_array(key.rotations, f"{name} rotations", (NUM_JOINTS, 4))
    _check_rotations(key.rotations, f"{name} rotations")
    key.translation = _float_array(key.translation, f"{name} translation", (3,))
    _check_coords(key.translation, f"{name} translation")
    key.frame, key.root = int(key.frame), bool(key.root)
    return key


def _check_path(path: RootPath, frames: int, fps: float) -> None:
    if not isinstance(path, RootPath):
        raise ConstraintError(BAD_FIELD, "root_path", f"root_path must be a RootPath, got {type(path).__name__}")
    points = _float_array(path.points, "root_path.points", (None, 2))
    if not 2 <= len(points) <= MAX_PATH_POINTS:
        code = TOO_LARGE if len(points) > MAX_PATH_POINTS else BAD_FIELD
        raise ConstraintError(code, "root_path.points", f"root_path.points has {len(points)} points; "
                              f"it needs 2 to {MAX_PATH_POINTS}")
    _check_coords(points, "root_path.points")
    path.points = points
    if path.length < MIN_PATH_LENGTH:
        raise ConstraintError(BAD_FIELD, "root_path.points", f"root_path is {path.length:.3f} m long; "
                              f"it must be at least {MIN_PATH_LENGTH} m")
    if path.times is not None and path.speed is not None:
        raise ConstraintError(BAD_FIELD, "root_path", "root_path takes 'times' or 'speed', not both")
    if path.times is not None:
        times = _float_array(path.times, "root_path.times", (len(points),))
        duration = (frames - 1) / fps
        if (np.diff(times) <= 0).any():
            raise ConstraintError(BAD_FIELD, "root_path.times", "root_path.times must increase strictly")
        if times[0] < 0 or times[-1] > duration + 1e-6:
            raise ConstraintError(BAD_FIELD, "root_path.times", f"root_path.times run from {times[0]:g} to "
                                  f"{times[-1]:g} s; they must lie in [0, {duration:g}]: {_frame_text(frames, fps)}")
        path.times = times
    if path.speed is not None:
        if not _is_number(path.speed) or not math.isfinite(path.speed):
            raise ConstraintError(NOT_FINITE if _is_number(path.speed) else BAD_FIELD, "root_path.speed",
                                  f"root_path.speed must be a finite number, got {path.speed!r}")
        if not 0 < path.speed <= MAX_PATH_SPEED:
            raise ConstraintError(BAD_FIELD, "root_path.speed", f"root_path.speed is {path.speed}, must be in "
                                  f"(0, {MAX_PATH_SPEED:g}] m/s")
        path.speed = float(path.speed)


def _check_keep(keep: KeepJoints, frames: int, fps: float) -> None:
    if not isinstance(keep, KeepJoints):
        raise ConstraintError(BAD_FIELD, "keep_joints", f"keep_joints must be a KeepJoints, got {type(keep).__name__}")
    keep.joints = _check_joints(keep.joints, "keep_joints", allow_none=False)
    rotations = _float_array(keep.rotations, "keep_joints source rotations", (None, NUM_JOINTS, 4))
    translation = _float_array(keep.translation, "keep_joints source translation", (None, 3))
    if len(rotations) != frames or len(translation) != frames:
        raise ConstraintError(BAD_SHAPE, "keep_joints", f"the keep_joints source has {len(rotations)} rotation "
                              f"and {len(translation)} translation frames; {_frame_text(frames, fps)}: send a "
                              f"source of exactly that length (or ask for {len(rotations) / fps:g} s)")
    _check_rotations(rotations, "keep_joints source rotations")
    _check_coords(translation, "keep_joints source translation")
    keep.rotations, keep.translation = rotations, translation


def _check_constraints(c: Constraints, frames: int, fps: float) -> None:
    if not _is_int(frames) or frames < MIN_FRAMES:
        raise ConstraintError(BAD_FIELD, "seconds", f"a clip needs at least {MIN_FRAMES} frames, got {frames!r}")
    if not isinstance(c.keyframes, list):
        raise ConstraintError(BAD_FIELD, "keyframes", f"keyframes must be a list, got {type(c.keyframes).__name__}")
    if len(c.keyframes) > MAX_KEYFRAMES:
        raise ConstraintError(TOO_LARGE, "keyframes", f"{len(c.keyframes)} keyframes; the limit is {MAX_KEYFRAMES}")
    if not isinstance(c.loop, (bool, np.bool_)):
        raise ConstraintError(BAD_FIELD, "loop", f"loop must be true or false, got {c.loop!r}")
    seen: dict[int, str] = {}
    for name, key in c.poses():
        _check_pose(key, name, frames, fps)
        if key.frame in seen:
            raise ConstraintError(BAD_FIELD, f"{name}.frame", f"frame {key.frame} is pinned twice ({seen[key.frame]} "
                                  f"and {name}); merge them into one pose")
        seen[key.frame] = name
    if c.root_path is not None:
        _check_path(c.root_path, frames, fps)
    if c.keep_joints is not None:
        _check_keep(c.keep_joints, frames, fps)
        kept = set(c.keep_joints.joints)
        for name, key in c.poses():
            clash = sorted(kept & set(range(NUM_JOINTS) if key.joints is None else key.joints))
            if clash:
                raise ConstraintError(BAD_FIELD, name, f"{name} pins joints {clash} that keep_joints keeps from "
                                      f"the source; pin only the other joints (its 'joints' list)")
            if key.root and 0 in kept:
                raise ConstraintError(BAD_FIELD, name, f"{name} pins the root, which keep_joints keeps (it keeps "
                                      "the pelvis); set its 'root' to false")
        if 0 in kept and c.root_path is not None:
            raise ConstraintError(BAD_FIELD, "root_path", "keep_joints keeps the pelvis, and with it the root's "
                                  "path: drop 'root_path' or the pelvis (joint 0) from keep_joints")


# --- wire ----------------------------------------------------------------------------------

def _object(value: Any, name: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise ConstraintError(BAD_FIELD, name, f"field '{name}' must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConstraintError(BAD_FIELD, name, f"field '{name}' has unknown keys {unknown}; allowed: {list(allowed)}")
    for key in required:
        if value.get(key) is None:
            raise ConstraintError(BAD_FIELD, f"{name}.{key}", f"field '{name}.{key}' is required")
    return value


def _wire_bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConstraintError(BAD_FIELD, name, f"field '{name}' must be true or false, got {value!r}")
    return value


def _wire_array(arrays: dict[str, np.ndarray], name: str, used_by: str) -> np.ndarray:
    if name not in arrays:
        raise ConstraintError(BAD_FRAMES, name, f"{used_by} needs the array '{name}'")
    a = arrays[name]
    if a.dtype != np.float32:
        raise ConstraintError(BAD_DTYPE, name, f"array '{name}' must be float32, got {a.dtype}")
    return a


def _from_wire(fields: dict[str, Any], arrays: dict[str, np.ndarray], frames: int, fps: float) -> Constraints:
    entries: list[tuple[str, dict]] = []
    if fields.get("start_pose") is not None:
        entries.append(("start_pose", _object(fields["start_pose"], "start_pose", ("joints", "root"))))
    if fields.get("end_pose") is not None:
        entries.append(("end_pose", _object(fields["end_pose"], "end_pose", ("frame", "joints", "root"), ("frame",))))
    keyframes = fields.get("keyframes")
    if keyframes is not None:
        if not isinstance(keyframes, list) or not keyframes:
            raise ConstraintError(BAD_FIELD, "keyframes", "field 'keyframes' must be a non-empty list of objects")
        if len(keyframes) > MAX_KEYFRAMES:
            raise ConstraintError(TOO_LARGE, "keyframes", f"{len(keyframes)} keyframes; the limit is {MAX_KEYFRAMES}")
        entries += [(f"keyframes[{i}]", _object(k, f"keyframes[{i}]", ("frame", "joints", "root"), ("frame",)))
                    for i, k in enumerate(keyframes)]
    c = Constraints()
    if entries:
        rotations = _wire_array(arrays, "pose_rotations", "a pose constraint")
        translation = _wire_array(arrays, "pose_translation", "a pose constraint")
        if rotations.shape != (len(entries), NUM_JOINTS, 4) or translation.shape != (len(entries), 3):
            raise ConstraintError(BAD_SHAPE, "pose_rotations", f"{len(entries)} pose constraints need "
                                  f"'pose_rotations' ({len(entries)}, {NUM_JOINTS}, 4) and 'pose_translation' "
                                  f"({len(entries)}, 3), got {list(rotations.shape)} and {list(translation.shape)}")
        for k, (name, entry) in enumerate(entries):
            key = PoseKey(rotations[k], translation[k], entry.get("frame", 0), entry.get("joints"),
                          _wire_bool(entry.get("root"), f"{name}.root", default=not name.startswith("keyframes")))
            if name == "start_pose":
                c.start_pose = key
            elif name == "end_pose":
                c.end_pose = key
            else:
                c.keyframes.append(key)
    else:
        for name in ("pose_rotations", "pose_translation"):
            if name in arrays:
                raise ConstraintError(BAD_FRAMES, name, f"array '{name}' is sent but no pose constraint uses it")
    c.loop = _wire_bool(fields.get("loop"), "loop", default=False)
    if fields.get("root_path") is not None:
        path = _object(fields["root_path"], "root_path", ("points", "times", "speed"), ("points",))
        points = path["points"]
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2
                                                   and all(_is_number(v) for v in p) for p in points):
            raise ConstraintError(BAD_FIELD, "root_path.points", "field 'root_path.points' must be a list of "
                                  "[x, z] pairs of numbers")
        times = path.get("times")
        if times is not None and (not isinstance(times, list) or not all(_is_number(t) for t in times)):
            raise ConstraintError(BAD_FIELD, "root_path.times", "field 'root_path.times' must be a list of numbers")
        if times is not None and len(times) != len(points):
            raise ConstraintError(BAD_FIELD, "root_path.times", f"root_path has {len(points)} points but "
                                  f"{len(times)} times")
        if len(points) > MAX_PATH_POINTS:
            raise ConstraintError(TOO_LARGE, "root_path.points", f"root_path.points has {len(points)} points; "
                                  f"the limit is {MAX_PATH_POINTS}")
        c.root_path = RootPath(np.array(points, dtype=np.float64).reshape(-1, 2), times, path.get("speed"))
    if fields.get("keep_joints") is not None:
        c.keep_joints = KeepJoints(fields["keep_joints"], _wire_array(arrays, "source_rotations", "keep_joints"),
                                   _wire_array(arrays, "source_translation", "keep_joints"))
    else:
        for name in ("source_rotations", "source_translation"):
            if name in arrays:
                raise ConstraintError(BAD_FRAMES, name, f"array '{name}' is sent but 'keep_joints' is not")
    return c.check(frames, fps)
