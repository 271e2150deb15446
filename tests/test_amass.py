"""server.data.amass: AMASS + HumanML3D -> corpus clips, on tiny files written in exactly their formats."""
from __future__ import annotations

import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from server.data.amass import HumanML3DError, load_humanml3d, parse_captions
from server.data.corpus import Corpus, write_corpus
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import JOINT_INDEX, REST_JOINTS

J0 = REST_JOINTS[0]
MARK = 0.001  # AMASS trans[:, 1] = MARK * frame index: which AMASS frame a corpus frame came from


def amass_sequence(frames: int, fps: float, seed: int) -> dict:
    """An AMASS SMPL-H .npz's arrays: an upright (Z-up) person walking along +x, knees bending."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    poses = np.zeros((frames, 156))
    poses[:, 0] = np.pi / 2  # AMASS's root: Rx(+90 deg) stands SMPL's Y-up body up in Z-up
    poses[:, 3 * JOINT_INDEX["left_knee"]] = 0.4 * np.maximum(0, np.sin(2 * np.pi * t))
    poses[:, 3 * JOINT_INDEX["right_knee"]] = 0.4 * np.maximum(0, -np.sin(2 * np.pi * t))
    poses[:, 66:] = rng.normal(scale=0.1, size=(frames, 90))  # hands: ignored
    trans = np.stack([1.2 * t, MARK * np.arange(frames), np.full(frames, 0.9)], -1)
    return {"trans": trans, "gender": np.array("male"), "mocap_framerate": np.array(float(fps)),
            "betas": rng.normal(size=16), "dmpls": np.zeros((frames, 8)), "poses": poses}


def source_frame(motion: Motion) -> np.ndarray:
    """The AMASS frame index each corpus frame was taken from (via the trans marker)."""
    # Y-up translation = C (trans + J0), C: (x, y, z) -> (x, z, -y), so z = -(trans_y + J0_y)
    return (-motion.translation[:, 2].astype(np.float64) - J0[1]) / MARK


CAPTIONS = {
    "000000": "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"
              "someone strolls ahead#someone/PRON stroll/VERB ahead/ADV#nan#nan\n",
    "000001": "a man walks slowly.#a/DET man/NOUN walk/VERB slowly/ADV#0.0#0.0\n",
    "000002": "a person walks and then kicks with the left leg.#a/DET person/NOUN walk/VERB and/CCONJ "
              "then/ADV kick/VERB with/ADP the/DET left/ADJ leg/NOUN#0.0#0.0\n"
              "the person kicks with the left leg.#the/DET person/NOUN kick/VERB with/ADP the/DET "
              "left/ADJ leg/NOUN#1.0#3.5\n"
              "a quick step.#a/DET quick/ADJ step/NOUN#0.5#1.0\n",
    "000003": "a person jumps.#a/DET person/NOUN jump/VERB#0.0#0.0\n",
    "000004": "a person sits down.#a/DET person/NOUN sit/VERB down/ADP#0.0#0.0\n",
    "000005": "a person turns around.#a/DET person/NOUN turn/VERB around/ADV#2.0#4.5\n",
    # 000006 has no caption file
}
INDEX = """source_path,start_frame,end_frame,new_name
./pose_data/CMU/02/02_01_poses.npy,10,90,000000.npy
./pose_data/TotalCapture/s1/walking1_poses.npy,5,205,000001.npy
./pose_data/CMU/02/02_01_poses.npy,0,100,000002.npy
./pose_data/CMU/02/02_02_poses.npy,0,50,000003.npy
./pose_data/humanact12/humanact12/P01G01R01F0001T0050A0101.npy,0,-1,000004.npy
./pose_data/TotalCapture/s1/walking1_poses.npy,0,100,000005.npy
./pose_data/CMU/02/02_01_poses.npy,0,40,000006.npy
"""
SPLITS = {"train": ["000000", "M000000", "000002", "M000002", "000003", "M000003", "000005", "M000005",
                    "000006", "M000006"],
          "val": ["000001", "M000001"], "test": ["000004", "M000004"]}


def write_trees(root: Path, texts_zip: bool = False) -> tuple[Path, Path]:
    amass = root / "amass"
    for rel, frames, fps in (("CMU/02/02_01_poses.npz", 600, 120), ("TotalCapture/s1/walking1_poses.npz", 480, 60)):
        (amass / rel).parent.mkdir(parents=True, exist_ok=True)
        np.savez(amass / rel, **amass_sequence(frames, fps, seed=frames))
    hml = root / "humanml3d"
    hml.mkdir()
    (hml / "index.csv").write_text(INDEX)
    for split, ids in SPLITS.items():
        (hml / f"{split}.txt").write_text("\n".join(ids) + "\n")
    if texts_zip:
        with zipfile.ZipFile(hml / "texts.zip", "w") as z:
            for sid, text in CAPTIONS.items():
                z.writestr(f"texts/{sid}.txt", text)
    else:
        (hml / "texts").mkdir()
        for sid, text in CAPTIONS.items():
            (hml / "texts" / f"{sid}.txt").write_text(text)
    return amass, hml


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("amass_hml")
    amass, hml = write_trees(root)
    clips, motions, dropped = load_humanml3d(amass, hml, progress=False)
    return clips, motions, dropped, {c.id: (c, m) for c, m in zip(clips, motions)}


def test_clip_ids_frames_and_fps(loaded):
    clips, motions, _, by_id = loaded
    assert [c.id for c in clips] == ["amass/000000", "amass/000001", "amass/000002", "amass/000002#20-70",
                                     "amass/000005#40-90"]
    frames = {cid: c.frames for cid, (c, _) in by_id.items()}
    # 000000: HumanML3D frames [10, 90) of a 120 fps take = 80 frames at 20 fps
    # 000001: 60 fps TotalCapture, 480 frames -> 160 at 20 fps, minus the 1 s (20 frames) HumanML3D
    #         trims, [5:205] clipped at the end -> 135
    assert frames == {"amass/000000": 80, "amass/000001": 135, "amass/000002": 100,
                      "amass/000002#20-70": 50, "amass/000005#40-90": 50}
    for c, m in zip(clips, motions):
        assert m.fps == 20.0 and m.num_frames == c.frames


def test_windows_pick_humanml3d_frames(loaded):
    *_, by_id = loaded
    expect = {  # AMASS frame of corpus frame k: (trim + start + k) * stride
        "amass/000000": lambda k: (10 + k) * 6,
        "amass/000001": lambda k: (20 + 5 + k) * 3,
        "amass/000002": lambda k: k * 6,
        "amass/000002#20-70": lambda k: (20 + k) * 6,
        "amass/000005#40-90": lambda k: (20 + 40 + k) * 3,
    }
    for cid, f in expect.items():
        clip, motion = by_id[cid]
        k = np.arange(motion.num_frames)
        np.testing.assert_allclose(source_frame(motion), f(k), atol=0.02, err_msg=cid)
    assert by_id["amass/000000"][0].start_s == pytest.approx(60 / 120)
    assert by_id["amass/000001"][0].start_s == pytest.approx(75 / 60)
    assert by_id["amass/000002#20-70"][0].start_s == pytest.approx(1.0)
    whole = by_id["amass/000002"][1]
    assert by_id["amass/000002#20-70"][1].allclose(whole.slice(20, 70))


def test_captions_and_metadata(loaded):
    *_, by_id = loaded
    caps = {cid: [(c.text, c.source) for c in clip.captions] for cid, (clip, _) in by_id.items()}
    assert caps["amass/000000"] == [("a person walks forward.", "humanml3d"), ("someone strolls ahead", "humanml3d")]
    assert caps["amass/000002"] == [("a person walks and then kicks with the left leg.", "humanml3d")]
    assert caps["amass/000002#20-70"] == [("the person kicks with the left leg.", "humanml3d")]
    assert caps["amass/000005#40-90"] == [("a person turns around.", "humanml3d")]
    clip = by_id["amass/000000"][0]
    assert (clip.source, clip.subject, clip.take, clip.licence, clip.commercial_ok, clip.mirrored) == (
        "amass", "CMU/02", "CMU/02/02_01_poses", "AMASS (non-commercial research)", False, False)
    assert by_id["amass/000001"][0].subject == "TotalCapture/s1"


def test_splits_skip_mirrored_ids(loaded):
    clips, *_ = loaded
    split = {c.id: c.split for c in clips}
    assert split == {"amass/000000": "train", "amass/000001": "val", "amass/000002": "train",
                     "amass/000002#20-70": "train", "amass/000005#40-90": "train"}
    assert not any(c.id.startswith("amass/M") or c.mirrored for c in clips)


def test_dropped_reasons_are_named(loaded):
    _, _, dropped, _ = loaded
    text = "\n".join(dropped)

    def reason(cid):
        hits = [d for d in dropped if d.startswith(cid + ":")]
        assert hits, f"no dropped reason for {cid} in:\n{text}"
        return " ".join(hits)

    assert "AMASS file not found" in reason("amass/000003") and "CMU/02/02_02_poses.npz" in reason("amass/000003")
    assert "HumanAct12" in reason("amass/000004")
    assert "texts/000006.txt" in reason("amass/000006")
    assert "a quick step." in reason("amass/000002") and "10 frames" in reason("amass/000002")
    assert "whole segment not kept" in reason("amass/000005")
    assert not any(d.startswith(("amass/000000:", "amass/000001:")) for d in dropped)


def test_upright_amass_becomes_upright_y_up(loaded):
    *_, by_id = loaded
    motion = by_id["amass/000000"][1]
    root = motion.rotations[:, 0].astype(np.float64)
    np.testing.assert_allclose(np.abs(root[:, 0]), 1.0, atol=1e-6)  # AMASS Rx(+90) root -> identity in Y-up
    p = motion.positions()
    pelvis, head = p[:, JOINT_INDEX["pelvis"]], p[:, JOINT_INDEX["head"]]
    np.testing.assert_allclose(pelvis[:, 1], 0.9 + J0[2], atol=1e-6)  # height = AMASS trans z + J0's z
    assert np.all(head[:, 1] - pelvis[:, 1] > 0.5)
    for ankle in ("left_ankle", "right_ankle"):
        assert np.all((p[:, JOINT_INDEX[ankle], 1] > 0.0) & (p[:, JOINT_INDEX[ankle], 1] < 0.15))
    assert np.all(p[:, JOINT_INDEX["left_hip"], 0] > p[:, JOINT_INDEX["right_hip"], 0])  # left on +x
    assert np.all(np.diff(pelvis[:, 0]) > 0)  # AMASS +x walk stays +x
    # the knee bend survives (first 66 columns are the body; 66: are hands and ignored)
    knee = rot.quat_to_axis_angle(motion.rotations[:, JOINT_INDEX["left_knee"]])[:, 0]
    assert knee.max() > 0.3


def test_corpus_round_trip(loaded, tmp_path):
    clips, motions, dropped, _ = loaded
    write_corpus(tmp_path / "corpus", clips, motions, report={"dropped": dropped})
    corpus = Corpus(tmp_path / "corpus")
    assert len(corpus) == len(clips)
    assert [asdict(c) for c in corpus.clips] == [asdict(c) for c in clips]
    for i, m in enumerate(motions):
        assert corpus.motion(i).allclose(m, atol=1e-6)
    assert [corpus.clips[i].id for i in corpus.indices("val")] == ["amass/000001"]
    assert corpus.licences == ["AMASS (non-commercial research)"]


def test_texts_zip_gives_the_same_clips(tmp_path, loaded):
    amass, hml = write_trees(tmp_path, texts_zip=True)
    clips, motions, _ = load_humanml3d(amass, hml, progress=False)
    assert [asdict(c) for c in clips] == [asdict(c) for c in loaded[0]]


def test_rate_not_a_multiple_of_20_keeps_the_window_at_real_20fps(tmp_path):
    # SSM's 59.94 fps: HumanML3D's stride int(59.94 / 20) = 2, so its [0:40) window is AMASS
    # frames 0, 2, ..., 78 (1.30 s). We keep that stretch and sample it at a real 20 fps.
    amass, hml = tmp_path / "amass", tmp_path / "hml"
    (amass / "SSM/20160330_03333").mkdir(parents=True)
    np.savez(amass / "SSM/20160330_03333/chicken_wings_poses.npz", **amass_sequence(300, 59.94, seed=1))
    (hml / "texts").mkdir(parents=True)
    (hml / "index.csv").write_text("source_path,start_frame,end_frame,new_name\n"
                                   "./pose_data/SSM_synced/20160330_03333/chicken_wings_poses.npy,0,40,000009.npy\n")
    (hml / "texts/000009.txt").write_text("a person flaps the arms.#a/DET person/NOUN#0.0#0.0\n")
    (hml / "train.txt").write_text("000009\nM000009\n")
    clips, motions, dropped = load_humanml3d(amass, hml, progress=False)  # current AMASS name "SSM" found
    assert dropped == [] and [c.id for c in clips] == ["amass/000009"]
    assert motions[0].num_frames == int(78 / 59.94 * 20) + 1 == 27
    np.testing.assert_allclose(source_frame(motions[0]), np.arange(27) * 59.94 / 20, atol=0.02)


def test_missing_folders_and_files_raise(tmp_path):
    amass, hml = write_trees(tmp_path)
    with pytest.raises(FileNotFoundError, match="AMASS folder"):
        load_humanml3d(tmp_path / "nope", hml, progress=False)
    (hml / "index.csv").unlink()
    with pytest.raises(HumanML3DError, match="index.csv"):
        load_humanml3d(amass, hml, progress=False)


def test_parse_captions_format():
    caps, bad = parse_captions("a b.#a/DET b/NOUN#0.0#0.0\n\nc d#c/X d/Y#nan#nan\nbroken line\ne#e/X#1.5#4\n")
    assert caps == [("a b.", 0.0, 0.0), ("c d", 0.0, 0.0), ("e", 1.5, 4.0)]
    assert len(bad) == 1 and "broken line" in bad[0]


def test_unusable_amass_files_are_dropped_with_reasons(tmp_path):
    amass, hml = write_trees(tmp_path)
    np.savez(amass / "CMU/02/02_02_poses.npz", betas=np.zeros(16), gender=np.array("male"))  # like shape.npz
    (amass / "TotalCapture/s1/walking1_poses.npz").write_bytes(b"not an npz")
    clips, _, dropped = load_humanml3d(amass, hml, progress=False)
    assert {c.id for c in clips} == {"amass/000000", "amass/000002", "amass/000002#20-70"}
    reasons = {d.split(":", 1)[0]: d for d in dropped}
    assert "has no poses, trans, mocap_framerate" in reasons["amass/000003"]
    assert "unreadable AMASS file walking1_poses.npz" in reasons["amass/000001"]
    assert "unreadable AMASS file" in reasons["amass/000005"]
