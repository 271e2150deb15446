"""Checkpoint names: where they live, which exist, and which changed (``serve.py --watch``).

A checkpoint is a directory holding ``model.safetensors`` and a ``config.json`` that
``server.model.checkpoint.read_config`` accepts. Names are
looked up first in the data folder's ``models/`` (fine-tuned checkpoints) and then among
the checkpoints bundled in ``server/checkpoints/``. A name is one plain path component:
no separators, no ``..``, nothing absolute, and a symlink that leads outside its folder is
refused, so a client's ``reload`` cannot reach any other file.

Every CLI's ``--checkpoint`` goes through :func:`locate_checkpoint`, which also takes
``default`` (the bundled default) and a folder path; ``serve.py`` then asks
:func:`serving_name` for the name and models folder to give the service.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DATA_DIR_NAME = "sopo-motion"
DEFAULT_NAME = "default"  # server/checkpoints/default/ is the bundled default ...
DEFAULT_FILE = "DEFAULT"  # ... unless it is absent and server/checkpoints/DEFAULT names another
CHECKPOINT_FILES = ("model.safetensors", "config.json")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class CheckpointNameError(ValueError):
    """A checkpoint name that is malformed, escapes its folder, or names nothing loadable."""


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/sopo-motion``, else ``~/.local/share/sopo-motion`` (``%LOCALAPPDATA%`` on Windows)."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / DATA_DIR_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / DATA_DIR_NAME


def default_models_dir(data_dir: Path | None = None) -> Path:
    """The models folder of a server whose data folder is ``data_dir`` (default: :func:`default_data_dir`)."""
    return Path(data_dir if data_dir is not None else default_data_dir()) / "models"


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


def _named(name: str, folders: tuple[Path, ...]) -> Path | None:
    """``folder/name`` in the first folder that has it (checked), else None."""
    for folder in folders:
        candidate = folder / name
        if not os.path.lexists(candidate):
            continue
        problem = _problem(candidate, folder)
        if problem:
            raise CheckpointNameError(f"checkpoint {name!r} in {folder} {problem}")
        return candidate.resolve()
    return None


def resolve_checkpoint(name: str, models_dir: Path, bundled_dir: Path = BUNDLED_DIR) -> Path:
    """The directory of checkpoint ``name``: ``models_dir/name`` first, then ``bundled_dir/name``."""
    check_name(name)
    found = _named(name, (Path(models_dir), Path(bundled_dir)))
    if found is None:
        raise CheckpointNameError(f"no checkpoint named {name!r} in {models_dir} or {bundled_dir}")
    return found


def _looks_like_path(spec: str) -> bool:
    return any(sep and sep in spec for sep in ("/", os.sep, os.altsep)) or spec.startswith(("~", "."))


def locate_checkpoint(spec: str | os.PathLike | None, models_dir: Path | None = None,
                      bundled_dir: Path = BUNDLED_DIR) -> Path:
    """The checkpoint folder that ``--checkpoint SPEC`` means, resolved; raises CheckpointNameError naming where
    it looked.

    SPEC is, in this order: None or ``default`` (a checkpoint named ``default``, else the bundled default), a
    name in ``models_dir`` (default: :func:`default_models_dir`), a bundled name (``server/checkpoints/``), or
    a folder path (anything with a slash, ``~`` or a leading dot; a bare name that is none of the above but a
    checkpoint folder in the current directory also counts).
    """
    models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
    bundled_dir = Path(bundled_dir)
    spec = DEFAULT_NAME if spec is None else os.fspath(spec)
    if not spec.strip():
        raise CheckpointNameError("empty checkpoint name; give a name, 'default', or a checkpoint folder")
    if _looks_like_path(spec):
        return _folder(Path(spec).expanduser())
    if NAME_PATTERN.fullmatch(spec) and ".." not in spec:
        found = _named(spec, (models_dir, bundled_dir))
        if found is None and spec == DEFAULT_NAME:
            found = _named(default_checkpoint_name(bundled_dir), (bundled_dir,))
        if found is not None:
            return found
    if Path(spec).is_dir():
        return _folder(Path(spec))
    names = list_checkpoints(models_dir, bundled_dir)
    raise CheckpointNameError(
        f"no checkpoint {spec!r}: not a name in the models folder {models_dir} or among the bundled checkpoints "
        f"in {bundled_dir} (known: {', '.join(names) or 'none'}), not 'default', and not a checkpoint folder")


def _folder(path: Path) -> Path:
    """A checkpoint folder given as a path, resolved, or CheckpointNameError saying what is wrong with it."""
    if not path.is_dir():
        raise CheckpointNameError(f"checkpoint folder {path} does not exist")
    if not is_checkpoint(path):
        raise CheckpointNameError(f"{path} is not a motion checkpoint ({' and '.join(CHECKPOINT_FILES)} in this "
                                  f"code's format)")
    return path.resolve()


def serving_name(spec: str | None, models_dir: Path, bundled_dir: Path = BUNDLED_DIR,
                 models_given: bool = False) -> tuple[str | None, Path]:
    """(checkpoint name, models folder) under which a server serves ``--checkpoint SPEC``.

    Names and checkpoints inside ``models_dir`` or ``bundled_dir`` keep that folder. A folder elsewhere is
    served by its folder name from its parent, which becomes the models folder (``reload`` and ``--watch``
    then use it) unless the user chose the models folder (``models_given``), where it is an error.
    """
    models_dir = Path(models_dir)
    if spec is None:
        return None, models_dir
    path = locate_checkpoint(spec, models_dir, bundled_dir)
    if _named(path.name, (models_dir, bundled_dir)) == path:
        return path.name, models_dir
    if models_given:
        raise CheckpointNameError(f"checkpoint folder {path} is outside the models folder {models_dir}; copy it "
                                  f"there, or leave out --models to serve it from {path.parent}")
    return path.name, path.parent


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
