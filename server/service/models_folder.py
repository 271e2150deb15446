"""Checkpoint names: where they live, which exist, and which changed (``serve.py --watch``).

A checkpoint is a directory holding ``model.safetensors`` and a ``config.json`` that
``server.model.checkpoint.read_config`` accepts. Names are
looked up first in the data folder's ``models/`` (fine-tuned checkpoints) and then among
the checkpoints bundled in ``server/checkpoints/``. A name is one plain path component:
no separators, no ``..``, nothing absolute, and a symlink that leads outside its folder is
refused, so a client's ``reload`` cannot reach any other file.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DEFAULT_NAME = "default"  # server/checkpoints/default/ is the bundled default ...
DEFAULT_FILE = "DEFAULT"  # ... unless it is absent and server/checkpoints/DEFAULT names another
CHECKPOINT_FILES = ("model.safetensors", "config.json")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CheckpointNameError(ValueError):
    """A checkpoint name that is malformed, escapes its folder, or names nothing loadable."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain checkpoint name, else raise CheckpointNameError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise CheckpointNameError(
            f"checkpoint name {name!r} must be one plain name (letters, digits, '.', '_', '-'; no '..', "
            f"no slashes, not absolute)")
    return name


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve(strict=True).relative_to(folder.resolve(strict=True))
    except (ValueError, OSError):
        return False
    return True


def is_checkpoint(path: Path) -> bool:
    """A motion-generator checkpoint: both files, and a config in this code's format (not, say, the
    evaluator's or the reward model's folder beside it)."""
    if not (path.is_dir() and all((path / f).is_file() for f in CHECKPOINT_FILES)):
        return False
    from server.model.checkpoint import CheckpointError, read_config
    try:
        read_config(path)
    except CheckpointError:
        return False
    return True


def _problem(candidate: Path, folder: Path) -> str | None:
    """Why ``candidate`` is not a usable checkpoint inside ``folder``, or None when it is."""
    if not _inside(candidate, folder):
        return "leads outside its folder"
    for f in CHECKPOINT_FILES:
        if os.path.lexists(candidate / f) and not _inside(candidate / f, folder):
            return f"{f} leads outside its folder"
    if not is_checkpoint(candidate):
        return f"is not a motion checkpoint ({' and '.join(CHECKPOINT_FILES)} in this code's format)"
    return None


def resolve_checkpoint(name: str, models_dir: Path, bundled_dir: Path = BUNDLED_DIR) -> Path:
    """The directory of checkpoint ``name``: ``models_dir/name`` first, then ``bundled_dir/name``."""
    check_name(name)
    for folder in (Path(models_dir), Path(bundled_dir)):
        candidate = folder / name
        if not os.path.lexists(candidate):
            continue
        problem = _problem(candidate, folder)
        if problem:
            raise CheckpointNameError(f"checkpoint {name!r} in {folder} {problem}")
        return candidate.resolve()
    raise CheckpointNameError(f"no checkpoint named {name!r} in {models_dir} or {bundled_dir}")


def _usable_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [e.name for e in folder.iterdir()
            if NAME_PATTERN.fullmatch(e.name) and ".." not in e.name and _problem(e, folder) is None]


def list_checkpoints(models_dir: Path, bundled_dir: Path = BUNDLED_DIR) -> list[str]:
    """Names that resolve_checkpoint accepts, sorted, each once."""
    return sorted(set(_usable_names(Path(models_dir))) | set(_usable_names(Path(bundled_dir))))


def default_checkpoint_name(bundled_dir: Path = BUNDLED_DIR) -> str:
    """The bundled default (as ``server.model.inference.default_checkpoint_dir``): ``default/``, else the name
    in ``DEFAULT``, else the only bundled checkpoint."""
    if is_checkpoint(Path(bundled_dir) / DEFAULT_NAME):
        return DEFAULT_NAME
    marker = Path(bundled_dir) / DEFAULT_FILE
    if marker.is_file():
        return check_name(marker.read_text(encoding="utf-8").strip())
    names = _usable_names(Path(bundled_dir))
    if len(names) != 1:
        raise CheckpointNameError(f"no bundled default checkpoint: {bundled_dir} has no {DEFAULT_NAME}/, no "
                                  f"{DEFAULT_FILE} file and {len(names)} checkpoints; pass --checkpoint NAME")
    return names[0]


def _signature(path: Path) -> tuple[int, ...]:
    stats = [(path / f).stat() for f in CHECKPOINT_FILES]
    return tuple(x for s in stats for x in (s.st_mtime_ns, s.st_size))


@dataclass
class ModelsWatcher:
    """Polls ``models_dir`` and reports a checkpoint that appeared or changed.

    A change is reported once its files have kept the same size and mtime for two scans,
    so a checkpoint still being written is not loaded half-way.
    """

    models_dir: Path
    _known: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _pending: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.models_dir = Path(self.models_dir)
        self._known = self._scan()

    def _scan(self) -> dict[str, tuple[int, ...]]:
        found = {}
        for name in _usable_names(self.models_dir):
            try:
                found[name] = _signature(self.models_dir / name)
            except OSError:   # removed between listing and stat
                continue
        return found

    def poll(self) -> str | None:
        """The name of a new or changed checkpoint that is now stable, else None."""
        current = self._scan()
        ready = None
        for name, sig in sorted(current.items()):
            if self._known.get(name) == sig:
                self._pending.pop(name, None)
            elif self._pending.get(name) == sig:
                self._known[name] = sig
                del self._pending[name]
                ready = name
            else:
                self._pending[name] = sig
        for name in set(self._known) - set(current):
            del self._known[name]
        return ready
