"""Readers for every motion source we hold, each giving a `SkeletonMotion` (metres, Y-up).

Each reader gives the source's own kinematics exactly, at its true frame rate; nothing
is retargeted (rest poses, proportions and facing stay the source's). Facts per source
(see ../shared/data/*/README.md; the numbers below were checked with FK on the files):

| family            | file            | scale     | fps | Euler  | frame 0        | facing at rest |
|-------------------|-----------------|-----------|-----|--------|----------------|----------------|
| cgspeed-mb-31     | CMU BVH         | 0.056444  | 40* | ZYX    | added T-pose   | +Z, left +X    |
| daz-friendly-43   | CMU BVH         | 0.01 (cm) | 40* | root ZYX, others ZXY | rest pose | +Z, left +X |
| asf-names-31      | CMU BVH         | 0.056444  | 40* | ZYX    | a real frame   | +Z, left +X    |
| bandai-namco-22   | Bandai BVH      | 0.01 (cm) | 30  | ZXY    | a real frame   | bones along local +X |
| li2018-38         | exp-map CSV     | 0.056444  | 40  | exp-map (transposed) | added T-pose | +Z, left +X |
| deepmimic-humanoid3d | DeepMimic JSON | 1 (m)  | 30  | quaternions | a real frame | +X, left -Z |

(*) The CMU files here are 120 fps captures kept every 3rd frame; use `manifest.csv`'s
`true_kept_frame_time` (pass `fps=1/true_kept_frame_time`): the header says 0.0249999.
Where frame 0 is an added pose the caller removes it with `drop_first_frame`.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from server.data.bvh import read_bvh, to_skeleton_motion
from server.data.skeleton_motion import SkeletonMotion, drop_first_frame
from shared import rotations as rot

__all__ = [
    "BVH_FAMILIES", "BvhFamily", "CMU_SCALE", "DEEPMIMIC_FRAME_SIZE", "DEEPMIMIC_NAMES", "LI2018_NAMES", "SkeletonMotion", "SourceError", "drop_first_frame", "iter_tar_texts",
    "read_deepmimic_json", "read_li2018_csv", "read_source_bvh",
]

CMU_SCALE = 0.056444  # CMU ASF length unit (inches / 0.45) in metres


class SourceError(ValueError):
    """A source file that does not have the layout its reader expects."""


# --- archives and inputs -------------------------------------------------------------

def iter_tar_texts(path: str | os.PathLike, suffix: str | tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Yield (member name, text) for each file in a .tar(.xz/.gz/.bz2) whose name ends in `suffix`.

    Reads members one after another from the archive; nothing is written to disk.
    """
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(suffix):
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                data = handle.read()
                try:
                    yield member.name, data.decode("utf-8")
                except UnicodeDecodeError:
                    yield member.name, data.decode("latin-1")


def _text(source: str | bytes | os.PathLike, looks_like_text) -> str:
    """`source` itself when it is text (bytes, or a str for which `looks_like_text`), else the file's text."""
    if isinstance(source, bytes):
        return source.decode("utf-8")
    if isinstance(source, str) and looks_like_text(source):
        return source
    return Path(source).read_text(encoding="utf-8")


# --- BVH families --------------------------------------------------------------------

@dataclass(frozen=True)
class BvhFamily:
    """How to read one BVH skeleton family, and which of its joints match SMPL-22 joints."""

    name: str
    scale: float  # file length unit -> metres
    fps: float | None  # the true rate of the files we hold; None: pass it (CMU: manifest.csv)
    first_frame_is_added: bool  # frame 0 is a converter-added T-pose / rest pose: drop it


BVH_FAMILIES: dict[str, BvhFamily] = {
    "cgspeed-mb-31": BvhFamily("cgspeed-mb-31", CMU_SCALE, None, True),
    "daz-friendly-43": BvhFamily("daz-friendly-43", 0.01, None, True),
    "asf-names-31": BvhFamily("asf-names-31", CMU_SCALE, None, False),
    "bandai-namco-22": BvhFamily("bandai-namco-22", 0.01, 30.0, False),
}


def read_source_bvh(source: str | bytes | os.PathLike, family: str, fps: float | None = None) -> SkeletonMotion:
    """A BVH of a known family, in metres, End Sites included as '<joint>_end' leaves.

    `fps` defaults to the family's true rate (Bandai 30); CMU families need it from
    `manifest.csv` (`1 / true_kept_frame_time`), else the header's rate is used.
    Frame 0 is kept: drop it with `drop_first_frame` when `BVH_FAMILIES[family].first_frame_is_added`.
    """
    try:
        spec = BVH_FAMILIES[family]
    except KeyError:
        raise SourceError(f"unknown BVH family {family!r}; known: {sorted(BVH_FAMILIES)}") from None
    bvh = read_bvh(source)
    return to_skeleton_motion(bvh, scale=spec.scale, fps=fps if fps is not None else spec.fps,
                              include_end_sites=True)


