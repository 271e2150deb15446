"""Corpus building: captions, a user's BVH folder end to end, and the shared data's real sources."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from server.data import captions as cap
from server.data.bvh import motion_to_bvh, write_bvh
from server.data.corpus import Corpus
from server.data.corpus_build import build_corpus, cmu_takes, more_takes
from server.prepare_data import main as prepare_main
from shared import rotations as rot
from shared.motion import Motion

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_describe_turns_cmu_phrases_into_sentences():
    assert cap.describe("walk") == ["a person walks"]
    assert cap.describe("run/jog") == ["a person runs", "a person jogs"]
    assert cap.describe("slow walk") == ["a person walks slowly"]
    assert cap.describe("playground - forward jumps, turn around") == ["a person jumps forward on a playground, then turns around"]
    assert cap.describe("jumping jacks") == ["a person does jumping jacks"]
    assert cap.describe("Walk to Run") == ["a person walks, then runs"]
    assert cap.describe("jump up to grab") == ["a person jumps up to grab"]
    assert cap.describe("clean") == [] and cap.describe("Unknown") == []


def test_swap_left_right_keeps_case_and_words():
    assert cap.swap_left_right("The person raises the Left hand, turns right") == "The person raises the Right hand, turns left"
    assert cap.swap_left_right("leftward and rightwards; bright lefty") == "rightward and leftwards; bright lefty"


def test_paraphrase_changes_only_the_subject():
    out = cap.paraphrase("a person walks forward.")
    assert out[0] == "a person walks forward" and "someone walks forward" in out and len(out) == len(set(out))


def _write_user_library(folder: Path) -> Path:
    """Two SMPL-22 BVH files (our own export format) and a captions CSV, as a user would have them."""
    folder.mkdir(parents=True)
    T = 50
    t = np.linspace(0, 2 * np.pi, T)
    for name, side in (("raise_left.bvh", 16), ("walk.bvh", None)):
        aa = np.zeros((T, 22, 3))
        if side is not None:
            aa[:, side, 2] = 1.2 * np.sin(t / 2)  # left shoulder lifts the arm
        trans = np.stack([np.zeros(T), np.full(T, 0.95), np.linspace(0, 1.5 if side is None else 0, T)], 1)
        m = Motion(rot.axis_angle_to_quat(aa).astype(np.float32), trans.astype(np.float32), 30.0)
        write_bvh(motion_to_bvh(m), folder / name)
    captions = folder / "captions.csv"
    with open(captions, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "text"])
        w.writerows([["raise_left.bvh", "a person raises the left arm"], ["walk.bvh", "a person walks forward"],
                     ["walk.bvh", "someone strolls ahead"]])
    return captions


def test_user_bvh_folder_becomes_a_corpus(tmp_path):
    captions = _write_user_library(tmp_path / "lib")
    out = tmp_path / "corpus"
    assert prepare_main(["--bvh-dir", str(tmp_path / "lib"), "--bvh-captions", str(captions), "--out", str(out)]) == 0
    corpus = Corpus(out)
    ids = {c.id for c in corpus.clips}
    assert ids == {"user/raise_left", "user/raise_left~m", "user/walk", "user/walk~m"}
    by_id = {c.id: i for i, c in enumerate(corpus.clips)}
    mirrored = corpus.clips[by_id["user/raise_left~m"]]
    assert mirrored.mirrored and "a person raises the right arm" in [c.text for c in mirrored.captions]
    walk = corpus.motion(by_id["user/walk"])
    assert walk.fps == 20 and abs(walk.num_frames - 33) <= 1  # 50 frames at 30 fps -> 20 fps
    p = walk.positions()
    assert p[-1, 0, 2] - p[0, 0, 2] > 1.0  # still walks forward (+Z)
    report = json.loads((out / "report.json").read_text())
    assert report["quality_by_skeleton"]["smpl-22"]["bone_cos_min"] > 0.99


def test_missing_caption_csv_columns_are_named(tmp_path):
    (tmp_path / "lib").mkdir()
    bad = tmp_path / "lib" / "c.csv"
    bad.write_text("name,caption\nx.bvh,hi\n")
    assert prepare_main(["--bvh-dir", str(tmp_path / "lib"), "--bvh-captions", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_shared_data_takes_have_true_fps_captions_and_held_out_subjects():
    if not (SHARED / "cmu" / "manifest.csv").is_file():
        pytest.skip(f"team data not found at {SHARED}")
    cmu = list(cmu_takes(SHARED))
    assert len(cmu) == 114
    assert {t.split for t in cmu if t.subject == "02"} == {"test"}
    assert all(t.captions for t in cmu if t.id == "cmu/02_01")
    more = list(more_takes(SHARED, {t.id.split("/")[1] for t in cmu}))
    dups = [t for t in more if t.notes.get("duplicate_of")]
    assert len(dups) == 21  # the DeepMimic retargets of trials we hold as BVH


def test_build_on_a_few_real_takes(tmp_path):
    if not (SHARED / "cmu" / "manifest.csv").is_file():
        pytest.skip(f"team data not found at {SHARED}")
    result = build_corpus(tmp_path / "c", shared=SHARED, commercial_safe=True, limit=6, progress=False)
    corpus = Corpus(tmp_path / "c")
    assert len(corpus) >= 6 and all(c.commercial_ok for c in corpus.clips)
    assert result["quality"]["cgspeed-mb-31"]["bone_cos_min"] >= 0.97
    for i in range(len(corpus)):
        p = corpus.motion(i).positions()
        assert abs(np.percentile(p[:, [7, 8, 10, 11], 1].min(axis=1), 1)) < 0.02  # feet on the floor
