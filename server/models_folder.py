"""Checkpoint names: where they live, which exist, and which changed (``serve.py --watch``).

A checkpoint is a directory holding ``model.safetensors`` and ``config.json``. Names are
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

BUNDLED_DIR = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_FILE = "DEFAULT"  # server/checkpoints/DEFAULT names the bundled default checkpoint
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
    return path.is_dir() and all((path / f).is_file() for f in CHECKPOINT_FILES)


def resolve_checkpoint(name: str, models_dir: Path, bundled_dir: Path = BUNDLED_DIR) -> Path:
    """The directory of checkpoint ``name``: ``models_dir/name`` first, then ``bundled_dir/name``."""
    check_name(name)
    for folder in (Path(models_dir), Path(bundled_dir)):
        candidate = folder / name
        if not os.path.lexists(candidate):
            continue
        if not _inside(candidate, folder):
            raise CheckpointNameError(f"checkpoint {name!r} in {folder} leads outside that folder")
        for f in CHECKPOINT_FILES:
            if os.path.lexists(candidate / f) and not _inside(candidate / f, folder):
                raise CheckpointNameError(f"checkpoint {name!r}: {f} leads outside {folder}")
        if not is_checkpoint(candidate):
            raise CheckpointNameError(f"checkpoint {name!r} in {folder} lacks {' or '.join(CHECKPOINT_FILES)}")
        return candidate.resolve()
    raise CheckpointNameError(f"no checkpoint named {name!r} in {models_dir} or {bundled_dir}")


def list_checkpoints(models_dir: Path, bundled_dir: Path = BUNDLED_DIR) -> list[str]:
    """Names that resolve_checkpoint accepts, sorted, each once."""
    names = set()
    for folder in (Path(models_dir), Path(bundled_dir)):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if NAME_PATTERN.fullmatch(entry.name) and ".." not in entry.name and _inside(entry, folder) \
                    and is_checkpoint(entry):
                names.add(entry.name)
    return sorted(names)


def default_checkpoint_name(bundled_dir: Path = BUNDLED_DIR) -> str:
    """The bundled default: the name in ``bundled_dir/DEFAULT``, else the only bundled checkpoint."""
    marker = Path(bundled_dir) / DEFAULT_FILE
    if marker.is_file():
        return check_name(marker.read_text(encoding="utf-8").strip())
    names = [p.name for p in Path(bundled_dir).iterdir() if is_checkpoint(p)] if Path(bundled_dir).is_dir() else []
    if len(names) != 1:
        raise CheckpointNameError(f"no {DEFAULT_FILE} file in {bundled_dir} and {len(names)} checkpoints there; "
                                  f"pass --checkpoint NAME")
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
        if not self.models_dir.is_dir():
            return found
        for entry in self.models_dir.iterdir():
            try:
                check_name(entry.name)
                if _inside(entry, self.models_dir) and is_checkpoint(entry):
                    found[entry.name] = _signature(entry)
            except (CheckpointNameError, OSError):
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
