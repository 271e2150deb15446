"""Feet on the floor after a transfer to the artist's rig (numpy only; retarget.py drives it).

1. Contacts from the source motion: a foot is down while its ankle or toe joint is near the
   motion's floor (its standing height plus a margin) and slower than `CONTACT_SPEED`; blips of
   one frame are dropped and one-frame gaps filled.
2. Height: the rig's lowest foot point (heads and tails of its foot bones) should sit in contact
   frames where it sits in the rig's own rest pose, whatever the rig's proportions; the hips move
   by the median difference (`height_offset`).
3. Foot locking: while a foot is down its ankle is pinned to one place (and lifted so the foot's
   lowest point is at its rest height); outside contacts a foot that would go below its rest
   height is lifted. Where a stretched leg cannot reach its pin, the hips come down (`hip_drop`).
   Two-bone IK (`two_bone_ik`) bends hip and knee to reach the pinned ankle, in the leg's
   current bending plane; the foot keeps its orientation. The pin blends in and out over `BLEND`
   frames around each contact.
"""
from __future__ import annotations

import numpy as np

from .vendored import rotations as rot

CONTACT_SPEED = 0.5  # m/s: a foot moving slower than this near the floor is down
CONTACT_MARGIN = 0.04  # m above the joint's standing height
BLEND = 3  # frames to blend a pin in and out
SIDES = ("left", "right")
ANKLE = {"left": 7, "right": 8}
TOE = {"left": 10, "right": 11}


def _speed(points: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """(T,) speed of (T, 3) points; dt (T-1,) seconds between samples."""
    if len(points) < 2:
        return np.zeros(len(points))
    v = np.linalg.norm(np.diff(points, axis=0), axis=1) / np.maximum(dt, 1e-9)
    return np.r_[v[0], (v[:-1] + v[1:]) / 2.0, v[-1]]  # each frame: the mean of its two neighbouring steps


def _clean(mask: np.ndarray) -> np.ndarray:
    """Fill one-frame gaps, then drop one-frame blips."""
    m = mask.copy()
    gap = ~m[1:-1] & m[:-2] & m[2:]
    m[1:-1] |= gap
    blip = m[1:-1] & ~m[:-2] & ~m[2:]
    m[1:-1] &= ~blip
    if len(m) > 1:
        m[0] &= m[1]
        m[-1] &= m[-2]
    return m


def motion_floor(positions: np.ndarray, dt: np.ndarray) -> float:
    """Height of the floor the motion stands on: the median height of the lowest foot joint while it
    is slow (0 when it never is; generated motions are made with the floor at 0)."""
    joints = [ANKLE["left"], ANKLE["right"], TOE["left"], TOE["right"]]
    heights = positions[:, joints, 1]
    lowest = heights.argmin(axis=1)
    speeds = np.stack([_speed(positions[:, j], dt) for j in joints], axis=1)
    slow = speeds[np.arange(len(positions)), lowest] < CONTACT_SPEED
    return float(np.median(heights.min(axis=1)[slow])) if slow.any() else 0.0


def contacts(positions: np.ndarray, rest_joints: np.ndarray, dt: np.ndarray) -> dict:
    """{"left": (T,) bool, "right": ...}: the foot is down. positions (T, 22, 3) Y-up metres;
    rest_joints (22, 3); dt (T-1,) seconds between samples."""
    floor = motion_floor(positions, dt)
    rest_floor = min(rest_joints[j, 1] for side in SIDES for j in (ANKLE[side], TOE[side]))
    out = {}
    for side in SIDES:
        down = np.zeros(len(positions), dtype=bool)
        for j in (ANKLE[side], TOE[side]):
            standing = rest_joints[j, 1] - rest_floor
            down |= (positions[:, j, 1] - floor < standing + CONTACT_MARGIN) & (_speed(positions[:, j], dt) < CONTACT_SPEED)
        out[side] = _clean(down)
    return out


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(first, last)] frame ranges where `mask` holds."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1))


def height_offset(lowest: dict, rest: dict, down: dict) -> float:
    """How far to raise the hips so the feet's lowest points meet their rest heights in contact frames
    (the median over contact frames; without contacts, over the lowest tenth of the frames)."""
    gaps = [rest[s] - lowest[s][down[s]] for s in lowest]
    gaps = np.concatenate(gaps) if gaps else np.zeros(0)
    if len(gaps):
        return float(np.median(gaps))
    both = np.min([lowest[s] - rest[s] for s in lowest], axis=0)
    return float(-np.percentile(both, 10)) if len(both) else 0.0


