"""BVH files: a general reader and writer, BVH kinematics, and SMPL-22 export/import.

Reader: any hierarchy (ROOT / JOINT / End Site), any channels per joint (any count, any
order, position channels on any joint), `Frames:` and `Frame Time:`, tolerant of blank
lines, tabs, CRLF and a UTF-8 BOM. Every problem raises `BvhError` naming the line.

Kinematics follow the BVH convention (column vectors):
- a joint's local rotation is the product of its rotation channels in the order they are
  listed, intrinsic: channels `Zrotation Xrotation Yrotation` give R = Rz @ Rx @ Ry;
- a joint's local translation is its OFFSET, except that each position channel replaces
  the matching component (`Xposition` replaces offset x); position channels act in the
  parent frame, before the joint's rotation;
- world: G_i = G_parent @ R_i, P_i = P_parent + G_parent @ t_i (the root: P = t_root).

SMPL-22 export (`motion_to_bvh`): joints named as `shared.skeleton.JOINT_NAMES`, written
depth-first, offsets from `rest_offsets` (metres), angles in degrees. The root carries
`Xposition Yposition Zposition` = `Motion.translation` (the pelvis world position); its
OFFSET holds the rest pelvis position for readers that show the rest pose, and is ignored
by the kinematics whenever the position channels exist (they replace it).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.data.skeleton_motion import SkeletonMotion
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import CHILDREN, JOINT_NAMES, NUM_JOINTS, PARENTS, rest_offsets

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
_CANONICAL_CHANNEL = {c.lower(): c for c in POSITION_CHANNELS + ROTATION_CHANNELS}
_TAIT_BRYAN = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
END_SITE_LENGTH = 0.1  # metres: End Sites written by `motion_to_bvh` continue the leaf bone by this


class BvhError(ValueError):
    """A BVH text that cannot be read, or a BVH that does not fit what is asked of it."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


def canonical_channel(name: str) -> str:
    """'xrotation' -> 'Xrotation'; ValueError for anything that is not a BVH channel."""
    try:
        return _CANONICAL_CHANNEL[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown channel {name!r} (expected one of {POSITION_CHANNELS + ROTATION_CHANNELS})"
        ) from None


@dataclass(eq=False)
class BvhJoint:
    """One joint: parent index (-1 for the root), OFFSET, channel names, optional End Site."""

    name: str
    parent: int
    offset: np.ndarray  # (3,)
    channels: list[str]
    end_site: np.ndarray | None = None  # (3,) End Site OFFSET, or None

    def __post_init__(self) -> None:
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(3)
        self.channels = [canonical_channel(c) for c in self.channels]
        if self.end_site is not None:
            self.end_site = np.asarray(self.end_site, dtype=np.float64).reshape(3)


