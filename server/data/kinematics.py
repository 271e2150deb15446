"""Objective kinematic facts (speed, direction, turns, jumps, postures, arm/leg actions, order) of SMPL-22 motion.

After Kinematic Phrases (Liu et al., ECCV 2024) and KinMo: facts are computed from FK joint
positions only (Y-up, metres, floor y = 0, the body faces +Z at rest with its left on +x),
with every threshold a named, documented field of `Thresholds` (kinematic_thresholds.py) so the evaluation can
pass its own. Sign convention: a LEFT turn is counter-clockwise seen from above, i.e. a
positive rotation about +Y (facing +Z turns to face +X). All handedness lives in
`Fact.side` ("left", "right", "both"), so mirroring a motion swaps exactly that field.

    facts = extract_facts(motion)            # or extract_facts(positions (T, 22, 3), fps=20)
    for seg in facts.segments: print(seg.start, seg.end, [f.kind for f in seg.facts])
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from server.data.kinematic_thresholds import DEFAULT_THRESHOLDS, Thresholds  # noqa: F401  (re-exported)
from shared.motion import Motion
from shared.skeleton import NUM_JOINTS, REST_JOINTS, floor_height, leg_length

PELVIS, NECK, HEAD = 0, 12, 15
HIP, KNEE, ANKLE, FOOT = (1, 2), (4, 5), (7, 8), (10, 11)  # (left, right)
SHOULDER, ELBOW, WRIST = (16, 17), (18, 19), (20, 21)
SIDES = ("left", "right")
_SWAP = {"left": "right", "right": "left"}
# standing pelvis height / leg length of the SMPL template (about 0.92 m / 0.78 m)
_STAND_RATIO = float((REST_JOINTS[0, 1] - floor_height()) / leg_length())

LOCOMOTION = ("walk", "jog", "run")
POSTURES = ("crouch", "sit", "kneel", "lie")
BASE_KINDS = ("stand",) + LOCOMOTION + POSTURES + ("off_ground",)
_OFF_GROUND = len(BASE_KINDS) - 1
EVENT_KINDS = ("path", "turn", "jump", "hop", "get_up", "raise", "arm_forward", "arm_side",
               "wave", "punch", "clap", "kick", "bend", "lean_back")


class KinematicsError(ValueError):
    """The input is not a motion or (T, 22, 3) finite joint positions."""


@dataclass(frozen=True)
class Fact:
    """One fact over frames [start, end). side: 'left'/'right'/'both'/None (the only handed field).
    count: steps (locomotion), full turns (turn), repetitions (jump, hop, wave, punch, clap, kick ...).
    value: mean speed m/s (walk/jog/run), distance m (path), degrees (turn), pelvis rise m (jump/hop),
    median height of the lower foot m (off_ground),
    wrist height over the shoulder m (raise), mean peak-to-peak wrist swing m (wave), wrist speed m/s
    (punch), ankle height m (kick), torso tilt deg (bend/lean_back), lowest pelvis height m (postures).
    detail: direction (walk/jog/run, jump, hop: forward/backward/sideways/diagonal/back_diagonal; kick:
    forward/sideways), 'running' (a jump from one foot to the other out of a run: a leap), path shape
    (straight/veer/curve/circle), turn size (quarter/half/full), 'overhead'/'up' (raise), 'down' (a
    posture entered from standing)."""

    kind: str
    side: str | None = None
    count: int = 1
    value: float = 0.0
    start: int = 0
    end: int = 0
    detail: str = ""
    rate: float = 0.0
    """raise: the wrist's peak rise speed (m/s) relative to the shoulder on the way up (0 where not measured)."""
    reach: float = 0.0
    """raise: shoulder-wrist distance / arm length at the hand's highest point (1 = a straight arm; 0: not measured)."""
    swing: float = 0.0
    """walk/jog/run: mean range (m) of the wrists' forward-backward travel relative to the pelvis: the arm swing
    (Bandai walks: 'not-confident' 0.11, 'elderly' 0.26, 'normal' 0.46, 'youthful' 0.68; 0: not measured)."""
    width: float = 0.0
    """stand: median horizontal distance between the ankles (m): the stance (Bandai 'feminine' 0.07-0.11,
    'normal' 0.16, 'masculine' 0.27-0.30; 0: not measured)."""

    def mirrored(self) -> "Fact":
        return replace(self, side=_SWAP.get(self.side, self.side))

    def signature(self) -> tuple:
        return (self.kind, self.side, self.detail, self.count)