# --- Li et al. 2018 CMU exp-map CSV ---------------------------------------------------

# Node names: the CMU ASF bone that starts at each node (the skeleton JSON's node_notes),
# matching the cgspeed BVH joints one for one (same offsets): e.g. "lfemur" sits at the
# hip like cgspeed's LeftUpLeg, "lwrist" at the wrist like LeftHand.
LI2018_NAMES: tuple[str, ...] = (
    "root",
    "lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes", "ltoes_end",
    "rhipjoint", "rfemur", "rtibia", "rfoot", "rtoes", "rtoes_end",
    "lowerback", "upperback", "thorax", "lowerneck", "upperneck", "head", "head_end",
    "lclavicle", "lhumerus", "lradius", "lwrist", "lhand", "lfingers", "lfingers_end",
    "lthumb", "lthumb_end",
    "rclavicle", "rhumerus", "rradius", "rwrist", "rhand", "rfingers", "rfingers_end",
    "rthumb", "rthumb_end",
)
LI2018_COLUMNS = 3 + 3 * len(LI2018_NAMES)  # 117
LI2018_FPS = 40.0  # 120 fps captures, every 3rd row kept


def read_li2018_csv(source: str | bytes | os.PathLike, skeleton_json: str | os.PathLike | dict,
                    fps: float = LI2018_FPS) -> SkeletonMotion:
    """A Li et al. 2018 CMU exp-map CSV (117 numbers a row) with the tree from `skeleton_json`.

    The source code applies the exp-maps to ROW vectors (p = offset @ G_parent,
    G_i = expmap(r_i) @ G_parent), so in our column-vector FK the local rotation is
    expmap(r_i) transposed. Checked: the T-pose row 0 holds +21 degrees about z at lfemur
    where the cgspeed BVH's frame 0 has Zrotation -21 at LeftUpLeg, and only the transposed
    form puts a walking clip's feet on a common floor. Row 0 is that added T-pose: drop it.
    """
    text = _text(source, lambda s: "," in s or "\n" in s)
    try:
        rows = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise SourceError(f"Li 2018 CSV: unreadable numbers ({exc})") from None
    if rows.shape[1] != LI2018_COLUMNS or rows.shape[0] == 0:
        raise SourceError(f"Li 2018 CSV: expected rows of {LI2018_COLUMNS} numbers, got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise SourceError("Li 2018 CSV: NaN or inf in the data")
    if isinstance(skeleton_json, dict):
        skeleton = skeleton_json
    else:
        skeleton = json.loads(Path(skeleton_json).read_text(encoding="utf-8"))
    parents = np.asarray(skeleton["parent"], dtype=np.int64)
    offsets = np.asarray(skeleton["offset"], dtype=np.float64)
    if parents.shape != (len(LI2018_NAMES),) or offsets.shape != (len(LI2018_NAMES), 3):
        raise SourceError(
            f"Li 2018 skeleton: expected {len(LI2018_NAMES)} parents and offsets, "
            f"got {parents.shape} and {offsets.shape}"
        )
    T = rows.shape[0]
    expmaps = rows[:, 3:].reshape(T, len(LI2018_NAMES), 3)
    local = np.swapaxes(rot.axis_angle_to_matrix(expmaps), -1, -2)  # (T, 38, 3, 3)
    return SkeletonMotion(
        names=list(LI2018_NAMES),
        parents=parents,
        offsets=offsets * CMU_SCALE,
        local_rotations=local,
        root_positions=(rows[:, :3] + offsets[0]) * CMU_SCALE,
        fps=fps,
    )


# --- DeepMimic humanoid3d JSON --------------------------------------------------------

# The humanoid3d character, from xbpeng/DeepMimic data/characters/humanoid3d.txt
# (commit 3ca04d38285ec3556dc0423f466477e96d934787): joint ID order, parents, "Type" and
# AttachX/Y/Z (metres; every AttachTheta is 0). The character faces +X, its right side is
# +Z (right_hip AttachZ = +0.084887), Y is up. Revolute joints turn about their local z.
_DM_JOINTS: tuple[tuple[str, int, str, tuple[float, float, float]], ...] = (
    ("root", -1, "none", (0.0, 0.0, 0.0)),
    ("chest", 0, "spherical", (0.0, 0.236151, 0.0)),
    ("neck", 1, "spherical", (0.0, 0.223894, 0.0)),
    ("right_hip", 0, "spherical", (0.0, 0.0, 0.084887)),
    ("right_knee", 3, "revolute", (0.0, -0.421546, 0.0)),
    ("right_ankle", 4, "spherical", (0.0, -0.409870, 0.0)),
    ("right_shoulder", 1, "spherical", (-0.02405, 0.24350, 0.18311)),
    ("right_elbow", 6, "revolute", (0.0, -0.274788, 0.0)),
    ("right_wrist", 7, "fixed", (0.0, -0.258947, 0.0)),
    ("left_hip", 0, "spherical", (0.0, 0.0, -0.084887)),
    ("left_knee", 9, "revolute", (0.0, -0.421546, 0.0)),
    ("left_ankle", 10, "spherical", (0.0, -0.409870, 0.0)),
    ("left_shoulder", 1, "spherical", (-0.02405, 0.24350, -0.18311)),
    ("left_elbow", 12, "revolute", (0.0, -0.274788, 0.0)),
    ("left_wrist", 13, "fixed", (0.0, -0.258947, 0.0)),
    # Points fixed to bodies (same file's BodyDefs), added as leaves for retargeting:
    # the head sphere's centre (neck body, AttachY 0.175, diameter 0.205), and the front
    # end of each foot box at mid-height (box centre (0.045, -0.0225, 0), size 0.177 x
    # 0.055 x 0.09, so the sole is 0.05 below the ankle).
    ("head", 2, "fixed", (0.0, 0.175, 0.0)),
    ("right_toe", 5, "fixed", (0.1335, -0.0225, 0.0)),
    ("left_toe", 11, "fixed", (0.1335, -0.0225, 0.0)),
)
DEEPMIMIC_NAMES: tuple[str, ...] = tuple(j[0] for j in _DM_JOINTS)
# SMPL joint -> humanoid3d joint. No counterpart (left out): spine1 (between root and chest)
# and the collars (the shoulders hang from the chest directly).
DEEPMIMIC_FRAME_SIZE = 44  # duration, root pos 3, root quat 4, then the joints' DOFs in ID order
DEEPMIMIC_SOLE_BELOW_ANKLE = 0.05  # metres


def read_deepmimic_json(source: str | bytes | os.PathLike, fps: float | None = None) -> SkeletonMotion:
    """A DeepMimic humanoid3d motion file ({"Loop": ..., "Frames": [[44 numbers], ...]}).

    Frame: duration (s, to the next frame; the last is 0), root position (3, metres),
    root quaternion (w, x, y, z), then in joint ID order chest, neck, right hip (quats),
    right knee (angle), right ankle, right shoulder (quats), right elbow (angle), left
    hip, left knee, left ankle, left shoulder, left elbow. `fps` defaults to 1 / duration.
    """
    text = _text(source, lambda s: s.lstrip().startswith("{"))
    try:
        frames = np.asarray(json.loads(text)["Frames"], dtype=np.float64)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"DeepMimic motion: not a JSON object with numeric 'Frames' ({exc})") from None
    if frames.ndim != 2 or frames.shape[1] != DEEPMIMIC_FRAME_SIZE or frames.shape[0] == 0:
        raise SourceError(f"DeepMimic motion: expected frames of {DEEPMIMIC_FRAME_SIZE} numbers, got shape {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise SourceError("DeepMimic motion: NaN or inf in the frames")
    if fps is None:
        durations = frames[:-1, 0] if frames.shape[0] > 1 else frames[:, 0]
        if np.any(durations <= 0) or np.ptp(durations) > 1e-6 * durations.max():
            raise SourceError("DeepMimic motion: frame durations are not one positive constant; pass fps")
        fps = 1.0 / float(durations.mean())
    T, J = frames.shape[0], len(_DM_JOINTS)
    local = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    col = 4
    for j, (name, _, kind, _) in enumerate(_DM_JOINTS):
        if kind in ("none", "spherical"):
            local[:, j] = rot.quat_to_matrix(frames[:, col:col + 4])
            col += 4
        elif kind == "revolute":
            local[:, j] = rot.axis_angle_to_matrix(frames[:, col:col + 1] * np.array([0.0, 0.0, 1.0]))
            col += 1
    assert col == DEEPMIMIC_FRAME_SIZE
    return SkeletonMotion(
        names=list(DEEPMIMIC_NAMES),
        parents=np.array([j[1] for j in _DM_JOINTS], dtype=np.int64),
        offsets=np.array([j[3] for j in _DM_JOINTS], dtype=np.float64),
        local_rotations=local,
        root_positions=frames[:, 1:4].copy(),
        fps=fps,
    )