@dataclass(eq=False)
class Bvh:
    """A whole BVH file: joints in file (depth-first) order and the raw motion values."""

    joints: list[BvhJoint]
    frame_time: float
    frames: np.ndarray  # (T, total_channels) float64, values in file order (angles in degrees)

    def __post_init__(self) -> None:
        if not self.joints:
            raise ValueError("a BVH needs at least one joint")
        parents = [j.parent for j in self.joints]
        if parents[0] != -1 or any(p < 0 for p in parents[1:]):
            raise ValueError("joint 0 must be the only root (parent -1)")
        path: list[int] = [0]  # the current root-to-joint chain while walking depth-first
        for i, p in enumerate(parents[1:], start=1):
            while path and path[-1] != p:
                path.pop()
            if not path:
                raise ValueError(
                    f"joint {i} ({self.joints[i].name!r}): joints must be listed depth-first "
                    f"(each subtree contiguous, parents before children)"
                )
            path.append(i)
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError("joint names must be unique")
        self.frame_time = float(self.frame_time)
        if not np.isfinite(self.frame_time) or self.frame_time <= 0:
            raise ValueError(f"frame_time must be finite and > 0, got {self.frame_time}")
        self.frames = np.asarray(self.frames, dtype=np.float64)
        if self.frames.ndim != 2 or self.frames.shape[1] != self.num_channels:
            raise ValueError(
                f"frames: expected shape (T, {self.num_channels}), got {self.frames.shape}"
            )

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def parents(self) -> np.ndarray:
        """(J,) int64, -1 for the root."""
        return np.array([j.parent for j in self.joints], dtype=np.int64)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_channels(self) -> int:
        return sum(len(j.channels) for j in self.joints)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def channel_slices(self) -> list[slice]:
        """Per joint, the columns of `frames` holding its channels."""
        out, start = [], 0
        for joint in self.joints:
            out.append(slice(start, start + len(joint.channels)))
            start += len(joint.channels)
        return out

    def index(self, name: str) -> int:
        """Index of the joint called `name` (KeyError names the missing joint)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r} in this BVH") from None

    def joint_values(self, name: str) -> np.ndarray:
        """(T, n) the raw channel values of one joint."""
        return self.frames[:, self.channel_slices[self.index(name)]]


# --- reading -------------------------------------------------------------------------

_KEYWORDS = {"{", "}", "ROOT", "JOINT", "END", "OFFSET", "CHANNELS", "MOTION", "HIERARCHY"}
_FRAMES_RE = re.compile(r"^frames\s*:\s*(.*)$", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"^frame\s*time\s*:\s*(.*)$", re.IGNORECASE)


class _Tokens:
    """Hierarchy tokens with their 1-based line numbers; braces are tokens of their own."""

    def __init__(self, lines: list[str]):
        self.items: list[tuple[str, int]] = []
        for number, line in enumerate(lines, start=1):
            for tok in line.replace("{", " { ").replace("}", " } ").split():
                self.items.append((tok, number))
        self.pos = 0
        self.last_line = len(lines)

    def peek(self) -> tuple[str, int] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def next(self, context: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise BvhError(f"unexpected end of the hierarchy {context}", self.last_line)
        item = self.items[self.pos]
        self.pos += 1
        return item

    def take(self, count: int) -> list[str]:
        """Consume up to `count` tokens, stopping before a brace or a hierarchy keyword."""
        out = []
        while len(out) < count and (item := self.peek()) is not None and item[0].upper() not in _KEYWORDS:
            out.append(item[0])
            self.pos += 1
        return out

    def rest_of_line(self, line: int) -> list[str]:
        """Consume the remaining tokens on `line` up to (not including) a brace."""
        out = []
        while (item := self.peek()) is not None and item[1] == line and item[0] not in "{}":
            out.append(item[0])
            self.pos += 1
        return out


def _numbers(tokens: list[str], count: int, what: str, line: int) -> np.ndarray:
    if len(tokens) != count:
        raise BvhError(f"{what} needs {count} numbers, found {len(tokens)}: {' '.join(tokens)!r}", line)
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError:
        raise BvhError(f"{what}: not a number in {' '.join(tokens)!r}", line) from None
    if not np.all(np.isfinite(values)):
        raise BvhError(f"{what}: values must be finite, got {' '.join(tokens)!r}", line)
    return values


class _HierarchyParser:
    def __init__(self, tokens: _Tokens):
        self.tokens = tokens
        self.joints: list[BvhJoint] = []

    def parse(self) -> list[BvhJoint]:
        tok, line = self.tokens.next("(empty file)")
        if tok.upper() != "HIERARCHY":
            raise BvhError(f"expected 'HIERARCHY' at the start, found {tok!r}", line)
        tok, line = self.tokens.next("(no ROOT after HIERARCHY)")
        if tok.upper() != "ROOT":
            raise BvhError(f"expected 'ROOT', found {tok!r}", line)
        self._joint(-1, "ROOT", line)
        return self.joints

    def check_end(self, motion_found: bool) -> None:
        """After the ROOT closed: nothing may follow but MOTION (which the caller found)."""
        extra = self.tokens.peek()
        if extra is None:
            if not motion_found:
                raise BvhError("missing MOTION section", self.tokens.last_line)
            return
        tok, line = extra
        if tok.upper() == "ROOT":
            raise BvhError("more than one ROOT: only single-rooted hierarchies are supported", line)
        if not motion_found:
            raise BvhError(f"missing MOTION section (found {tok!r} after the hierarchy)", line)
        raise BvhError(f"unexpected {tok!r} after the ROOT joint closed (unbalanced braces?)", line)

    def _open(self, what: str) -> int:
        tok, line = self.tokens.next(f"(expected '{{' after {what})")
        if tok != "{":
            raise BvhError(f"expected '{{' after {what}, found {tok!r}", line)
        return line

    def _joint(self, parent: int, keyword: str, line: int) -> None:
        name = " ".join(self.tokens.rest_of_line(line))
        if not name:
            raise BvhError(f"{keyword} without a name", line)
        open_line = self._open(f"{keyword} {name}")
        index = len(self.joints)
        self.joints.append(BvhJoint(name, parent, np.zeros(3), []))
        offset = channels = end_site = None
        while True:
            try:
                tok, tline = self.tokens.next("")
            except BvhError:
                raise BvhError(
                    f"unbalanced braces: joint {name!r} opened at line {open_line} is never closed",
                    self.tokens.last_line,
                ) from None
            word = tok.upper()
            if word == "}":
                break
            if word == "OFFSET":
                if offset is not None:
                    raise BvhError(f"joint {name!r} has two OFFSET lines", tline)
                offset = _numbers(self.tokens.take(3), 3, "OFFSET", tline)
            elif word == "CHANNELS":
                if channels is not None:
                    raise BvhError(f"joint {name!r} has two CHANNELS lines", tline)
                channels = self._channels(tline)
            elif word == "JOINT":
                self._joint(index, "JOINT", tline)
            elif word == "END":
                if end_site is not None:
                    raise BvhError(f"joint {name!r} has two End Sites", tline)
                end_site = self._end_site(tline)
            elif word == "ROOT":
                raise BvhError(f"ROOT inside joint {name!r} (unbalanced braces?)", tline)
            else:
                raise BvhError(f"unexpected {tok!r} in joint {name!r}", tline)
        if offset is None:
            raise BvhError(f"joint {name!r} has no OFFSET", open_line)
        self.joints[index] = BvhJoint(name, parent, offset, channels or [], end_site)

    def _channels(self, line: int) -> list[str]:
        words = self.tokens.take(1)
        if not words:
            raise BvhError("CHANNELS without a count", line)
        try:
            count = int(words[0])
        except ValueError:
            raise BvhError(f"CHANNELS count {words[0]!r} is not an integer", line) from None
        if count < 0:
            raise BvhError(f"CHANNELS count {count} is negative", line)
        names = self.tokens.take(count)
        while (item := self.tokens.peek()) is not None and item[1] == line and item[0].lower() in _CANONICAL_CHANNEL:
            names.append(item[0])
            self.tokens.pos += 1
        if len(names) != count:
            raise BvhError(f"CHANNELS says {count} but {len(names)} channel names follow", line)
        out = []
        for name in names:
            try:
                out.append(canonical_channel(name))
            except ValueError as exc:
                raise BvhError(str(exc), line) from None
        if len(set(out)) != len(out):
            raise BvhError(f"repeated channel in {' '.join(names)!r}", line)
        return out

    def _end_site(self, line: int) -> np.ndarray:
        words = self.tokens.rest_of_line(line)
        if [w.upper() for w in words] not in ([], ["SITE"]):
            raise BvhError(f"expected 'End Site', found {' '.join(['End'] + words)!r}", line)
        self._open("End Site")
        offset = None
        while True:
            try:
                tok, tline = self.tokens.next("")
            except BvhError:
                raise BvhError(
                    f"unbalanced braces: End Site opened at line {line} is never closed",
                    self.tokens.last_line,
                ) from None
            if tok == "}":
                break
            if tok.upper() != "OFFSET" or offset is not None:
                raise BvhError(f"unexpected {tok!r} in End Site (only one OFFSET is allowed)", tline)
            offset = _numbers(self.tokens.take(3), 3, "End Site OFFSET", tline)
        if offset is None:
            raise BvhError("End Site has no OFFSET", line)
        return offset


def _parse_motion(lines: list[str], first_line: int, num_channels: int) -> tuple[float, np.ndarray]:
    """Parse the lines after MOTION; `first_line` is the 1-based number of lines[0]."""
    body = [(first_line + k, s.strip()) for k, s in enumerate(lines) if s.strip()]
    if not body or not _FRAMES_RE.match(body[0][1]):
        where = body[0][0] if body else first_line - 1
        raise BvhError("missing 'Frames:' line after MOTION", where)
    line, text = body[0]
    value = _FRAMES_RE.match(text).group(1).strip()
    try:
        count = int(value)
    except ValueError:
        raise BvhError(f"bad Frames: count {value!r} (expected a whole number)", line) from None
    if count < 0:
        raise BvhError(f"bad Frames: count {count} (negative)", line)
    if len(body) < 2 or not _FRAME_TIME_RE.match(body[1][1]):
        raise BvhError("missing 'Frame Time:' line after 'Frames:'", body[1][0] if len(body) > 1 else line)
    line, text = body[1]
    value = _FRAME_TIME_RE.match(text).group(1).strip()
    try:
        frame_time = float(value)
    except ValueError:
        raise BvhError(f"bad Frame Time {value!r} (expected a positive number of seconds)", line) from None
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise BvhError(f"bad Frame Time {value!r} (expected a positive number of seconds)", line)
    rows = body[2:]
    if num_channels == 0:
        return frame_time, np.zeros((count, 0))
    if len(rows) != count:
        where = rows[count][0] if len(rows) > count else (rows[-1][0] if rows else line)
        raise BvhError(f"'Frames: {count}' but the file has {len(rows)} frame lines", where)
    split = [text.split() for _, text in rows]
    for (number, _), values in zip(rows, split):
        if len(values) != num_channels:
            raise BvhError(
                f"frame line has {len(values)} values, expected {num_channels} (one per channel)", number
            )
    try:
        frames = np.array(split, dtype=np.float64).reshape(count, num_channels)
    except ValueError:
        for (number, _), values in zip(rows, split):
            for v in values:
                try:
                    float(v)
                except ValueError:
                    raise BvhError(f"not a number in frame data: {v!r}", number) from None
        raise
    bad = ~np.isfinite(frames)
    if bad.any():
        raise BvhError("frame data holds NaN or inf", rows[int(np.nonzero(bad.any(1))[0][0])][0])
    return frame_time, frames


def parse_bvh(text: str) -> Bvh:
    """Parse BVH text (any line endings) into a `Bvh`."""
    lines = text.lstrip("\ufeff").splitlines()
    motion_at = next((k for k, s in enumerate(lines) if s.strip().upper() == "MOTION"), None)
    parser = _HierarchyParser(_Tokens(lines if motion_at is None else lines[:motion_at]))
    joints = parser.parse()
    parser.check_end(motion_found=motion_at is not None)
    num_channels = sum(len(j.channels) for j in joints)
    frame_time, frames = _parse_motion(lines[motion_at + 1:], motion_at + 2, num_channels)
    return Bvh(joints, frame_time, frames)


def read_bvh(source: str | bytes | os.PathLike) -> Bvh:
    """Read a BVH from a path, from BVH text (a str holding a line break) or from bytes."""
    if isinstance(source, bytes):
        return parse_bvh(_decode(source))
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return parse_bvh(source)
    path = Path(source)
    try:
        return parse_bvh(_decode(path.read_bytes()))
    except BvhError as exc:
        named = BvhError(f"{path}: {exc}")
        named.line = exc.line
        raise named from None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# --- writing -------------------------------------------------------------------------

def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "", "-") else text


def bvh_to_text(bvh: Bvh, decimals: int = 6) -> str:
    """BVH text for `bvh`: tabs, '\\n' line ends, values with `decimals` decimals."""
    for joint in bvh.joints:
        if not joint.name.strip() or any(c in joint.name for c in "{}\r\n"):
            raise ValueError(f"joint name {joint.name!r} cannot be written to a BVH file")
    children: list[list[int]] = [[] for _ in bvh.joints]
    for i, joint in enumerate(bvh.joints[1:], start=1):
        children[joint.parent].append(i)
    out = ["HIERARCHY"]

    def vec(v: np.ndarray) -> str:
        return " ".join(_number(float(x), decimals) for x in v)

    def emit(i: int, depth: int) -> None:
        joint, pad = bvh.joints[i], "\t" * depth
        out.append(f"{pad}{'ROOT' if joint.parent < 0 else 'JOINT'} {joint.name}")
        out.append(pad + "{")
        out.append(f"{pad}\tOFFSET {vec(joint.offset)}")
        out.append(f"{pad}\tCHANNELS {len(joint.channels)}" + "".join(" " + c for c in joint.channels))
        for child in children[i]:
            emit(child, depth + 1)
        if joint.end_site is not None:
            out.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {vec(joint.end_site)}", f"{pad}\t}}"])
        out.append(pad + "}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time!r}"]
    if bvh.num_channels:
        row = " ".join([f"%.{decimals}f"] * bvh.num_channels)
        out.extend(row % tuple(values) for values in bvh.frames)
    return "\n".join(out) + "\n"


def write_bvh(bvh: Bvh, path: str | os.PathLike, decimals: int = 6) -> None:
    """Write `bvh` to `path` (see `bvh_to_text`)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(bvh_to_text(bvh, decimals))


