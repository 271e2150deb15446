"""server/data/sources.py and server/data/skeleton_motion.py: FK, archive reading, and every source reader."""
from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from server.data.retarget import detect_family
from scipy.spatial.transform import Rotation

from server.data.sources import (
    BVH_FAMILIES,
    DEEPMIMIC_FRAME_SIZE,
    DEEPMIMIC_NAMES,
    LI2018_NAMES,
    SkeletonMotion,
    SourceError,
    drop_first_frame,
    iter_tar_texts,
    read_deepmimic_json,
    read_li2018_csv,
    read_source_bvh,
)
from shared.skeleton import JOINT_NAMES

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rot(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


# --- SkeletonMotion ------------------------------------------------------------------------

def _chain(frames: int = 3) -> SkeletonMotion:
    R = np.broadcast_to(np.eye(3), (frames, 3, 3, 3)).copy()
    R[:, 0] = _rot("y", 90)
    R[:, 1] = _rot("z", 90)
    return SkeletonMotion(
        names=["root", "mid", "tip"],
        parents=np.array([-1, 0, 1]),
        offsets=np.array([[5.0, 5.0, 5.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
        local_rotations=R,
        root_positions=np.arange(frames * 3, dtype=float).reshape(frames, 3),
        fps=10,
    )


def test_global_transforms_by_hand():
    motion = _chain()
    G, P = motion.global_transforms()
    np.testing.assert_allclose(P[1, 0], [3, 4, 5])  # the root's offset is not used
    np.testing.assert_allclose(P[1, 1], [3, 5, 5])  # Ry(90) leaves (0, 1, 0) alone
    # tip: Ry(90) Rz(90) (1, 0, 0) = Ry(90) (0, 1, 0) = (0, 1, 0)
    np.testing.assert_allclose(P[1, 2], [3, 6, 5], atol=1e-12)
    np.testing.assert_allclose(G[0, 2], _rot("y", 90) @ _rot("z", 90), atol=1e-12)
    np.testing.assert_allclose(motion.rest_positions(), [[0, 0, 0], [0, 1, 0], [1, 1, 0]])


def test_animated_translations_replace_offsets():
    motion = _chain()
    motion.translations = np.broadcast_to(motion.offsets, (3, 3, 3)).copy()
    motion.translations[:, 1] = [0.0, 2.0, 0.0]
    np.testing.assert_allclose(motion.positions()[0, 1:], [[0, 3, 2], [0, 4, 2]], atol=1e-12)


def test_subset_and_drop_first_frame():
    motion = _chain(frames=5)
    part = motion.subset(1, 3)
    assert part.num_frames == 2 and part.fps == motion.fps and part.names == motion.names
    np.testing.assert_array_equal(part.root_positions, motion.root_positions[1:3])
    part.root_positions[0] = 99.0
    assert motion.root_positions[1, 0] != 99.0  # a copy
    dropped = drop_first_frame(motion)
    assert dropped.num_frames == 4
    np.testing.assert_array_equal(dropped.root_positions, motion.root_positions[1:])
    with pytest.raises(ValueError, match="fewer than 2"):
        drop_first_frame(motion.subset(0, 1))


def test_skeleton_motion_validation():
    good = _chain()
    with pytest.raises(ValueError, match="parent must come before"):
        SkeletonMotion(good.names, np.array([-1, 2, 0]), good.offsets, good.local_rotations,
                       good.root_positions, 10)
    with pytest.raises(ValueError, match="root_positions"):
        SkeletonMotion(good.names, good.parents, good.offsets, good.local_rotations,
                       good.root_positions[:2], 10)
    with pytest.raises(ValueError, match="fps"):
        SkeletonMotion(good.names, good.parents, good.offsets, good.local_rotations,
                       good.root_positions, 0)
    with pytest.raises(KeyError, match="'nope'"):
        good.index("nope")


def test_retarget_joint_maps_name_real_joints():  # the maps themselves live in server/data/retarget.py
    from server.data.retarget import JOINT_MAPS, _required_names
    assert set(_required_names(JOINT_MAPS["li2018-38"])) <= set(LI2018_NAMES)
    assert set(_required_names(JOINT_MAPS["deepmimic-humanoid3d"])) <= set(DEEPMIMIC_NAMES)
    for family in BVH_FAMILIES:
        assert family in JOINT_MAPS, family


# --- archives ---------------------------------------------------------------------------------

def test_iter_tar_texts_reads_members_without_extracting(tmp_path):
    archive = tmp_path / "set.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, text in (("d/a.bvh", "HIERARCHY a"), ("d/b.txt", "b"), ("d/c.bvh", "c\u00e9")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(iter_tar_texts(archive, ".bvh")) == [("d/a.bvh", "HIERARCHY a"), ("d/c.bvh", "c\u00e9")]
    assert [n for n, _ in iter_tar_texts(archive, (".txt", "c.bvh"))] == ["d/b.txt", "d/c.bvh"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.tar.xz"]


# --- Li et al. 2018 ------------------------------------------------------------------------------

def _li_skeleton(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, len(LI2018_NAMES))]
    return {"parent": parents, "offset": rng.normal(size=(len(LI2018_NAMES), 3)).tolist()}


def test_li2018_matches_the_row_vector_forward_kinematics():
    skeleton = _li_skeleton()
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(4, 117))
    text = "\n".join(",".join(repr(v) for v in row) for row in rows)
    motion = read_li2018_csv(text, skeleton)
    # The source code's convention, written out: row vectors, G_i = E_i G_parent,
    # p_i = offset_i G_parent + p_parent, root p = offset_0 + translation.
    scale = 0.056444
    offsets = np.array(skeleton["offset"])
    for t, row in enumerate(rows):
        E = Rotation.from_rotvec(row[3:].reshape(-1, 3)).as_matrix()
        G = [E[0]]
        p = [offsets[0] + row[:3]]
        for i in range(1, len(LI2018_NAMES)):
            parent = skeleton["parent"][i]
            p.append(offsets[i] @ G[parent] + p[parent])
            G.append(E[i] @ G[parent])
        np.testing.assert_allclose(motion.positions()[t], np.array(p) * scale, atol=1e-9)
    assert motion.fps == 40.0 and motion.names == list(LI2018_NAMES)


def test_li2018_rejects_wrong_rows():
    with pytest.raises(SourceError, match="117"):
        read_li2018_csv("1,2,3\n4,5,6\n", _li_skeleton())


# --- DeepMimic ---------------------------------------------------------------------------------

def _deepmimic_frame(**changes) -> list[float]:
    frame = [1 / 30, 0.0, 0.9, 0.0, 1.0, 0.0, 0.0, 0.0]  # duration, root position, root quat
    for kind in ("q", "q", "q", "a", "q", "q", "a", "q", "a", "q", "q", "a"):
        frame += [1.0, 0.0, 0.0, 0.0] if kind == "q" else [0.0]
    for index, values in changes.items():
        start = int(index[1:])
        frame[start:start + len(values)] = values
    return frame


def test_deepmimic_layout_axes_and_units():
    assert len(_deepmimic_frame()) == DEEPMIMIC_FRAME_SIZE
    half = np.sqrt(0.5)
    frames = [
        _deepmimic_frame(),
        _deepmimic_frame(c4=[half, 0.0, half, 0.0]),  # root: +90 degrees about y, (w, x, y, z)
        _deepmimic_frame(c20=[-np.pi / 2]),  # right knee bent 90 degrees
        _deepmimic_frame(c34=[-np.pi / 2]),  # left knee
    ]
    frames[-1][0] = 0.0  # DeepMimic's last frame has duration 0
    motion = read_deepmimic_json(json.dumps({"Loop": "none", "Frames": frames}))
    assert motion.fps == pytest.approx(30.0) and motion.names == list(DEEPMIMIC_NAMES)
    P = motion.positions()
    i = motion.index
    np.testing.assert_allclose(P[0, i("root")], [0, 0.9, 0])
    np.testing.assert_allclose(P[0, i("right_hip")], [0, 0.9, 0.084887])  # right is +z
    np.testing.assert_allclose(P[0, i("left_ankle")], [0, 0.9 - 0.421546 - 0.409870, -0.084887])
    np.testing.assert_allclose(P[0, i("neck")], [0, 0.9 + 0.236151 + 0.223894, 0])
    # root quaternion is (w, x, y, z): Ry(90) takes the right hip (0, 0, z) to (z, 0, 0)
    np.testing.assert_allclose(P[1, i("right_hip")], [0.084887, 0.9, 0], atol=1e-12)
    # knees turn about their z axis; a negative angle sends the shin back (-x, the character faces +x)
    knee = P[2, i("right_knee")]
    np.testing.assert_allclose(P[2, i("right_ankle")], knee + [-0.409870, 0, 0], atol=1e-12)
    np.testing.assert_allclose(P[3, i("left_ankle")], P[3, i("left_knee")] + [-0.409870, 0, 0], atol=1e-12)
    np.testing.assert_allclose(P[0, i("right_toe")] - P[0, i("right_ankle")], [0.1335, -0.0225, 0])


def test_deepmimic_rejects_bad_files():
    with pytest.raises(SourceError, match="44"):
        read_deepmimic_json('{"Frames": [[1, 2, 3]]}')
    frames = [_deepmimic_frame(), _deepmimic_frame(), _deepmimic_frame()]
    frames[1][0] = 0.05
    with pytest.raises(SourceError, match="durations"):
        read_deepmimic_json(json.dumps({"Frames": frames}))
    assert read_deepmimic_json(json.dumps({"Frames": frames}), fps=25).fps == 25


# --- real files, one per source ----------------------------------------------------------------

def _member(archive: Path, suffix: str) -> str:
    if not archive.exists():
        pytest.skip(f"team data not found at {archive}")
    return next(text for _, text in iter_tar_texts(archive, suffix))


def _cmu_fps(trial: str) -> float:
    with open(DATA / "cmu" / "manifest.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["trial"] == trial)
    return 1.0 / float(row["true_kept_frame_time"])


def _check_plausible(motion: SkeletonMotion, pelvis: str, head: str, feet: list[str],
                     speed: tuple[float, float] | None) -> None:
    """Upright, human-sized, feet on one floor, and (for walks) walking speed."""
    P = motion.positions()
    feet_y = P[:, [motion.index(f) for f in feet], 1]  # (T, 4)
    floor = feet_y.min(axis=1)  # (T,)
    pelvis_y = P[:, motion.index(pelvis), 1]
    head_y = P[:, motion.index(head), 1]
    assert np.all(head_y > pelvis_y) and np.all(pelvis_y > feet_y.max(axis=1))
    assert 0.75 < np.median(pelvis_y - floor) < 1.05
    assert 1.2 < np.median(head_y - floor) < 1.6
    assert np.percentile(floor, 95) - np.percentile(floor, 5) < 0.1
    assert -0.05 < np.percentile(floor, 5) < 0.15  # the ground is y = 0, up to the foot joints' height
    if speed is not None:
        root = P[:, motion.index(pelvis)]
        metres_per_second = np.linalg.norm(root[-1, [0, 2]] - root[0, [0, 2]]) / ((motion.num_frames - 1) / motion.fps)
        assert speed[0] < metres_per_second < speed[1]


def test_real_cmu_cgspeed_walk():
    text = _member(DATA / "cmu" / "cmu_bvh_subject_02.tar.xz", "02_01.bvh")
    motion = read_source_bvh(text, "cgspeed-mb-31", fps=_cmu_fps("02_01"))
    assert BVH_FAMILIES["cgspeed-mb-31"].first_frame_is_added
    walk = drop_first_frame(motion)
    assert walk.fps == pytest.approx(40.0)
    _check_plausible(walk, "Hips", "Head", ["LeftFoot", "RightFoot", "LeftToeBase", "RightToeBase"], (0.9, 1.6))
    assert detect_family(motion.names).family == "cgspeed-mb-31"


def test_real_cmu_daz_walk():
    text = _member(DATA / "cmu" / "cmu_bvh_subject_12.tar.xz", "12_01.bvh")
    motion = read_source_bvh(text, "daz-friendly-43", fps=_cmu_fps("12_01"))
    assert len(motion.names) == 43 + 14  # 43 joints and 14 End Sites (eyes, fingers, feet)
    P = motion.positions()
    assert np.abs(P[1] - P[1, :1] - (P[0] - P[0, :1])).max() > 0.3  # frame 0 is an added rest pose
    walk = drop_first_frame(motion)
    _check_plausible(walk, "hip", "head", ["lFoot", "rFoot", "lFoot_end", "rFoot_end"], (0.6, 1.4))
    assert detect_family(motion.names).family == "daz-friendly-43"


def test_real_cmu_asf_names_jump():
    text = _member(DATA / "cmu" / "cmu_bvh_subject_16.tar.xz", "16_01.bvh")
    motion = read_source_bvh(text, "asf-names-31", fps=_cmu_fps("16_01"))
    P = motion.positions()
    assert np.abs(P[1] - P[1, :1] - (P[0] - P[0, :1])).max() < 0.02  # frame 0 is a real frame
    _check_plausible(motion.subset(0, 20), "hip", "head", ["lfoot", "rfoot", "ltoes", "rtoes"], None)
    assert detect_family(motion.names).family == "asf-names-31"


def test_real_bandai_walk():
    text = _member(DATA / "extra" / "bandai_namco_1.tar.xz", "dataset-1_walk_normal_001.bvh")
    motion = read_source_bvh(text, "bandai-namco-22")
    assert motion.fps == 30.0 and motion.names[:2] == ["joint_Root", "Hips"]
    assert motion.translations is not None  # Hips' position channels carry the root motion
    _check_plausible(motion, "Hips", "Head", ["Foot_L", "Foot_R", "Toes_L", "Toes_R"], (0.9, 1.6))
    assert detect_family(motion.names).family == "bandai-namco-22"


def test_real_li2018_walk():
    text = _member(DATA / "more" / "cmu_li2018_expmap.tar.xz", "test/walking/walking_1.txt")
    motion = read_li2018_csv(text, DATA / "more" / "cmu_li2018_skeleton.json")
    walk = drop_first_frame(motion)  # row 0 is the converter's T-pose
    _check_plausible(walk, "root", "head", ["lfoot", "rfoot", "ltoes", "rtoes"], (0.9, 1.6))


def test_real_deepmimic_walk():
    text = _member(DATA / "more" / "cmu_jump_deepmimic.tar.xz", "02/02_01.txt")
    motion = read_deepmimic_json(text)
    assert motion.fps == pytest.approx(30.0)
    _check_plausible(motion, "root", "head", ["left_ankle", "right_ankle", "left_toe", "right_toe"], (0.8, 1.5))
    root = motion.positions()[:, 0]
    assert root[-1, 0] - root[0, 0] > 0.5 * np.linalg.norm(root[-1, [0, 2]] - root[0, [0, 2]])  # walks along +x
