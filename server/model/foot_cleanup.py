"""Foot-contact cleanup after sampling: pin feet in contact with leg IK, lift bodies out of the floor.

Works on wire-format motions (local quaternions + pelvis translation, numpy only), so it runs
after any backbone. Per candidate:

1. Ground: the root is lifted (never lowered) so that no foot joint is below y = 0; the lift is
   a smooth upper envelope over time (a max filter, then a box filter of the same radius), so it
   is never less than what a frame needs and has no pop.
2. Contacts: a foot joint (ankle or toe, `FOOT_JOINTS` order) is in contact where the model's
   predicted contact probability is >= `contact_threshold` AND the joint is within
   `toe_height` / `ankle_height` of the floor (no pinning while airborne, whatever the model
   says). Without predicted contacts (a model without the redundant features) the probability
   is replaced by a speed test (`features.CONTACT_SPEED`, the training labels' rule).
3. Targets: per joint, each contact segment gets one fixed horizontal position, the mean of the
   joint's horizontal positions over the segment; its height is the joint's own, never below
   the floor. The correction (target - position) is exact inside segments and fades out over
   `blend_frames` frames outside them (smoothstep), or is interpolated across a gap shorter
   than two blends. A segment that would need more than `max_correction` (a body carried along
   with its feet "in contact") is only slowed down, its corrections scaled to that size. The
   ankle is moved by its own correction where the ankle is in contact and by the toe's (the
   whole foot translated) where only the toe is, blended by the ankle's weight.
4. IK: two-bone hip-knee-ankle IK reaches the ankle target, bending in the knee's current bend
   plane (about the knee's hinge when the leg is nearly straight); the foot keeps its world orientation,
   then turns about the ankle so the toe reaches its own target (weighted by the toe's pin
   weight), never below the floor. Frames with no correction are returned bit for bit.

`skate_samples` / `skate_metrics` are the foot-skate measures the benchmark
(server/bench/foot_cleanup.py) prints, with server/eval/physics.py's definitions: server/model may
not import server/eval, so they live here too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared import rotations as rot
from shared.skeleton import FOOT_JOINTS, NUM_JOINTS, PARENTS, rest_offsets

# (hip, knee, ankle, toe) per side; contact columns follow FOOT_JOINTS = (7, 8, 10, 11).
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
ANKLE_COLUMN = {7: 0, 8: 1}
TOE_COLUMN = {10: 2, 11: 3}
BEND_PLANE_DEGREES = (10.0, 35.0)  # knee bend: above 35 deg IK keeps the bend plane, below 10 it bends about the hinge
CONTACT_SPEED = 0.045  # metres per frame at 20 fps: server.model.features.CONTACT_SPEED (the training labels)


@dataclass(frozen=True)
class CleanupConfig:
    contact_threshold: float = 0.5  # predicted contact probability needed to pin
    toe_height: float = 0.10  # metres above the floor: a toe (foot joint) higher than this is never pinned
    ankle_height: float = 0.16  # the same for an ankle (ankles stand ~8 cm above the floor)
    blend_frames: int = 5  # frames to fade a correction in before and out after a contact segment
    lift_radius: int = 3  # frames: the ground lift's smoothing radius
    fill_gaps: int = 1  # contact gaps up to this many frames are closed
    max_correction: float = 0.15  # metres: a pin needing more only slows the foot down (see pinned_corrections)


# --- kinematics ------------------------------------------------------------------------------

def _fk(q: np.ndarray, t: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 22, 4) local quaternions, (..., 3) root -> world rotations (..., 22, 3, 3), positions (..., 22, 3)."""
    local = rot.quat_to_matrix(q)
    world = np.empty_like(local)
    pos = np.empty(q.shape[:-1] + (3,))
    world[..., 0, :, :] = local[..., 0, :, :]
    pos[..., 0, :] = t
    for i in range(1, NUM_JOINTS):
        p = PARENTS[i]
        pos[..., i, :] = pos[..., p, :] + world[..., p, :, :] @ offsets[i]
        world[..., i, :, :] = world[..., p, :, :] @ local[..., i, :, :]
    return world, pos


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12), n[..., 0]


