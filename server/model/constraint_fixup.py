"""The exact fix-up of one motion to its constraints, in wire space (numpy, float64 inside).

`fix_motion(rotations, translation, constraints, fps)` returns the motion changed as little as
it can be so that every constraint holds exactly where it applies, with no pop:

1. loop: the window of the clip (from frame 0, or later when no pose or kept joint is pinned) that
   ends most in phase with its first frame, with its seam where the joints accelerate least, is
   played over the whole clip (at most 20% slower; placed where frame 0 was); the last `loop_window`
   frames ease into a continuation of the first in position and velocity (local joint rotations,
   repeated until the rotation-vector closure is exact; pelvis tilt and height) and the root's
   heading-frame velocity eases into the first step's; of the `LOOP_CANDIDATES` best windows the one
   whose closed seam accelerates least is kept;
2. root path: the root's ground place and heading are projected onto the path (its timing: the
   path's times, its speed, or the motion's own pace scaled to end at the path's end);
3. rooted poses (``root``): heading and ground place corrections at the pinned frames, eased
   between them (cosine) and constant outside them (one rooted pose = a rigid move);
4. poses: each pinned joint rotation (pelvis: tilt and height) is exact at its frame and the
   correction fades out over `window` frames on both sides (never reaching another pinned frame);
5. kept joints are copied from the source exactly (the pelvis with the root's path).
Later steps win where they meet. The sampler (`server/model/constraints.py`) runs the same
function on every denoising step's prediction, so the final correction is small.
"""
from __future__ import annotations

import numpy as np

from shared import rotations as rot
from shared.constraints import Constraints, PoseKey, RootPath, heading_yaw
from shared.motion import forward_kinematics

WINDOW = 10           # frames a pose correction fades over, each side (0.5 s at 20 fps)
LOOP_WINDOW = 12      # frames at the end that ease into the loop (at most a third of the clip)
LOOP_MIN_RATE = 0.8   # a loop may play a window of the clip up to 20% slower to end in phase with its first frame
LOOP_CANDIDATES = 3   # loop windows closed to pick the smoothest seam from
LOOP_ITERATIONS = 3   # passes of the seam's rotation closure (each removes the last one's second-order rest)
TANGENT_SPAN = 0.25   # metres of path either side used for the facing direction
STILL_DISTANCE = 0.05  # metres: a motion that travels less than this has no pace of its own


# --- small helpers --------------------------------------------------------------------------

def _ry_quat(yaw: np.ndarray) -> np.ndarray:
    """(...,) yaw -> (..., 4) rotation about +Y."""
    yaw = np.asarray(yaw, dtype=np.float64)
    out = np.zeros(yaw.shape + (4,))
    out[..., 0] = np.cos(yaw / 2)
    out[..., 2] = np.sin(yaw / 2)
    return out


def _rotate_xz(v: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(..., 2) ground vectors (x, z) turned by Ry(yaw)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], axis=-1)


def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


def quat_power(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """q^w on the shortest arc: (..., 4), weights broadcast to (...,) -> (..., 4)."""
    return rot.axis_angle_to_quat(rot.quat_to_axis_angle(q) * np.asarray(w, dtype=np.float64)[..., None])


def bump(frames: int, at: int, width: int) -> np.ndarray:
    """(frames,) cosine weight: 1 at frame `at`, 0 from `width` frames away."""
    d = np.abs(np.arange(frames) - at) / max(width, 1)
    return np.where(d < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.minimum(d, 1.0))), 0.0)


def ease_between(frames: int, at: list[int], values: np.ndarray) -> np.ndarray:
    """(frames, ...) piecewise cosine ease through `values` (K, ...) at sorted frames `at` (K,);
    constant before the first and after the last (zero velocity at every key)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty((frames,) + values.shape[1:])
    t = np.arange(frames)
    out[t <= at[0]] = values[0]
    out[t >= at[-1]] = values[-1]
    for k in range(len(at) - 1):
        a, b = at[k], at[k + 1]
        inside = (t > a) & (t < b)
        s = (t[inside] - a) / (b - a)
        e = (0.5 * (1.0 - np.cos(np.pi * s))).reshape((-1,) + (1,) * (values.ndim - 1))
        out[inside] = values[k] + (values[k + 1] - values[k]) * e
    return out


def root_heading(q: np.ndarray) -> np.ndarray:
    """(T, 22, 4) -> (T,) pelvis heading, unwrapped over time."""
    return np.unwrap(heading_yaw(q[:, 0]))


# --- 1. root path ---------------------------------------------------------------------------

def path_arc(points: np.ndarray) -> np.ndarray:
    """(P, 2) -> (P,) arc length at each point."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=-1))])


