"""The separation ladder (server/eval/ladder.py) and the reward AUC report (server/eval/reward_report.py), end to end on tiny parts."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from server.eval import ladder, suite
from server.eval.contrastive import TrainConfig, train
from server.eval.ladder import GENERATOR, NOISE, REAL, Rung, RungResult
from synthetic_text_motion import make_corpus

torch.set_num_threads(1)

TINY = {"hidden": 32, "embed_dim": 32, "layers": 1, "heads": 2, "max_frames": 48, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("syn") / "corpus")


@pytest.fixture(scope="module")
def models(corpus_dir, tmp_path_factory):
    from server.model.text_embeddings import open_cache

    root = tmp_path_factory.mktemp("models")
    cache = open_cache(corpus_dir / "text_cache.safetensors")
    for kind in ("evaluator", "reward"):
        cfg = TrainConfig(kind=kind, epochs=4, batch_size=16, lr=2e-3, warmup_steps=5, model=dict(TINY))
        train(corpus_dir, root / kind, cfg, text_cache=cache, device="cpu", progress=False, log=lambda s: None)
    return root


def _suite_file(tmp_path):
    prompts = [{"id": "walk", "text": "a person walks forward", "category": "walk_forward", "seconds": 3.0,
                "wording": "train", "steps": [{"check": "walk_forward"}]},
               {"id": "wave", "text": "a person waves the right hand", "category": "wave_right", "seconds": 3.0,
                "wording": "train", "steps": [{"check": "wave", "side": "right"}]}]
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"version": "test", "prompts": prompts}))
    return path


def _result(name, kind, rate, lo, hi, top3, half, weaker=True, repeats=None):
    row = suite.Row("mean", 10, 10, rate, lo, hi)
    retrieval = {"summary": {"top3": [top3, half]}, "metrics": {"top3": repeats or [top3 - half, top3 + half]}}
    return RungResult(Rung(name, kind, weaker=weaker), row, retrieval, 0.0)


def test_verdicts_need_clear_intervals_real_on_top_and_noise_last():
    results = [_result("Real", REAL, 0.9, 0.85, 0.95, 0.9, 0.01, weaker=False),
               _result("default", GENERATOR, 0.6, 0.55, 0.65, 0.7, 0.01, weaker=False, repeats=[0.69, 0.70, 0.71]),
               _result("1 step", GENERATOR, 0.3, 0.25, 0.35, 0.69, 0.01, repeats=[0.68, 0.69, 0.70]),
               _result("noise", NOISE, 0.1, 0.05, 0.15, 0.2, 0.01)]
    v = ladder.verdicts(results)
    assert v["suite"]["holds"] and v["suite"]["separated"] == {"1 step": True, "noise": True}
    assert not v["top3"]["holds"] and v["top3"]["separated"]["1 step"] is False  # 0.70 ± 0.01 vs 0.69 ± 0.01
    # paired per repeat, the same 0.01 gap is clear (every repeat is 0.01 better)
    diff = v["top3"]["paired"]["1 step"]
    assert diff["clear"] and diff["difference"][0] == pytest.approx(0.01)
    assert "suite" not in [k for k, d in v.items() if d["paired"]]  # no per-prompt passes here: nothing to pair
    results[0] = _result("Real", REAL, 0.5, 0.45, 0.55, 0.9, 0.01, weaker=False)
    assert not ladder.verdicts(results)["suite"]["real_at_least_default"]
    lines = ladder.verdict_lines(ladder.verdicts(results))
    assert any('overlaps the default: "1 step"' in line for line in lines)


def test_noisy_corpus_jitters_every_clip_reproducibly(corpus_dir):
    from server.data.corpus import Corpus

    corpus = Corpus(corpus_dir)
    noisy = ladder.NoisyCorpus(corpus, 0.1, 0.05, seed=3)
    i = corpus.indices("test")[0]
    a, b = noisy.motion(i), noisy.motion(i)
    assert np.array_equal(a.rotations, b.rotations) and not np.allclose(a.rotations, corpus.motion(i).rotations)
    assert noisy.indices("test") == corpus.indices("test") and noisy.clips is corpus.clips


def test_drift_noise_is_smooth_and_has_the_asked_size():
    from server.eval import evaluation
    from shared.rotations import quat_multiply

    rng = np.random.default_rng(0)
    r = np.tile(np.array([1.0, 0, 0, 0], np.float32), (400, 22, 1))
    t = np.zeros((400, 3), np.float32)
    (rd, td), = evaluation.degrade([(r, t)], "drift", rng, 0.3, 0.2)
    (rn, tn), = evaluation.degrade([(r, t)], "noise", rng, 0.3, 0.2)
    angle = lambda q: 2 * np.arccos(np.clip(np.abs(q[..., 0]), 0, 1))  # noqa: E731
    assert 0.3 < np.mean(angle(rd)) < 0.7  # |axis-angle| of a 3-d Gaussian with std 0.3: about 0.48
    step_drift = angle(quat_multiply(rd[1:], rd[:-1] * np.array([1, -1, -1, -1]))).mean()
    step_noise = angle(quat_multiply(rn[1:], rn[:-1] * np.array([1, -1, -1, -1]))).mean()
    assert step_drift < 0.25 * step_noise  # smooth: small changes from frame to frame
    assert abs(td[:, [0, 2]].std() - 0.2) < 0.02 and np.all(td[:, 1] == 0)  # the path wanders, the height stays


def test_ladder_runs_every_rung_and_writes_table_json_and_plot(models, corpus_dir, tiny_checkpoint, tmp_path):
    rungs = ladder.default_rungs(tiny_checkpoint, None)
    assert [r.kind for r in rungs] == [REAL, GENERATOR, GENERATOR, GENERATOR, GENERATOR, NOISE]
    assert rungs[2].steps == 1 and rungs[3].guidance == 1.0 and rungs[4].guidance == 0.0
    assert not rungs[1].weaker and all(r.weaker for r in rungs[2:])
    assert ladder.default_rungs(tiny_checkpoint, tmp_path / "weak" / "checkpoint")[5].name == "weak model (weak)"
    lines = []
    dump = ladder.run(rungs, corpus_dir, models / "evaluator", _suite_file(tmp_path), seeds=(0,), candidates=1,
                      repeats=2, device="cpu", text_cache=corpus_dir / "text_cache.safetensors", out=tmp_path / "out",
                      plot_path=tmp_path / "ladder.png", log=lines.append, r_batch=8, pool_size=8)
    assert [r["rung"]["name"] for r in dump["rungs"]] == [r.name for r in rungs]
    real, default = dump["rungs"][0], dump["rungs"][1]
    assert real["retrieval"]["summary"]["top3"][0] > 0.9  # the evaluator knows its own corpus
    assert 0.0 <= default["suite"]["rate"] <= 1.0 and default["suite"]["units"] == 2
    assert np.isnan(real["suite"]["rate"])  # no category of the toy corpus has real clips: Real shows "-"
    assert set(dump["verdicts"]) >= {"suite", "top3"}
    text = (tmp_path / "out" / "ladder.md").read_text()
    assert text.split("\n\n")[0].count("\n| ") == len(rungs) and "Separation" in text and "Paired differences" in text
    assert "| default, 1 sampling step |" in text.split("Paired differences")[1]  # a line of the paired table
    assert dump["rungs"][1]["suite_result"]["passes"]
    assert (tmp_path / "ladder.png").stat().st_size > 1000


def test_reward_report_scores_hard_negatives_and_samples(models, corpus_dir, tiny_checkpoint, tmp_path):
    from server.eval import reward_report

    result = reward_report.report([("reward", models / "reward"), ("evaluator", models / "evaluator")], corpus_dir,
                                  ("tiny", tiny_checkpoint), device="cpu",
                                  text_cache=corpus_dir / "text_cache.safetensors", out=tmp_path, log=lambda s: None)
    kinds = {r["kind"]: r for r in result["results"]["reward"]}
    assert {"mirror", "clip", "generated"} <= set(kinds) and kinds["generated"]["pairs"] == result["pairs"]
    assert kinds["clip"]["auc"] > 0.8  # another clip's motion scores below the caption's own
    assert kinds["mirror"]["auc"] > 0.5  # trained with mirrors as negatives of sided captions
    assert 0.0 <= kinds["generated"]["auc"] <= 1.0
    assert "| left/right mirror |" in (tmp_path / "reward_auc.md").read_text()


def test_cli_ladder_and_reward_auc_errors_are_one_line(tmp_path, capsys):
    from server.evaluate import main

    assert main(["--ladder", "--corpus", str(tmp_path / "missing"), "--device", "cpu"]) == 2
    assert main(["--reward-auc", "--reward", str(tmp_path / "none"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("evaluate.py: ") for line in err)
