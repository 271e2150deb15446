"""Picks waiting for the server, kept in a JSON file so none is lost or sent twice.

Every pick is written here first (atomically: a temporary file in the same folder, fsync,
`os.replace`) and removed only when the server's `pick_ok` echoes its idempotency key, so a
crash, a dead server or a Blender restart only delays it. Re-sending is safe because the
server stores each idempotency key once. A pick the server refuses for good (an unknown
request, a bad index) moves to `failed` in the same file: kept for the user, never retried.
No bpy here: the caller passes the file path (the extension's user folder).
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

FORMAT_VERSION = 1
FILE_NAME = "outbox.json"


class OutboxError(RuntimeError):
    """The outbox file exists but cannot be read; it is left untouched for the user."""


class Outbox:
    """A list of pending picks and a list of refused ones, mirrored to one JSON file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.pending: list[dict] = []
        self.failed: list[dict] = []
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('version')!r}, expected {FORMAT_VERSION}")
            pending, failed = list(data["pending"]), list(data.get("failed", []))
            if not all(isinstance(p, dict) and isinstance(p.get("idempotency_key"), str) for p in pending):
                raise ValueError("a pending pick has no idempotency key")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise OutboxError(f"cannot read the pick outbox {self.path}: {exc}") from None
        self.pending, self.failed = pending, failed

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": FORMAT_VERSION, "pending": self.pending, "failed": self.failed}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def add(self, request_id: str, chosen: int | None, rejected: list[int], server: str = "") -> dict:
        """Persist a new pick with a fresh idempotency key and return it."""
        pick = {
            "idempotency_key": uuid.uuid4().hex,
            "request_id": request_id,
            "chosen": None if chosen is None else int(chosen),
            "rejected": [int(i) for i in rejected],
            "server": server,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.pending.append(pick)
        try:
            self._save()
        except OSError:
            self.pending.pop()
            raise
        return pick

    def _take(self, key: str) -> dict | None:
        for i, pick in enumerate(self.pending):
            if pick["idempotency_key"] == key:
                return self.pending.pop(i)
        return None

    def delivered(self, key: str) -> bool:
        """The server stored the pick with this key: drop it. False if it was not pending."""
        pick = self._take(key)
        if pick is None:
            return False
        self._save()
        return True

    def refused(self, key: str, reason: str) -> bool:
        """The server refused the pick for good: keep it under `failed` with the reason."""
        pick = self._take(key)
        if pick is None:
            return False
        self.failed.append({**pick, "error": reason})
        self._save()
        return True

    def __len__(self) -> int:
        return len(self.pending)