@dataclass(frozen=True)
class Segment:
    """Frames [start, end) of one base activity; facts[0] is the base (stand/walk/.../lie), events follow by start."""

    start: int
    end: int
    facts: tuple[Fact, ...]

    @property
    def base(self) -> Fact:
        return self.facts[0]


@dataclass(frozen=True)
class MotionFacts:
    """The facts of one clip, as ordered segments."""

    segments: tuple[Segment, ...]
    fps: float
    num_frames: int

    @property
    def facts(self) -> list[Fact]:
        return [f for s in self.segments for f in s.facts]

    def of_kind(self, *kinds: str) -> list[Fact]:
        return [f for f in self.facts if f.kind in kinds]

    def mirrored(self) -> "MotionFacts":
        segs = tuple(replace(s, facts=tuple(f.mirrored() for f in s.facts)) for s in self.segments)
        return replace(self, segments=segs)

    def signature(self) -> tuple:
        return tuple(tuple(f.signature() for f in s.facts) for s in self.segments)


# --- small array helpers --------------------------------------------------------------------


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over n frames along axis 0; the ends are padded by odd reflection,
    so a constant velocity stays exact up to the first and last frame."""
    x = np.asarray(x, dtype=np.float64)
    h = min(int(n) // 2, len(x) - 1)
    if h < 1:
        return x.copy()
    pad = np.concatenate([2 * x[:1] - x[h:0:-1], x, 2 * x[-1:] - x[-2:-h - 2:-1]])
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(pad, axis=0)])
    return (c[2 * h + 1:] - c[:-2 * h - 1]) / (2 * h + 1)


def _grad(x: np.ndarray, fps: float) -> np.ndarray:
    return np.gradient(x, axis=0) * fps if len(x) > 1 else np.zeros_like(x)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) of the True runs of a 1-D mask."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _n(seconds: float, fps: float) -> int:
    """Seconds -> a frame count of at least 1."""
    return max(int(round(seconds * fps)), 1)


def _held(mask: np.ndarray, n: int) -> list[tuple[int, int]]:
    return [(a, b) for a, b in _runs(mask) if b - a >= n]


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between vectors a and b (..., 3)."""
    cos = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _extrema(x: np.ndarray, h: float) -> list[int]:
    """Frames of alternating extrema of x, each differing from the previous by >= h (hysteresis)."""
    out: list[int] = []
    if len(x) < 2:
        return out
    imin = imax = cand = 0
    direction = 0  # +1: tracking a maximum, -1: tracking a minimum, 0: not started
    for i in range(1, len(x)):
        if direction == 0:
            imin = i if x[i] < x[imin] else imin
            imax = i if x[i] > x[imax] else imax
            if x[i] - x[imin] >= h:
                out, direction, cand = [imin], 1, i
            elif x[imax] - x[i] >= h:
                out, direction, cand = [imax], -1, i
        elif direction * (x[i] - x[cand]) > 0:
            cand = i
        elif direction * (x[cand] - x[i]) >= h:
            out.append(cand)
            direction, cand = -direction, i
    if out and abs(x[cand] - x[out[-1]]) >= h:
        out.append(cand)
    return out


# --- per-frame signals ----------------------------------------------------------------------


@dataclass
class Signals:
    """Per-frame quantities the facts are read from (kept for checkers: the evaluation reuses them)."""

    fps: float
    pos: np.ndarray  # (T, 22, 3) joint positions, floor at y = 0
    stand_height: float  # standing pelvis height of this skeleton (m)
    leg: float  # hip-knee-ankle length (m)
    arm: np.ndarray  # (2,) shoulder-elbow-wrist length per side (m)
    yaw: np.ndarray  # (T,) facing yaw, unwrapped, smoothed (rad, + = left turn)
    fwd: np.ndarray  # (T, 3) horizontal unit facing
    left: np.ndarray  # (T, 3) horizontal unit vector to the body's left
    vel: np.ndarray  # (T, 3) smoothed horizontal root velocity (m/s)
    speed: np.ndarray  # (T,) |vel|
    contact: np.ndarray  # (T, 2) bool foot on the ground (left, right)
    knee: np.ndarray  # (T, 2) knee flexion (deg)
    hip: np.ndarray  # (T, 2) hip flexion (deg)
    tilt: np.ndarray  # (T,) forward torso tilt from vertical (deg, + forward)
    torso: np.ndarray  # (T,) torso angle from vertical (deg, unsigned)

    def body(self, v: np.ndarray) -> np.ndarray:
        """(T, 3) world offsets -> (T, 3) body frame (forward, up, left)."""
        return np.stack([np.sum(v * self.fwd, -1), v[:, 1], np.sum(v * self.left, -1)], -1)