def _axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return rot.axis_angle_to_matrix(axis * angle[..., None])


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
                hinge: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World rotations (..., 3, 3) that put the ankle on `target` (as near as the leg reaches).

    hip, knee, ankle, target (..., 3) positions; hinge (..., 3) the knee's flexion axis in the
    world (SMPL knees flex about their local +x: the shin swings back). The knee turns until the
    hip-ankle distance is the hip-target distance, about its bend plane's normal when bent more
    than BEND_PLANE_DEGREES[1], about the hinge (made perpendicular to the thigh) when straighter
    than BEND_PLANE_DEGREES[0] (the SMPL rest leg is not straight: its own bend plane is slanted),
    a blend between, preferring a forward-bending knee; then the whole leg swings about the hip by
    the smallest rotation onto the target. A knee turning about its hinge stops a few millimetres
    short of full extension. Returns (R_hip, R_knee, new_ankle) with new G_hip = R_hip G_hip,
    new G_knee = R_hip R_knee G_knee and new_ankle (..., 3) where the ankle ends up.
    """
    thigh, shin = knee - hip, ankle - knee
    l_thigh = np.linalg.norm(thigh, axis=-1)
    l_shin = np.linalg.norm(shin, axis=-1)
    eps = 1e-4
    dist = np.clip(np.linalg.norm(target - hip, axis=-1), np.abs(l_thigh - l_shin) + eps, l_thigh + l_shin - eps)
    # knee: u . R(theta) shin = l_shin cos(knee angle wanted), with u the knee->hip unit vector
    u = -_unit(thigh)[0]
    along_hinge = -_unit(hinge)[0]
    along_hinge = _unit(along_hinge - np.sum(along_hinge * u, axis=-1, keepdims=True) * u)[0]
    plane, sin_bend = _unit(np.cross(shin, u))  # the bend plane's normal; sin_bend = l_shin sin(bend)
    plane = np.where(np.sum(plane * along_hinge, axis=-1, keepdims=True) < 0, -plane, plane)
    bend = np.degrees(np.arctan2(sin_bend, -np.sum(u * shin, axis=-1)))  # 0 = straight leg
    x = np.clip((bend - BEND_PLANE_DEGREES[0]) / (BEND_PLANE_DEGREES[1] - BEND_PLANE_DEGREES[0]), 0.0, 1.0)
    w = (x * x * (3 - 2 * x))[..., None]  # 1: a bent knee keeps its plane; 0: a straight one bends about its hinge
    axis = _unit(w * plane + (1 - w) * along_hinge)[0]
    A = np.sum(u * shin, axis=-1)
    B = np.sum(u * np.cross(axis, shin), axis=-1)
    C = (l_thigh ** 2 + l_shin ** 2 - dist ** 2) / (2 * l_thigh)  # = l_shin cos(knee angle)
    phi = np.arctan2(B, A)
    delta = np.arccos(np.clip(C / np.maximum(np.hypot(A, B), 1e-12), -1.0, 1.0))
    best, best_key = None, None
    for theta in (phi + delta, phi - delta):
        theta = (theta + np.pi) % (2 * np.pi) - np.pi
        r = _axis_angle_matrix(axis, theta)
        flex = np.sum(np.cross(-u, (r @ shin[..., None])[..., 0]) * hinge, axis=-1)  # > 0: bends forward
        key = np.abs(theta) + np.where(flex < -1e-9, 10.0, 0.0)
        if best is None:
            best, best_key = r, key
        else:
            take = (key < best_key)[..., None, None]
            best, best_key = np.where(take, r, best), np.minimum(key, best_key)
    r_knee = best
    leg = thigh + (r_knee @ shin[..., None])[..., 0]
    r_hip = rot.quat_to_matrix(rot.quat_between(leg, target - hip))
    return r_hip, r_knee, hip + (r_hip @ leg[..., None])[..., 0]


# --- contacts and corrections ----------------------------------------------------------------

def _segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """(T,) bool -> [(start, stop)) runs of True."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _fill_gaps(mask: np.ndarray, gap: int) -> np.ndarray:
    out = mask.copy()
    segs = _segments(mask)
    for (_, e0), (s1, _) in zip(segs[:-1], segs[1:]):
        if s1 - e0 <= gap:
            out[e0:s1] = True
    return out


