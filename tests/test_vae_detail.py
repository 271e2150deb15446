"""server/bench/vae_detail.py: the band split it measures with, and one run on the tiny model and corpus."""
from __future__ import annotations

import json

import numpy as np
import pytest

from server.bench.vae_detail import DetailError, band_power, main, run


def test_band_power_splits_at_the_cutoff_and_adds_up_to_the_variance():
    t = np.arange(200) / 20.0
    slow = np.sin(2 * np.pi * 0.75 * t)[:, None] * np.ones((1, 3))
    fast = 0.5 * np.sin(2 * np.pi * 4.0 * t)[:, None] * np.ones((1, 3))
    lo, hi = band_power(slow, 20.0, 2.0)
    assert hi < 0.01 * lo
    lo, hi = band_power(fast, 20.0, 2.0)
    assert lo < 0.01 * hi
    assert hi == pytest.approx(3 * 0.5 ** 2 / 2, rel=0.05)  # three series of variance 0.125
    lo, hi = band_power(slow + fast + 0.3 * t[:, None], 20.0, 2.0)  # a linear trend does not count
    assert lo == pytest.approx(1.5, rel=0.1) and hi == pytest.approx(0.375, rel=0.05)
    with pytest.raises(DetailError):
        band_power(np.zeros((3, 2)), 20.0, 2.0)


def test_run_on_the_tiny_model(tiny_checkpoint, tiny_corpus, tmp_path):
    lines = []
    result = run(tiny_checkpoint, tiny_corpus, clips=3, guidances=[1.0], steps=[2], n=1, seeds=1, seconds=2.0,
                 cutoff=2.0, log=lines.append)
    wave = result["vae"]["wave"]["wrists"]  # the tiny corpus has waves, no punches or kicks
    assert wave["clips"] == 3 and wave["real_hf_cm2"] > 0 and np.isfinite(wave["hf_kept"])
    assert 0 <= wave["hf_kept_short"] and np.isfinite(wave["hf_error"])
    assert set(result["sampling"]) == {"wave"} and "g1_s2" in result["sampling"]["wave"]
    assert "feet" in result and result["feet"]["real"]["clips"] > 0
    text = "\n".join(lines)
    assert "(a) VAE" in text and "(b) High-frequency" in text and "no punch clips" in text


def test_cli_writes_json_and_fails_in_one_line(tiny_checkpoint, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "detail.json"
    assert main(["--checkpoint", str(tiny_checkpoint), "--corpus", str(tiny_corpus), "--clips", "2", "--steps",
                 "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["sampling"] == {} and data["vae"]["wave"] and data["command"].startswith("python server/bench")
    assert main(["--checkpoint", str(tmp_path / "nothing"), "--corpus", str(tiny_corpus)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vae_detail.py:")
