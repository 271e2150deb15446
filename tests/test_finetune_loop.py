"""The picks loop as a first-time user runs it: a real server with --data, real picks over sockets, finetune.py.

Covers issue 17's reproductions: "none are good" picks (with and without a corpus caption),
a prompt the artist typed that no corpus caption has, picks made on two model names, a
handful of picks (fewer than the default batch), the checkpoint written to the server's own
models folder (found through hello) and the server serving it after reload; and a server
that is not on this machine (no folder in hello): the checkpoint stays here and the printed
instructions load it. Also: hello's optional models_dir fields, and the experiment driver's
quick run end to end (it was split into steps).
"""
from __future__ import annotations

import json
import re
import shutil
import socket

import numpy as np
import pytest
import torch

from preference_support import text_cache_file, train_tiny_text_motion
from suite_support import write_tiny_suite
from server import finetune
from server.service.client import MotionClient
from server.service.picks import export_preferences
from server.service.server_process import ServerProcess

torch.set_num_threads(1)

TYPED = "a person sneaks forward on tiptoes, looking around"  # in no corpus caption
WALK, RUN, JUMP, WAVE, TURN = ("a person walks forward", "a person runs forward", "a person jumps in place",
                               "a person waves with the right hand", "a person turns to the left")
HOPS = "someone hops up and down"  # a corpus caption that only a "none are good" pick uses


def pick(client: MotionClient, prompt: str, chosen: int | None, n: int = 3) -> str:
    result = client.generate(prompt, n=n, seconds=2.0, steps=2, seed=len(prompt))
    client.pick(result.request_id, chosen)
    return result.model


def finetune_args(tmp_path, tiny_cache_dir, reward, *extra, method: str | None = "sopo") -> list[str]:
    return (["--method", method] if method else []) + ["--steps", "2", "--sample-steps", "2", "--reward", str(reward),
            "--text-cache", str(text_cache_file(tiny_cache_dir)), "--eval-repeats", "0", "--device", "cpu",
            "--no-progress", "--log-every", "1", *extra]


def served_model(endpoint: str) -> str:
    with MotionClient(endpoint, timeout=60) as client:
        hello = client.hello("pytest")
        assert "models_dir" not in hello.fields  # only told when asked: clients that never ask never see it
        result = client.generate(WALK, n=1, seconds=1.0, steps=2, seed=3)
        assert result.model == hello.fields["model"] and result.rotations.shape == (1, 20, 22, 4)
        return result.model


@pytest.fixture(scope="module")
def reward(tiny_corpus, tiny_cache_dir, tmp_path_factory):
    return train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path_factory.mktemp("reward") / "reward", "reward")


