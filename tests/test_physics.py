"""Physical metrics (server/eval/physics.py) on synthetic joint positions built here: known skating, depth, floating, jerk."""
from __future__ import annotations

import numpy as np
import pytest

from server.eval import physics
from server.eval.physics import (
    PhysicsError,
    bootstrap_interval,
    clip_physics,
    summarize,
)
from shared.motion import Motion
from shared.skeleton import FOOT_JOINTS, REST_JOINTS, floor_height

FPS = 20.0


def standing(seconds: float = 3.0) -> np.ndarray:
    """(T, 22, 3) the rest pose standing still with its lowest foot joint on y = 0."""
    T = int(round(seconds * FPS))
    pose = REST_JOINTS - np.array([0.0, floor_height(), 0.0])
    return np.repeat(pose[None], T, axis=0)


def moved(p: np.ndarray, dx=0.0, dy=0.0) -> np.ndarray:
    """Add per-frame offsets (scalars or (T,) arrays) to every joint."""
    T = len(p)
    off = np.stack([np.broadcast_to(dx, (T,)), np.broadcast_to(dy, (T,)), np.zeros(T)], -1)
    return p + off[:, None, :]


def no_jumps(p: np.ndarray) -> np.ndarray:
    return np.zeros(len(p), bool)


def test_standing_still_is_clean():
    m = clip_physics(standing(), FPS, no_jumps(standing()))
    assert m["skate_ratio"] == 0.0
    assert m["skate_speed"] == 0.0
    assert m["penetration_depth"] == 0.0 and m["penetration_share"] == 0.0
    assert m["floating_share"] == 0.0
    assert m["jerk"] == 0.0 and m["acceleration"] == 0.0


@pytest.mark.parametrize("speed, ratio", [(1.0, 1.0), (0.55, 1.0), (0.45, 0.0), (0.2, 0.0)])
def test_gmd_skating_boundary_is_2_5_cm_per_frame(speed, ratio):
    """The whole body glides over the floor: every foot-on-ground sample slides at `speed` m/s."""
    p = standing()
    p = moved(p, dx=np.arange(len(p)) * speed / FPS)
    m = clip_physics(p, FPS, no_jumps(p))
    assert m["skate_ratio"] == pytest.approx(ratio)
    assert m["skate_speed"] == pytest.approx(speed, rel=1e-6)  # the strict measure: median speed near the floor


def test_skating_counts_only_feet_on_the_ground():
    """Gliding 10 cm above the floor is not skating (it is floating); the strict measure has no samples."""
    p = moved(standing(), dx=np.arange(60) * 1.0 / FPS, dy=0.1)
    m = clip_physics(p, FPS, no_jumps(p))
    assert m["skate_ratio"] == 0.0
    assert np.isnan(m["skate_speed"])
    assert m["floating_share"] == 1.0