def as_positions(motion_or_positions, fps: float = 20.0) -> tuple[np.ndarray, float]:
    """A Motion (its fps wins) or (T, 22, 3) positions -> ((T, 22, 3) float64 positions, fps)."""
    if isinstance(motion_or_positions, Motion):
        return motion_or_positions.positions(), float(motion_or_positions.fps)
    p = np.asarray(motion_or_positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (NUM_JOINTS, 3) or len(p) == 0:
        raise KinematicsError(f"positions: expected shape (T>0, {NUM_JOINTS}, 3), got {p.shape}")
    if not np.isfinite(p).all():
        raise KinematicsError("positions: NaN or inf")
    if not (np.isfinite(fps) and fps > 0):
        raise KinematicsError(f"fps must be finite and > 0, got {fps}")
    return p, float(fps)


def compute_signals(positions: np.ndarray, fps: float, th: Thresholds = DEFAULT_THRESHOLDS) -> Signals:
    p = positions.copy()
    T = len(p)
    low = np.minimum(p[:, FOOT, 1], p[:, ANKLE, 1] - th.heel_offset)  # (T, 2) foot low points
    p[..., 1] -= min(float(np.percentile(low.min(1), 2)), th.floor_max)
    low = np.minimum(p[:, FOOT, 1], p[:, ANKLE, 1] - th.heel_offset)
    sub = p[::max(T // 32, 1)]  # bone lengths barely vary: 32 frames give their median
    bone = lambda a, b: float(np.median(np.linalg.norm(sub[:, a] - sub[:, b], axis=-1)))
    leg = np.mean([bone(HIP[s], KNEE[s]) + bone(KNEE[s], ANKLE[s]) for s in (0, 1)])
    arm = np.array([bone(SHOULDER[s], ELBOW[s]) + bone(ELBOW[s], WRIST[s]) for s in (0, 1)])
    n = _n(th.smooth_s, fps)
    unit = lambda v: v / np.maximum(np.linalg.norm(v * [1.0, 0.0, 1.0], axis=-1, keepdims=True), 1e-9)
    across = unit(p[:, HIP[0]] - p[:, HIP[1]]) + unit(p[:, SHOULDER[0]] - p[:, SHOULDER[1]])
    yaw = _smooth(np.unwrap(np.arctan2(-across[:, 2], across[:, 0])), n)  # facing = across x up
    fwd = np.stack([np.sin(yaw), np.zeros(T), np.cos(yaw)], -1)
    left = np.stack([np.cos(yaw), np.zeros(T), -np.sin(yaw)], -1)
    vel = _grad(_smooth(p[:, PELVIS] * [1.0, 0.0, 1.0], n), fps)
    up = np.array([0.0, 1.0, 0.0])
    spine = p[:, NECK] - p[:, PELVIS]
    thigh = p[:, KNEE] - p[:, HIP]  # (T, 2, 3)
    return Signals(
        fps=fps, pos=p, stand_height=_STAND_RATIO * leg, leg=leg, arm=arm, yaw=yaw, fwd=fwd,
        left=left, vel=vel, speed=np.linalg.norm(vel, axis=-1), contact=low < th.contact_height,
        knee=_angle(thigh, p[:, ANKLE] - p[:, KNEE]), hip=_angle(thigh, -spine[:, None]),
        tilt=np.degrees(np.arctan2(np.sum(spine * fwd, -1), spine[:, 1])), torso=_angle(spine, up),
    )


# --- base activity per frame ------------------------------------------------------------------


def _postures(s: Signals, th: Thresholds) -> np.ndarray:
    """(T,) posture index into POSTURES + 1 (0: none), by precedence lie > kneel > sit > crouch."""
    p = s.pos
    ratio = p[:, PELVIS, 1] / s.stand_height
    bent = (s.knee >= th.crouch_knee_deg).all(1)
    feet = p[:, ANKLE].mean(1) - p[:, PELVIS]
    behind = np.sum(feet * s.fwd, -1)  # pelvis behind the ankles (> 0)
    hips = (s.hip >= th.sit_hip_deg).all(1)
    upright = s.torso < th.lie_torso_deg
    out = np.zeros(len(p), np.int64)
    crouch = bent & (ratio <= th.crouch_height)
    sit = hips & upright & (((behind >= th.sit_behind) & crouch) | (ratio <= th.floor_sit_height))
    kneel = (p[:, KNEE, 1].min(1) <= th.kneel_height) & (ratio <= th.kneel_pelvis) & upright
    lie = (s.torso >= th.lie_torso_deg) & (ratio <= th.lie_height)
    for idx, m in ((1, crouch), (2, sit), (3, kneel), (4, lie)):
        out[m] = idx
    return out


def _clean(labels: np.ndarray, n: int) -> np.ndarray:
    """Merge runs shorter than n frames into their longer neighbour (repeatedly)."""
    lab = labels.copy()
    while True:
        change = np.nonzero(np.diff(lab))[0] + 1
        bounds = np.concatenate([[0], change, [len(lab)]])
        lengths = np.diff(bounds)
        if len(lengths) <= 1 or lengths.min() >= n:
            return lab
        k = int(np.argmin(lengths))
        prev_len = lengths[k - 1] if k > 0 else -1
        next_len = lengths[k + 1] if k + 1 < len(lengths) else -1
        src = bounds[k - 1] if prev_len >= next_len else bounds[k + 1]
        lab[bounds[k]:bounds[k + 1]] = lab[src]


def _base_labels(s: Signals, flights: np.ndarray, th: Thresholds) -> np.ndarray:
    """(T,) index into BASE_KINDS."""
    speed = s.speed
    lab = np.where(speed < th.walk_min_speed, 0, np.where(speed < th.jog_min_speed, 1,
                   np.where(speed < th.run_min_speed, 2, 3)))
    n = _n(th.min_segment_s, s.fps)
    lab = _clean(lab, n)
    for a, b in _runs(lab > 0):  # short-distance moves are standing; running gait makes a jog
        dist = float(np.sum(speed[a:b]) / s.fps)
        if dist < th.min_locomotion_distance:
            lab[a:b] = 0
    for a, b in _runs(lab == 1):
        if np.median(speed[a:b]) >= th.gait_jog_min_speed and flights[a:b].mean() >= th.run_flight_fraction:
            lab[a:b] = 2
    post = _postures(s, th)
    lab = np.where(post > 0, post + 3, lab)
    low = np.minimum(s.pos[:, FOOT, 1], s.pos[:, ANKLE, 1] - th.heel_offset).min(1)  # (T,) the lower foot
    for a, b in _held(low >= th.off_ground_height, _n(th.off_ground_s, s.fps)):  # climbing, hanging: no walk
        lab[a:b] = np.where(post[a:b] > 0, lab[a:b], _OFF_GROUND)  # lying with the feet up stays lying
    return _clean(lab, n)


# --- events -------------------------------------------------------------------------------------


def _flights(s: Signals, th: Thresholds) -> tuple[np.ndarray, list[Fact]]:
    """(T,) airborne mask of real flights, and the jump/hop facts among them."""
    fps, c = s.fps, s.contact
    air = ~c.any(1)
    lo, hi = _n(th.min_flight_s, fps), int(round(th.max_flight_s * fps))
    spans = [(a, b) for a, b in _runs(air) if lo <= b - a <= hi and a > 0 and b < len(air)]
    mask = np.zeros(len(air), bool)
    facts: list[Fact] = []
    w = _n(th.landing_window_s, fps)
    pre_n, leap_n = _n(0.5, fps), _n(th.leap_min_flight_s, fps)
    y = s.pos[:, PELVIS, 1]
    for i, (a, b) in enumerate(spans):
        mask[a:b] = True
        prev_end = spans[i - 1][1] if i else 0
        next_start = spans[i + 1][0] if i + 1 < len(spans) else len(air)
        take = c[max(a - w, prev_end):a].any(0)
        land = c[b:min(b + w, next_start)].any(0)
        rise = float(y[a:b].max() - y[max(a - pre_n, 0):a].min())
        if rise < th.jump_rise:
            continue
        detail = ""
        if take.all() or land.all():
            kind, side = "jump", None
        elif take.any() and (take == land).all():
            kind, side = "hop", SIDES[int(np.argmax(take))]
        elif b - a >= leap_n and rise >= th.leap_rise:
            kind, side, detail = "jump", None, "running"  # a leap from one foot to the other
        else:
            continue  # a running stride: take-off and landing on different feet
        facts.append(Fact(kind, side, 1, rise, a, b, detail))
    return mask, facts


def _turns(s: Signals, th: Thresholds) -> list[Fact]:
    fps = s.fps
    rate = np.degrees(_grad(s.yaw, fps))
    out = []
    gap = int(round(th.turn_gap_s * fps))
    hold = _n(th.turn_hold_s, fps)
    for sign in (1.0, -1.0):
        mask = sign * rate >= th.turn_rate_deg_s
        for a, b in _runs(~mask):  # close short pauses
            if 0 < a and b < len(mask) and b - a <= gap:
                mask[a:b] = True
        for a, b in _runs(mask):
            while a > 0 and sign * rate[a - 1] > 0.25 * th.turn_rate_deg_s:
                a -= 1
            while b < len(rate) and sign * rate[b] > 0.25 * th.turn_rate_deg_s:
                b += 1
            deg = float(np.degrees(s.yaw[b - 1] - s.yaw[a])) * sign
            kept = sign * np.degrees(np.median(s.yaw[b - 1:b + hold]) - np.median(s.yaw[max(a - hold, 0):a + 1]))
            if deg >= th.turn_min_deg and kept >= th.turn_min_deg:  # a twist that swings back is no turn
                size = "full" if deg >= th.full_turn_deg else "half" if deg >= th.half_turn_deg else "quarter"
                count = max(int(round(deg / 360.0)), 1) if size == "full" else 1
                out.append(Fact("turn", "left" if sign > 0 else "right", count, deg, a, b, size))
    return out


def _arms(s: Signals, th: Thresholds) -> list[Fact]:
    p, fps, out = s.pos, s.fps, []
    hold = _n(th.hold_min_s, fps)
    for k, side in enumerate(SIDES):
        d = s.body(p[:, WRIST[k]] - p[:, SHOULDER[k]])  # (T, 3) forward, up, left
        out_ = d[:, 2] * (1.0 if k == 0 else -1.0)  # outward from the body on this side
        L = s.arm[k]
        ext = np.linalg.norm(d, axis=-1) / L
        level = np.abs(d[:, 1]) <= th.level_ratio * L
        forward = (ext >= th.arm_extended) & (d[:, 0] >= th.reach_ratio * L) & level
        aside = (ext >= th.arm_extended) & (out_ >= th.reach_ratio * L) & level
        over = p[:, WRIST[k], 1] >= p[:, HEAD, 1] + th.overhead_margin
        up = (d[:, 1] >= th.raise_margin) & ~forward & ~aside
        for kind, mask in (("arm_forward", forward), ("arm_side", aside)):
            out += [Fact(kind, side, 1, 0.0, a, b) for a, b in _held(mask, hold)]
        for a, b in _runs(~up):  # one raise until the hand comes down (a waving hand swings out and back)
            if 0 < a and b < len(up) and d[a:b, 1].min() > -th.raise_drop:
                up[a:b] = True
        vup = _grad(d[:, 1], fps)  # (T,) wrist rise speed relative to the shoulder
        lead = _n(th.raise_lead_s, fps)
        for a, b in _held(up, hold):
            detail = "overhead" if over[a:b].sum() >= hold else "up"
            peak = a + int(np.argmax(d[a:b, 1]))
            out.append(Fact("raise", side, 1, float(d[a:b, 1].max()), a, b, detail,
                            rate=float(vup[max(a - lead, 0):peak + 1].max()), reach=float(ext[peak])))
        # waving: side-to-side swings of the wrist about the elbow while the hand is up
        swing = s.body(p[:, WRIST[k]] - p[:, ELBOW[k]])[:, 2]
        maxgap = int(round(th.wave_half_period_s * fps))
        forearm_up = p[:, WRIST[k], 1] - p[:, ELBOW[k], 1] >= th.wave_forearm_up
        for a, b in _runs((d[:, 1] >= -0.1) & forearm_up):
            ex = a + np.array(_extrema(swing[a:b], th.wave_amplitude), np.int64)
            for g in np.split(ex, np.nonzero(np.diff(ex) > maxgap)[0] + 1):
                cycles = (len(g) - 1) // 2
                if cycles >= th.wave_min_cycles:
                    swing_m = float(np.abs(np.diff(swing[g])).mean())  # peak-to-peak, m
                    out.append(Fact("wave", side, cycles, swing_m, int(g[0]), int(g[-1]) + 1))
        # punching: a fast forward extension from a bent arm
        vf = _grad(d[:, 0], fps)
        win = _n(th.punch_window_s, fps)
        armed = True
        for t in range(1, len(ext)):
            if ext[t] <= th.punch_bent:
                armed = True
            if (armed and ext[t] >= th.punch_extended > ext[t - 1] and d[t, 0] >= 0.5 * L
                    and vf[max(t - 3, 0):t + 1].max() >= th.punch_speed
                    and ext[max(t - win, 0):t].min() <= th.punch_bent):
                out.append(Fact("punch", side, 1, float(vf[max(t - 3, 0):t + 1].max()), t - 1, t + 1))
                armed = False
    dist = np.linalg.norm(p[:, WRIST[0]] - p[:, WRIST[1]], axis=-1)
    high = (p[:, WRIST, 1] >= p[:, PELVIS, 1:2] + th.clap_height).all(1)
    armed = True
    for t in range(len(dist)):
        if dist[t] >= th.clap_open:
            armed = True
        elif armed and dist[t] <= th.clap_distance and high[t] and t > 0:
            out.append(Fact("clap", "both", 1, 0.0, t, t + 1))
            armed = False
    return out


def _legs_torso(s: Signals, th: Thresholds, post: np.ndarray) -> list[Fact]:
    p, fps, out = s.pos, s.fps, []
    for k, side in enumerate(SIDES):
        rel = s.body(p[:, ANKLE[k]] - p[:, PELVIS])
        reach = np.hypot(rel[:, 0], rel[:, 2])
        ext = np.linalg.norm(p[:, ANKLE[k]] - p[:, HIP[k]], axis=-1) / s.leg
        speed = np.linalg.norm(_grad(p[:, ANKLE[k]], fps), axis=-1)
        swing = np.linalg.norm(_grad(p[:, ANKLE[k]] - p[:, PELVIS], fps), axis=-1)  # relative to the body
        high = (p[:, ANKLE[k], 1] >= th.kick_low_height) & (reach >= th.kick_reach) & (ext >= th.kick_extension)
        for a, b in _runs(high):
            w = slice(max(a - 4, 0), b)
            fast_high = p[a:b, ANKLE[k], 1].max() >= th.kick_height and speed[w].max() >= th.kick_speed
            if (not (fast_high or swing[w].max() >= th.kick_low_speed) or (post[a:b] == 4).any()
                    or not s.contact[max(a - 2, 0):b + 2, 1 - k].any()):  # a kick stands on the other foot
                continue
            t = a + int(np.argmax(p[a:b, ANKLE[k], 1]))
            f, l = rel[t, 0], rel[t, 2] * (1.0 if k == 0 else -1.0)
            if -f >= abs(l):  # heels kicked up behind (running) are not kicks
                continue
            detail = "forward" if f >= abs(l) else "sideways"
            out.append(Fact("kick", side, 1, float(p[t, ANKLE[k], 1]), a, b, detail))
    hold = _n(th.hold_min_s, fps)
    lying = post == 4
    bent = (s.tilt >= th.bend_deg) | ((s.tilt >= th.bow_deg) & (s.speed < th.walk_min_speed))
    out += [Fact("bend", None, 1, float(s.tilt[a:b].max()), a, b) for a, b in _held(bent & ~lying, hold)]
    out += [Fact("lean_back", None, 1, float(-s.tilt[a:b].min()), a, b)
            for a, b in _held((s.tilt <= -th.lean_back_deg) & ~lying, hold)]
    return out


def _both(facts: list[Fact], kinds: tuple[str, ...]) -> list[Fact]:
    """Left and right facts of one kind that overlap by half their length become one 'both' fact."""
    out, used = [], set()
    for i, f in enumerate(facts):
        if i in used or f.kind not in kinds or f.side != "left":
            continue
        for j, g in enumerate(facts):
            if j in used or g.kind != f.kind or g.side != "right":
                continue
            overlap = min(f.end, g.end) - max(f.start, g.start)
            if overlap >= 0.5 * min(f.end - f.start, g.end - g.start):
                used |= {i, j}
                detail = f.detail if f.detail == g.detail else ("up" if f.kind == "raise" else "")
                out.append(replace(f, side="both", count=min(f.count, g.count), start=min(f.start, g.start),
                                   end=max(f.end, g.end), detail=detail))
                break
    return out + [f for i, f in enumerate(facts) if i not in used]


def _in_waves(facts: list[Fact]) -> list[Fact]:
    """Arm poses (forward, to the side) of a waving arm and claps of two waving hands are part of the wave:
    a big wave sweeps the arm out level, two hands waving overhead cross. Those facts are dropped."""
    waves = [f for f in facts if f.kind == "wave"]

    def inside(f: Fact) -> bool:
        mid = (f.start + f.end) / 2
        sides = ("both",) if f.kind == "clap" else (f.side, "both") if f.side != "both" else ("both",)
        return any(w.start <= mid < w.end and w.side in sides for w in waves)

    return [f for f in facts if f.kind not in ("arm_forward", "arm_side", "clap") or not inside(f)]


# --- assembly -------------------------------------------------------------------------------------


def _stance(s: Signals, a: int, b: int) -> float:
    """Median horizontal ankle distance (m) over frames [a, b)."""
    d = s.pos[a:b, ANKLE[0]] - s.pos[a:b, ANKLE[1]]
    return float(np.median(np.hypot(d[:, 0], d[:, 2])))


def _locomotion_facts(s: Signals, kind: str, a: int, b: int, steps: np.ndarray, th: Thresholds) -> tuple[Fact, Fact]:
    v = s.vel[a:b]
    vb = np.stack([np.sum(v * s.fwd[a:b], -1), np.sum(v * s.left[a:b], -1)], -1).mean(0)
    ang = np.degrees(np.arctan2(vb[1], vb[0]))
    side = None
    if abs(ang) <= th.forward_cone_deg:
        direction = "forward"
    elif abs(ang) >= 180.0 - th.forward_cone_deg:
        direction = "backward"
    else:
        side = "left" if ang > 0 else "right"
        direction = ("sideways" if abs(abs(ang) - 90.0) <= th.sideways_cone_deg
                     else "diagonal" if abs(ang) < 90.0 else "back_diagonal")
    speed = s.speed[a:b]
    moving = speed >= th.walk_min_speed
    heading = np.unwrap(np.arctan2(v[moving, 0], v[moving, 2])) if moving.sum() > 1 else np.zeros(2)
    k = max(int(round(th.heading_window * len(heading))), 1)  # ends' medians: a stride's sway is no veer
    turn = float(np.degrees(np.median(heading[-k:]) - np.median(heading[:k]))) / (1.0 - th.heading_window)
    dist = float(speed.sum() / s.fps)
    shape = ("circle" if abs(turn) >= th.circle_min_deg else "curve" if abs(turn) >= th.curve_min_deg
             else "veer" if abs(turn) >= th.veer_min_deg else "straight")
    path_side = None if shape == "straight" else ("left" if turn > 0 else "right")
    fwd = np.sum((s.pos[a:b, WRIST] - s.pos[a:b, PELVIS, None]) * s.fwd[a:b, None], -1)  # (n, 2)
    swing = float(np.mean(np.percentile(fwd, 95, axis=0) - np.percentile(fwd, 5, axis=0)))
    return (Fact(kind, side, int(steps[a:b].sum()), float(speed.mean()), a, b, direction, swing=swing),
            Fact("path", path_side, 1, dist, a, b, shape))


_COUNTABLE = ("jump", "hop", "raise", "arm_forward", "arm_side", "wave", "punch", "clap", "kick", "bend", "lean_back")


_ACTIONS = ("turn", "jump", "hop", "kick", "punch", "wave", "clap", "get_up")


def _merge(events: list[Fact]) -> list[Fact]:
    """Repeats of one kind/side/detail -> one fact with the summed count, unless another action
    (a turn, a jump ...) happens between them: then the order is kept ('jumps twice, turns, jumps twice')."""
    out: list[Fact] = []
    for f in sorted(events, key=lambda f: (f.start, f.kind)):
        j = next((j for j in range(len(out) - 1, -1, -1) if f.kind in _COUNTABLE
                  and out[j].signature()[:3] == f.signature()[:3]), None)
        if j is not None and not any(h.kind in _ACTIONS and out[j].end <= (h.start + h.end) / 2 <= f.start
                                     for h in out[j + 1:]):
            g = out[j]
            out[j] = replace(g, count=g.count + f.count, value=max(g.value, f.value), end=max(g.end, f.end))
        else:
            out.append(f)
    return out


def extract_facts(motion_or_positions, fps: float = 20.0, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> MotionFacts:
    """Facts of a Motion, or of (T, 22, 3) joint positions at `fps`, as ordered segments."""
    pos, fps = as_positions(motion_or_positions, fps)
    th = thresholds
    s = compute_signals(pos, fps, th)
    air, jumps = _flights(s, th)
    lab = _base_labels(s, air, th)
    post = np.where((lab >= 4) & (lab < _OFF_GROUND), lab - 3, 0)
    events = _turns(s, th) + jumps + _arms(s, th) + _legs_torso(s, th, post)
    steps = np.zeros(len(pos), np.int64)  # foot touch-downs per frame, landings of jumps/hops excluded
    steps[1:] = (s.contact[1:] & ~s.contact[:-1]).sum(1)
    for f in jumps:
        steps[f.end:f.end + _n(th.landing_window_s, fps)] = 0
    events = _in_waves(_both(events, ("raise", "arm_forward", "arm_side", "wave", "punch")))
    change = np.nonzero(np.diff(lab))[0] + 1
    bounds = [0] + change.tolist() + [len(lab)]
    segments: list[Segment] = []
    prev = None
    for a, b in zip(bounds[:-1], bounds[1:]):
        kind = BASE_KINDS[int(lab[a])]
        mine = [f for f in events if a <= (f.start + f.end - 1) // 2 < b]
        head: list[Fact] = []
        if kind in LOCOMOTION:
            loco, path = _locomotion_facts(s, kind, a, b, steps, th)
            if (loco.count < 2 and loco.value < th.jog_min_speed  # moved by jumping, not walking (a run-up stays)
                    and any(f.kind in ("jump", "hop") and f.detail != "running" for f in mine)):
                mine = [replace(f, detail=loco.detail) if f.kind in ("jump", "hop") else f for f in mine]
                head = [Fact("stand", None, 1, loco.value, a, b, width=_stance(s, a, b))]
            else:
                head = [loco, path]
        elif kind in POSTURES:
            sides = [SIDES[k] for k in (0, 1) if (s.pos[a:b, KNEE[k], 1] <= th.kneel_height).mean() > 0.5]
            side = ("both" if len(sides) == 2 else sides[0] if sides else None) if kind == "kneel" else None
            down = "down" if prev is not None and prev not in POSTURES else ""
            head = [Fact(kind, side, 1, float(s.pos[a:b, PELVIS, 1].min()), a, b, down)]
        elif kind == "off_ground":
            low = np.minimum(s.pos[a:b, FOOT, 1], s.pos[a:b, ANKLE, 1] - th.heel_offset).min(1)
            head = [Fact(kind, None, 1, float(np.median(low)), a, b)]
        else:
            head = [Fact("stand", None, 1, float(s.speed[a:b].mean()), a, b, width=_stance(s, a, b))]
        if prev in POSTURES and kind not in POSTURES:
            head.append(Fact("get_up", None, 1, 0.0, a, a + 1))
        if segments and head[0].kind == "stand" == segments[-1].base.kind:
            last = segments.pop()  # standing on both sides of a jump forward: one segment
            head, mine = [replace(last.base, end=b)], list(last.facts[1:]) + head[1:] + mine
            a = last.start
        segments.append(Segment(a, b, tuple(head + _merge(mine))))
        prev = kind
    return MotionFacts(tuple(segments), fps, len(pos))