# --- kinematics ----------------------------------------------------------------------

def local_rotations(bvh: Bvh) -> np.ndarray:
    """(T, J, 3, 3) each joint's rotation in its parent frame (product of its rotation channels)."""
    T, J = bvh.num_frames, len(bvh.joints)
    R = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    for j, (joint, cols) in enumerate(zip(bvh.joints, bvh.channel_slices)):
        which = [k for k, c in enumerate(joint.channels) if c in ROTATION_CHANNELS]
        if not which:
            continue
        angles = bvh.frames[:, cols][:, which]  # (T, n) degrees
        axes = "".join(joint.channels[k][0] for k in which)
        if axes in _TAIT_BRYAN:
            R[:, j] = rot.euler_to_matrix(angles, axes, degrees=True)
            continue
        for n, axis in enumerate(axes):  # 1 or 2 rotation channels: compose one by one
            aa = np.zeros((T, 3))
            aa[:, "XYZ".index(axis)] = np.deg2rad(angles[:, n])
            R[:, j] = R[:, j] @ rot.axis_angle_to_matrix(aa)
    return R


def local_translations(bvh: Bvh) -> np.ndarray:
    """(T, J, 3) each joint's translation in its parent frame: OFFSET, position channels replacing it."""
    offsets = np.stack([j.offset for j in bvh.joints])  # (J, 3)
    t = np.broadcast_to(offsets, (bvh.num_frames,) + offsets.shape).copy()
    for j, (joint, cols) in enumerate(zip(bvh.joints, bvh.channel_slices)):
        for k, channel in enumerate(joint.channels):
            if channel in POSITION_CHANNELS:
                t[:, j, "XYZ".index(channel[0])] = bvh.frames[:, cols.start + k]
    return t


