"""server/data/bvh.py: parsing, errors, writing, BVH kinematics, SMPL-22 export and import."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from server.data.bvh import (
    Bvh,
    BvhError,
    BvhJoint,
    bvh_to_motion,
    bvh_to_text,
    local_rotations,
    local_translations,
    motion_to_bvh,
    read_bvh,
    rest_joints_from_bvh,
    to_skeleton_motion,
    write_bvh,
)
from server.data.sources import iter_tar_texts
from shared.motion import Motion
from shared.skeleton import JOINT_NAMES, REST_JOINTS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Three joints with three different rotation orders, position channels on a non-root
# joint (listed after its rotations), an End Site, tabs and odd spacing.
SAMPLE = """HIERARCHY
ROOT Hips
{
\tOFFSET 0.0 1.0 0.0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
\tJOINT Chest
\t{
\t\tOFFSET 0 0.5 0
\t\tCHANNELS 6 Xrotation Yrotation Zrotation Xposition Yposition Zposition
\t\tJOINT Head
\t\t{
\t\t\tOFFSET 0   0.25\t0
\t\t\tCHANNELS 3 Yrotation Xrotation Zrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0 0.1 0
\t\t\t}
\t\t}
\t}
\tJOINT Leg
\t{
\t\tOFFSET 0.1 -0.5 0
\t\tCHANNELS 1 Xrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 -0.4 0
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.05
1 2 3 10 20 30 5 6 7 0.1 0.6 0.2 40 50 60 15
-1 -2 -3 0 0 0 0 0 0 0 0.5 0 0 0 0 0

"""


def _rx(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --- parsing ---------------------------------------------------------------------------

def test_parse_structure_channels_and_frames():
    bvh = read_bvh(SAMPLE)
    assert bvh.names == ["Hips", "Chest", "Head", "Leg"]
    assert bvh.parents.tolist() == [-1, 0, 1, 0]
    assert bvh.parents.dtype == np.int64
    assert bvh.joints[1].channels == ["Xrotation", "Yrotation", "Zrotation", "Xposition", "Yposition", "Zposition"]
    assert bvh.joints[3].channels == ["Xrotation"]
    np.testing.assert_allclose(bvh.joints[2].offset, [0, 0.25, 0])
    np.testing.assert_allclose(bvh.joints[2].end_site, [0, 0.1, 0])
    assert bvh.joints[0].end_site is None and bvh.joints[1].end_site is None
    assert bvh.frame_time == 0.05 and bvh.fps == pytest.approx(20.0)
    assert bvh.frames.shape == (2, 16) and bvh.num_channels == 16 and bvh.num_frames == 2
    assert bvh.channel_slices == [slice(0, 6), slice(6, 12), slice(12, 15), slice(15, 16)]
    np.testing.assert_allclose(bvh.joint_values("Head")[0], [40, 50, 60])


def test_crlf_cr_and_bom_parse_the_same():
    reference = read_bvh(SAMPLE)
    for text in ("\ufeff" + SAMPLE.replace("\n", "\r\n"), SAMPLE.replace("\n", "\r")):
        bvh = read_bvh(text)
        assert bvh.names == reference.names
        np.testing.assert_array_equal(bvh.frames, reference.frames)


def test_read_from_path_and_bytes(tmp_path):
    path = tmp_path / "sample.bvh"
    path.write_bytes(SAMPLE.replace("\n", "\r\n").encode())
    for source in (path, str(path), path.read_bytes()):
        np.testing.assert_array_equal(read_bvh(source).frames, read_bvh(SAMPLE).frames)


def test_braces_on_the_name_line_and_lowercase_channels():
    text = (
        "HIERARCHY\nROOT root {\n OFFSET 0 0 0\n CHANNELS 3 xposition yposition zposition\n"
        " JOINT a { OFFSET 1 0 0 CHANNELS 0\n End Site { OFFSET 1 0 0 } } }\n"
        "MOTION\nFrames:\t1\nFrame Time:\t0.5\n1 2 3\n"
    )
    bvh = read_bvh(text)
    assert bvh.names == ["root", "a"]
    assert bvh.joints[0].channels == ["Xposition", "Yposition", "Zposition"]
    assert bvh.joints[1].channels == []


def test_zero_frames():
    text = SAMPLE.split("MOTION")[0] + "MOTION\nFrames: 0\nFrame Time: 0.1\n"
    bvh = read_bvh(text)
    assert bvh.frames.shape == (0, 16)


# --- errors ------------------------------------------------------------------------------

def _error(text: str) -> BvhError:
    with pytest.raises(BvhError) as info:
        read_bvh(text)
    return info.value


def test_missing_motion():
    err = _error(SAMPLE.split("MOTION")[0])
    assert "missing MOTION" in str(err)


def test_missing_motion_keyword_before_frames():
    err = _error(SAMPLE.replace("MOTION\n", ""))
    assert "missing MOTION" in str(err) and err.line == 30


def test_wrong_number_of_values_in_a_row():
    err = _error(SAMPLE.replace("-1 -2 -3 0 0 0", "-1 -2 -3 0 0"))
    assert err.line == 34 and "15 values, expected 16" in str(err)


def test_not_a_number_in_frame_data():
    err = _error(SAMPLE.replace("-1 -2 -3", "-1 abc -3"))
    assert err.line == 34 and "'abc'" in str(err)


def test_frame_count_mismatch():
    err = _error(SAMPLE.replace("Frames: 2", "Frames: 3"))
    assert "Frames: 3" in str(err) and "2 frame lines" in str(err)


def test_unknown_channel():
    err = _error(SAMPLE.replace("CHANNELS 1 Xrotation", "CHANNELS 1 Xrot"))
    assert err.line == 23 and "unknown channel 'Xrot'" in str(err)


def test_channel_count_disagrees_with_names():
    err = _error(SAMPLE.replace("CHANNELS 3 Yrotation", "CHANNELS 4 Yrotation"))
    assert err.line == 13 and "CHANNELS says 4 but 3" in str(err)
    err = _error(SAMPLE.replace("CHANNELS 3 Yrotation", "CHANNELS 2 Yrotation"))
    assert err.line == 13 and "CHANNELS says 2 but 3" in str(err)


def test_unbalanced_braces_unclosed():
    lines = SAMPLE.split("\n")
    del lines[18]  # line 19, the '}' closing Chest
    err = _error("\n".join(lines))
    assert "unbalanced braces" in str(err) and "'Hips'" in str(err)


def test_unbalanced_braces_extra_close():
    err = _error(SAMPLE.replace("}\nMOTION", "}\n}\nMOTION"))
    assert err.line == 30 and "unbalanced braces" in str(err)


@pytest.mark.parametrize("value", ["0", "-0.1", "abc", "nan", ""])
def test_bad_frame_time(value):
    err = _error(SAMPLE.replace("Frame Time: 0.05", f"Frame Time: {value}"))
    assert err.line == 32 and "bad Frame Time" in str(err)


def test_missing_offset_and_missing_hierarchy():
    assert "has no OFFSET" in str(_error(SAMPLE.replace("\t\tOFFSET 0.1 -0.5 0\n", "")))
    assert "expected 'HIERARCHY'" in str(_error("ROOT x\n{\n}\nMOTION\n"))


def test_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "broken.bvh"
    path.write_text(SAMPLE.replace("Frame Time: 0.05", "Frame Time: x"))
    with pytest.raises(BvhError, match="broken.bvh: line 32") as info:
        read_bvh(path)
    assert info.value.line == 32


def test_bvh_rejects_joints_not_depth_first():
    joints = [
        BvhJoint("r", -1, np.zeros(3), []),
        BvhJoint("a", 0, np.zeros(3), []),
        BvhJoint("b", 0, np.zeros(3), []),
        BvhJoint("a_child", 1, np.zeros(3), []),
    ]
    with pytest.raises(ValueError, match="depth-first"):
        Bvh(joints, 0.1, np.zeros((1, 0)))


# --- writing -----------------------------------------------------------------------------

def test_text_round_trip():
    rng = np.random.default_rng(0)
    bvh = read_bvh(SAMPLE)
    bvh.frames = rng.uniform(-180, 180, size=(7, bvh.num_channels))
    again = read_bvh(bvh_to_text(bvh))
    assert again.names == bvh.names and again.parents.tolist() == bvh.parents.tolist()
    for a, b in zip(again.joints, bvh.joints):
        assert a.channels == b.channels
        np.testing.assert_allclose(a.offset, b.offset, atol=1e-6)
        assert (a.end_site is None) == (b.end_site is None)
    assert again.frame_time == bvh.frame_time
    np.testing.assert_allclose(again.frames, bvh.frames, atol=1e-6)


def test_write_file_round_trip(tmp_path):
    bvh = read_bvh(SAMPLE)
    write_bvh(bvh, tmp_path / "out.bvh")
    np.testing.assert_allclose(read_bvh(tmp_path / "out.bvh").frames, bvh.frames, atol=1e-6)


# --- kinematics --------------------------------------------------------------------------

def test_rotation_channel_orders_follow_bvh_semantics():
    R = local_rotations(read_bvh(SAMPLE))  # (T, J, 3, 3)
    np.testing.assert_allclose(R[0, 0], _rz(10) @ _ry(20) @ _rx(30), atol=1e-12)
    np.testing.assert_allclose(R[0, 1], _rx(5) @ _ry(6) @ _rz(7), atol=1e-12)
    np.testing.assert_allclose(R[0, 2], _ry(40) @ _rx(50) @ _rz(60), atol=1e-12)
    np.testing.assert_allclose(R[0, 3], _rx(15), atol=1e-12)
    scipy_zyx = Rotation.from_euler("ZYX", [10, 20, 30], degrees=True).as_matrix()
    np.testing.assert_allclose(R[0, 0], scipy_zyx, atol=1e-12)
    np.testing.assert_allclose(R[1], np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-12)


def test_two_channel_joint_composes_in_listed_order():
    text = (
        "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 2 Yrotation Zrotation\n}\n"
        "MOTION\nFrames: 1\nFrame Time: 1\n30 -70\n"
    )
    np.testing.assert_allclose(local_rotations(read_bvh(text))[0, 0], _ry(30) @ _rz(-70), atol=1e-12)


def test_position_channels_replace_the_offset():
    t = local_translations(read_bvh(SAMPLE))  # (T, J, 3)
    np.testing.assert_allclose(t[0, 0], [1, 2, 3])
    np.testing.assert_allclose(t[0, 1], [0.1, 0.6, 0.2])  # Chest: its channels, not its OFFSET
    np.testing.assert_allclose(t[:, 2], [[0, 0.25, 0]] * 2)  # Head: OFFSET
    np.testing.assert_allclose(t[1, 1], [0, 0.5, 0])


def test_two_joint_forward_kinematics_by_hand():
    # Root at (1, 2, 3) turned +90 degrees about Y; the child has an OFFSET (0, 0, 1), an
    # Xposition channel of 0.5 (so its translation is (0.5, 0, 1)) and Zrotation 90.
    text = (
        "HIERARCHY\nROOT root\n{\n  OFFSET 9 9 9\n"
        "  CHANNELS 4 Xposition Yposition Zposition Yrotation\n"
        "  JOINT child\n  {\n    OFFSET 0 0 1\n    CHANNELS 2 Xposition Zrotation\n"
        "    End Site\n    {\n      OFFSET 1 0 0\n    }\n  }\n}\n"
        "MOTION\nFrames: 1\nFrame Time: 0.1\n1 2 3 90 0.5 90\n"
    )
    motion = to_skeleton_motion(read_bvh(text), scale=2.0, include_end_sites=True)
    assert motion.names == ["root", "child", "child_end"]
    G, P = motion.global_transforms()
    # Ry(90) maps (0.5, 0, 1) to (1, 0, -0.5); the child's world rotation Ry(90) Rz(90) maps
    # the End Site's (1, 0, 0) to Ry(90) (0, 1, 0) = (0, 1, 0). All lengths x 2.
    np.testing.assert_allclose(P[0, 0], [2, 4, 6], atol=1e-12)
    np.testing.assert_allclose(P[0, 1], [2 + 2, 4, 6 - 1], atol=1e-12)
    np.testing.assert_allclose(P[0, 2], [4, 4 + 2, 5], atol=1e-12)
    np.testing.assert_allclose(G[0, 1], _ry(90) @ _rz(90), atol=1e-12)
    assert motion.fps == pytest.approx(10.0)
    assert motion.translations is not None  # the child's position channel differs from its OFFSET


def test_static_position_channels_equal_to_offsets_are_dropped():
    text = (
        "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Zposition\n"
        "JOINT c\n{\nOFFSET 1 2 3\nCHANNELS 3 Xposition Yposition Zposition\n}\n}\n"
        "MOTION\nFrames: 2\nFrame Time: 0.1\n0 0 0 1 2 3\n5 0 0 1 2 3\n"
    )
    motion = to_skeleton_motion(read_bvh(text))
    assert motion.translations is None
    np.testing.assert_allclose(motion.positions()[1, 1], [6, 2, 3])


# --- SMPL-22 export / import ---------------------------------------------------------------

def _random_motion(frames: int = 9, seed: int = 0) -> Motion:
    rng = np.random.default_rng(seed)
    quats = rng.normal(size=(frames, 22, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    return Motion(quats, rng.normal(size=(frames, 3)), fps=20.0)


@pytest.mark.parametrize("order", ["ZYX", "XYZ", "YXZ"])
def test_motion_bvh_motion_round_trip(order):
    motion = _random_motion()
    bvh = motion_to_bvh(motion, order=order)
    assert sorted(bvh.names) == sorted(JOINT_NAMES) and bvh.names[0] == "pelvis"
    assert bvh.joints[0].channels[:3] == ["Xposition", "Yposition", "Zposition"]
    assert all(len(j.channels) == 3 for j in bvh.joints[1:])
    leaves = {"left_foot", "right_foot", "head", "left_wrist", "right_wrist"}
    assert {j.name for j in bvh.joints if j.end_site is not None} == leaves
    back = bvh_to_motion(read_bvh(bvh_to_text(bvh, decimals=9)))
    a = motion.rotations.astype(np.float64)
    b = back.rotations.astype(np.float64)
    b = np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -b, b)
    np.testing.assert_allclose(b, a, atol=1e-5)
    np.testing.assert_allclose(back.translation, motion.translation, atol=1e-5)
    np.testing.assert_allclose(back.positions(), motion.positions(), atol=1e-5)
    assert back.fps == pytest.approx(motion.fps)


def test_bvh_positions_match_smpl_forward_kinematics():
    motion = _random_motion(seed=1)
    rest = REST_JOINTS * 1.1
    bvh = motion_to_bvh(motion, rest_joints=rest)
    skeleton = to_skeleton_motion(bvh)
    order = [bvh.names.index(n) for n in JOINT_NAMES]
    np.testing.assert_allclose(skeleton.positions()[:, order], motion.positions(rest), atol=1e-6)
    np.testing.assert_allclose(rest_joints_from_bvh(bvh), rest, atol=1e-12)


def test_default_six_decimals_keep_positions_within_1e5():
    motion = _random_motion(seed=2)
    back = bvh_to_motion(read_bvh(bvh_to_text(motion_to_bvh(motion))))
    np.testing.assert_allclose(back.positions(), motion.positions(), atol=1e-5)


def test_bvh_to_motion_rejects_other_hierarchies():
    with pytest.raises(BvhError, match="not the SMPL-22 hierarchy"):
        bvh_to_motion(read_bvh(SAMPLE))
    bvh = motion_to_bvh(_random_motion(frames=2))
    knee = bvh.index("left_knee")
    bvh.joints[knee].name, bvh.joints[knee + 1].name = "left_ankle", "left_knee"
    with pytest.raises(BvhError, match="has parent"):
        bvh_to_motion(bvh)


# --- a real file -------------------------------------------------------------------------

def test_real_cmu_cgspeed_file():
    archive = DATA / "cmu" / "cmu_bvh_subject_02.tar.xz"
    if not archive.exists():
        pytest.skip(f"team data not found at {archive}")
    name, text = next(iter_tar_texts(archive, "02_01.bvh"))
    bvh = read_bvh(text)
    with open(DATA / "cmu" / "manifest.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["trial"] == "02_01")
    assert len(bvh.joints) == int(row["joints"]) == 31
    assert bvh.num_channels == int(row["channels"]) == 96
    assert bvh.num_frames == int(row["kept_frames"])
    assert bvh.frame_time == pytest.approx(float(row["kept_frame_time"]))
    assert bvh.joints[1].channels == ["Zrotation", "Yrotation", "Xrotation"]
    again = read_bvh(bvh_to_text(bvh))
    np.testing.assert_allclose(again.frames, bvh.frames, atol=1e-9)