def foot_contacts(positions: np.ndarray, probability: np.ndarray | None = None,
                  config: CleanupConfig = CleanupConfig()) -> np.ndarray:
    """(T, 22, 3) world positions (floor at y = 0), optional (T, 4) contact probabilities -> (T, 4) bool.

    Columns follow FOOT_JOINTS (left ankle, right ankle, left toe, right toe). Without
    probabilities a joint moving less than CONTACT_SPEED per frame counts as predicted in contact.
    """
    feet = positions[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    if probability is None:
        speed = np.zeros(feet.shape[:2])
        if len(feet) > 1:
            speed[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
            speed[0] = speed[1]
        predicted = speed < CONTACT_SPEED
    else:
        probability = np.asarray(probability, dtype=np.float64)
        if probability.shape != feet.shape[:2]:
            raise ValueError(f"contact probabilities must have shape {feet.shape[:2]}, got {probability.shape}")
        predicted = probability >= config.contact_threshold
    limit = np.array([config.ankle_height, config.ankle_height, config.toe_height, config.toe_height])
    mask = predicted & (feet[..., 1] <= limit)
    return np.stack([_fill_gaps(mask[:, k], config.fill_gaps) for k in range(mask.shape[1])], axis=1)


def _ramp(d: np.ndarray, blend: int) -> np.ndarray:
    """Weight of a correction d frames outside its segment: smoothstep from 1 (d = 0) to 0 (d = blend + 1)."""
    x = np.clip(1.0 - d / (blend + 1.0), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def pinned_corrections(points: np.ndarray, contact: np.ndarray, blend: int,
                       max_correction: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """One joint's horizontal pinning: points (T, 3), contact (T,) bool -> correction (T, 3) (y = 0), weight (T,).

    Inside a contact segment the correction moves the joint onto the segment's mean horizontal
    position (weight 1); outside it fades out over `blend` frames, or is interpolated linearly
    between the two segments across a gap of at most 2 * blend frames. A segment that would
    need a correction above `max_correction` (a body carried along with its feet "in contact")
    is only slowed down: its corrections are scaled to at most `max_correction`.
    """
    T = len(points)
    corr = np.zeros((T, 3))
    weight = np.zeros(T)
    inside = np.flatnonzero(contact)
    if not len(inside):
        return corr, weight
    segs = np.array(_segments(contact))  # (S, 2) [start, stop)
    lengths = segs[:, 1] - segs[:, 0]
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # each segment's first row in `inside`
    label = np.repeat(np.arange(len(segs)), lengths)
    xz = points[inside][:, [0, 2]]
    c = (np.add.reduceat(xz, first, axis=0) / lengths[:, None])[label] - xz  # onto the segment's mean
    far = np.maximum.reduceat(np.linalg.norm(c, axis=-1), first)
    c *= np.minimum(1.0, max_correction / np.maximum(far, 1e-12))[label][:, None]
    corr[inside[:, None], [0, 2]] = c
    weight[inside] = 1.0
    out = np.flatnonzero(~contact.astype(bool))
    if not len(out):
        return corr, weight
    frames = np.arange(T)
    prev_in = np.maximum.accumulate(np.where(contact, frames, -1))[out]  # last contact frame before, or -1
    next_in = np.minimum.accumulate(np.where(contact, frames, T)[::-1])[::-1][out]  # first after, or T
    has_l, has_r = prev_in >= 0, next_in < T
    left = np.where(has_l[:, None], corr[np.maximum(prev_in, 0)], 0.0)
    right = np.where(has_r[:, None], corr[np.minimum(next_in, T - 1)], 0.0)
    w_l = np.where(has_l, _ramp(out - prev_in, blend), 0.0)
    w_r = np.where(has_r, _ramp(next_in - out, blend), 0.0)
    short = has_l & has_r & (next_in - prev_in - 1 <= 2 * blend)  # a short gap: interpolate across it
    a = ((out - prev_in) / np.maximum(next_in - prev_in, 1))[:, None]
    corr[out] = np.where(short[:, None], (1 - a) * left + a * right, w_l[:, None] * left + w_r[:, None] * right)
    weight[out] = np.maximum(w_l, w_r)
    return corr, weight


def ground_lift(positions: np.ndarray, radius: int) -> np.ndarray:
    """(T, 22, 3) -> (T,) root lift >= 0: a smooth envelope never below what puts every foot joint at y >= 0."""
    need = np.maximum(0.0, -positions[:, list(FOOT_JOINTS), 1].min(axis=1))
    if radius < 1 or not need.any():
        return need
    T = len(need)
    padded = np.pad(need, radius, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1)  # (T, 2r + 1)
    upper = windows.max(axis=1)
    padded = np.pad(upper, radius, mode="edge")
    smooth = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1).mean(axis=1)
    return np.maximum(smooth, need)[:T]  # the box of a max filter of the same radius is >= need already


# --- the cleanup -----------------------------------------------------------------------------

def _leg_ik(q: np.ndarray, world: np.ndarray, pos: np.ndarray, leg: tuple[int, int, int, int], idx: np.ndarray,
            ankle_corr: np.ndarray, toe_corr: np.ndarray, toe_weight: np.ndarray, offsets: np.ndarray) -> None:
    """Move one leg in the frames `idx` (into the flat frame axis of q (N, 22, 4), world, pos), in place on q."""
    hip, knee, ankle, toe = leg
    P, G = pos[idx], world[idx]
    r_hip, r_knee, new_ankle = two_bone_ik(P[:, hip], P[:, knee], P[:, ankle], P[:, ankle] + ankle_corr,
                                           G[:, knee, :, 0])
    G_hip = r_hip @ G[:, hip]
    G_knee = r_hip @ r_knee @ G[:, knee]
    # the foot keeps its world orientation, then turns about the ankle so the toe reaches its own
    # target: the point of the toe's sphere around the new ankle above the target's horizontal
    # position (on the toe's side: below the ankle if it was), never below the floor
    toe_now = G[:, ankle] @ offsets[toe]  # (N, 3) toe - ankle
    length = np.linalg.norm(toe_now, axis=-1)
    flat = (P[:, toe] + toe_corr - new_ankle)[:, [0, 2]]
    d = np.linalg.norm(flat, axis=-1)
    up = np.where(toe_now[:, 1] >= 0, 1.0, -1.0) * np.sqrt(np.maximum(length ** 2 - d ** 2, 0.0))
    floor = new_ankle[:, 1] + up < 0  # would put the toe under the floor: the toe on the floor instead
    up = np.where(floor, -new_ankle[:, 1], up)
    radius = np.where(floor, np.sqrt(np.maximum(length ** 2 - new_ankle[:, 1] ** 2, 0.0)), d)
    goal = np.zeros_like(toe_now)
    goal[:, [0, 2]] = flat / np.maximum(d, 1e-9)[:, None] * radius[:, None]
    goal[:, 1] = up
    ok = (d < length) & (d > 1e-6)  # an unreachable target (or none): the foot keeps its orientation
    turn = rot.quat_slerp(rot.quat_identity(len(idx)), rot.quat_between(toe_now, np.where(ok[:, None], goal, toe_now)),
                          np.where(ok, toe_weight, 0.0))
    G_ankle = rot.quat_to_matrix(turn) @ G[:, ankle]
    # part of the way there (blending) the toe can swing under the floor: tip it back up onto it
    toe_vec = G_ankle @ offsets[toe]
    under = (new_ankle[:, 1] + toe_vec[:, 1] < 0) & (new_ankle[:, 1] >= 0) & (new_ankle[:, 1] < length)
    if under.any():
        flat = np.where(np.linalg.norm(toe_vec[:, [0, 2]], axis=-1, keepdims=True) > 1e-6, toe_vec[:, [0, 2]],
                        toe_now[:, [0, 2]] + 1e-6)
        on_floor = np.zeros_like(toe_vec)
        on_floor[:, [0, 2]] = _unit(flat)[0] * np.sqrt(np.maximum(length ** 2 - new_ankle[:, 1] ** 2, 0.0))[:, None]
        on_floor[:, 1] = -new_ankle[:, 1]
        tip = rot.quat_to_matrix(rot.quat_between(toe_vec[under], on_floor[under]))
        G_ankle[under] = tip @ G_ankle[under]
    new_locals = {hip: np.swapaxes(G[:, 0], -1, -2) @ G_hip,
                  knee: np.swapaxes(G_hip, -1, -2) @ G_knee,
                  ankle: np.swapaxes(G_knee, -1, -2) @ G_ankle}
    for joint, R in new_locals.items():
        new = rot.matrix_to_quat(R)
        q[idx, joint] = np.where(np.sum(new * q[idx, joint], axis=-1, keepdims=True) < 0, -new, new)


def clean_foot_contacts(rotations: np.ndarray, translation: np.ndarray, contacts: np.ndarray | None = None,
                        config: CleanupConfig = CleanupConfig(),
                        rest_joints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pin feet in contact and lift the body out of the floor.

    rotations (T, 22, 4) or (n, T, 22, 4) local wxyz quaternions; translation (T, 3) or (n, T, 3);
    contacts None or (T, 4) / (n, T, 4) predicted contact probabilities in FOOT_JOINTS order.
    Returns float32 arrays of the input shapes; frames with nothing to fix are unchanged.
    """
    q = np.asarray(rotations)
    t = np.asarray(translation)
    single = q.ndim == 3
    if single:
        q, t = q[None], t[None]
        contacts = None if contacts is None else np.asarray(contacts)[None]
    if q.ndim != 4 or q.shape[2:] != (NUM_JOINTS, 4) or t.shape != q.shape[:2] + (3,):
        raise ValueError(f"expected rotations (n, T, 22, 4) and translation (n, T, 3), got {q.shape} and {t.shape}")
    if contacts is not None and np.shape(contacts) != q.shape[:2] + (len(FOOT_JOINTS),):
        raise ValueError(f"contacts must have shape {q.shape[:2] + (len(FOOT_JOINTS),)}, got {np.shape(contacts)}")
    offsets = rest_offsets(rest_joints)
    n, T = q.shape[:2]
    q_out = q.astype(np.float64).reshape(n * T, NUM_JOINTS, 4)  # a copy: frames flattened, candidate-major
    t_out = t.astype(np.float64).reshape(n * T, 3)
    world, pos = _fk(q_out, t_out, offsets)
    for k in range(n):  # ground first: contacts are judged on the lifted body
        rows = slice(k * T, (k + 1) * T)
        lift = ground_lift(pos[rows], config.lift_radius)
        t_out[rows, 1] += lift
        pos[rows, :, 1] += lift[:, None]
    blend = config.blend_frames
    for leg in LEGS:
        hip, knee, ankle, toe = leg
        idx, ankle_corr, toe_corr, toe_weight = [], [], [], []
        for k in range(n):
            rows = slice(k * T, (k + 1) * T)
            contact = foot_contacts(pos[rows], None if contacts is None else contacts[k], config)  # (T, 4)
            a_corr, a_w = pinned_corrections(pos[rows, ankle], contact[:, ANKLE_COLUMN[ankle]], blend,
                                             config.max_correction)
            t_corr, t_w = pinned_corrections(pos[rows, toe], contact[:, TOE_COLUMN[toe]], blend,
                                             config.max_correction)
            corr = a_corr + (1.0 - a_w)[:, None] * t_corr  # the ankle's own pin, else the whole foot moved by the toe's
            touched = np.nonzero((np.abs(corr).max(axis=1) > 0) | (t_w > 0))[0]
            idx.append(touched + k * T)
            ankle_corr.append(corr[touched])
            toe_corr.append(t_corr[touched])
            toe_weight.append(t_w[touched])
        idx = np.concatenate(idx)
        if len(idx):
            _leg_ik(q_out, world, pos, leg, idx, np.concatenate(ankle_corr), np.concatenate(toe_corr),
                    np.concatenate(toe_weight), offsets)
    q_out = q_out.reshape(n, T, NUM_JOINTS, 4).astype(np.float32)
    t_out = t_out.reshape(n, T, 3).astype(np.float32)
    return (q_out[0], t_out[0]) if single else (q_out, t_out)


# --- measures ----------------------------------------------------------------------------------

def skate_samples(positions: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal speeds (m/s) of foot joints between consecutive frames of (T, 22, 3) positions:
    (samples within 5 cm of the floor in both frames, samples within 2 cm), for pooling over motions."""
    feet = positions[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    h = feet[..., 1]
    speed = np.linalg.norm(np.diff(feet[..., [0, 2]], axis=0), axis=-1) * fps  # (T - 1, 4)
    return speed[(h[:-1] < 0.05) & (h[1:] < 0.05)], speed[(h[:-1] < 0.02) & (h[1:] < 0.02)]


def skate_metrics(positions: np.ndarray, fps: float) -> dict[str, float]:
    """Foot skating and ground penetration of one motion's (T, 22, 3) positions, floor at y = 0.

    The same definitions as server/eval/physics.py's `clip_physics` (which server/model may not
    import), over the foot joints FOOT_JOINTS, each judged on its own height:
    skate_ratio: of the (joint, frame pair) samples within 5 cm of the floor in both frames, the
    share sliding faster than 0.5 m/s horizontally (GMD: 2.5 cm per frame at 20 fps);
    skate_speed: median horizontal speed (m/s) of samples within 2 cm of the floor (NaN if none);
    penetration_share: share of frames with a joint more than 3 cm below the floor.
    Also the sample counts (touch_samples, strict_samples), to pool several motions.
    """
    touch, strict = skate_samples(positions, fps)
    skating = touch > 0.5
    return {"skate_ratio": float(skating.mean()) if touch.size else 0.0,
            "skate_speed": float(np.median(strict)) if strict.size else float("nan"),
            "penetration_share": float((positions[..., 1].min(axis=1) < -0.03).mean()),
            "touch_samples": int(touch.size), "skating_samples": int(skating.sum()), "strict_samples": int(strict.size)}
