"""Stick-figure renders of SMPL-22 motions: a PNG strip of frames, or an animated GIF.

Uses matplotlib's Agg canvas directly (never pyplot), so importing this module does not
change anyone's backend. Our Y-up world is shown with matplotlib's Z as up: a point
(x, y, z) is drawn at (x, -z, y), a proper rotation, so left and right are not mirrored.
Left limbs are blue, right limbs red, the spine black; the pelvis leaves a trail on the
floor grid; every view is a 1:1:1 perspective box that follows the pelvis. The floor is the
real one, y = 0 (not the clip's lowest point), so a body sinking into it shows: joints more
than `BELOW_FLOOR_MARK` below it are marked in `WARNING_COLOUR`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shared.motion import Motion
from shared.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS

LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = "#1f5fd6", "#d62728", "black"
WARNING_COLOUR = "#ff8c00"  # joints below the floor
BELOW_FLOOR_MARK = 0.01  # metres below y = 0 before a joint is marked
FLOOR = 0.0  # the world's floor height (DESIGN.md section 3: Y-up, feet on y = 0)
GRID_SPACING = 0.5  # metres
ELEVATION, AZIMUTH = 15.0, -60.0  # default camera: front-right of a figure facing +Z


def _bone_colour(joint: int) -> str:
    name = JOINT_NAMES[joint]
    return LEFT_COLOUR if name.startswith("left") else RIGHT_COLOUR if name.startswith("right") else CENTRE_COLOUR


def _to_plot(points: np.ndarray) -> np.ndarray:
    """(..., 3) Y-up world -> matplotlib (x, -z, y) with Z up."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


class _StickView:
    """The artists of one 3D axes showing one motion; `show(frame)` moves them."""

    def __init__(self, ax, motion: Motion):
        self.ax = ax
        world = motion.positions()  # (T, 22, 3)
        self.fps = motion.fps
        self.points = _to_plot(world)  # (T, 22, 3) plot coordinates
        self.floor = FLOOR
        self.bottom = min(FLOOR, float(world[..., 1].min()))  # the view reaches down to sunken joints
        height = float(world[..., 1].max()) - self.bottom
        self.radius = max(1.0, 0.55 * height + 0.1)  # half of the cube's side
        n_grid = int(np.ceil(2 * self.radius / GRID_SPACING)) + 2

        ax.set_axis_off()
        ax.set_box_aspect((1.0, 1.0, 1.0), zoom=1.3)
        ax.view_init(elev=ELEVATION, azim=AZIMUTH)
        line = lambda **kw: ax.plot([], [], [], **kw)[0]  # noqa: E731
        self.grid_x = [line(color="0.85", lw=0.6) for _ in range(n_grid)]
        self.grid_y = [line(color="0.85", lw=0.6) for _ in range(n_grid)]
        pelvis = self.points[:, 0]
        ax.plot(pelvis[:, 0], pelvis[:, 1], np.full(len(pelvis), self.floor), color="0.8", lw=0.8)
        self.trail = line(color="0.45", lw=1.4)
        self.bones = [line(color=_bone_colour(j), lw=2.2, solid_capstyle="round") for j in range(1, NUM_JOINTS)]
        self.head = line(color=CENTRE_COLOUR, marker="o", ms=5, lw=0)
        self.below = line(color=WARNING_COLOUR, marker="o", ms=6, lw=0, zorder=10)

    def show(self, frame: int) -> None:
        p = self.points[frame]  # (22, 3)
        cx, cy = p[0, 0], p[0, 1]
        r, floor = self.radius, self.floor
        self.ax.set_xlim(cx - r, cx + r)
        self.ax.set_ylim(cy - r, cy + r)
        self.ax.set_zlim(self.bottom - 0.2, self.bottom - 0.2 + 2 * r)
        for lines, centre, along in ((self.grid_x, cx, (cy - r, cy + r)), (self.grid_y, cy, (cx - r, cx + r))):
            first = np.ceil((centre - r) / GRID_SPACING) * GRID_SPACING
            for k, ln in enumerate(lines):
                at = first + k * GRID_SPACING
                if at > centre + r:
                    ln.set_data_3d([], [], [])
                elif lines is self.grid_x:
                    ln.set_data_3d([at, at], list(along), [floor, floor])
                else:
                    ln.set_data_3d(list(along), [at, at], [floor, floor])
        past = self.points[: frame + 1, 0]
        self.trail.set_data_3d(past[:, 0], past[:, 1], np.full(len(past), floor))
        for bone, j in zip(self.bones, range(1, NUM_JOINTS)):
            seg = p[[PARENTS[j], j]]
            bone.set_data_3d(seg[:, 0], seg[:, 1], seg[:, 2])
        self.head.set_data_3d(p[15:16, 0], p[15:16, 1], p[15:16, 2])
        sunk = p[p[:, 2] < FLOOR - BELOW_FLOOR_MARK]
        self.below.set_data_3d(sunk[:, 0], sunk[:, 1], sunk[:, 2])


def render_strip(motions: Motion | Sequence[Motion], path_png, frames: int = 8,
                 titles: Sequence[str] | None = None, cell_inches: float = 2.0, dpi: int = 100) -> Path:
    """Save a PNG with one row per motion of `frames` evenly spaced frames (first to last)."""
    motions = [motions] if isinstance(motions, Motion) else list(motions)
    if not motions:
        raise ValueError("render_strip: no motions given")
    if frames < 1:
        raise ValueError(f"render_strip: frames must be >= 1, got {frames}")
    if titles is not None and len(titles) != len(motions):
        raise ValueError(f"render_strip: {len(titles)} titles for {len(motions)} motions")
    fig = Figure(figsize=(frames * cell_inches, len(motions) * (cell_inches + 0.35)), dpi=dpi)
    FigureCanvasAgg(fig)
    rows = fig.subfigures(len(motions), 1, squeeze=False)[:, 0]
    for row, (sub, motion) in enumerate(zip(rows, motions)):
        if titles is not None:
            sub.suptitle(titles[row], fontsize=11, x=0.01, ha="left")
        sub.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.88 if titles else 0.95, wspace=0.0)
        for col, frame in enumerate(np.linspace(0, motion.num_frames - 1, frames).round().astype(int)):
            ax = sub.add_subplot(1, frames, col + 1, projection="3d")
            view = _StickView(ax, motion)
            view.show(int(frame))
            ax.set_title(f"{frame / motion.fps:.2f} s", fontsize=8, pad=0)
    path = Path(path_png)
    fig.savefig(path, format="png")
    return path


def render_gif(motion: Motion, path_gif, fps: float | None = None, step: int = 1,
               title: str | None = None, size_inches: float = 4.0, dpi: int = 80) -> Path:
    """Save an animated GIF of every `step`-th frame, played at `fps` (default: real time)."""
    if step < 1:
        raise ValueError(f"render_gif: step must be >= 1, got {step}")
    fps = motion.fps / step if fps is None else float(fps)
    fig = Figure(figsize=(size_inches, size_inches), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.92 if title else 1.0), projection="3d")
    view = _StickView(ax, motion)
    label = fig.text(0.02, 0.96, "", fontsize=10, va="center")
    writer = PillowWriter(fps=fps)
    path = Path(path_gif)
    with writer.saving(fig, str(path), dpi):
        for frame in range(0, motion.num_frames, step):
            view.show(frame)
            label.set_text(f"{title}  {frame / motion.fps:.2f} s" if title else "")
            writer.grab_frame()
    return path
