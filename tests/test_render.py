"""server.render_motion: PNG strips and GIFs decode and show a coloured stick figure."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from PIL import Image

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from server.eval.render import _StickView
from server.render_motion import render_gif, render_strip
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import NUM_JOINTS

REPO = Path(__file__).resolve().parents[1]


def tiny_motion(T: int = 6) -> Motion:
    time = np.arange(T) / 20.0
    aa = np.zeros((T, NUM_JOINTS, 3))
    aa[:, 1, 0] = 0.6 * np.sin(2 * np.pi * time)  # left hip swings
    aa[:, 2, 0] = -aa[:, 1, 0]
    trans = np.stack([np.zeros(T), np.full(T, 0.92), 1.2 * time], axis=1)
    return Motion(rot.axis_angle_to_quat(aa), trans, 20.0)


def has_limb_colours(rgb: np.ndarray) -> tuple[bool, bool]:
    """Whether the image has blue (left) and red (right) pixels; rgb in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return bool(np.any((b > 0.6) & (r < 0.3))), bool(np.any((r > 0.6) & (b < 0.3) & (g < 0.3)))


def test_render_strip_png(tmp_path):
    path = tmp_path / "strip.png"
    out = render_strip([tiny_motion(), tiny_motion(4).mirror()], path, frames=3, titles=["walk", "mirrored"])
    assert out == path and path.exists()
    img = mpimg.imread(path)  # (H, W, 4) floats
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300
    assert img[..., :3].std() > 0.01, "blank image"
    assert has_limb_colours(img[..., :3]) == (True, True)


def has_warning_colour(rgb: np.ndarray) -> bool:
    """Orange pixels (joints below the floor); rgb in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return bool(np.any((r > 0.85) & (g > 0.4) & (g < 0.7) & (b < 0.25)))


def shifted(motion: Motion, dy: float) -> Motion:
    return Motion(motion.rotations, motion.translation + np.array([0.0, dy, 0.0], np.float32), motion.fps)


def test_floor_is_y0_and_joints_below_it_are_marked(tmp_path):
    standing, sunk, floating = tiny_motion(), shifted(tiny_motion(), -0.3), shifted(tiny_motion(), 0.5)
    for motion in (sunk, floating):  # the grid and trail lie on y = 0 (plot z), not at the clip's lowest point
        fig = Figure()
        FigureCanvasAgg(fig)
        view = _StickView(fig.add_subplot(projection="3d"), motion)
        view.show(2)
        grid_z = [z for ln in view.grid_x + view.grid_y for z in ln.get_data_3d()[2]]
        assert grid_z and np.allclose(grid_z, 0.0)
        assert np.allclose(view.trail.get_data_3d()[2], 0.0)
        below = int((motion.positions()[2, :, 1] < -0.01).sum())  # joints more than 1 cm under the floor
        assert (below > 0) == (motion is sunk)
        assert len(view.below.get_data_3d()[2]) == below
        assert view.ax.get_zlim()[0] < motion.positions()[..., 1].min()  # sunken joints stay in view
    images = {}
    for name, motion in (("standing", standing), ("sunk", sunk)):
        render_strip(motion, tmp_path / f"{name}.png", frames=2)
        images[name] = mpimg.imread(tmp_path / f"{name}.png")[..., :3]
    assert not has_warning_colour(images["standing"])
    assert has_warning_colour(images["sunk"])


def test_render_gif(tmp_path):
    path = tmp_path / "anim.gif"
    render_gif(tiny_motion(), path, title="walk", size_inches=2.0, dpi=60)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
        frames = []
        for k in (0, gif.n_frames - 1):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float64) / 255.0)
    for rgb in frames:
        assert rgb.std() > 0.01, "blank frame"
        assert has_limb_colours(rgb) == (True, True)
    assert not np.array_equal(frames[0], frames[1]), "the animation does not move"


def test_render_gif_step(tmp_path):
    path = render_gif(tiny_motion(), tmp_path / "step.gif", step=2, size_inches=1.5, dpi=40)
    with Image.open(path) as gif:
        assert gif.n_frames == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="titles"):
        render_strip([tiny_motion()], "unused.png", titles=["a", "b"])
    with pytest.raises(ValueError, match="frames"):
        render_strip(tiny_motion(), "unused.png", frames=0)
    with pytest.raises(ValueError, match="step"):
        render_gif(tiny_motion(), "unused.gif", step=0)


def test_cli_from_repo_root(tmp_path):
    clip = tmp_path / "clip.npz"
    tiny_motion(3).save(clip)
    out = tmp_path / "cli.png"
    cmd = [sys.executable, "server/render_motion.py", str(clip), "--out", str(out), "--frames", "2", "--title", "T"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert mpimg.imread(out)[..., :3].std() > 0.01
    bad = subprocess.run([*cmd[:4], str(tmp_path / "x.mp4")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and ".png or .gif" in bad.stderr
    missing = subprocess.run([sys.executable, "server/render_motion.py", str(tmp_path / "none.npz"), "--out", str(out)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "none.npz" in missing.stderr