def path_at(points: np.ndarray, arc: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Points at arc lengths s (...,) -> (..., 2) (clamped to the path)."""
    s = np.clip(s, 0.0, arc[-1])
    return np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=-1)


def path_facing(points: np.ndarray, arc: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Heading yaw (...,) of the path's direction at arc lengths s: Ry(yaw) turns +Z along it."""
    h = min(TANGENT_SPAN, arc[-1] / 2)
    s = np.clip(s, 0.0, arc[-1])
    d = path_at(points, arc, np.minimum(s + h, arc[-1])) - path_at(points, arc, np.maximum(s - h, 0.0))
    return np.arctan2(d[..., 0], d[..., 1])


def path_progress(path: RootPath, xz: np.ndarray, fps: float) -> np.ndarray:
    """(T,) arc length reached at each frame: from the path's times, its speed, or the motion's own pace."""
    points = np.asarray(path.points, dtype=np.float64)
    arc = path_arc(points)
    T = len(xz)
    seconds = np.arange(T) / fps
    if path.times is not None:
        return np.interp(seconds, np.asarray(path.times, dtype=np.float64), arc)
    if path.speed is not None:
        return np.minimum(float(path.speed) * seconds, arc[-1])
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xz, axis=0), axis=-1))])
    if travelled[-1] < STILL_DISTANCE:
        return arc[-1] * np.arange(T) / max(T - 1, 1)
    return travelled * (arc[-1] / travelled[-1])


