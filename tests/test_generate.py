"""generate.py end to end on the tiny checkpoint (.npz + .bvh per candidate and a preview), and bench_latency.py."""
from __future__ import annotations

import json

import numpy as np
import torch

from server.data.bvh import bvh_to_motion, read_bvh
from server.generate import main
from shared.motion import Motion


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
