"""generate.py end to end on the tiny checkpoint (.npz + .bvh per candidate and a preview), in-process and through a
real server (request id, --pick into the picks DB), and bench/latency.py."""
from __future__ import annotations

import json
import re

import numpy as np
import torch

from server.data.bvh import bvh_to_motion, read_bvh
from server.generate import main
from server.service.client import MotionClient
from server.service.picks import PicksStore, export_preferences
from server.service.server_process import ServerProcess
from shared import protocol as P
from shared.motion import Motion, forward_kinematics


def test_generate_writes_npz_bvh_and_preview(tiny_checkpoint, tmp_path, capsys):
    rc = main(["a person jumps forward", "-n", "2", "--seconds", "1.5", "--seed", "1", "--out", str(tmp_path),
               "--checkpoint", str(tiny_checkpoint)])
    assert rc == 0
    npz = sorted(tmp_path.glob("*.npz"))
    bvh = sorted(tmp_path.glob("*.bvh"))
    assert [p.name for p in npz] == ["a_person_jumps_forward_0.npz", "a_person_jumps_forward_1.npz"]
    assert len(bvh) == 2 and (tmp_path / "a_person_jumps_forward.png").stat().st_size > 1000
    m = Motion.load(npz[0])
    assert m.num_frames == 30 and m.fps == 20.0
    back = bvh_to_motion(read_bvh(bvh[0]))
    assert back.num_frames == 30
    assert np.allclose(back.positions(), m.positions(), atol=1e-3)
    # same seed, same files
    main(["a person jumps forward", "-n", "2", "--seconds", "1.5", "--seed", "1", "--out", str(tmp_path / "again"),
          "--checkpoint", str(tiny_checkpoint), "--no-preview"])
    assert Motion.load(tmp_path / "again" / npz[0].name).allclose(m, atol=1e-6)
    assert "seed 1" in capsys.readouterr().out


