"""server/service/service.py over real sockets on 127.0.0.1 with the real tiny checkpoint and real SQLite."""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from server.service.client import MotionClient, ServerError, ServerUnavailable
from server.service.picks import PicksStore
from server.service.security import InsecureBindError, make_client_keys, make_server_keys
from server.service.server_process import ServerProcess
from server.service.service import MotionService, ServiceConfig
from shared import protocol as P

FAST = {"steps": 2, "seconds": 1.0}


def _data_dir(root: Path, checkpoint: Path, names=("tiny",)) -> Path:
    for name in names:
        shutil.copytree(checkpoint, root / "models" / name)
    return root


class RunningService:
    """A MotionService on its own thread, bound to an ephemeral loopback port."""

    def __init__(self, **config):
        config.setdefault("bind", "tcp://127.0.0.1:*")
        config.setdefault("checkpoint", "tiny")
        config.setdefault("device", "cpu")
        self.service = MotionService(ServiceConfig(**config))
        self.thread = threading.Thread(target=self.service.run, name="test-service", daemon=True)
        self.thread.start()
        assert self.service.ready.wait(30) and self.service.endpoint, "service did not start"
        self.endpoint = self.service.endpoint

    def client(self, **kwargs) -> MotionClient:
        kwargs.setdefault("timeout", 30.0)
        return MotionClient(self.endpoint, **kwargs)

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    running = RunningService(data_dir=_data_dir(tmp_path_factory.mktemp("data"), Path(tiny_checkpoint)))
    yield running
    running.stop()


def test_hello_generate_progress_result_pick_round_trip(server):
    with server.client() as client:
        hello = client.hello("pytest")
        f = hello.fields
        assert f["protocol"] == P.PROTOCOL_VERSION and "tiny" in f["models"] and f["device"] == "cpu"
        assert f["skeleton"]["parents"][:3] == [-1, 0, 0] and len(f["skeleton"]["joints"]) == 22
        limits = P.Limits.from_dict(f["limits"])
        gen = server.service.model.generator
        assert limits.max_seconds <= gen.max_seconds and f["model"] == gen.model_id

        steps = []
        result = client.generate("a person walks forward", n=3, seconds=1.5, seed=11, steps=4,
                                 on_progress=lambda s, t: steps.append((s, t)))
        assert result.rotations.shape == (3, round(1.5 * gen.fps), 22, 4)
        assert result.translation.shape == (3, round(1.5 * gen.fps), 3)
        np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-3)
        assert (result.seed, result.steps, result.model, result.fps) == (11, 4, gen.model_id, gen.fps)
        assert steps and steps[-1][0] == steps[-1][1]

        # the result was stored before it was sent
        stored = server.service.store.get_result(result.request_id)
        np.testing.assert_array_equal(stored.rotations, result.rotations)
        assert stored.prompt == "a person walks forward" and stored.params["steps"] == 4

        # a resent generate (same id) gets the stored result back, not a second generation
        batches = server.service.stats["batches"]
        again = client.generate("a person walks forward", n=3, seconds=1.5, seed=11, steps=4,
                                request_id=result.request_id)
        np.testing.assert_array_equal(again.rotations, result.rotations)
        assert server.service.stats["batches"] == batches
        with pytest.raises(ServerError) as info:
            client.generate("something else", request_id=result.request_id, **FAST)
        assert info.value.code == P.DUPLICATE_ID

        ok = client.pick(result.request_id, 1, idempotency_key="pick-1")
        assert ok.type == "pick_ok" and ok.fields["duplicate"] is False
        assert client.pick(result.request_id, 1, idempotency_key="pick-1").fields["duplicate"] is True
        assert client.pick(result.request_id, None, [0, 1, 2]).fields["duplicate"] is False
        for args, code in [(("no-such-request", 0), P.UNKNOWN_REQUEST), ((result.request_id, 3), P.BAD_INDEX),
                           ((result.request_id, 0, None, "pick-1"), P.DUPLICATE_KEY)]:
            with pytest.raises(ServerError) as info:
                client.pick(*args)
            assert info.value.code == code
        with pytest.raises(ServerError) as info:
            client.generate("walk", model="not-loaded", **FAST)
        assert info.value.code == P.UNKNOWN_MODEL
        assert client.generate("walk", model="tiny", n=1, **FAST).rotations.shape[0] == 1
        batches = server.service.stats["batches"]
        client.send_frames([json.dumps({"v": 1, "type": "generate", "id": "long", "prompt": "walk",
                                        "seconds": 60.0}).encode()])
        reply = client.receive(10)
        assert reply.type == "error" and reply.fields["code"] == P.BAD_FIELD and "seconds" in reply.fields["message"]
        assert server.service.stats["batches"] == batches     # limits are checked before any work


