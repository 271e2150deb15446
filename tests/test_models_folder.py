"""server/service/models_folder.py: checkpoint names stay inside their folders; the watcher waits for stable files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from server.model.checkpoint import FORMAT, FORMAT_VERSION
from server.service.models_folder import (CheckpointNameError, ModelsWatcher, check_name, default_checkpoint_name,
                                  list_checkpoints, resolve_checkpoint)
from server.service.security import is_loopback_endpoint


def _checkpoint(folder: Path, step: int = 0) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                    "step": step}))
    return folder


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "/etc", "", ".hidden", "a..b", "x" * 200, "a\\b", "a b"])
def test_bad_names_are_refused(name):
    with pytest.raises(CheckpointNameError):
        check_name(name)


def test_resolve_prefers_models_then_bundled_and_refuses_escapes(tmp_path):
    models, bundled, outside = tmp_path / "models", tmp_path / "bundled", tmp_path / "outside"
    _checkpoint(models / "mine")
    _checkpoint(bundled / "mine")
    _checkpoint(bundled / "default")
    _checkpoint(outside / "secret")
    os.symlink(outside / "secret", models / "link-out")
    _checkpoint(models / "file-out")
    (models / "file-out" / "config.json").unlink()
    os.symlink(outside / "secret" / "config.json", models / "file-out" / "config.json")
    os.symlink(models / "mine", models / "link-in")
    (models / "empty").mkdir()
    _checkpoint(models / "evaluator")
    (models / "evaluator" / "config.json").write_text('{"kind": "evaluator"}')   # another model's folder
    assert resolve_checkpoint("mine", models, bundled) == (models / "mine").resolve()
    assert resolve_checkpoint("default", models, bundled) == (bundled / "default").resolve()
    assert resolve_checkpoint("link-in", models, bundled) == (models / "mine").resolve()
    for bad in ("link-out", "file-out", "empty", "evaluator", "absent", "../outside/secret"):
        with pytest.raises(CheckpointNameError):
            resolve_checkpoint(bad, models, bundled)
    assert list_checkpoints(models, bundled) == ["default", "link-in", "mine"]
    assert default_checkpoint_name(bundled) == "default"


def test_default_name_from_marker_or_single_checkpoint(tmp_path):
    _checkpoint(tmp_path / "only")
    assert default_checkpoint_name(tmp_path) == "only"
    _checkpoint(tmp_path / "other")
    with pytest.raises(CheckpointNameError):
        default_checkpoint_name(tmp_path)
    (tmp_path / "DEFAULT").write_text("other\n")
    assert default_checkpoint_name(tmp_path) == "other"


def test_watcher_reports_new_and_changed_checkpoints_once_stable(tmp_path):
    _checkpoint(tmp_path / "old")
    watcher = ModelsWatcher(tmp_path)
    assert watcher.poll() is None                      # present at start: not a change
    _checkpoint(tmp_path / "new")
    assert watcher.poll() is None                      # seen once: maybe still being written
    assert watcher.poll() == "new"
    assert watcher.poll() is None
    (tmp_path / "old" / "config.json").write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                               "step": 2}))
    assert watcher.poll() is None
    assert watcher.poll() == "old"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text((tmp_path / "old" / "config.json").read_text())  # no weights yet
    assert watcher.poll() is None and watcher.poll() is None


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.0.0.1:*", True), ("tcp://localhost:5555", True),
    ("tcp://[::1]:5555", True), ("ipc:///tmp/sopo", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://192.168.1.2:5555", False),
    ("tcp://eth0:5555", False), ("tcp://[::]:5555", False), ("pgm://239.0.0.1:5555", False),
])
def test_loopback_endpoints(endpoint, loopback):
    assert is_loopback_endpoint(endpoint) is loopback