def to_skeleton_motion(bvh: Bvh, scale: float = 1.0, fps: float | None = None,
                       include_end_sites: bool = False) -> SkeletonMotion:
    """The BVH's own kinematics as a `SkeletonMotion`, lengths multiplied by `scale`.

    `fps` overrides the header's 1 / Frame Time (use the true capture rate when the header
    is wrong). Non-root position channels that differ from the OFFSET become
    `SkeletonMotion.translations`. With `include_end_sites`, each End Site is appended as a
    leaf joint named '<joint>_end' (no channels, identity rotation).
    """
    rotations = local_rotations(bvh)
    translations = local_translations(bvh) * scale
    offsets = np.stack([j.offset for j in bvh.joints]) * scale
    names, parents = bvh.names, list(bvh.parents)
    animated = bool(np.any(translations[:, 1:] != offsets[1:]))
    if include_end_sites:
        T = bvh.num_frames
        for j, joint in enumerate(bvh.joints):
            if joint.end_site is None:
                continue
            name = f"{joint.name}_end"
            while name in names:
                name += "_"
            names = names + [name]
            parents.append(j)
            offsets = np.vstack([offsets, joint.end_site * scale])
            rotations = np.concatenate([rotations, np.broadcast_to(np.eye(3), (T, 1, 3, 3))], axis=1)
            translations = np.concatenate(
                [translations, np.broadcast_to(joint.end_site * scale, (T, 1, 3))], axis=1
            )
    return SkeletonMotion(
        names=names,
        parents=np.array(parents, dtype=np.int64),
        offsets=offsets,
        local_rotations=rotations,
        root_positions=translations[:, 0].copy(),
        fps=bvh.fps if fps is None else fps,
        translations=translations if animated else None,
    )


