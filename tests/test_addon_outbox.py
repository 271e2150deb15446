"""The pick outbox file: survives a restart, written atomically, refused picks kept, bad files untouched."""
from __future__ import annotations

import json

import pytest

from bpy_support import ROOT  # noqa: F401  (puts the repository root on sys.path)

from addon.outbox import Outbox, OutboxError


def test_picks_persist_until_delivered(tmp_path):
    path = tmp_path / "outbox.json"
    box = Outbox(path)
    first = box.add("req-1", 2, [0, 1, 3], server="tcp://127.0.0.1:5555")
    second = box.add("req-2", None, [0, 1])
    assert first["idempotency_key"] != second["idempotency_key"]
    restarted = Outbox(path)  # a new Blender session reads the same file
    assert [p["idempotency_key"] for p in restarted.pending] == [first["idempotency_key"], second["idempotency_key"]]
    assert restarted.pending[1]["chosen"] is None
    assert restarted.delivered(first["idempotency_key"]) and not restarted.delivered(first["idempotency_key"])
    assert [p["request_id"] for p in Outbox(path).pending] == ["req-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox.json"]  # no temporary files left


def test_refused_picks_are_kept_but_not_retried(tmp_path):
    box = Outbox(tmp_path / "outbox.json")
    key = box.add("req-9", 0, [1])["idempotency_key"]
    assert box.refused(key, "unknown_request: no stored result")
    again = Outbox(tmp_path / "outbox.json")
    assert len(again) == 0 and again.failed[0]["idempotency_key"] == key
    assert again.failed[0]["error"].startswith("unknown_request")


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99, "pending": []}),
                                     json.dumps({"version": 1, "pending": [{"chosen": 1}]})])
def test_an_unreadable_outbox_is_reported_and_left_alone(tmp_path, content):
    path = tmp_path / "outbox.json"
    path.write_text(content)
    with pytest.raises(OutboxError, match="cannot read the pick outbox"):
        Outbox(path)
    assert path.read_text() == content