def follow_path(q: np.ndarray, p: np.ndarray, path: RootPath, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The root's ground place and heading replaced by the path's (the body turns with its heading)."""
    points = np.asarray(path.points, dtype=np.float64)
    arc = path_arc(points)
    s = path_progress(path, p[:, [0, 2]], fps)
    target_yaw = np.unwrap(path_facing(points, arc, s))
    yaw = root_heading(q)
    q = q.copy()
    p = p.copy()
    turn = target_yaw - yaw
    turn -= 2 * np.pi * np.round(turn[0] / (2 * np.pi))
    q[:, 0] = rot.quat_multiply(_ry_quat(turn), q[:, 0])
    p[:, [0, 2]] = path_at(points, arc, s)
    return q, p


# --- 2. rooted poses ------------------------------------------------------------------------

def place_root(q: np.ndarray, p: np.ndarray, keys: list[PoseKey]) -> tuple[np.ndarray, np.ndarray]:
    """Heading and ground place exact at each rooted key, eased between keys, rigid outside them."""
    keys = sorted(keys, key=lambda k: k.frame)
    T = len(q)
    at = [k.frame for k in keys]
    yaw = root_heading(q)
    d_yaw = np.array([_wrap(float(heading_yaw(k.rotations[0])) - yaw[k.frame]) for k in keys])
    turn = ease_between(T, at, d_yaw)                               # (T,)
    q = q.copy()
    q[:, 0] = rot.quat_multiply(_ry_quat(turn), q[:, 0])
    xz = p[:, [0, 2]]
    steps = np.diff(xz, axis=0)                                     # (T-1, 2)
    steps = _rotate_xz(steps, 0.5 * (turn[1:] + turn[:-1]))
    placed = xz[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    error = np.array([np.asarray(k.translation, dtype=np.float64)[[0, 2]] - placed[k.frame] for k in keys])
    placed = placed + ease_between(T, at, error)
    p = p.copy()
    p[:, [0, 2]] = placed
    return q, p


# --- 3. loop --------------------------------------------------------------------------------

def local_positions(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(T, 22, 3) joints relative to the pelvis' ground point, in the heading frame (height absolute)."""
    P = forward_kinematics(q, p)
    yaw = root_heading(q)
    rel = P - p[:, None] * np.array([1.0, 0.0, 1.0])
    c, s = np.cos(-yaw)[:, None], np.sin(-yaw)[:, None]
    return np.stack([c * rel[..., 0] + s * rel[..., 2], rel[..., 1], -s * rel[..., 0] + c * rel[..., 2]], -1)


def loop_spans(q: np.ndarray, p: np.ndarray, min_rate: float = LOOP_MIN_RATE, shift: bool = True,
               count: int = 1) -> list[tuple[int, int]]:
    """The `count` best (start, tau), best first: the window of `tau` frames (min_rate * T .. T) from `start` whose end runs most
    naturally into its first frame (the pose predicted one step after its last frame, and its velocity,
    against the first frame's) and whose seam falls where the joints accelerate least (a seam on a
    fast swing bends however well it closes). ``shift`` False: the window starts at frame 0."""
    L = local_positions(q, p)
    T = len(L)
    v = np.diff(L, axis=0)                                          # (T-1, J, 3)
    acc = np.square(np.diff(v, axis=0)).sum(-1).max(-1)             # (T-2,) at frames 1 .. T-2: the fastest joint
    acc = np.concatenate([acc[:1], acc, acc[-1:]])                  # (T,) one per frame
    lo = max(3, int(np.ceil(min_rate * T)))
    starts = np.arange(0, T - lo + 1 if shift else 1)
    taus = np.arange(lo, T + 1)
    k, tau = np.meshgrid(starts, taus, indexing="ij")
    ok = k + tau <= T
    k, tau = k[ok], tau[ok]
    last = k + tau - 1
    predicted = L[last] + v[last - 1]
    cost = (np.square(predicted - L[k]).sum(-1).mean(-1)
            + np.square(v[last - 1] - v[np.minimum(k, T - 2)]).sum(-1).mean(-1)
            + acc[k] + acc[last])
    cost = cost * (1.0 + 0.5 * (T - tau) / T)           # slightly prefer less stretching
    order = np.argsort(cost, kind="stable")
    picked = list(order[:count])
    if shift and count > 1 and not (k[picked] == 0).any():   # the best unshifted window is always a candidate
        picked[-1] = order[np.nonzero(k[order] == 0)[0][0]]
    return [(int(k[i]), int(tau[i])) for i in picked]


def seam_acceleration(q: np.ndarray, p: np.ndarray) -> float:
    """The largest joint acceleration (m per frame^2, root-relative) at the two frames either side of the seam."""
    L = local_positions(np.concatenate([q[-2:], q[:2]]), np.concatenate([p[-2:], p[:2]]))
    return float(np.linalg.norm(np.diff(L, 2, axis=0), axis=-1).max())


def stretch(q: np.ndarray, p: np.ndarray, tau: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames start .. start + tau - 1 played over all T frames (slower by tau / T), placed where frame 0
    was (its ground place and heading)."""
    T = len(q)
    if tau >= T and start == 0:
        return q, p
    u = start + np.arange(T) * (tau / T)
    i0 = np.floor(u).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    f = u - i0
    out_q = rot.quat_slerp(q[i0], q[i1], np.broadcast_to(f[:, None], q.shape[:2]))
    out_p = p[i0] * (1.0 - f)[:, None] + p[i1] * f[:, None]
    if start:
        turn = _wrap(float(heading_yaw(q[0, 0])) - float(heading_yaw(out_q[0, 0])))
        out_q[:, 0] = rot.quat_multiply(_ry_quat(np.full(T, turn)), out_q[:, 0])
        out_p[:, [0, 2]] = p[0, [0, 2]] + _rotate_xz(out_p[:, [0, 2]] - out_p[0, [0, 2]], turn)
    return out_q, out_p


def _hermite(T: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(T,) bases over the last `width` frames: h eases 0 -> 1 (flat at both ends); g is 0 at both
    ends, flat at the start, with slope 1 per frame at the last frame."""
    s = np.clip((np.arange(T) - (T - 1 - width)) / width, 0.0, 1.0)
    return 3 * s ** 2 - 2 * s ** 3, width * (s ** 3 - s ** 2)


def _seam_values(x: np.ndarray, h: np.ndarray, g: np.ndarray) -> np.ndarray:
    """x (T, ...): the end eased so that frame 0 follows the last frame with frame 0's own velocity."""
    v0 = x[1] - x[0]
    a = (x[0] - v0) - x[-1]                           # the last frame should sit one step before frame 0
    dh, dg = h[-1] - h[-2], g[-1] - g[-2]
    b = (v0 - (x[-1] - x[-2]) - a * dh) / dg          # and arrive with frame 0's velocity
    shape = (-1,) + (1,) * (x.ndim - 1)
    return x + a * h.reshape(shape) + b * g.reshape(shape)


def _seam_rotations(q: np.ndarray, h: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Quaternions (T, J, 4), the same in rotation-vector space (left differences, parent frame)."""
    conj, mul = rot.quat_conjugate, rot.quat_multiply
    step0 = mul(q[1], conj(q[0]))
    a = rot.quat_to_axis_angle(mul(mul(conj(step0), q[0]), conj(q[-1])))          # (J, 3)
    dh, dg = h[-1] - h[-2], g[-1] - g[-2]
    end_step = rot.quat_to_axis_angle(mul(q[-1], conj(q[-2])))
    b = (rot.quat_to_axis_angle(step0) - end_step - a * dh) / dg
    correction = rot.axis_angle_to_quat(a[None] * h[:, None, None] + b[None] * g[:, None, None])
    return mul(correction, q)


def _seam_velocity(vel: np.ndarray, h: np.ndarray) -> np.ndarray:
    """vel (T, k) with vel[0] unused -> vel[1:] with the end eased into the first step's velocity, so the
    velocity is the same on both sides of the (unseen) seam step."""
    v = vel[1:]
    return v + (v[0] - v[-1]) * h[1:, None]


def close_loop(q: np.ndarray, p: np.ndarray, width: int = LOOP_WINDOW, stretch_to_phase: bool = True,
               shift: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Frame 0 continues the last frame: the best loop windows (`loop_spans`; from frame 0 unless ``shift``)
    is stretched over the clip, then the end eases into frame 0 in local pose (joints, pelvis tilt,
    height; position and velocity) and root velocity (heading-frame steps and turn rate)."""
    T = len(q)
    if T < 6:
        return q, p
    if stretch_to_phase:   # close the few best windows and keep the smoothest seam
        closed = [close_loop(*stretch(q, p, tau, start), width, False)
                  for start, tau in loop_spans(q, p, shift=shift, count=LOOP_CANDIDATES)]
        return min(closed, key=lambda m: seam_acceleration(*m))
    width = int(np.clip(min(width, T // 3), 2, T - 2))
    h, g = _hermite(T, width)
    yaw = root_heading(q)
    tilt = rot.quat_multiply(_ry_quat(-yaw), q[:, 0])
    local = np.concatenate([tilt[:, None], q[:, 1:]], axis=1)
    local = rot.quat_fix_continuity(local, axis=0)
    for _ in range(LOOP_ITERATIONS):        # the rotation-vector closure is first order: repeat on what is left
        local = _seam_rotations(local, h, g)
    height = _seam_values(p[:, 1], h, g)
    xz = p[:, [0, 2]]
    vel = np.zeros((T, 3))                                              # (d_yaw, vx, vz) in the heading frame of t-1
    vel[1:, 0] = np.diff(yaw)
    vel[1:, 1:] = _rotate_xz(np.diff(xz, axis=0), -yaw[:-1])
    vel[1:] = _seam_velocity(vel, h)
    new_yaw = yaw[0] + np.concatenate([[0.0], np.cumsum(vel[1:, 0])])
    steps = _rotate_xz(vel[1:, 1:], new_yaw[:-1])
    new_xz = xz[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    q = q.copy()
    q[:, 1:] = local[:, 1:]
    q[:, 0] = rot.quat_multiply(_ry_quat(new_yaw), local[:, 0])
    p = np.stack([new_xz[:, 0], height, new_xz[:, 1]], axis=-1)
    return q, p


# --- 4. poses -------------------------------------------------------------------------------

def blend_poses(q: np.ndarray, p: np.ndarray, keys: list[PoseKey], window: int = WINDOW
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each key's pinned joints exact at its frame, the correction fading over `window` frames."""
    T = len(q)
    q = q.copy()
    p = p.copy()
    frames = [k.frame for k in keys]
    for key in keys:
        others = [abs(f - key.frame) for f in frames if f != key.frame]
        width = min([window] + others)
        w = bump(T, key.frame, width)                               # (T,)
        near = w > 0
        mask = key.joint_mask
        target = np.asarray(key.rotations, dtype=np.float64)
        joints = np.nonzero(mask[1:])[0] + 1
        if len(joints):
            delta = rot.quat_multiply(target[joints], rot.quat_conjugate(q[key.frame, joints]))   # (J, 4)
            q[np.ix_(near, joints)] = rot.quat_multiply(quat_power(delta[None], w[near][:, None]),
                                                        q[np.ix_(near, joints)])
        if mask[0]:
            yaw = root_heading(q)
            tilt = rot.quat_multiply(_ry_quat(-yaw), q[:, 0])
            target_tilt = rot.quat_multiply(_ry_quat(-heading_yaw(target[0])), target[0])
            delta = rot.quat_multiply(target_tilt, rot.quat_conjugate(tilt[key.frame]))
            tilt[near] = rot.quat_multiply(quat_power(delta[None], w[near]), tilt[near])
            q[:, 0] = rot.quat_multiply(_ry_quat(yaw), tilt)
            p[:, 1] += w * (float(key.translation[1]) - p[key.frame, 1])
    return q, p


# --- all of it ------------------------------------------------------------------------------

def fix_motion(rotations: np.ndarray, translation: np.ndarray, constraints: Constraints, fps: float,
               window: int | None = None, loop_window: int | None = None, stretch_loop: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """(T, 22, 4), (T, 3) -> the same motion with `constraints` exact (float64; see the module docstring).

    ``window`` / ``loop_window``: None = `WINDOW` / `LOOP_WINDOW` (read at call time). ``stretch_loop``
    False: a loop is closed without re-timing (for a motion fixed up once already).
    """
    window = WINDOW if window is None else window
    loop_window = LOOP_WINDOW if loop_window is None else loop_window
    q = rot.quat_fix_continuity(rot.quat_normalize(np.asarray(rotations, dtype=np.float64)), axis=0)
    p = np.asarray(translation, dtype=np.float64).copy()
    c = constraints
    keys = [k for _, k in c.poses()]
    if c.loop:   # the loop window may start later in the clip only where no pose or kept joint is pinned
        q, p = close_loop(q, p, loop_window, stretch_loop, shift=not keys and c.keep_joints is None)
    if c.root_path is not None:
        q, p = follow_path(q, p, c.root_path, fps)
    rooted = [k for k in keys if k.root]
    if rooted:
        q, p = place_root(q, p, rooted)
    if keys:
        q, p = blend_poses(q, p, keys, window)
    if c.keep_joints is not None:
        kept = list(c.keep_joints.joints)
        q[:, kept] = np.asarray(c.keep_joints.rotations, dtype=np.float64)[:, kept]
        if 0 in kept:
            p = np.asarray(c.keep_joints.translation, dtype=np.float64).copy()
    return rot.quat_fix_continuity(q, axis=0), p


def placement(constraints: Constraints | None) -> tuple[float, np.ndarray]:
    """(start yaw, start ground place (2,)) where a motion under `constraints` begins before its fix-up."""
    c = constraints
    if c is not None and c.start_pose is not None and c.start_pose.root:
        return float(heading_yaw(c.start_pose.rotations[0])), np.asarray(c.start_pose.translation)[[0, 2]]
    if c is not None and c.keep_joints is not None:
        return float(heading_yaw(c.keep_joints.rotations[0, 0])), np.asarray(c.keep_joints.translation)[0, [0, 2]]
    if c is not None and c.root_path is not None:
        points = np.asarray(c.root_path.points, dtype=np.float64)
        return float(path_facing(points, path_arc(points), np.array(0.0))), points[0]
    return 0.0, np.zeros(2)
