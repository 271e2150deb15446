"""Shared fixtures. `tiny_checkpoint` is used by the server's and the add-on's tests too: keep it stable.

- `tiny_corpus`: a 20-clip procedural corpus (tests/synthetic_corpus.py) in a temp folder.
- `tiny_checkpoint`: a real MLD-family checkpoint folder (model.safetensors + config.json),
  trained for 20 + 20 steps on `tiny_corpus` with the real MiniLM text encoder; load it
  with `server.model.inference.MotionGenerator.load(tiny_checkpoint)`. fps 20, max 10 s,
  default 4 steps. Built once per session in a few seconds (plus the text encoder's load).
- `tiny_mdm_checkpoint`: the same for the MDM family.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/synthetic_corpus.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository (server/, shared/)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from synthetic_corpus import make_synthetic_corpus

    return make_synthetic_corpus(tmp_path_factory.mktemp("tiny_corpus") / "corpus")


@pytest.fixture(scope="session")
def tiny_cache_dir(tmp_path_factory) -> Path:
    """Feature and text-embedding caches for the tiny corpus (never the repository's data/cache)."""
    return tmp_path_factory.mktemp("tiny_cache")


def train_tiny(family: str, corpus: Path, cache_dir: Path, out_dir: Path, name: str, **overrides) -> Path:
    """Train the tiny preset of `family`; returns the checkpoint folder. Overrides: {"train.steps": 5, ...}."""
    from server.model.config import preset, set_value
    from server.model.training import train

    cfg = preset(f"tiny-{family}")
    cfg.data.corpus = str(corpus)
    cfg.data.cache_dir = str(cache_dir)
    cfg.train.out_dir = str(out_dir)
    cfg.train.name = name
    for key, value in overrides.items():
        set_value(cfg, key, value)
    return train(cfg, command=f"tests: tiny-{family}", log=lambda *a, **k: None)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_corpus, tiny_cache_dir, tmp_path_factory) -> Path:
    return train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path_factory.mktemp("tiny_runs"), "tiny-mld")


@pytest.fixture(scope="session")
def tiny_mdm_checkpoint(tiny_corpus, tiny_cache_dir, tmp_path_factory) -> Path:
    return train_tiny("mdm", tiny_corpus, tiny_cache_dir, tmp_path_factory.mktemp("tiny_runs_mdm"), "tiny-mdm")


def pytest_unconfigure(config):
    """Let go of `bpy` once the session is over. The bpy 4.2 module tears Blender down only when the
    interpreter frees the `bpy` module; pytest keeps the fixtures tests/bpy_support.py defines (functions whose
    globals hold `bpy`) until after Python has cleared its modules, so `bpy` outlived the interpreter and
    Blender's C++ destructors then died in Python's place (SIGSEGV after the summary, a failing exit code)."""
    support = sys.modules.get("bpy_support")
    if support is not None:
        vars(support).pop("bpy", None)
