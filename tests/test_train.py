"""train.py on the tiny corpus: loss falls, resume is exact, checkpoints and logs are written, DDP runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import train_tiny
from server.model.config import ConfigError
from server.train import parse_args

REPO = Path(__file__).resolve().parents[1]


def _weights(ckpt: Path) -> dict:
    return load_file(str(ckpt / "model.safetensors"))


def test_tiny_training_loss_falls(tiny_corpus, tiny_cache_dir, tmp_path):
    ckpt = train_tiny("mdm", tiny_corpus, tiny_cache_dir, tmp_path, "falls", **{"train.steps": 30, "train.log_every": 3})
    log = json.loads((ckpt.parent / "log.json").read_text())
    losses = [h["loss"] for h in log["history"]]
    assert len(losses) == 10
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    assert log["val"] and all(v["loss"] == v["loss"] for v in log["val"])  # not NaN
    for name in ("curve.png", "log.json", "checkpoint/model.safetensors", "checkpoint/config.json",
                 "checkpoint/training_curve.png", "state/state.safetensors", "state/state.json"):
        assert (ckpt.parent / name).is_file(), name
    config = json.loads((ckpt / "config.json").read_text())
    assert config["step"] == 30 and config["command"]


def test_fixture_checkpoint_trained_both_mld_stages(tiny_checkpoint):
    log = json.loads((tiny_checkpoint.parent / "log.json").read_text())
    assert {h["stage"] for h in log["history"]} == {"vae", "denoiser"}
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model"]["family"] == "mld" and config["latent_scale"] > 0


@pytest.mark.parametrize("family, stop_at", [("mdm", 7), ("mld", 5), ("mld", 14)])
def test_resume_continues_exactly(family, stop_at, tiny_corpus, tiny_cache_dir, tmp_path):
    """Stopping and resuming gives the same weights as training straight through (CPU, same seed)."""
    steps = {"train.steps": 12, "train.vae_steps": 12, "train.eval_every": 4}
    straight = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "a", "run", **steps)
    stopped = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "b", "run", **steps, **{"train.stop_at": stop_at})
    state = json.loads((stopped.parent / "state" / "state.json").read_text())
    assert state["step"] == (stop_at if stop_at < 12 or family == "mdm" else stop_at - 12)
    resumed = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "b", "run", **steps, **{"train.resume": True})
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    assert json.loads((resumed / "config.json").read_text())["step"] == 12


def test_cli_parsing_and_typos():
    cfg = parse_args(["--preset", "mdm", "--model.layers", "3", "--train.name=x"])
    assert cfg.model.family == "mdm" and cfg.model.layers == 3 and cfg.train.name == "x"
    with pytest.raises(ConfigError, match="did you mean"):
        parse_args(["--train.stpes", "3"])
    with pytest.raises(ConfigError, match="unknown preset"):
        parse_args(["--preset", "big"])


def test_cli_rejects_typo_with_exit_message():
    out = subprocess.run([sys.executable, str(REPO / "server" / "train.py"), "--train.batchsize", "4"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "train.batch_size" in out.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(tiny_corpus, tiny_cache_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(REPO / "server" / "train.py"), "--preset", "tiny-mld", "--data.corpus", str(tiny_corpus),
           "--data.cache_dir", str(tiny_cache_dir), "--train.out_dir", str(tmp_path), "--train.name", "ddp",
           "--train.steps", "6", "--train.vae_steps", "6", "--train.device", "cpu", "--train.eval_every", "3",
           "--train.threads", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    log = json.loads((tmp_path / "ddp" / "log.json").read_text())
    assert log["world_size"] == 2
    assert (tmp_path / "ddp" / "checkpoint" / "model.safetensors").is_file()


def test_training_works_without_diffusers(tiny_corpus, tiny_cache_dir, tmp_path, monkeypatch):
    """The lent GPU machines have no diffusers: training falls back to the same forward process."""
    from server.model.diffusion import ForwardProcess, train_scheduler
    from server.model.config import preset

    monkeypatch.setitem(sys.modules, "diffusers.schedulers.scheduling_ddpm", None)  # import now fails
    assert isinstance(train_scheduler(preset("tiny-mld").model), ForwardProcess)
    ckpt = train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "nodiff", **{"train.steps": 3, "train.vae_steps": 3})
    assert (ckpt / "model.safetensors").is_file()


def test_test_split_captions_are_neither_encoded_nor_needed(tmp_path):
    """Training sees train and val captions only: a test clip with its own caption must not break it."""
    import dataclasses

    from server.data.corpus import Caption, Corpus, write_corpus
    from server.model.text_encoder import TextCache
    from synthetic_corpus import make_synthetic_corpus

    base = Corpus(make_synthetic_corpus(tmp_path / "base"))
    unseen = "a caption only a test clip has"
    clips = [dataclasses.replace(c, captions=[Caption(unseen, "synthetic")]) if c.split == "test" else c
             for c in base.clips]
    corpus = write_corpus(tmp_path / "corpus", clips, [base.motion(i) for i in range(len(base))])
    ckpt = train_tiny("mld", corpus, tmp_path / "cache", tmp_path / "runs", "unseen",
                      **{"train.steps": 2, "train.vae_steps": 2})
    assert (ckpt / "model.safetensors").is_file()
    cached = list((tmp_path / "cache" / "text").glob("*.safetensors"))
    assert cached and all(unseen not in TextCache(path=p) and "a person walks forward" in TextCache(path=p)
                          for p in cached)
