"""The durable picks store: every generated result the server sent, and the artists' picks.

SQLite in WAL mode with ``synchronous=FULL``: a pick is acknowledged only after its
transaction has committed, and a resent pick (same idempotency key) is stored once.
The schema carries a version and migrates forward on open. ``export_preferences`` turns
the picks into preference records for ``finetune.py``.

One connection guarded by a lock, so the service's socket thread (picks) and its worker
thread (results) can share a store.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.motion import Motion
from shared.skeleton import NUM_JOINTS

SCHEMA_VERSION = 2

# Each entry upgrades the schema from version i to i + 1 (index 0: empty -> 1).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE results (
            request_id TEXT PRIMARY KEY,
            prompt TEXT NOT NULL,
            params TEXT NOT NULL,
            model_id TEXT NOT NULL,
            seed INTEGER,
            n INTEGER NOT NULL,
            frames INTEGER NOT NULL,
            rotations BLOB NOT NULL,
            translation BLOB NOT NULL,
            created REAL NOT NULL)""",
        """CREATE TABLE picks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            idempotency_key TEXT NOT NULL UNIQUE,
            request_id TEXT NOT NULL REFERENCES results(request_id),
            chosen INTEGER,
            rejected TEXT NOT NULL,
            created REAL NOT NULL)""",
    ),
    (
        # v2: the clip rate travels with each result; picks record who picked.
        "ALTER TABLE results ADD COLUMN fps REAL NOT NULL DEFAULT 20.0",
        "ALTER TABLE picks ADD COLUMN client TEXT",
        "CREATE INDEX picks_request ON picks(request_id)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


class StoreError(Exception):
    """The database cannot be used (corrupt rows, a schema newer than this code)."""


class PickError(ValueError):
    """A pick or result the store refuses; ``code`` is a protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StoredResult:
    request_id: str
    prompt: str
    params: dict[str, Any]
    model_id: str
    seed: int | None
    fps: float
    rotations: np.ndarray    # (n, T, 22, 4) float32
    translation: np.ndarray  # (n, T, 3) float32
    created: float

    @property
    def n(self) -> int:
        return int(self.rotations.shape[0])


@dataclass(frozen=True)
class PickOutcome:
    pick_id: int
    duplicate: bool  # True when this idempotency key was already stored


@dataclass(frozen=True)
class PreferenceRecord:
    """One artist judgement for fine-tuning: a prompt, the chosen motion (or None) and the rejected ones."""

    request_id: str
    prompt: str
    chosen: Motion | None
    rejected: list[Motion]
    model_id: str
    params: dict[str, Any]
    seed: int | None
    created: float


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"{path}: could not switch to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version; 0 for an empty database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target``, one transaction per step; returns the final version."""
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StoreError(f"database schema v{current} is newer than this server's v{SCHEMA_VERSION}")
    for version in range(current, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(current, target)


class PicksStore:
    """Results and picks in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(self.path)
        self._lock = threading.Lock()
        with self._lock:
            migrate(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "PicksStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- results ------------------------------------------------------------------------

    def save_result(self, request_id: str, prompt: str, params: dict[str, Any], model_id: str,
                    seed: int | None, rotations: np.ndarray, translation: np.ndarray, fps: float) -> None:
        """Store one sent result (committed before returning); a reused request id is an error."""
        rotations = np.ascontiguousarray(rotations, dtype="<f4")
        translation = np.ascontiguousarray(translation, dtype="<f4")
        n, frames = rotations.shape[:2]
        if rotations.shape != (n, frames, NUM_JOINTS, 4) or translation.shape != (n, frames, 3):
            raise PickError("bad_shape", f"result arrays {rotations.shape} and {translation.shape} "
                            f"are not (n, T, {NUM_JOINTS}, 4) and (n, T, 3)")
        row = (request_id, prompt, json.dumps(params, sort_keys=True), model_id, seed, n, frames,
               rotations.tobytes(), translation.tobytes(), time.time(), float(fps))
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO results (request_id, prompt, params, model_id, seed, n, frames, "
                    "rotations, translation, created, fps) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row)
            except sqlite3.IntegrityError:
                raise PickError("duplicate_id", f"request id {request_id!r} already has a stored result") from None

    def get_result(self, request_id: str) -> StoredResult | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT request_id, prompt, params, model_id, seed, n, frames, rotations, translation, "
                "created, fps FROM results WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else _result_from_row(row)

    def count(self, table: str) -> int:
        if table not in ("results", "picks"):
            raise ValueError(f"unknown table {table!r}")
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # --- picks --------------------------------------------------------------------------

    def record_pick(self, idempotency_key: str, request_id: str, chosen: int | None,
                    rejected: list[int] | None = None, client: str | None = None) -> PickOutcome:
        """Store a pick durably and return only after the commit.

        ``chosen=None`` records "none are good"; ``rejected=None`` means every candidate
        other than ``chosen``. A key seen before with the same pick returns
        ``duplicate=True``; with a different pick it raises ``PickError('duplicate_key')``.
        """
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                n_row = conn.execute("SELECT n FROM results WHERE request_id = ?", (request_id,)).fetchone()
                if n_row is None:
                    raise PickError("unknown_request", f"no stored result has request id {request_id!r}")
                rejected = _check_indices(int(n_row[0]), chosen, rejected)
                previous = conn.execute(
                    "SELECT id, request_id, chosen, rejected FROM picks WHERE idempotency_key = ?",
                    (idempotency_key,)).fetchone()
                if previous is not None:
                    if (previous[1], previous[2], json.loads(previous[3])) != (request_id, chosen, rejected):
                        raise PickError("duplicate_key", f"idempotency key {idempotency_key!r} was used "
                                        f"for a different pick")
                    conn.execute("COMMIT")
                    return PickOutcome(int(previous[0]), duplicate=True)
                cursor = conn.execute(
                    "INSERT INTO picks (idempotency_key, request_id, chosen, rejected, created, client) "
                    "VALUES (?,?,?,?,?,?)",
                    (idempotency_key, request_id, chosen, json.dumps(rejected), time.time(), client))
                conn.execute("COMMIT")
                return PickOutcome(int(cursor.lastrowid), duplicate=False)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def pick_keys(self) -> list[str]:
        """Every stored idempotency key, in insertion order (repeats would show a bug)."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT idempotency_key FROM picks ORDER BY id")]