# --- SMPL-22 export / import ---------------------------------------------------------

def _smpl_depth_first() -> list[int]:
    """SMPL joint indices in depth-first order (children in index order)."""
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(CHILDREN[j]))
    return order


def motion_to_bvh(motion: Motion, rest_joints: np.ndarray | None = None, order: str = "ZYX") -> Bvh:
    """A `Motion` as a BVH with the SMPL-22 hierarchy (metres, degrees, Euler `order`).

    The root has `Xposition Yposition Zposition` (= translation) then the rotation
    channels; the other joints have the three rotation channels. Leaves get End Sites
    continuing their bone by `END_SITE_LENGTH`.
    """
    if order not in _TAIT_BRYAN:
        raise ValueError(f"order must be one of {_TAIT_BRYAN}, got {order!r}")
    offsets = rest_offsets(rest_joints)  # (22, 3); [0] = rest pelvis position
    rotation_channels = [f"{axis}rotation" for axis in order]
    depth_first = _smpl_depth_first()
    where = {s: k for k, s in enumerate(depth_first)}
    angles = rot.matrix_to_euler(rot.quat_to_matrix(motion.rotations), order, degrees=True)  # (T, 22, 3)
    joints, columns = [], []
    for s in depth_first:
        end_site = None
        if not CHILDREN[s]:
            length = np.linalg.norm(offsets[s])
            end_site = offsets[s] / length * END_SITE_LENGTH if length > 0 else np.array([0, END_SITE_LENGTH, 0])
        if s == 0:
            joints.append(BvhJoint(JOINT_NAMES[s], -1, offsets[s], list(POSITION_CHANNELS) + rotation_channels))
            columns += [motion.translation.astype(np.float64), angles[:, s]]
        else:
            joints.append(BvhJoint(JOINT_NAMES[s], where[int(PARENTS[s])], offsets[s], rotation_channels, end_site))
            columns.append(angles[:, s])
    return Bvh(joints, 1.0 / motion.fps, np.concatenate(columns, axis=1))


