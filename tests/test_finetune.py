"""End to end: a real server, simulated picks over real sockets, finetune.py on its picks DB, reload."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from preference_support import text_cache_file, train_tiny_text_motion
from server import finetune
from server import simulate_picks
from server.service.client import MotionClient
from server.service.picks import export_preferences
from server.service.server_process import ServerProcess

torch.set_num_threads(1)


@pytest.mark.slow
def test_simulated_picks_then_finetune_then_server_reloads(tmp_path, tiny_checkpoint, tiny_corpus, tiny_cache_dir):
    reward = train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path / "reward", "reward")
    evaluator = train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path / "evaluator", "evaluator")
    cache = str(text_cache_file(tiny_cache_dir))
    data = tmp_path / "data"
    shutil.copytree(tiny_checkpoint, data / "models" / "tiny")
    with ServerProcess(data, "--checkpoint", "tiny", "--log-level", "INFO") as server:
        rc = simulate_picks.main(["--server", server.endpoint, "--captions", "6", "--corpus", str(tiny_corpus),
                                  "--n", "3", "--steps", "2", "--reward", str(reward), "--text-cache", cache,
                                  "--none-below", "-1000", "--log", str(tmp_path / "sim.json")])
        assert rc == 0
        records = export_preferences(data / "picks.db")  # what the server stored from the real messages
        assert len(records) == 6 and all(r.chosen is not None and len(r.rejected) == 2 for r in records)
        assert {r.model_id for r in records} == {"tiny-mld"} and all(r.params["family"] == "mld" for r in records)
        sim = json.loads((tmp_path / "sim.json").read_text())
        assert all(e["chosen"] == max(range(3), key=lambda i: e["score"][i]) for e in sim["log"])

        out = data / "models" / "tuned"
        rc = finetune.main(["--picks", str(data / "picks.db"), "--method", "sopo", "--base", str(tiny_checkpoint),
                            "--out", str(out), "--steps", "2", "--batch-size", "4", "--sample-steps", "2",
                            "--reward", str(reward), "--evaluator", str(evaluator), "--eval-corpus", str(tiny_corpus),
                            "--eval-repeats", "1", "--text-cache", cache, "--device", "cpu", "--no-progress",
                            "--log-every", "1", "--server", server.endpoint])
        assert rc == 0
        with MotionClient(server.endpoint, timeout=60) as client:
            hello = client.hello("pytest")
            assert hello.fields["model"] == "tuned" and "tuned" in hello.fields["models"]
            result = client.generate("a person walks forward", n=1, seconds=1.0, steps=2, seed=3)
            assert result.model == "tuned" and result.rotations.shape == (1, 20, 22, 4)
        assert "reloaded: model tuned" in server.log()

        # the arm-energy artist needs no reward model (its rule is FK positions only)
        rc = simulate_picks.main(["--server", server.endpoint, "--captions", "2", "--corpus", str(tiny_corpus),
                                  "--n", "2", "--steps", "2", "--taste", "arm-energy",
                                  "--reward", str(tmp_path / "none"),
                                  "--log", str(tmp_path / "arms.json")])
        assert rc == 0
        arms = json.loads((tmp_path / "arms.json").read_text())
        assert arms["rule"]["taste"] == "arm-energy" and arms["rule"]["none_below"] == 0.15
        assert all(e["score"] == e["arm_energy"] and e["model"] == "tuned" for e in arms["log"])
        assert len(export_preferences(data / "picks.db")) == 8

    config = json.loads((out / "config.json").read_text())
    ft = config["extra"]["finetune"]
    assert config["name"] == "tuned" and config["step"] == 20 + 2
    assert ft["method"] == "sopo" and ft["number_of_picks"] == 6 and ft["base_name"] == "tiny-mld"
    assert ft["hyperparameters"]["tau"] == 0.45 and ft["hyperparameters"]["C"] == 2.0 and ft["k"] == 2
    log = json.loads((out / "finetune_log.json").read_text())
    assert [h["step"] for h in log["history"]] == [1, 2]
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
            "frac_loser_above_tau", "loss"} <= set(log["history"][0])
    report = (out / "report.md").read_text()
    assert "Evaluator metrics before / after" in report and "| base |" in report and "| tuned |" in report
    assert (out / "curves.png").stat().st_size > 1000


def test_finetune_cli_refuses_and_reload_only_needs_a_server(tmp_path, tiny_checkpoint, capsys):
    rc = finetune.main(["--picks", str(tmp_path / "nope.db"), "--base", str(tiny_checkpoint),
                        "--out", str(tmp_path / "o"), "--eval-repeats", "0"])
    assert rc == 2 and "refused: no picks database" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune.main(["--reload", "x"])


def test_experiment_table_means_intervals_and_paired_change(tmp_path):
    from server import sopo_experiment

    def row(mm, top1):
        return {"metrics": {"top1": [top1, top1], "mm_dist": [mm, mm + 0.02], "fid": [1.0], "top2": [0.5],
                            "top3": [0.6], "diversity": [2.0], "hard1": [0.3]}}

    def suite(rates):
        ids = [f"p{i}" for i in range(len(rates))]
        return {"overall": [float(np.mean(rates)), 0.0, 1.0], "physics": {"skate_ratio": [0.2, 0.1, 0.3]},
                "rates": dict(zip(ids, rates)), "wording": {i: ("heldout" if i == "p0" else "train") for i in ids},
                "seeds": [0], "n": 4}

    res = tmp_path / "results"
    res.mkdir()
    (res / "base-suite.json").write_text(json.dumps(suite([0.0, 0.5, 0.5, 1.0])))
    run_rates = [[0.25, 0.5, 0.75, 1.0], [0.75, 0.5, 0.75, 1.0], [0.5, 0.5, 0.75, 1.0]]
    for seed, (base_mm, sopo_mm) in enumerate([(3.0, 2.9), (3.2, 3.0), (3.1, 3.1)]):
        (res / f"base-s{seed}.json").write_text(json.dumps({"source": "-", "method": "base", "seed": seed,
                                                            "row": row(base_mm, 0.4)}))
        (res / f"corpus-sopo-tau0.95-s{seed}.json").write_text(json.dumps(
            {"source": "corpus", "method": "sopo-tau0.95@scale100", "seed": seed, "row": row(sopo_mm, 0.5),
             "suite": suite(run_rates[seed]), "final": {"frac_loser_above_tau": 0.25}, "train_seconds": 60.0,
             "summary": {"hyperparameters": {"steps": 5, "batch_size": 4, "lr": 1e-5, "beta": 1.0, "tau": 0.95,
                                             "C": 2.0, "scale": 100.0}, "k": 2, "device": "cpu", "base_name": "b"}}))
    table = sopo_experiment.write_table(tmp_path)
    lines = {line.split("|")[2].strip(): line for line in table.splitlines() if line.startswith("| ")}
    sopo_cells = [c.strip() for c in lines["SoPo (tau 0.95) (scale100)"].split("|")[1:-1]]
    means = [2.91, 3.01, 3.11]  # per seed: the mean over its repeats
    mean, ci = 3.01, 1.96 * float(np.std(means)) / np.sqrt(3)
    assert sopo_cells[10] == f"{mean:.3f}±{ci:.3f}" and sopo_cells[7] == "0.500±0.000"
    paired = [(2.91 - 3.01) / 3.01, (3.01 - 3.21) / 3.21, (3.11 - 3.11) / 3.11]
    assert sopo_cells[11] == f"{100 * np.mean(paired):+.2f}±{196 * np.std(paired) / np.sqrt(3):.2f}%"
    assert sopo_cells[13] == "0.25" and sopo_cells[14] == "1.0"
    # suite: per prompt, the mean over seeds minus the base: p0 +0.5, the others +0, +0.25, 0 -> +18.75 points
    assert sopo_cells[4].startswith("+18.8 [") and sopo_cells[5] == "+50.0 [+50.0, +50.0]"
    assert sopo_cells[3] == f"{100 * np.mean([np.mean(r) for r in run_rates]):.1f}±" + sopo_cells[3].split("±")[1]
    assert lines["Base"].split("|")[4].strip() == "50.0"
    assert (tmp_path / "results.md").read_text() == table
