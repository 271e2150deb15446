"""The taste experiment end to end at tiny scale (a real server, real picks, every method), and its statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from preference_support import text_cache_file, train_tiny_text_motion
from suite_support import write_tiny_suite
from server import sopo_experiment
from server.align import taste
from server.align.artist import ArtistRule, arm_energy, choose, score_candidates
from server.service.picks import export_preferences
from shared.motion import forward_kinematics

torch.set_num_threads(1)


def test_arm_energy_counts_arm_movement_not_jitter_or_travel():
    T, fps = 60, 20.0
    still = np.zeros((T, 22, 3))
    still[:, :, 1] = 1.0
    travel = still.copy()
    travel[:, :, 2] += np.arange(T)[:, None] * 0.1  # the whole body moves 2 m/s: arms still relative to the pelvis
    swing = still.copy()
    swing[:, 20, 1] += 0.3 * np.sin(2 * np.pi * np.arange(T) / fps)  # left wrist up and down at 1 Hz
    jitter = still.copy()
    jitter[:, 20, 1] += 0.01 * (-1) ** np.arange(T)  # 1 cm frame-to-frame flicker
    assert arm_energy(still, fps) == 0.0 and arm_energy(travel, fps) < 1e-9
    raw_jitter = 0.02 * fps / 2  # what an unsmoothed mean speed of the two wrists would say (0.2 m/s)
    assert arm_energy(jitter, fps) == pytest.approx(raw_jitter / 5)  # a 5-frame average cuts flicker five times
    assert 0.4 < arm_energy(swing, fps) < 0.6  # 1.2 m/s mean wrist speed / 2 wrists, a little less when smoothed


def test_the_artist_picks_the_most_energetic_candidate_or_none():
    fps, T = 20.0, 40
    rot = np.zeros((3, T, 22, 4))
    rot[..., 0] = 1.0
    trans = np.zeros((3, T, 3))
    angle = np.sin(2 * np.pi * np.arange(T) / fps)
    for k, amp in enumerate([0.2, 0.8, 0.4]):  # swing the left shoulder about z: the wrist moves
        rot[:, :, 16] = rot[:, :, 16]
        rot[k, :, 16] = np.stack([np.cos(amp * angle / 2), 0 * angle, 0 * angle, np.sin(amp * angle / 2)], -1)
    scores, parts = score_candidates(None, "a person waves", rot, trans, fps, ArtistRule(taste="arm-energy",
                                                                                        none_below=0.0))
    assert np.argmax(scores) == 1 and parts["arm_energy"] == scores.tolist()
    assert choose(scores, ArtistRule(taste="arm-energy", none_below=0.0)) == 1
    assert choose(scores, ArtistRule(taste="arm-energy", none_below=float(scores.max()) + 1)) is None
    pos = forward_kinematics(rot[1], trans[1])
    assert scores[1] == pytest.approx(arm_energy(pos, fps))
    with pytest.raises(ValueError, match="taste must be one of"):
        ArtistRule(taste="vibes")


def test_win_rate_and_paired_difference():
    base = np.zeros((4, 3))
    tuned = np.array([[1, 1, 1], [1, 1, -1], [0, 0, 0], [-1, -1, -1]], float)
    rate, low, high = taste.win_rate(tuned, base)
    assert rate == pytest.approx((3 + 2 + 1.5 + 0) / 12)  # ties count half
    assert low <= rate <= high
    assert taste.win_rate(base + 1, base)[:3] == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="paired scores"):
        taste.win_rate(tuned, base[:2])
    m, lo, hi = taste.paired_difference(np.array([0.5, 0.5, 1.0]), np.array([0.25, 0.5, 0.5]))
    assert m == pytest.approx(0.25) and lo <= m <= hi
    assert np.isnan(taste.win_rate(np.zeros((0, 0)), np.zeros((0, 0)))[0])


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    return write_tiny_suite(tmp_path_factory.mktemp("suite") / "suite.json")


@pytest.mark.slow
def test_taste_experiment_runs_the_whole_path(tmp_path, tiny_checkpoint, tiny_corpus, tiny_cache_dir, tiny_suite,
                                              monkeypatch, capsys):
    monkeypatch.setenv("SOPO_CACHE_DIR", str(tiny_cache_dir))  # corpus features and texts: never the repo's cache
    reward = train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path / "reward", "reward")
    evaluator = train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path / "evaluator", "evaluator")
    monkeypatch.chdir(tmp_path)  # a relative --out (the server runs in its own folder)
    out = tmp_path / "taste"
    argv = ["taste", "--base", str(tiny_checkpoint), "--corpus", str(tiny_corpus), "--reward", str(reward),
            "--evaluator", str(evaluator), "--text-cache", str(text_cache_file(tiny_cache_dir)),
            "--suite-file", str(tiny_suite), "--out", "taste", "--picks", "4", "--pick-counts", "2",
            "--count-methods", "sft", "--n", "2", "--none-below", "0.02", "--test-captions", "3",
            "--eval-repeats", "1", "--eval-max-clips", "8", "--steps", "2", "--batch-size", "4", "--k", "2",
            "--tau-quantile", "0.5", "--device", "cpu"]
    assert sopo_experiment.main(argv) == 0
    printed = capsys.readouterr().out
    picks = export_preferences(out / "server" / "picks.db")  # made through the real server
    assert len(picks) == 4 and {p.model_id for p in picks} == {"tiny-mld"}
    summary = json.loads((out / "picks.json").read_text())
    assert summary["chosen"] + summary["none_good"] == 4 and summary["rule"]["taste"] == "arm-energy"
    prompts = json.loads((out / "prompts.json").read_text())
    train = {c for c, _ in prompts["train"]}
    assert len(train) == 4 and not train & {c for c, _ in prompts["test"]}

    names = sorted(f.stem for f in (out / "results").glob("*.json"))
    assert names == ["base", "offline-dpo-p4-s0", "online-dpo-p4-s0", "sft-p2-s0", "sft-p4-s0", "sopo-p4-s0"]
    for name in names[1:]:
        row = json.loads((out / "results" / f"{name}.json").read_text())
        for key in ("win_suite", "suite_diff", "suite_diff_heldout", "suite_overall"):
            assert len(row[key]) == 3 and all(np.isfinite(row[key])), (name, key)
        assert 0.0 <= row["win_suite"][0] <= 1.0 and np.isfinite(row["evaluator"]["fid"])
        assert row["train_seconds"] > 0 and "skate_ratio" in row["physics"]
        assert row["summary"]["number_of_picks"] == row["picks"]
    sopo_row = json.loads((out / "results" / "sopo-p4-s0.json").read_text())
    cal = sopo_row["summary"]["tau_calibration"]  # tau: the median reward of the reference's samples
    assert cal["quantile"] == 0.5 and cal["samples"] == 2 * cal["captions"]
    assert sopo_row["summary"]["tau_used"] == cal["tau"]
    assert cal["reward_percentiles"]["25"] <= cal["tau"] <= cal["reward_percentiles"]["75"]
    table = (out / "taste.md").read_text()
    assert table in printed and table.count("\n| ") == 6  # the head, then rule, base and five runs
    assert "Commands:\n    python server/sopo_experiment.py taste --base" in table
    assert "| SoPo | 4 | 1 |" in table and "| SFT | 2 | 1 |" in table

    # resumable: a second call finds every run done and only rewrites the table
    assert sopo_experiment.main(argv) == 0
    assert "server" not in capsys.readouterr().out.split("| Method")[0]

    # --rescore: the evaluator's numbers again from the saved checkpoints (after the evaluator was retrained)
    assert sopo_experiment.main(argv + ["--rescore"]) == 0
    again = json.loads((out / "results" / "sopo-p4-s0.json").read_text())
    assert again["evaluator_id"] and again["win_suite"] == sopo_row["win_suite"]
    assert again["evaluator"]["fid"] == pytest.approx(sopo_row["evaluator"]["fid"], rel=1e-4)  # the same evaluator
    commands = (out / "taste.md").read_text().split("Commands:\n")[1].splitlines()
    assert len(commands) == 2 and commands[1].endswith("--rescore")  # the run (once, though run twice), the rescore

    # the plot of win rate against the number of picks (docs/sopo_taste.png)
    png = sopo_experiment.main(["plot", "--taste", "--out", str(out), "--png", str(tmp_path / "taste.png")])
    assert png == 0 and (tmp_path / "taste.png").stat().st_size > 10_000