def test_many_concurrent_clients_each_get_their_own_replies(server):
    clients, per_client = 16, 3
    replies: dict[tuple[int, int], object] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(clients)
    batches_before = server.service.stats["batches"]

    def run(c: int) -> None:
        try:
            with server.client() as client:
                start.wait()
                for r in range(per_client):
                    n = 1 + (c + r) % 3
                    seconds = 0.5 + 0.25 * ((c * per_client + r) % 4)
                    result = client.generate(f"client {c} request {r}: a person jumps", n=n, seconds=seconds,
                                             seed=c * 100 + r, steps=2)
                    replies[(c, r)] = (result, n, seconds)
                assert client.stray == 0          # nothing meant for another client arrived here
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert not failures, failures[:3]
    assert len(replies) == clients * per_client
    fps = server.service.model.generator.fps
    for (c, r), (result, n, seconds) in replies.items():
        assert result.seed == c * 100 + r                      # the reply answers this client's request
        assert result.rotations.shape[:2] == (n, round(seconds * fps))
        stored = server.service.store.get_result(result.request_id)
        assert stored.prompt.startswith(f"client {c} request {r}:")
    stats = server.service.stats
    assert stats["max_batch"] > 1                              # requests that arrived together were batched
    assert stats["batches"] - batches_before < clients * per_client


def test_cancel_running_and_queued_requests(server):
    with server.client() as a, server.client() as b:
        running = P.generate("a person dances slowly", n=8, seconds=server.service.model.limits.max_seconds,
                             steps=server.service.model.limits.max_steps)
        a.send(running)
        first = a.receive(30)
        assert first.type == "progress" and first.fields["request_id"] == running.id
        queued = P.generate("a person sits down", **FAST)
        b.send(queued)
        b.cancel(queued.id)
        a.cancel(running.id)
        replies = {}
        for client, msg in ((a, running), (b, queued)):
            while True:
                reply = client.receive(30)
                assert reply is not None, "no reply to a cancelled request"
                if reply.type != "progress":
                    replies[msg.id] = reply
                    break
        for msg in (running, queued):
            assert replies[msg.id].type == "error" and replies[msg.id].fields["code"] == P.CANCELLED
            assert server.service.store.get_result(msg.id) is None
        a.cancel("never-existed")                              # ignored: cancel has no reply
        assert a.hello().type == "hello_ok"


def _slow_checkpoint(root: Path, checkpoint: Path) -> Path:
    """A copy of the tiny checkpoint allowed 1,000 sampling steps: a request that takes seconds, not 0.1 s."""
    folder = root / "models" / "slow"
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model"]["max_steps"] = config["model"]["train_timesteps"]
    (folder / "config.json").write_text(json.dumps(config))
    return root