def test_skate_ratio_is_a_share_of_contact_samples():
    """Slide for the first half of the clip only: half of the contact samples skate."""
    p = standing(4.0)
    T = len(p)
    x = np.minimum(np.arange(T), T // 2) * 1.0 / FPS
    m = clip_physics(moved(p, dx=x), FPS, no_jumps(p))
    assert m["skate_ratio"] == pytest.approx((T // 2) / (T - 1), abs=1e-9)


@pytest.mark.parametrize("depth, share", [(0.05, 1.0), (0.02, 0.0)])
def test_ground_penetration(depth, share):
    p = moved(standing(), dy=-depth)
    m = clip_physics(p, FPS, no_jumps(p))
    assert m["penetration_depth"] == pytest.approx(depth)
    assert m["penetration_share"] == share


def test_floating_needs_more_than_half_a_second():
    p = standing(3.0)
    lift = np.zeros(len(p))
    lift[20:40] = 0.1  # 1 s in the air
    lift[45:53] = 0.1  # 0.4 s: too short to count
    m = clip_physics(moved(p, dy=lift), FPS, no_jumps(p))
    assert m["floating_share"] == pytest.approx(20 / len(p))


def test_floating_excludes_frames_of_a_jump():
    p = standing(3.0)
    lift = np.zeros(len(p))
    lift[20:40] = 0.1
    jumps = np.zeros(len(p), bool)
    jumps[18:42] = True
    assert clip_physics(moved(p, dy=lift), FPS, jumps)["floating_share"] == 0.0


def test_a_detected_jump_is_not_floating():
    """A 0.6 s ballistic jump (both feet off together, 44 cm rise): the kinematic facts find it, so by default
    its flight does not count as floating; told there is no jump, the same flight floats."""
    p = standing(3.0)
    t = np.arange(len(p)) / FPS
    air = (t >= 1.0) & (t < 1.6)
    s = (t - 1.0) / 0.6
    lift = np.where(air, 4 * 0.44 * s * (1 - s), 0.0) + np.where(air, 0.06, 0.0)
    p = moved(p, dy=lift)
    assert physics.jump_mask(p, FPS).sum() >= air.sum()
    assert clip_physics(p, FPS)["floating_share"] == 0.0
    assert clip_physics(p, FPS, no_jumps(p))["floating_share"] == pytest.approx(air.sum() / len(p))


def test_acceleration_and_jerk_by_finite_differences():
    p = standing(2.0)
    t = np.arange(len(p)) / FPS
    m = clip_physics(moved(p, dx=0.5 * 3.0 * t ** 2), FPS, no_jumps(p))  # constant 3 m/s^2
    assert m["acceleration"] == pytest.approx(3.0)
    assert m["jerk"] == pytest.approx(0.0, abs=1e-6)
    w, a = 2 * np.pi * 0.5, 0.2  # a slow sway: jerk amplitude a w^3, mean |cos| = 2/pi over whole periods
    m = clip_physics(moved(p, dx=a * np.sin(w * t)), FPS, no_jumps(p))
    assert m["jerk"] == pytest.approx(a * w ** 3 * 2 / np.pi, rel=0.1)
    assert m["acceleration"] == pytest.approx(a * w ** 2 * 2 / np.pi, rel=0.1)


def test_motion_physics_runs_forward_kinematics():
    T = 40
    rot = np.tile([1.0, 0.0, 0.0, 0.0], (T, 22, 1))
    trans = np.tile([0.0, REST_JOINTS[0, 1] - floor_height() - 0.05, 0.0], (T, 1))  # feet 5 cm into the floor
    trans[:, 0] = np.arange(T) * 1.0 / FPS
    m = physics.motion_physics(rot, trans)
    assert m["penetration_depth"] == pytest.approx(0.05, abs=1e-5)
    assert m["skate_ratio"] == 1.0
    assert Motion(rot, trans).positions()[:, list(FOOT_JOINTS), 1].min() == pytest.approx(-0.05, abs=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((10, 21, 3)), np.zeros((0, 22, 3)), np.full((5, 22, 3), np.nan)])
def test_bad_positions_raise(bad):
    with pytest.raises(PhysicsError):
        clip_physics(bad, FPS, np.zeros(len(bad), bool))


def test_bad_jump_mask_raises():
    with pytest.raises(PhysicsError, match="jumps"):
        clip_physics(standing(), FPS, np.zeros(3, bool))


def test_bootstrap_interval_over_groups():
    rng = np.random.default_rng(0)
    v = rng.normal(1.0, 1.0, 400)
    m, lo, hi = bootstrap_interval(v)
    assert lo < m < hi and m == pytest.approx(v.mean())
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.2)
    groups = np.repeat(np.arange(40), 10)  # ten identical samples per group: the interval must widen
    clustered = np.repeat(rng.normal(1.0, 1.0, 40), 10)
    _, glo, ghi = bootstrap_interval(clustered, groups)
    _, ilo, ihi = bootstrap_interval(clustered)
    assert ghi - glo > 2 * (ihi - ilo)
    assert bootstrap_interval([2.0, 2.0, np.nan]) == (2.0, 2.0, 2.0)
    assert all(np.isnan(bootstrap_interval([np.nan])))


def test_summarize_and_table():
    rows = [clip_physics(moved(standing(), dx=np.arange(60) * s / FPS), FPS, np.zeros(60, bool)) for s in (0.2, 1.0)]
    s = summarize(rows)
    assert s["skate_ratio"][0] == pytest.approx(0.5)
    assert s["clips"][0] == 2
    table = physics.markdown_table([("Real", s)])
    assert table.splitlines()[2].startswith("| Real | 2 | 50.0 [")
