"""The CLIs as a new user meets them: one way to name a checkpoint, the protocol's limits, one-line errors.

Each user mistake must end in exactly one line on stderr naming the problem, a non-zero exit
and no traceback; the subprocess cases run the command exactly as typed from the repository root.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from server.model.device import DeviceError, resolve_device
from server.service.models_folder import (BUNDLED_DIR, CheckpointNameError, default_checkpoint_name,
                                          locate_checkpoint, serving_name)
from shared import protocol as P

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line_error(stderr: str) -> str:
    """The single non-empty stderr line (fails on a traceback or on more lines)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unusable_gpu() -> str:
    """A CUDA device this machine cannot use: any on a CPU-only torch, else one past the last GPU."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


# --- one way to name a checkpoint ----------------------------------------------------------------

@pytest.fixture()
def folders(tmp_path, tiny_checkpoint):
    """A data folder with models/tiny, a bundled folder with 'shipped' and a DEFAULT marker, an outside folder."""
    models, bundled = tmp_path / "data" / "models", tmp_path / "bundled"
    shutil.copytree(tiny_checkpoint, models / "tiny")
    shutil.copytree(tiny_checkpoint, bundled / "shipped")
    (bundled / "DEFAULT").write_text("shipped\n")
    shutil.copytree(tiny_checkpoint, tmp_path / "elsewhere" / "mine")
    (tmp_path / "notes").mkdir()
    return models, bundled


def test_every_form_of_checkpoint_resolves_to_one_folder(folders, tmp_path, monkeypatch):
    models, bundled = folders
    locate = lambda spec: locate_checkpoint(spec, models, bundled)  # noqa: E731
    assert locate("tiny") == (models / "tiny").resolve()                       # the models folder
    assert locate("shipped") == (bundled / "shipped").resolve()                # bundled
    assert locate("default") == locate(None) == (bundled / "shipped").resolve()
    assert locate(str(tmp_path / "elsewhere" / "mine")) == (tmp_path / "elsewhere" / "mine").resolve()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert locate("./mine") == locate("mine") == (tmp_path / "elsewhere" / "mine").resolve()  # a folder here
    with pytest.raises(CheckpointNameError) as info:
        locate("nosuch")
    assert str(models) in str(info.value) and str(bundled) in str(info.value) and "(known: shipped, tiny)" in str(info.value)
    with pytest.raises(CheckpointNameError, match="does not exist"):
        locate(str(tmp_path / "gone"))
    with pytest.raises(CheckpointNameError, match="not a motion checkpoint"):
        locate(str(tmp_path / "notes"))


def test_the_real_default_and_bundled_names_resolve():
    name = default_checkpoint_name()
    assert locate_checkpoint("default") == locate_checkpoint(name) == (BUNDLED_DIR / name).resolve()


def test_a_server_serves_names_in_place_and_other_folders_from_their_parent(folders, tmp_path):
    models, bundled = folders
    assert serving_name(None, models, bundled) == (None, models)
    assert serving_name("tiny", models, bundled) == ("tiny", models)
    assert serving_name(str(models / "tiny"), models, bundled) == ("tiny", models)
    assert serving_name("default", models, bundled) == ("shipped", models)
    outside = tmp_path / "elsewhere" / "mine"
    assert serving_name(str(outside), models, bundled) == ("mine", outside.parent.resolve())
    with pytest.raises(CheckpointNameError, match="outside the models folder"):
        serving_name(str(outside), models, bundled, models_given=True)


def test_generate_takes_a_name_from_the_data_folder(folders, tmp_path, capsys):
    from server.generate import main

    models, _ = folders
    rc = main(["a person walks", "-n", "1", "--seconds", "1", "--seed", "0", "--steps", "2", "--no-preview",
               "--checkpoint", "tiny", "--data", str(models.parent), "--out", str(tmp_path / "out")])
    assert rc == 0 and (tmp_path / "out" / "a_person_walks_0.npz").is_file()
    assert "tiny-mld: 1 x 1.00 s" in capsys.readouterr().out


# --- the protocol's limits -------------------------------------------------------------------------

@pytest.mark.parametrize("args, field", [(["-n", "9"], "n"), (["--guidance", "50"], "guidance"),
                                         (["--seconds", "0"], "seconds")])
def test_generate_refuses_what_the_server_refuses_with_its_message(args, field, capsys):
    from server.generate import main

    fields = {"n": 9} if field == "n" else {"guidance": 50.0} if field == "guidance" else {"seconds": 0.0}
    with pytest.raises(P.ProtocolError) as server_side:   # the check the server runs on every generate it decodes
        P.generate("walk", **fields).encode(P.Limits())
    assert main(["walk", *args]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert line == f"generate.py: {server_side.value}" and f"field '{field}'" in line


def test_a_long_prompt_is_refused_before_anything_loads():
    done = run_cli("server/generate.py", "a" * 500, "--checkpoint", "does-not-matter")
    assert done.returncode == 2
    assert one_line_error(done.stderr) == ("generate.py: too_large: field 'prompt' has 500 characters, the limit "
                                           f"is {P.Limits().max_prompt_chars}")


# --- user errors: one line, non-zero exit, no traceback --------------------------------------------

def test_device_cuda_on_a_machine_without_it():
    with pytest.raises(DeviceError):
        resolve_device(unusable_gpu())
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("gpu please")
    assert resolve_device("cpu") == "cpu" and resolve_device(None) in ("cpu", "cuda")
    done = run_cli("server/generate.py", "a person walks", "--device", unusable_gpu())
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith(f"generate.py: device '{unusable_gpu()}'")
    if torch.version.cuda is None:
        assert "CPU-only build" in line and "--device cpu" in line


def test_serve_with_a_bad_device_or_checkpoint(tmp_path, capsys):
    from server.serve import main

    assert main(["--device", unusable_gpu(), "--data", str(tmp_path)]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("serve.py: device")
    assert main(["--checkpoint", "nosuch", "--data", str(tmp_path), "--device", "cpu"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith("serve.py: no checkpoint 'nosuch'") and str(tmp_path / "models") in line


def test_evaluate_with_an_unknown_checkpoint(tmp_path):
    done = run_cli("server/evaluate.py", "--checkpoint", "default", "nosuch", "--data", str(tmp_path),
                   "--repeats", "1", "--out", str(tmp_path / "eval"))
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith("evaluate.py: no checkpoint 'nosuch'") and str(tmp_path / "models") in line
    assert str(BUNDLED_DIR) in line and not (tmp_path / "eval").exists()


def test_simulate_picks_before_the_corpus_exists(tmp_path):
    done = run_cli("server/simulate_picks.py", "--corpus", str(tmp_path / "corpus"), "--captions", "2")
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith("simulate_picks.py: ") and "python server/prepare_data.py" in line


def test_simulate_picks_with_the_server_down(tiny_corpus):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    done = run_cli("server/simulate_picks.py", "--server", endpoint, "--corpus", str(tiny_corpus), "--captions", "2",
                   "--timeout", "1")
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith(f"simulate_picks.py: no server answers at {endpoint}") and "server/serve.py" in line


def test_simulate_picks_in_process_with_an_unknown_checkpoint(tmp_path, capsys):
    from server.simulate_picks import main

    assert main(["--in-process", "--checkpoint", "nosuch", "--db", str(tmp_path / "p.db"),
                 "--data", str(tmp_path)]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("simulate_picks.py: no checkpoint 'nosuch'")
    assert main(["--in-process", "--db", str(tmp_path / "p.db")]) == 2
    assert "--in-process needs --checkpoint" in one_line_error(capsys.readouterr().err)


def test_render_motion_with_a_missing_file(tmp_path):
    done = run_cli("server/render_motion.py", str(tmp_path / "none.npz"), "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2
    line = one_line_error(done.stderr)
    assert line.startswith("render_motion.py: ") and "none.npz" in line


@pytest.mark.parametrize("argv, message", [
    (["walk", "--pick", "1"], "--pick and --request need --server"),
    (["--server", "tcp://127.0.0.1:1"], "give a prompt"),
    (["walk", "--server", "tcp://127.0.0.1:1", "--checkpoint", "tiny"], "with --server the server's model answers"),
    (["walk", "--server", "tcp://127.0.0.1:1", "-n", "2", "--pick", "2"], "--pick 2: there are only 2 candidates"),
    (["walk", "--server", "tcp://127.0.0.1:1", "--server-key", "k"], "--server-key and --client-secret go together"),
    (["--server", "tcp://127.0.0.1:1", "--request", "abc"], "give --pick N (or none)"),
])
def test_generate_argument_mistakes(argv, message, capsys):
    from server.generate import main

    assert main(argv) == 2
    assert message in one_line_error(capsys.readouterr().err)


def test_generate_with_the_server_down(capsys):
    from server.generate import main

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    assert main(["walk", "--server", endpoint, "--timeout", "1"]) == 3
    assert one_line_error(capsys.readouterr().err).startswith(f"generate.py: no answer from {endpoint}")


def test_train_and_train_evaluator_without_a_corpus(tmp_path, capsys):
    from server import train, train_evaluator

    assert train.main(["--preset", "tiny-mld", "--data.corpus", str(tmp_path / "none"), "--train.out_dir",
                       str(tmp_path / "runs"), "--train.device", "cpu"]) == 2
    assert one_line_error(capsys.readouterr().err).startswith(f"train.py: {tmp_path / 'none'}: missing")
    assert train.main(["--train.device", unusable_gpu()]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("train.py: device")
    assert train.main(["--train.no_such_field", "1"]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("train.py: ")
    assert train_evaluator.main(["--corpus", str(tmp_path / "none"), "--device", "cpu",
                                 "--text-cache", str(tmp_path / "t.safetensors")]) == 2
    assert one_line_error(capsys.readouterr().err).startswith(f"train_evaluator.py: {tmp_path / 'none'}: missing")


def test_prepare_data_and_make_keys_mistakes(tmp_path):
    done = run_cli("server/prepare_data.py", "--shared", str(tmp_path / "nothing"), "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and one_line_error(done.stderr).startswith("prepare_data.py: ")
    (tmp_path / "a-file").write_text("")
    done = run_cli("server/make_keys.py", "--keys", str(tmp_path / "a-file" / "keys"))
    assert done.returncode == 2 and one_line_error(done.stderr).startswith("make_keys.py: ")
