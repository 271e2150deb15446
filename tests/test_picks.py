"""server/service/picks.py on real SQLite files: results, idempotent picks, migrations, export, kill -9."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from server.service.picks import (SCHEMA_VERSION, PickError, PicksStore, StoreError, export_preferences, migrate,
                          schema_version)
from shared.motion import Motion

REPO = Path(__file__).resolve().parent.parent


def _candidates(n=3, t=6, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, t, 22, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q, rng.normal(size=(n, t, 3)).astype(np.float32)


def _save(store, request_id="r1", n=3, prompt="a person waves", seed=0):
    rot, trans = _candidates(n, seed=seed)
    store.save_result(request_id, prompt, {"n": n, "seconds": 0.3, "steps": 10}, "tiny@1", 42, rot, trans, 20.0)
    return rot, trans


def test_store_settings_and_result_round_trip(tmp_path):
    with PicksStore(tmp_path / "p.db") as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL
        assert schema_version(store._conn) == SCHEMA_VERSION
        rot, trans = _save(store)
        got = store.get_result("r1")
        assert got.prompt == "a person waves" and got.model_id == "tiny@1" and got.seed == 42
        assert got.params == {"n": 3, "seconds": 0.3, "steps": 10} and got.n == 3 and got.fps == 20.0
        np.testing.assert_array_equal(got.rotations, rot)
        np.testing.assert_array_equal(got.translation, trans)
        assert store.get_result("missing") is None
        with pytest.raises(PickError) as info:
            _save(store)
        assert info.value.code == "duplicate_id"
        with pytest.raises(PickError):
            store.save_result("r2", "p", {}, "m", None, rot[:, :, :21], trans, 20.0)


def test_picks_are_idempotent_and_checked(tmp_path):
    with PicksStore(tmp_path / "p.db") as store:
        _save(store)
        first = store.record_pick("k1", "r1", 2)
        again = store.record_pick("k1", "r1", 2)
        assert not first.duplicate and again.duplicate and again.pick_id == first.pick_id
        assert store.count("picks") == 1
        none_good = store.record_pick("k2", "r1", None)
        assert not none_good.duplicate
        rows = store._conn.execute("SELECT chosen, rejected FROM picks ORDER BY id").fetchall()
        assert rows == [(2, "[0, 1]"), (None, "[0, 1, 2]")]   # rejected defaults to every other candidate
        store.record_pick("k3", "r1", 0, rejected=[1])
        for args, code in [(("k4", "nope", 0), "unknown_request"), (("k4", "r1", 3), "bad_index"),
                           (("k4", "r1", 0, [5]), "bad_index"), (("k4", "r1", 0, [0]), "bad_index"),
                           (("k1", "r1", 1), "duplicate_key")]:
            with pytest.raises(PickError) as info:
                store.record_pick(*args)
            assert info.value.code == code
        assert store.pick_keys() == ["k1", "k2", "k3"]


def test_concurrent_threads_share_a_store(tmp_path):
    with PicksStore(tmp_path / "p.db") as store:
        _save(store)
        errors = []

        def worker(t):
            try:
                for i in range(20):
                    store.record_pick(f"t{t}-{i % 10}", "r1", i % 10 % 3)   # every key sent twice
                    if t == 0:
                        _save(store, f"extra{i}", n=1)
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert store.count("picks") == 40 and store.count("results") == 21


def test_migration_from_schema_v1_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, target=1) == 1
    rot, trans = _candidates(2)
    conn.execute("INSERT INTO results (request_id, prompt, params, model_id, seed, n, frames, rotations, "
                 "translation, created) VALUES ('old', 'kick', '{}', 'm0', 1, 2, 6, ?, ?, 0)",
                 (rot.tobytes(), trans.tobytes()))
    conn.execute("INSERT INTO picks (idempotency_key, request_id, chosen, rejected, created) "
                 "VALUES ('k', 'old', 1, '[0]', 0)")
    assert [r[1] for r in conn.execute("PRAGMA table_info(picks)")] == \
        ["id", "idempotency_key", "request_id", "chosen", "rejected", "created"]
    conn.close()
    with PicksStore(path) as store:
        assert schema_version(store._conn) == SCHEMA_VERSION
        assert store.get_result("old").fps == 20.0
        assert store.record_pick("k", "old", 1, [0]).duplicate
        store.record_pick("k2", "old", 0, client="127.0.0.1")
        assert store._conn.execute("SELECT client FROM picks WHERE idempotency_key='k2'").fetchone()[0] \
            == "127.0.0.1"
    records = export_preferences(path)
    assert [r.prompt for r in records] == ["kick"]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    with PicksStore(path) as store:
        store._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError):
        PicksStore(path)


def test_export_preferences(tmp_path):
    path = tmp_path / "p.db"
    with PicksStore(path) as store:
        rot, trans = _save(store, "r1", n=3, prompt="wave")
        _save(store, "r2", n=2, prompt="jump", seed=1)
        _save(store, "r3", n=2, prompt="never picked", seed=2)
        store.record_pick("a", "r1", 0)
        store.record_pick("b", "r2", None)
        store.record_pick("c", "r1", 2, rejected=[1])   # a later pick revises r1
    latest = export_preferences(path)
    assert [(r.request_id, r.prompt) for r in latest] == [("r2", "jump"), ("r1", "wave")]
    jump, wave = latest
    assert jump.chosen is None and len(jump.rejected) == 2
    assert isinstance(wave.chosen, Motion) and wave.chosen.fps == 20.0 and wave.model_id == "tiny@1"
    np.testing.assert_allclose(wave.chosen.rotations, rot[2], atol=1e-6)
    np.testing.assert_array_equal(wave.chosen.translation, trans[2])
    assert len(wave.rejected) == 1
    np.testing.assert_allclose(wave.rejected[0].rotations, rot[1], atol=1e-6)
    assert wave.params["steps"] == 10 and wave.seed == 42
    assert len(export_preferences(path, latest_per_request=False)) == 3
    with pytest.raises(FileNotFoundError):
        export_preferences(tmp_path / "absent.db")


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from server.service.picks import PicksStore
    store = PicksStore(sys.argv[1])
    q = np.zeros((4, 3, 22, 4), np.float32); q[..., 0] = 1
    store.save_result("r", "walk", {}, "m", 0, q, np.zeros((4, 3, 3), np.float32), 20.0)
    print("ready", flush=True)
    i = 0
    while True:
        key = f"k{i}"
        store.record_pick(key, "r", i % 4)
        print(key, flush=True)           # the acknowledgement: only after the commit
        if i % 7 == 0:
            store.record_pick(key, "r", i % 4)   # a resend of an acknowledged pick
        i += 1
""")


def test_kill_9_during_a_stream_of_picks_loses_no_acknowledged_pick(tmp_path):
    path = tmp_path / "p.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    acked = []
    try:
        assert proc.stdout.readline().strip() == "ready"
        while len(acked) < 150:
            line = proc.stdout.readline()
            assert line, "writer died early"
            acked.append(line.strip())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with PicksStore(path) as store:
        keys = store.pick_keys()
    assert len(keys) == len(set(keys))                 # exactly once
    assert set(acked) <= set(keys)                     # every acknowledged pick survived
    assert len(keys) >= len(acked)