def ankle_targets(ankle: np.ndarray, lowest: np.ndarray, rest: float, down: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(T, 3) where each frame's ankle should be, in a space whose vertical axis is `up` (unit).

    In contact the ankle is pinned horizontally (the segment's median) and set so the foot's lowest
    point is at `rest`; elsewhere it is only lifted when the foot would go below `rest`."""
    up = np.asarray(up, dtype=np.float64)
    lift = np.where(down, rest - lowest, np.maximum(rest - lowest, 0.0))
    target = ankle + lift[:, None] * up
    weight = np.zeros(len(ankle))
    pin = np.zeros_like(ankle)
    for first, last in segments(down):
        flat = ankle[first:last + 1] - np.outer(ankle[first:last + 1] @ up, up)
        place = np.median(flat, axis=0)
        lo, hi = max(0, first - BLEND), min(len(ankle) - 1, last + BLEND)
        for k in range(lo, hi + 1):
            w = 1.0 if first <= k <= last else 1.0 - (first - k if k < first else k - last) / (BLEND + 1.0)
            if w > weight[k]:
                weight[k], pin[k] = w, place
    flat = target - np.outer(target @ up, up)
    return target + weight[:, None] * (pin - flat)


def hip_drop(legs, up: np.ndarray, reach: float = 0.999, radius: int = BLEND) -> np.ndarray:
    """(T,) how far to lower the hips (along unit `up`) so every leg reaches its ankle goal.

    legs: [(hip, knee, ankle, goal)], (T, 3) each. A stretched leg cannot push a pinned foot down
    to the floor; the hips then come down instead, smoothly (a running maximum, then a running mean
    over `radius` frames each side, so no frame gets less than it needs)."""
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    need = np.zeros(len(legs[0][0]))
    for hip, knee, ankle, goal in legs:
        length = (np.linalg.norm(knee - hip, axis=1) + np.linalg.norm(ankle - knee, axis=1)) * reach
        v = hip - goal
        dist2 = np.sum(v * v, axis=1)
        along = v @ up
        far = dist2 > length ** 2
        x = along - np.sqrt(np.maximum(along ** 2 - (dist2 - length ** 2), 0.0))
        need = np.maximum(need, np.where(far, np.maximum(x, 0.0), 0.0))
    if not need.any():
        return need
    padded = np.pad(need, radius, mode="edge")
    window = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)
    peak = np.pad(window.max(axis=1), radius, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(peak, 2 * radius + 1).mean(axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
                forward: np.ndarray):
    """Rotations (T, 3, 3) for the thigh (about the hip) and then the shin (about the moved knee)
    that bring the ankle to `target` (as near as the leg reaches), keeping the bone lengths and the
    leg's bending plane; a straight leg bends towards `forward`. All (T, 3) in one space."""
    l1 = np.linalg.norm(knee - hip, axis=1)
    l2 = np.linalg.norm(ankle - knee, axis=1)
    reach = target - hip
    d = np.clip(np.linalg.norm(reach, axis=1), np.abs(l1 - l2) + 1e-6, (l1 + l2) * (1.0 - 1e-6))
    u = _unit(reach)
    bend = (knee - hip) - u * np.sum((knee - hip) * u, axis=1, keepdims=True)
    straight = np.linalg.norm(bend, axis=1) < 1e-3 * l1
    fallback = forward - u * np.sum(forward * u, axis=1, keepdims=True)
    v = _unit(np.where(straight[:, None], fallback, bend))
    x = (l1 ** 2 - l2 ** 2 + d ** 2) / (2.0 * d)
    h = np.sqrt(np.maximum(l1 ** 2 - x ** 2, 0.0))
    new_knee = hip + x[:, None] * u + h[:, None] * v
    r1 = rot.quat_to_matrix(rot.quat_between(knee - hip, new_knee - hip))
    moved_ankle = hip + np.einsum("tij,tj->ti", r1, ankle - hip)
    r2 = rot.quat_to_matrix(rot.quat_between(moved_ankle - new_knee, hip + d[:, None] * u - new_knee))
    return r1, r2