def test_a_vanished_client_costs_nothing(tmp_path, tiny_checkpoint):
    running = RunningService(data_dir=_slow_checkpoint(tmp_path, Path(tiny_checkpoint)), checkpoint="slow")
    try:
        limits = running.service.model.limits
        gone = running.client()
        gone.send(P.generate("a person runs in circles", n=limits.max_n, seconds=limits.max_seconds,
                             steps=limits.max_steps))
        assert gone.receive(30).type == "progress"
        gone.close()                                               # vanishes mid-request
        deadline = time.monotonic() + 60
        while running.service.stats["stopped_batches"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.service.stats["stopped_batches"] == 1       # the work was abandoned
        assert running.service.stats["batches"] == 1
        with running.client() as client:
            assert client.generate("a person waves", n=1, **FAST).rotations.shape[0] == 1
    finally:
        running.stop()


def _malformed(valid_result: list[bytes]) -> list[tuple[list[bytes], str]]:
    def h(**header):
        return json.dumps({"v": 1, "type": "generate", "id": "bad-1", "prompt": "walk", **header}).encode()
    frames2 = [{"name": "x", "dtype": "float32", "shape": [2]}]
    return [
        ([os.urandom(64)], P.BAD_JSON),
        ([b"\x00" * 10, b"more", b"frames"], P.BAD_JSON),
        ([b"[]"], P.BAD_HEADER),
        ([h(v=99)], P.BAD_VERSION),
        ([h(type="explode")], P.UNKNOWN_TYPE),
        ([h(type="result")], P.UNKNOWN_TYPE),                  # a server-only type sent to the server
        ([h(), b"unannounced frame"], P.BAD_FRAMES),
        ([h(frames=frames2)], P.BAD_FRAMES),
        ([h(frames=frames2), np.zeros(2, np.float32).tobytes()], P.BAD_FRAMES),   # generate takes no arrays
        ([h(frames=[{"name": "x", "dtype": "complex128", "shape": [1]}]), b"\x00" * 16], P.BAD_DTYPE),
        ([h(frames=[{"name": "x", "dtype": "float32", "shape": [3]}]), b"\x00" * 5], P.BAD_SHAPE),
        ([h(frames=[{"name": "x", "dtype": "float32", "shape": [2**40, 2**40]}]), b""], P.TOO_LARGE),
        ([h(frames=frames2), np.array([np.nan, 1], np.float32).tobytes()], P.NOT_FINITE),
        ([h(n=1000)], P.BAD_FIELD),
        ([h(prompt="x" * 100_000)], P.TOO_LARGE),
        ([h(seconds=float("nan"))], P.NOT_FINITE),
        ([valid_result[0][:-1]] + valid_result[1:], P.BAD_JSON),
        (valid_result, P.UNKNOWN_TYPE),
    ]


def test_malformed_input_gets_errors_and_the_server_keeps_serving(server):
    rot = np.zeros((1, 2, 22, 4), np.float32)
    valid_result = [bytes(f) for f in P.result("r", rot, np.zeros((1, 2, 3), np.float32), 20.0, "m").encode()]
    with server.client(timeout=10, retries=0) as client:
        for frames, code in _malformed(valid_result):
            client.send_frames(frames)
            reply = client.receive(10)
            assert reply is not None and reply.type == "error", frames[0][:80]
            assert reply.fields["code"] == code, (frames[0][:80], reply.fields)
        assert client.hello().type == "hello_ok"
    # a frame beyond ZMQ_MAXMSGSIZE: ZeroMQ drops that connection; the server serves everyone else
    with server.client(timeout=5, retries=0) as rude:
        rude.send_frames([b"x" * (server.service.config.max_inbound_bytes + 1)])
        assert rude.receive(1) is None
    with server.client() as client:
        assert client.hello().type == "hello_ok"


def test_non_loopback_bind_without_keys_is_refused(tmp_path):
    for bind in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.10:5555", "tcp://example.com:1"):
        with pytest.raises(InsecureBindError):
            MotionService(ServiceConfig(bind=bind, data_dir=tmp_path))
    from server.serve import main
    assert main(["--bind", "tcp://0.0.0.0:5555", "--data", str(tmp_path), "--log-level", "ERROR"]) == 2


def test_reload_during_traffic_and_checkpoint_names_stay_inside(tmp_path, tiny_checkpoint):
    data = _data_dir(tmp_path / "data", Path(tiny_checkpoint), names=("tiny", "tiny2"))
    config_file = data / "models" / "tiny2" / "config.json"
    config = json.loads(config_file.read_text())
    config["name"] = "tiny2-model"                     # a distinct model id, to tell old from new
    config_file.write_text(json.dumps(config))
    outside = tmp_path / "outside"
    shutil.copytree(tiny_checkpoint, outside)
    os.symlink(outside, data / "models" / "escape")
    (data / "models" / "half").mkdir()
    running = RunningService(data_dir=data)
    old_id = running.service.model.generator.model_id
    try:
        results, failures = [], []

        def traffic(c: int) -> None:
            try:
                with running.client() as client:
                    for r in range(4):
                        results.append(client.generate(f"traffic {c}.{r}", n=2, seed=r, **FAST))
            except BaseException as exc:  # surfaced below
                failures.append(exc)

        with running.client() as admin, running.client() as slow_client:
            limits = running.service.model.limits
            slow = P.generate("a person does a long dance", n=8, seconds=limits.max_seconds, steps=limits.max_steps)
            slow_client.send(slow)
            assert slow_client.receive(30).type == "progress"          # in flight on the old model
            threads = [threading.Thread(target=traffic, args=(c,)) for c in range(4)]
            for t in threads:
                t.start()
            reply = admin.reload("tiny2", timeout=60)
            assert reply.type == "reload_ok" and reply.fields == {
                "request_id": reply.fields["request_id"], "checkpoint": "tiny2", "model": "tiny2-model"}
            while (slow_reply := slow_client.receive(60)).type == "progress":
                pass
            assert slow_reply.type == "result" and slow_reply.fields["model"] == old_id
            for t in threads:
                t.join(timeout=100)
            assert not failures, failures[:3]
            assert len(results) == 16 and {r.model for r in results} <= {old_id, "tiny2-model"}
            assert admin.generate("after the reload", n=1, **FAST).model == "tiny2-model"
            assert admin.hello().fields["model"] == "tiny2-model"
            for bad in ("../tiny", "/etc", "escape", "half", "missing", "a/b", ".."):
                with pytest.raises(ServerError) as info:
                    admin.request(P.Message("reload", P.new_id(), {"checkpoint": bad}))
                assert info.value.code == P.BAD_CHECKPOINT, bad
            assert running.service.model.checkpoint == "tiny2"
            assert "escape" not in admin.hello().fields["models"]
    finally:
        running.stop()


def test_watch_loads_a_new_checkpoint(tmp_path, tiny_checkpoint):
    data = _data_dir(tmp_path / "data", Path(tiny_checkpoint))
    running = RunningService(data_dir=data, watch=True, watch_interval_s=0.1)
    try:
        shutil.copytree(tiny_checkpoint, data / "models" / "fresh")
        deadline = time.monotonic() + 30
        while running.service.model.checkpoint != "fresh" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.service.model.checkpoint == "fresh"
        with running.client() as client:
            assert client.generate("a person bows", n=1, **FAST).rotations.shape[0] == 1
    finally:
        running.stop()


def test_curve_keys_admit_only_authorised_clients(tmp_path, tiny_checkpoint):
    keys = tmp_path / "keys"
    server_public = make_server_keys(keys)
    _, secret = make_client_keys(keys, "artist")
    stranger_keys = tmp_path / "stranger"
    _, stranger_secret = make_client_keys(stranger_keys, "stranger")   # never authorised on this server
    running = RunningService(data_dir=_data_dir(tmp_path / "data", Path(tiny_checkpoint)), keys_dir=keys)
    try:
        with running.client(server_key=server_public, client_secret=secret) as client:
            assert client.hello().type == "hello_ok"
            assert client.generate("a person claps", n=1, **FAST).rotations.shape[0] == 1
        with running.client(server_key=server_public, client_secret=stranger_secret, timeout=1,
                            retries=0) as stranger:
            with pytest.raises(ServerUnavailable):
                stranger.hello()
        with running.client(timeout=1, retries=0) as plain:
            with pytest.raises(ServerUnavailable):
                plain.hello()
    finally:
        running.stop()


@pytest.mark.slow
def test_serve_py_serves_the_bundled_default(tmp_path):
    """The README's command: ``python server/serve.py`` with no --checkpoint loads server/checkpoints' default."""
    with ServerProcess(tmp_path / "data") as server, MotionClient(server.endpoint, timeout=120) as client:
        hello = client.hello().fields
        assert hello["models"] and hello["model"]
        result = client.generate("a person walks forward", n=2, seconds=2.0)
        assert result.rotations.shape[0] == 2 and result.model == hello["model"]
    assert server.proc.returncode == 0, server.log()[-2000:]


@pytest.mark.slow
def test_kill_9_of_the_server_during_picks_loses_no_acknowledged_pick(tmp_path, tiny_checkpoint):
    data = _data_dir(tmp_path / "data", Path(tiny_checkpoint))
    server = ServerProcess(data, "--checkpoint", "tiny")
    acked, sent = [], []
    try:
        with MotionClient(server.endpoint, timeout=60) as client:
            assert client.hello().type == "hello_ok"
            result = client.generate("a person walks forward", n=4, **FAST)
            client.timeout, client.retries = 10.0, 0

            def kill_mid_stream() -> None:   # after 30 acknowledged picks, while the next is in flight
                deadline = time.monotonic() + 60
                while len(acked) < 30 and time.monotonic() < deadline:
                    time.sleep(0.002)
                server.kill9()

            killer = threading.Thread(target=kill_mid_stream)
            killer.start()
            try:
                for i in range(100_000):
                    key = f"pick-{i}"
                    sent.append(key)
                    client.pick(result.request_id, i % 4, idempotency_key=key)
                    acked.append(key)
            except ServerUnavailable:
                pass
            killer.join()
        assert server.proc.returncode == -signal.SIGKILL, server.log()[-2000:]
        assert len(acked) >= 30, (len(acked), server.log()[-2000:])
    finally:
        server.stop()
    with PicksStore(data / "picks.db") as store:
        keys = store.pick_keys()
    assert len(keys) == len(set(keys)) and set(acked) <= set(keys) <= set(sent)
    # restarted, the server acknowledges each resent pick and stores it once
    with ServerProcess(data, "--checkpoint", "tiny") as server, MotionClient(server.endpoint, timeout=30) as client:
        for key in sent[-5:] + acked[:5]:
            reply = client.pick(result.request_id, int(key.split("-")[1]) % 4, idempotency_key=key)
            assert reply.fields["duplicate"] is (key in keys), (key, reply.fields)
    assert server.proc.returncode == 0, server.log()[-2000:]
    with PicksStore(data / "picks.db") as store:
        keys_after = store.pick_keys()
    assert len(keys_after) == len(set(keys_after)) and set(sent[-5:]) <= set(keys_after)