def _smpl_indices(bvh: Bvh) -> list[int]:
    """For each SMPL joint, its index in `bvh`; BvhError if the hierarchy is not SMPL-22."""
    names = bvh.names
    missing = [n for n in JOINT_NAMES if n not in names]
    extra = [n for n in names if n not in JOINT_NAMES]
    if missing or extra:
        raise BvhError(f"not the SMPL-22 hierarchy: missing joints {missing}, unexpected joints {extra}")
    index = [names.index(n) for n in JOINT_NAMES]
    parents = bvh.parents
    for s in range(NUM_JOINTS):
        want = -1 if s == 0 else index[PARENTS[s]]
        if parents[index[s]] != want:
            got = "none" if parents[index[s]] < 0 else names[parents[index[s]]]
            expected = "none" if want < 0 else JOINT_NAMES[PARENTS[s]]
            raise BvhError(f"joint {JOINT_NAMES[s]!r} has parent {got!r}, SMPL-22 needs {expected!r}")
    return index


def bvh_to_motion(bvh: Bvh, scale: float = 1.0) -> Motion:
    """A BVH with the SMPL-22 hierarchy (any joint order, any Euler order) as a `Motion`.

    Translation = the root's local translation (its position channels) x `scale`. The
    BVH's OFFSETs are not part of a `Motion`; `rest_joints_from_bvh` gives them.
    """
    index = _smpl_indices(bvh)
    if bvh.num_frames == 0:
        raise BvhError("the BVH has no frames")
    quats = rot.matrix_to_quat(local_rotations(bvh)[:, index])  # (T, 22, 4)
    translation = local_translations(bvh)[:, index[0]] * scale
    return Motion(rot.quat_fix_continuity(quats, axis=0), translation, bvh.fps)


def rest_joints_from_bvh(bvh: Bvh, scale: float = 1.0) -> np.ndarray:
    """(22, 3) SMPL rest joints implied by an SMPL-22 BVH's OFFSETs (root at its OFFSET)."""
    index = _smpl_indices(bvh)
    offsets = np.stack([bvh.joints[i].offset for i in index]) * scale
    joints = offsets.copy()
    for s in range(1, NUM_JOINTS):
        joints[s] = joints[PARENTS[s]] + offsets[s]
    return joints