def test_generate_bad_input_exits_with_message(tiny_checkpoint, tmp_path, capsys):
    assert main(["walk", "--seconds", "0", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)]) == 2
    assert "seconds" in capsys.readouterr().err
    assert main(["", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path)]) == 2
    assert main(["walk", "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_generate_through_a_running_server_then_pick_from_the_shell(tiny_checkpoint, tmp_path, capsys):
    """serve.py given a checkpoint folder; generate.py --server writes the same files as in-process, prints the
    request id, and --pick / --request ID --pick none land in the server's picks DB."""
    ask = ["a person walks forward", "-n", "3", "--seconds", "1", "--steps", "2", "--seed", "5", "--no-preview"]
    assert main([*ask, "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "here")]) == 0
    capsys.readouterr()
    data = tmp_path / "data"
    with ServerProcess(data, "--checkpoint", str(tiny_checkpoint)) as server:
        assert main([*ask, "--server", server.endpoint, "--out", str(tmp_path / "there"), "--pick", "1"]) == 0
        out = capsys.readouterr().out
        request_id = re.search(r"^request ([0-9a-f]+)$", out, re.M).group(1)
        assert f"pick stored: candidate 1 for request {request_id}" in out and "tiny-mld: 3 x 1.00 s" in out
        for k in range(3):
            there = Motion.load(tmp_path / "there" / f"a_person_walks_forward_{k}.npz")
            assert there.allclose(Motion.load(tmp_path / "here" / f"a_person_walks_forward_{k}.npz"), atol=1e-4)
            assert (tmp_path / "there" / f"a_person_walks_forward_{k}.bvh").is_file()

        # later, from another shell: "none are good" for the same request; sent twice, stored once
        again = ["--server", server.endpoint, "--request", request_id, "--pick", "none"]
        assert main(again) == 0 and main(again) == 0
        out = capsys.readouterr().out
        assert out.count("pick stored: none are good") == 2 and out.count("(already stored before)") == 1

        # the limits: generate.py refuses with the server's own words
        assert main(["walk", "-n", "9", "--server", server.endpoint]) == 2
        remote = capsys.readouterr().err.strip()
        assert main(["walk", "-n", "9", "--checkpoint", str(tiny_checkpoint)]) == 2
        assert capsys.readouterr().err.strip() == remote
        with MotionClient(server.endpoint, timeout=30) as client:   # what the server says to a client that sends it
            client.send_frames([json.dumps({"v": P.PROTOCOL_VERSION, "type": "generate", "id": "x", "prompt": "walk",
                                            "n": 9}).encode()])
            reply = client.receive(30)
        assert remote == f"generate.py: {reply.fields['code']}: {reply.fields['message']}"

    with PicksStore(data / "picks.db") as store:
        assert store.count("picks") == 2
        stored = store.get_result(request_id)
    np.testing.assert_array_equal(stored.rotations[1], Motion.load(tmp_path / "there" /
                                                                   "a_person_walks_forward_1.npz").rotations)
    every = export_preferences(data / "picks.db", latest_per_request=False)
    assert [(r.request_id, r.chosen is not None, len(r.rejected)) for r in every] == [
        (request_id, True, 2), (request_id, False, 3)]
    assert every[0].chosen.allclose(Motion.load(tmp_path / "there" / "a_person_walks_forward_1.npz"), atol=1e-6)


def test_bundled_default_checkpoint_generates(tmp_path):
    import pytest

    from server.model.inference import GenerationRequest, MotionGenerator, default_checkpoint_dir

    folder = default_checkpoint_dir()
    if not (folder / "config.json").is_file():
        pytest.skip(f"no bundled default checkpoint at {folder}")
    assert sum(f.stat().st_size for f in folder.iterdir()) < 30 * 2 ** 20
    gen = MotionGenerator.load(folder, device="cpu")
    [(rot, trans)] = gen.generate([GenerationRequest("a person walks forward", n=1, seconds=2, seed=0)])
    assert rot.shape == (1, 40, 22, 4) and np.isfinite(trans).all()


def test_bench_latency_prints_one_json_line_per_setting(tiny_checkpoint, capsys):
    from server.bench import latency as bench_latency

    threads = torch.get_num_threads()
    try:
        rc = bench_latency.main(["--checkpoint", str(tiny_checkpoint), "--n", "1", "2", "--seconds", "1",
                                 "--steps", "2", "--threads", "1", "--repeats", "1"])
    finally:
        torch.set_num_threads(threads)  # main() sets the process-wide thread count
    assert rc == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # stdout holds JSON lines only
    assert [(r["n"], r["seconds"], r["steps"]) for r in rows] == [(1, 1.0, 2), (2, 1.0, 2)]
    assert all(r["backbone"] == "mld" and r["default"] is False and r["device"] == "cpu" and r["params_millions"] > 0
               and 0 < r["min_s"] <= r["median_s"] for r in rows)


def test_generate_continues_a_motion_and_loops_here_and_through_a_server(tiny_checkpoint, tmp_path, capsys):
    """--start-pose continues an earlier result from its last frame, --loop closes the cycle, on both paths;
    --no-foot-cleanup is carried to the server too."""
    first = ["a person walks forward", "-n", "1", "--seconds", "1", "--steps", "2", "--seed", "3", "--no-preview"]
    assert main([*first, "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "first")]) == 0
    source = Motion.load(tmp_path / "first" / "a_person_walks_forward_0.npz")
    then = ["a person turns left", "-n", "2", "--seconds", "1.5", "--steps", "2", "--seed", "4", "--no-preview",
            "--start-pose", str(tmp_path / "first" / "a_person_walks_forward_0.npz"), "--loop"]
    assert main([*then, "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "here")]) == 0
    with ServerProcess(tmp_path / "data", "--checkpoint", str(tiny_checkpoint)) as server:
        assert main([*then, "--server", server.endpoint, "--out", str(tmp_path / "there")]) == 0
        assert main([*then, "--no-foot-cleanup", "--server", server.endpoint, "--out", str(tmp_path / "raw")]) == 0
    start = forward_kinematics(source.rotations[-1:], source.translation[-1:])[0]
    for where in ("here", "there", "raw"):
        for k in range(2):
            motion = Motion.load(tmp_path / where / f"a_person_turns_left_{k}.npz")
            joints = forward_kinematics(motion.rotations[:1], motion.translation[:1])[0]
            assert np.abs(joints - start).max() < 0.02, where      # starts where the first motion ended
    here = Motion.load(tmp_path / "here" / "a_person_turns_left_0.npz")
    assert here.allclose(Motion.load(tmp_path / "there" / "a_person_turns_left_0.npz"), atol=1e-4)
    assert main([*then[:-3], "--start-pose", str(tmp_path / "missing.npz"), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "missing.npz" in capsys.readouterr().err