def _check_indices(n: int, chosen: int | None, rejected: list[int] | None) -> list[int]:
    if chosen is not None and not 0 <= chosen < n:
        raise PickError("bad_index", f"chosen index {chosen} is outside the result's {n} candidates")
    if rejected is None:
        return [i for i in range(n) if i != chosen]
    rejected = [int(i) for i in rejected]
    bad = [i for i in rejected if not 0 <= i < n]
    if bad:
        raise PickError("bad_index", f"rejected indices {bad} are outside the result's {n} candidates")
    if len(set(rejected)) != len(rejected) or chosen in rejected:
        raise PickError("bad_index", f"rejected {rejected} repeats an index or contains the chosen {chosen}")
    return rejected


def _result_from_row(row: tuple) -> StoredResult:
    (request_id, prompt, params, model_id, seed, n, frames, rot_blob, trans_blob, created, fps) = row
    rot_shape, trans_shape = (n, frames, NUM_JOINTS, 4), (n, frames, 3)
    if len(rot_blob) != 4 * int(np.prod(rot_shape)) or len(trans_blob) != 4 * int(np.prod(trans_shape)):
        raise StoreError(f"result {request_id!r}: stored arrays do not match shape {rot_shape}")
    return StoredResult(
        request_id=request_id, prompt=prompt, params=json.loads(params), model_id=model_id, seed=seed,
        fps=float(fps), rotations=np.frombuffer(rot_blob, dtype="<f4").reshape(rot_shape),
        translation=np.frombuffer(trans_blob, dtype="<f4").reshape(trans_shape), created=created)


def export_preferences(db_path: str | Path, latest_per_request: bool = True) -> list[PreferenceRecord]:
    """Preference records for fine-tuning, oldest first.

    With ``latest_per_request`` only an artist's last pick for each result counts (a later
    pick revises an earlier one); otherwise every stored pick is a record.
    """
    path = Path(db_path)
    if not path.exists():
        raise FileNotFoundError(f"no picks database at {path}")
    with PicksStore(path) as store, store._lock:
        rows = store._conn.execute(
            "SELECT p.id, p.request_id, p.chosen, p.rejected, p.created FROM picks p ORDER BY p.id").fetchall()
        if latest_per_request:
            latest = {r[1]: r for r in rows}
            rows = sorted(latest.values(), key=lambda r: r[0])
        results: dict[str, StoredResult] = {}
        for r in rows:
            if r[1] not in results:
                row = store._conn.execute(
                    "SELECT request_id, prompt, params, model_id, seed, n, frames, rotations, translation, "
                    "created, fps FROM results WHERE request_id = ?", (r[1],)).fetchone()
                results[r[1]] = _result_from_row(row)
    records = []
    for _, request_id, chosen, rejected, created in rows:
        res = results[request_id]

        def motion(i: int, res: StoredResult = res) -> Motion:
            return Motion(res.rotations[i].copy(), res.translation[i].copy(), res.fps)

        records.append(PreferenceRecord(
            request_id=request_id, prompt=res.prompt, chosen=None if chosen is None else motion(chosen),
            rejected=[motion(i) for i in json.loads(rejected)], model_id=res.model_id, params=res.params,
            seed=res.seed, created=created))
    return records
