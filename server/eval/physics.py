"""Physical plausibility of motions from FK joint positions: foot skating, ground penetration, floating, jerk.

Conventions (DESIGN.md section 3): Y-up, metres, floor at y = 0 (the lowest foot joint of the
SMPL rest pose stands on it), feet = `shared.skeleton.FOOT_JOINTS` (ankles 7, 8 and feet 10, 11),
each foot joint judged on its own height. Per clip, `clip_physics` returns:

- `skate_ratio`: GMD's foot skating (Karunratanakul et al. 2023) at 20 fps: a foot joint within
  `contact_height` (5 cm) of the floor in two consecutive frames that slides more than
  `slide_speed` / fps (0.5 m/s = 2.5 cm per frame at 20 fps) horizontally between them, as a
  share of such foot-on-ground (joint, frame-pair) samples. GMD divides by all frames instead;
  dividing by contact samples keeps a floating motion from looking clean.
- `skate_speed`: the strict measure, median horizontal foot-joint speed (m/s) over (joint,
  frame-pair) samples within `strict_height` (2 cm) of the floor in both frames (NaN if none).
- `penetration_depth`: mean over frames of how far the lowest joint is below y = 0 (m, 0 above).
- `penetration_share`: share of frames with any joint more than `penetration_depth` (3 cm) below.
- `floating_share`: share of frames in runs longer than `float_min_s` (0.5 s) with every foot
  joint higher than `float_height` (5 cm), frames of detected jumps and hops (the kinematic facts'
  flights, widened by their landing window) excepted.
- `jerk`, `acceleration`: mean over joints and frames of |d3 p / dt3| (m/s^3) and |d2 p / dt2| (m/s^2)
  by finite differences.

`summarize` turns per-clip values into mean and 95% bootstrap interval (clusters of clips, e.g.
the candidates of one prompt, are resampled together); `markdown_table` prints rows side by side.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from shared.motion import forward_kinematics
from shared.skeleton import FOOT_JOINTS, NUM_JOINTS

PHYSICS_METRICS = ("skate_ratio", "skate_speed", "penetration_depth", "penetration_share", "floating_share",
                   "jerk", "acceleration")
# metric -> (column title, scale for display, digits); lower is better for all but jerk/acceleration (-> Real)
COLUMNS = {
    "skate_ratio": ("Foot skate % ↓", 100.0, 1),
    "skate_speed": ("Skate speed m/s ↓", 1.0, 3),
    "penetration_depth": ("Penetration cm ↓", 100.0, 2),
    "penetration_share": ("Penetrating frames % ↓", 100.0, 1),
    "floating_share": ("Floating frames % ↓", 100.0, 1),
    "jerk": ("Jerk m/s³ →", 1.0, 1),
    "acceleration": ("Acceleration m/s² →", 1.0, 2),
}


class PhysicsError(ValueError):
    """Positions are not (T, 22, 3) finite numbers, or fps is not positive."""


@dataclass(frozen=True)
class PhysicsThresholds:
    """Every threshold of the physical metrics. Units: metres, seconds, m/s."""

    contact_height: float = 0.05
    """m: a foot joint below this height touches the ground (GMD)."""
    slide_speed: float = 0.5
    """m/s: horizontal foot-joint speed above this while touching is skating (GMD: 2.5 cm per frame at 20 fps)."""
    strict_height: float = 0.02
    """m: the strict skate measure looks at foot joints below this height."""
    penetration_depth: float = 0.03
    """m: a joint more than this below the floor penetrates it."""
    float_height: float = 0.05
    """m: every foot joint above this height is off the ground."""
    float_min_s: float = 0.5
    """s: off the ground longer than this (outside a jump or hop) is floating."""


DEFAULT_PHYSICS = PhysicsThresholds()


def _check(positions: np.ndarray, fps: float) -> np.ndarray:
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3) or len(p) == 0:
        raise PhysicsError(f"positions: expected shape (T>0, {NUM_JOINTS}, 3), got {p.shape}")
    if not np.isfinite(p).all():
        raise PhysicsError("positions: NaN or inf")
    if not (np.isfinite(fps) and fps > 0):
        raise PhysicsError(f"fps must be finite and > 0, got {fps}")
    return p


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) of the True runs of a 1-D mask."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def jump_mask(positions: np.ndarray, fps: float, thresholds=None) -> np.ndarray:
    """(T,) bool: frames of the jumps and hops found by the kinematic facts, widened by their landing window."""
    from server.data.kinematics import DEFAULT_THRESHOLDS, extract_facts

    th = thresholds or DEFAULT_THRESHOLDS
    facts = extract_facts(positions, fps, th)
    return flights_to_mask([(f.start, f.end) for f in facts.of_kind("jump", "hop")], len(positions),
                           int(round(th.landing_window_s * fps)))


def flights_to_mask(spans: Sequence[tuple[int, int]], frames: int, widen: int = 0) -> np.ndarray:
    """(frames,) bool mask of [start, end) spans, each widened by `widen` frames on both sides."""
    mask = np.zeros(frames, bool)
    for a, b in spans:
        mask[max(a - widen, 0):min(b + widen, frames)] = True
    return mask


def clip_physics(positions: np.ndarray, fps: float = 20.0, jumps: np.ndarray | None = None,
                 th: PhysicsThresholds = DEFAULT_PHYSICS) -> dict[str, float]:
    """The metrics of one clip from (T, 22, 3) joint positions. `jumps`: (T,) bool frames where being
    airborne is expected (default: `jump_mask`, from the kinematic facts)."""
    p = _check(positions, fps)
    T = len(p)
    feet = p[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    h = feet[..., 1]  # (T, 4)
    step = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps  # (T-1, 4) horizontal m/s
    touch = (h[:-1] < th.contact_height) & (h[1:] < th.contact_height)  # (T-1, 4)
    skating = touch & (step > th.slide_speed)
    skate_ratio = float(skating.sum() / touch.sum()) if touch.any() else 0.0
    strict = (h[:-1] < th.strict_height) & (h[1:] < th.strict_height)
    skate_speed = float(np.median(step[strict])) if strict.any() else float("nan")

    low = p[..., 1].min(1)  # (T,) lowest joint
    depth = np.maximum(-low, 0.0)
    up = (h > th.float_height).all(1)  # (T,)
    if jumps is None:
        jumps = jump_mask(p, fps)
    jumps = np.asarray(jumps, bool)
    if jumps.shape != (T,):
        raise PhysicsError(f"jumps: expected shape ({T},), got {jumps.shape}")
    n_float = int(round(th.float_min_s * fps))
    floating = sum(b - a for a, b in _runs(up & ~jumps) if b - a > n_float)

    acc = np.linalg.norm(np.diff(p, 2, axis=0), axis=-1) * fps ** 2 if T >= 3 else np.zeros((1, NUM_JOINTS))
    jerk = np.linalg.norm(np.diff(p, 3, axis=0), axis=-1) * fps ** 3 if T >= 4 else np.zeros((1, NUM_JOINTS))
    return {
        "skate_ratio": skate_ratio,
        "skate_speed": skate_speed,
        "penetration_depth": float(depth.mean()),
        "penetration_share": float((low < -th.penetration_depth).mean()),
        "floating_share": float(floating / T),
        "jerk": float(jerk.mean()),
        "acceleration": float(acc.mean()),
    }


def motion_physics(rotations: np.ndarray, translation: np.ndarray, fps: float = 20.0,
                   th: PhysicsThresholds = DEFAULT_PHYSICS) -> dict[str, float]:
    """`clip_physics` of a wire-format motion: rotations (T, 22, 4) wxyz, translation (T, 3)."""
    return clip_physics(forward_kinematics(rotations, translation), fps, th=th)


def bootstrap_interval(values: np.ndarray, groups: np.ndarray | None = None, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its 95% percentile-bootstrap interval, resampling whole
    groups (e.g. all candidates of one prompt) when `groups` is given. NaN values are left out."""
    v = np.asarray(values, dtype=np.float64)
    g = np.arange(len(v)) if groups is None else np.asarray(groups)
    keep = np.isfinite(v)
    v, g = v[keep], g[keep]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    ids, inverse = np.unique(g, return_inverse=True)
    sums = np.bincount(inverse, weights=v, minlength=len(ids))
    counts = np.bincount(inverse, minlength=len(ids)).astype(np.float64)
    if len(ids) == 1:
        m = float(v.mean())
        return m, m, m
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(ids), (resamples, len(ids)))  # (R, G) groups drawn with replacement
    means = sums[pick].sum(1) / counts[pick].sum(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(v.mean()), float(lo), float(hi)


def summarize(per_clip: Sequence[dict[str, float]], groups: Sequence | None = None,
              seed: int = 0) -> dict[str, list[float]]:
    """metric -> [mean, low, high] over clips (bootstrap over `groups` of clips when given), plus 'clips'."""
    out: dict[str, list[float]] = {}
    g = None if groups is None else np.asarray(groups)
    for k in PHYSICS_METRICS:
        vals = np.array([c[k] for c in per_clip], dtype=np.float64)
        out[k] = list(bootstrap_interval(vals, g, seed=seed))
    out["clips"] = [float(len(per_clip))] * 3
    return out


def markdown_table(rows: Sequence[tuple[str, dict[str, list[float]]]]) -> str:
    """Rows of (name, `summarize` output) -> a Markdown table, each cell 'mean [low, high]'."""
    head = ["Motions", "Clips"] + [COLUMNS[k][0] for k in PHYSICS_METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in rows:
        cells = [name, str(int(s["clips"][0]))]
        for k in PHYSICS_METRICS:
            _, scale, digits = COLUMNS[k]
            m, lo, hi = (x * scale for x in s[k])
            cells.append("-" if not np.isfinite(m) else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def thresholds_dict(th: PhysicsThresholds = DEFAULT_PHYSICS) -> dict:
    return asdict(th)