@pytest.mark.slow
def test_first_user_loop_with_none_good_typed_prompt_and_two_models(tmp_path, tiny_checkpoint, tiny_corpus,
                                                                   tiny_cache_dir, reward, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the default data folder: must stay unused
    monkeypatch.setenv("SOPO_CACHE_DIR", str(tiny_cache_dir))  # corpus features: never the repository's cache
    monkeypatch.setattr(finetune, "DEFAULT_CORPUS", tiny_corpus)  # what data/corpus is for a user
    data = tmp_path / "data"
    shutil.copytree(tiny_checkpoint, data / "models" / "tiny")
    with ServerProcess(data, "--checkpoint", "tiny", "--log-level", "INFO") as server:
        with MotionClient(server.endpoint, timeout=60) as client:
            assert pick(client, TYPED, None) == "tiny-mld"  # none are good on a typed prompt ...
            pick(client, TYPED, 1)  # ... then the artist tries again and picks one
            pick(client, HOPS, None)  # none are good on a corpus caption: the default corpus gives its motion
            for prompt in (WALK, RUN, JUMP, WAVE, TURN):
                pick(client, prompt, 0)
        assert len(export_preferences(data / "picks.db")) == 8

        # round 1: 8 picks, 6 with a chosen motion, 1 none-good on a corpus caption; default batch 16, default
        # --out (the server's models folder), default corpus (only for none-good picks)
        capsys.readouterr()
        rc = finetune.main(["--picks", str(data / "picks.db"), "--base", str(tiny_checkpoint), "--server",
                            server.endpoint, *finetune_args(tmp_path, tiny_cache_dir, reward)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        assert "sopo: 2 steps x batch 7," in out.out and "fewer than --batch-size 16" in out.out
        assert "none-good picks for sopo: 2 (1 with the corpus motion" in out.out
        assert f"corpus {tiny_corpus}: gives 'none are good' picks" in out.out
        first = served_model(server.endpoint)
        assert first.startswith("sopo-") and (data / "models" / first / "config.json").is_file()
        assert not (tmp_path / "xdg").exists()
        ft = json.loads((data / "models" / first / "config.json").read_text())["extra"]["finetune"]
        assert ft["batch_size"] == 7 and ft["hyperparameters"]["batch_size"] == 16
        assert ft["tau_calibration"]["quantile"] == 0.5 and ft["tau_used"] == ft["tau_calibration"]["tau"]
        assert ft["none_good"]["picks"] == 2 and ft["none_good"]["unused"] == 1
        assert ft["items"]["by_source"] == {"pick": 6, "none-good+corpus": 1} and not ft["corpus_clips"]
        assert "batch 7" in (data / "models" / first / "report.md").read_text()

        # round 2: picks on the fine-tuned model too (two model names); --corpus finds WALK's motion
        with MotionClient(server.endpoint, timeout=60) as client:
            assert pick(client, WALK, None) == first
            pick(client, TYPED, None)
            pick(client, RUN, 2)
        records = export_preferences(data / "picks.db")
        assert {r.model_id for r in records} == {"tiny-mld", first}
        rc = finetune.main(["--picks", str(data / "picks.db"), "--base", str(data / "models" / first), "--corpus",
                            str(tiny_corpus), "--no-corpus-clips", "--server", server.endpoint,
                            *finetune_args(tmp_path, tiny_cache_dir, reward, method=None)])  # the default method
        out = capsys.readouterr()
        assert rc == 0, out.err
        second = served_model(server.endpoint)
        assert second not in ("tiny-mld", first) and (data / "models" / second / "config.json").is_file()
        ft = json.loads((data / "models" / second / "config.json").read_text())["extra"]["finetune"]
        assert ft["method"] == "offline-dpo" and ft["hyperparameters"]["scale"] == 1000.0
        # none-good: HOPS and WALK take their corpus motion; TYPED's rejected candidates become more losers of the
        # pick where the artist chose one for TYPED
        assert ft["none_good"] == {"picks": 4, "with_corpus_motion": 2, "as_losers": 2, "as_prompt": 0, "unused": 0}
        assert ft["picks"]["model_ids"] == {"tiny-mld": 8, first: 3}
        assert f"reloaded: model {second}" in server.log()


def _this_machines_address() -> str | None:
    """A non-loopback address of this machine (the route to a documentation address; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
def test_server_not_on_loopback_gets_instructions_that_work(tmp_path, tiny_checkpoint, tiny_cache_dir, reward,
                                                            monkeypatch, capsys):
    address = _this_machines_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to bind a server to")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    data = tmp_path / "data"
    shutil.copytree(tiny_checkpoint, data / "models" / "tiny")
    with ServerProcess(data, "--checkpoint", "tiny", "--insecure", "--log-level", "INFO",
                       bind=f"tcp://{address}:*") as server:
        with MotionClient(server.endpoint, timeout=60) as client:
            for prompt in (TYPED, WALK, RUN):
                pick(client, prompt, 0)
        capsys.readouterr()
        rc = finetune.main(["--picks", str(data / "picks.db"), "--base", str(tiny_checkpoint), "--server",
                            server.endpoint, *finetune_args(tmp_path, tiny_cache_dir, reward)])
        out = capsys.readouterr()
        assert rc == 0, out.err
        local = list((tmp_path / "xdg" / "sopo-motion" / "models").iterdir())
        assert len(local) == 1 and (local[0] / "config.json").is_file()  # stays on this machine
        assert served_model(server.endpoint) == "tiny-mld"  # not reloaded: the server cannot see it
        text = out.out + out.err
        assert "DATA/models" in text
        command = re.search(r"python server/finetune.py --server (\S+) --reload (\S+)", text)
        assert command and command.group(1) == server.endpoint and command.group(2) == local[0].name
        shutil.copytree(local[0], data / "models" / local[0].name)  # what the instructions say
        assert finetune.main(["--server", server.endpoint, "--reload", local[0].name]) == 0
        assert served_model(server.endpoint) == local[0].name


def test_finetune_refuses_early_when_the_server_does_not_answer(tmp_path, tiny_checkpoint, capsys):
    db = tmp_path / "picks.db"
    from server.service.picks import PicksStore
    PicksStore(db).close()
    rc = finetune.main(["--picks", str(db), "--base", str(tiny_checkpoint), "--server", "tcp://127.0.0.1:9",
                        "--eval-repeats", "0"])
    err = capsys.readouterr().err
    assert rc == 3 and "no answer from tcp://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_experiment_quick_run_end_to_end(tmp_path, tiny_checkpoint, tiny_corpus, tiny_cache_dir, reward):
    """sopo_experiment.py run --quick on the tiny models: base, simulated picks, two methods x two sources."""
    from server import sopo_experiment

    evaluator = train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path / "evaluator", "evaluator")
    out = tmp_path / "exp"
    argv = ["run", "--quick", "--base", str(tiny_checkpoint), "--corpus", str(tiny_corpus), "--evaluator",
            str(evaluator), "--reward", str(reward), "--text-cache", str(text_cache_file(tiny_cache_dir)), "--out",
            str(out), "--methods", "sft,sopo", "--sopo-taus", "0.45,1.01", "--device", "cpu", "--threads", "1",
            "--suite-file", str(write_tiny_suite(tmp_path / "suite.json")), "--curve-steps", "1"]
    assert sopo_experiment.main(argv) == 0
    names = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert names == ["base-s0", "base-suite", "corpus-sft-s0", "corpus-sopo-tau0.45-s0", "corpus-sopo-tau1.01-s0",
                     "picks-sft-s0", "picks-sopo-tau0.45-s0", "picks-sopo-tau1.01-s0", "real"]
    run = json.loads((out / "results" / "picks-sopo-tau1.01-s0.json").read_text())
    assert run["method"] == "sopo-tau1.01" and run["summary"]["hyperparameters"]["tau"] == 1.01
    assert run["summary"]["number_of_picks"] == 8 and run["final"]["frac_loser_above_tau"] == 0.0
    assert [c["step"] for c in run["curve"]] == [1, 2]
    assert run["curve"][1]["suite"]["overall"] == run["suite"]["overall"]
    assert all(np.isfinite(c["suite"]["fid"]).all() for c in run["curve"])  # FID along the steps (the plot)
    assert set(run["suite"]["rates"]) == set(json.loads((out / "results" / "base-suite.json").read_text())["rates"])
    table = (out / "results.md").read_text()
    assert "| picks | SoPo (tau 1.01) | 1 |" in table and "| corpus | SFT | 1 |" in table
    # --rescore: the evaluator's numbers again from the saved checkpoints, the same evaluator: the same numbers
    assert sopo_experiment.main(argv + ["--rescore"]) == 0
    again = json.loads((out / "results" / "picks-sopo-tau1.01-s0.json").read_text())
    assert again["row"]["metrics"]["fid"] == pytest.approx(run["row"]["metrics"]["fid"], rel=1e-4)
    # the plot of suite pass rate and foot skating against steps (docs/sopo_steps.png)
    assert sopo_experiment.main(["plot", "--out", str(out), "--png", str(tmp_path / "steps.png")]) == 0
    assert (tmp_path / "steps.png").stat().st_size > 10_000
    assert again["suite"] == run["suite"] and (out / "results.md").read_text().count("\n| ") == table.count("\n| ")


def test_models_dir_fields_are_validated_and_optional():
    from shared import protocol as P
    from server.service.service import peer_on_this_machine

    limits = P.Limits()
    for msg in (P.hello("c"), P.hello("c", want_models_dir=True)):
        back = P.decode_message(msg.encode(), limits, accept=P.CLIENT_TYPES)
        assert back.fields == msg.fields
    skeleton = {"joints": [], "parents": [], "fps": 20.0}
    ok = P.hello_ok("r", "s", ["a"], "a", limits, skeleton, "cpu", models_dir="/srv/data/models")
    assert P.decode_message(ok.encode(), limits, accept=P.SERVER_TYPES).fields["models_dir"] == "/srv/data/models"
    assert "models_dir" not in P.hello_ok("r", "s", ["a"], "a", limits, skeleton).fields
    with pytest.raises(P.ProtocolError, match="want_models_dir"):
        P.Message("hello", "i", {"want_models_dir": "yes"}).encode()
    for bad in ("", 7, "x" * (P.MAX_PATH_CHARS + 1)):
        with pytest.raises(P.ProtocolError, match="models_dir"):
            P.hello_ok("r", "s", ["a"], "a", limits, skeleton, models_dir=bad).encode()
    assert peer_on_this_machine("127.0.0.1", "tcp://127.0.0.1:5555")
    assert peer_on_this_machine("::1", "tcp://*:5555") and peer_on_this_machine("::ffff:127.0.0.1", "tcp://*:5555")
    assert peer_on_this_machine("localhost:0:0:1", "ipc:///tmp/sopo.ipc")
    assert not peer_on_this_machine("192.0.2.7", "tcp://0.0.0.0:5555")
    assert not peer_on_this_machine(None, "tcp://0.0.0.0:5555") and not peer_on_this_machine("?", "tcp://*:1")
