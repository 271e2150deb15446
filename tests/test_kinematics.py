"""Kinematic facts (server/data/kinematics.py) on synthetic motions built here, plus a real-clip sanity check."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from server.data.kinematics import (
    DEFAULT_THRESHOLDS, Fact, KinematicsError, MotionFacts, Thresholds, compute_signals, extract_facts,
)
from shared import rotations as rot
from shared.motion import Motion

FPS = 20.0
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class Clip:
    """A synthetic motion: T frames of local rotations, root yaw, horizontal path and lift, grounded per frame."""

    def __init__(self, seconds: float):
        self.T = int(round(seconds * FPS))
        self.t = np.arange(self.T) / FPS
        self.q = np.tile([1.0, 0.0, 0.0, 0.0], (self.T, 22, 1))
        self.yaw = np.zeros(self.T)  # degrees, + = left (counter-clockwise seen from above)
        self.xz = np.zeros((self.T, 2))
        self.lift = np.zeros(self.T)
        self.set(16, "z", -80.0)  # arms hang down (the SMPL rest pose is a T-pose)
        self.set(17, "z", 80.0)

    def _quat(self, axis: str, deg) -> np.ndarray:
        aa = np.zeros((self.T, 3))
        aa[:, "xyz".index(axis)] = np.radians(np.broadcast_to(deg, (self.T,)))
        return rot.axis_angle_to_quat(aa)

    def set(self, joint: int, axis: str, deg, frames=slice(None)) -> "Clip":
        self.q[frames, joint] = self._quat(axis, deg)[frames]
        return self

    def then(self, joint: int, axis: str, deg) -> "Clip":
        """Compose a further local rotation after the joint's current one."""
        self.q[:, joint] = rot.quat_multiply(self.q[:, joint], self._quat(axis, deg))
        return self

    def walk(self, speed: float, heading_deg: float = 0.0, stride_hz: float = 0.9, frames=slice(None)) -> "Clip":
        """Translate at `speed` along body-relative `heading_deg` (0 forward, 90 left) with swinging legs."""
        m = np.zeros(self.T, bool)
        m[frames] = True
        w = 2 * np.pi * stride_hz * self.t
        swing = np.where(m, 25.0 * np.sin(w), 0.0)
        self.set(1, "x", swing).set(2, "x", -swing)
        self.set(4, "x", np.where(m, 50.0 * np.maximum(0, -np.cos(w)), 0.0))
        self.set(5, "x", np.where(m, 50.0 * np.maximum(0, np.cos(w)), 0.0))
        ang = np.radians(self.yaw + heading_deg)
        step = np.where(m, speed / FPS, 0.0)
        self.xz += np.cumsum(np.stack([np.sin(ang) * step, np.cos(ang) * step], -1), axis=0)
        return self

    def motion(self) -> Motion:
        q = self.q.copy()
        q[:, 0] = rot.quat_multiply(self._quat("y", self.yaw), q[:, 0])
        trans = np.stack([self.xz[:, 0], np.zeros(self.T), self.xz[:, 1]], -1)
        p = Motion(q, trans, FPS).positions()
        low = np.minimum(p[:, [10, 11], 1], p[:, [7, 8], 1] - DEFAULT_THRESHOLDS.heel_offset).min(1)
        trans[:, 1] = -low + self.lift
        return Motion(q, trans, FPS)


def ramp(t: np.ndarray, t0: float, t1: float, a: float, b: float) -> np.ndarray:
    """a before t0, b after t1, linear in between."""
    return a + (b - a) * np.clip((t - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)


def facts_of(clip: Clip | Motion, th: Thresholds = DEFAULT_THRESHOLDS) -> MotionFacts:
    return extract_facts(clip.motion() if isinstance(clip, Clip) else clip, thresholds=th)


def kinds(f: MotionFacts) -> set[tuple]:
    return {(x.kind, x.side, x.detail) for x in f.facts}


def one(f: MotionFacts, kind: str) -> Fact:
    found = f.of_kind(kind)
    assert len(found) == 1, (kind, f.signature())
    return found[0]


# --- locomotion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("speed, kind", [(0.2, "stand"), (0.5, "walk"), (1.2, "walk"), (1.9, "walk"),
                                         (2.1, "jog"), (2.5, "jog"), (2.7, "run"), (3.5, "run")])
def test_speed_classes_and_boundaries(speed, kind):
    f = facts_of(Clip(3.0).walk(speed))
    assert [s.base.kind for s in f.segments] == [kind]
    if kind != "stand":
        assert one(f, kind).value == pytest.approx(speed, rel=0.05)
        assert one(f, "path").value == pytest.approx(speed * 3.0, rel=0.08)  # distance in metres


def test_own_thresholds_move_the_boundaries():
    clip = Clip(3.0).walk(2.8)
    assert facts_of(clip).segments[0].base.kind == "run"
    assert facts_of(clip, Thresholds(run_min_speed=3.0)).segments[0].base.kind == "jog"
    assert facts_of(Clip(3.0).walk(0.5), Thresholds(walk_min_speed=0.6)).segments[0].base.kind == "stand"


@pytest.mark.parametrize("heading, detail, side", [(0, "forward", None), (180, "backward", None),
                                                   (90, "sideways", "left"), (-90, "sideways", "right"),
                                                   (40, "diagonal", "left"), (-140, "back_diagonal", "right")])
def test_direction_relative_to_facing(heading, detail, side):
    clip = Clip(3.0)
    clip.yaw[:] = 70.0  # facing is the body's, not the world's
    f = facts_of(clip.walk(1.0, heading))
    walk = one(f, "walk")
    assert (walk.detail, walk.side) == (detail, side)


def test_steps_are_counted():
    f = facts_of(Clip(4.0).walk(1.2, stride_hz=1.0))  # 4 strides = 8 steps
    assert 6 <= one(f, "walk").count <= 9


def _arc(seconds: float, degrees: float, radius: float = 1.5) -> Clip:
    clip = Clip(seconds)
    phi = np.radians(degrees) * clip.t / clip.t[-1]
    sign = np.sign(degrees)
    clip.xz = np.stack([sign * radius * (1 - np.cos(phi)), radius * np.sin(np.abs(phi))], -1)
    clip.yaw = np.degrees(phi)
    return clip.walk(0.0, stride_hz=0.9)


def test_paths_straight_curve_circle():
    assert one(facts_of(Clip(3).walk(1.0)), "path").detail == "straight"
    curve = facts_of(_arc(3.0, 100.0))
    assert (one(curve, "path").detail, one(curve, "path").side) == ("curve", "left")
    right = facts_of(_arc(3.0, -100.0))
    assert (one(right, "path").detail, one(right, "path").side) == ("curve", "right")
    circle = facts_of(_arc(9.0, 360.0))
    assert (one(circle, "path").detail, one(circle, "path").side) == ("circle", "left")
    veer = facts_of(_arc(3.0, -30.0, radius=6.0))  # bears 30 deg right over 3 m
    assert (one(veer, "path").detail, one(veer, "path").side) == ("veer", "right")
    assert one(facts_of(_arc(3.0, 12.0, radius=12.0)), "path").detail == "straight"


def test_arm_swing_and_stance():
    swinging = Clip(3.0).walk(1.2)
    swinging.set(16, "x", 35.0 * np.sin(2 * np.pi * 0.9 * swinging.t)).then(16, "z", -80.0)
    swinging.set(17, "x", -35.0 * np.sin(2 * np.pi * 0.9 * swinging.t)).then(17, "z", 80.0)
    assert one(facts_of(swinging), "walk").swing > 0.4
    assert one(facts_of(Clip(3.0).walk(1.2)), "walk").swing < 0.1  # arms hang still
    apart = Clip(3.0).set(1, "z", 12.0).set(2, "z", -12.0)  # legs out to the sides
    assert one(facts_of(apart), "stand").width > 0.3 > 0.2 > one(facts_of(Clip(3.0)), "stand").width


# --- turning ---------------------------------------------------------------------------------------


def _turn(deg: float, seconds: float = 1.5) -> Clip:
    clip = Clip(4.0)
    clip.yaw = ramp(clip.t, 1.0, 1.0 + seconds, 0.0, deg)
    return clip


def test_left_turn_is_counter_clockwise_seen_from_above():
    clip = _turn(90.0)
    p = clip.motion().positions()
    across = p[:, 1] - p[:, 2]  # left hip - right hip
    fwd = np.cross(across, [0.0, 1.0, 0.0])
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    assert fwd[0] == pytest.approx([0, 0, 1], abs=0.05)  # rest: faces +Z
    assert fwd[-1] == pytest.approx([1, 0, 0], abs=0.05)  # turned to its left, +X
    assert np.cross(fwd[0], fwd[-1])[1] > 0  # counter-clockwise about +Y (seen from above)
    turn = one(facts_of(clip), "turn")
    assert (turn.side, turn.detail) == ("left", "quarter")
    assert turn.value == pytest.approx(90.0, abs=8.0)


@pytest.mark.parametrize("deg, side, size", [(45.0, None, None), (75.0, "left", "quarter"), (-90.0, "right", "quarter"),
                                             (150.0, "left", "half"), (-180.0, "right", "half"),
                                             (300.0, "left", "full"), (-360.0, "right", "full")])
def test_turn_sizes_and_boundaries(deg, side, size):
    turns = facts_of(_turn(deg, seconds=max(abs(deg) / 120.0, 0.5))).of_kind("turn")
    if side is None:
        assert turns == []
    else:
        assert [(t.side, t.detail) for t in turns] == [(side, size)]


def test_a_twist_that_swings_back_is_no_turn():
    clip = Clip(4.0)
    clip.yaw = 70.0 * np.sin(2 * np.pi * 0.5 * clip.t) ** 2 * (clip.t < 2.0)
    assert facts_of(clip).of_kind("turn") == []


# --- vertical ---------------------------------------------------------------------------------------


def _jumps(n: int, height: float = 0.25, airtime: float = 0.4) -> Clip:
    clip = Clip(1.0 + n * 1.0)
    for k in range(n):
        u = (clip.t - (0.8 + k)) / airtime
        clip.lift += np.where((u > 0) & (u < 1), 4 * height * u * (1 - u), 0.0)
    return clip


def test_jumps_are_counted_and_rise_is_measured():
    f = facts_of(_jumps(3))
    jump = one(f, "jump")
    assert (jump.count, jump.side) == (3, None)
    assert jump.value == pytest.approx(0.25, abs=0.03)
    assert [s.base.kind for s in f.segments] == ["stand"]


def test_jump_boundary_rise_and_flight_time():
    assert facts_of(_jumps(2, height=0.03)).of_kind("jump") == []  # feet barely leave the ground
    assert facts_of(_jumps(2, height=0.2, airtime=0.05)).of_kind("jump") == []  # one frame: not a flight
    th = Thresholds(jump_rise=0.3)
    assert facts_of(_jumps(2, height=0.25), th).of_kind("jump") == []


def _hops(side: str, n: int = 4) -> Clip:
    clip = _jumps(n, height=0.12, airtime=0.3)
    free_hip, free_knee = (1, 4) if side == "right" else (2, 5)  # the other leg is held up
    return clip.set(free_hip, "x", -20.0).set(free_knee, "x", 90.0)


@pytest.mark.parametrize("side", ["left", "right"])
def _leap(flight: float, speed: float = 2.5) -> Clip:
    """A run-up on the left foot (right knee up), a flight of `flight` s, landing on the right foot (left knee up)."""
    clip = Clip(3.0).walk(speed, stride_hz=0.0)
    t0 = 1.3
    clip.set(5, "x", np.where(clip.t < t0 + 0.1, 90.0, 0.0))  # right knee up until just after take-off
    clip.set(4, "x", np.where(clip.t >= t0 + flight - 0.1, 90.0, 0.0))  # left knee up from just before landing
    u = (clip.t - t0) / flight
    clip.lift += np.where((u > 0) & (u < 1), 4 * 0.3 * u * (1 - u), 0.0)
    return clip


def test_running_leap_is_a_jump_and_a_stride_is_not():
    f = facts_of(_leap(0.45))
    leap = one(f, "jump")
    assert (leap.detail, leap.side) == ("running", None)
    assert f.segments[0].base.kind in ("jog", "run")  # a run-up faster than 2 m/s stays locomotion
    assert facts_of(_leap(0.15)).of_kind("jump") == []  # a running stride's flight


@pytest.mark.parametrize("side", ["left", "right"])
def test_hop_on_one_foot(side):
    f = facts_of(_hops(side))
    hop = one(f, "hop")
    assert (hop.side, hop.count) == (side, 4)
    assert f.of_kind("jump") == []


def _posture(hip: float, knee: float, ankle: float = 0.0, knees=(4, 5), hips=(1, 2)) -> Clip:
    clip = Clip(4.0)
    w = ramp(clip.t, 1.0, 1.5, 0.0, 1.0) * ramp(clip.t, 2.8, 3.3, 1.0, 0.0)
    for j in hips:
        clip.set(j, "x", hip * w)
    for j in knees:
        clip.set(j, "x", knee * w)
    for j in (7, 8):
        clip.set(j, "x", ankle * w)
    return clip


def test_crouch_goes_down_and_gets_up():
    f = facts_of(_posture(-90.0, 135.0, -45.0))
    assert [s.base.kind for s in f.segments] == ["stand", "crouch", "stand"]
    assert f.segments[1].base.detail == "down"
    assert f.segments[2].facts[1].kind == "get_up"


def test_sit_on_a_seat():
    f = facts_of(_posture(-90.0, 90.0))
    assert [s.base.kind for s in f.segments] == ["stand", "sit", "stand"]


@pytest.mark.parametrize("knees, side", [((4, 5), "both"), ((4,), "left"), ((5,), "right")])
def test_kneel(knees, side):
    clip = _posture(0.0, 90.0, knees=knees, hips=())
    other = {4: (2, 5), 5: (1, 4)}
    if len(knees) == 1:  # the other foot planted in front
        hip, knee = other[knees[0]]
        w = ramp(clip.t, 1.0, 1.5, 0.0, 1.0) * ramp(clip.t, 2.8, 3.3, 1.0, 0.0)
        clip.set(hip, "x", -90.0 * w).set(knee, "x", 90.0 * w)
    f = facts_of(clip)
    assert [s.base.kind for s in f.segments] == ["stand", "kneel", "stand"]
    assert f.segments[1].base.side == side


def test_lie_down_and_get_up():
    clip = Clip(5.0)
    clip.set(0, "x", ramp(clip.t, 1.5, 3.0, -90.0, 0.0))
    f = facts_of(clip)
    assert f.segments[0].base.kind == "lie"
    assert f.segments[-1].base.kind == "stand"
    assert f.of_kind("get_up")


# --- arms, legs, torso ---------------------------------------------------------------------------------


def _raise(sides=(16,)) -> Clip:
    clip = Clip(3.0)
    for j in sides:
        sign = -1.0 if j == 16 else 1.0
        clip.set(j, "z", sign * ramp(clip.t, 0.5, 1.0, 80.0, -80.0))
    return clip


def test_raise_one_or_both_hands_above_the_head():
    assert ("raise", "left", "overhead") in kinds(facts_of(_raise((16,))))
    assert ("raise", "right", "overhead") in kinds(facts_of(_raise((17,))))
    both = facts_of(_raise((16, 17)))
    assert ("raise", "both", "overhead") in kinds(both)
    assert not {("raise", "left", "overhead"), ("raise", "right", "overhead")} & kinds(both)


def test_raise_to_shoulder_height_is_up_not_overhead():
    clip = Clip(3.0).set(16, "z", 50.0)  # arm up and out at 50 deg: wrist ~0.39 m above the shoulder
    assert ("raise", "left", "overhead") in kinds(facts_of(clip))
    assert ("raise", "left", "up") in kinds(facts_of(clip, Thresholds(overhead_margin=0.35)))
    assert ("arm_side", "left", "") in kinds(facts_of(Clip(3.0).set(16, "z", 15.0)))  # nearly level: to the side


def _raise_twice(dip: float, seconds: float = 0.5) -> Clip:
    """The left arm goes up over the head (1.0 s), comes down to `dip` deg abduction and goes up again."""
    clip = Clip(5.0)
    up = ramp(clip.t, 0.5, 1.0, -80.0, 80.0) - ramp(clip.t, 2.0, 2.4, 0.0, 80.0 - dip) \
        + ramp(clip.t, 2.4 + seconds, 2.8 + seconds, 0.0, 80.0 - dip)
    return clip.set(16, "z", up)


def test_one_raise_until_the_hand_comes_down():
    assert one(facts_of(_raise_twice(dip=-10.0)), "raise").count == 1  # dips to just below the shoulder
    assert one(facts_of(_raise_twice(dip=-80.0)), "raise").count == 2  # hangs down in between: two raises


def test_raise_speed_and_straight_arm():
    fast, slow = Clip(3.0), Clip(3.0)
    fast.set(16, "z", ramp(fast.t, 0.5, 0.7, -80.0, 80.0))
    slow.set(16, "z", ramp(slow.t, 0.5, 2.0, -80.0, 80.0))
    rf, rs = one(facts_of(fast), "raise"), one(facts_of(slow), "raise")
    assert rf.rate > 3.0 > 1.5 > rs.rate > 0.3  # m/s: the wrist's rise speed
    assert rf.reach > 0.95  # a straight arm
    bent = Clip(3.0).set(16, "z", ramp(np.arange(60) / FPS, 0.5, 1.0, -80.0, 60.0))
    bent.set(18, "y", -100.0)  # elbow bent
    rb = facts_of(bent).of_kind("raise")
    assert rb and rb[0].reach < 0.8


def test_arm_forward_and_to_the_side():
    assert ("arm_forward", "left", "") in kinds(facts_of(Clip(3.0).set(16, "y", -90.0)))
    assert ("arm_side", "right", "") in kinds(facts_of(Clip(3.0).set(17, "z", 0.0)))
    assert ("arm_side", "both", "") in kinds(facts_of(Clip(3.0).set(16, "z", 0.0).set(17, "z", 0.0)))


def _wave(joint: int = 18, hz: float = 2.0, amp: float = 30.0, seconds: float = 2.0) -> Clip:
    clip = Clip(seconds + 1.0)
    shoulder = 16 if joint == 18 else 17
    sign = 1.0 if joint == 18 else -1.0
    clip.set(shoulder, "z", 0.0)
    clip.set(joint, "z", sign * (90.0 + amp * np.sin(2 * np.pi * hz * clip.t) * (clip.t < seconds)))
    return clip


def test_wave_is_counted():
    wave = one(facts_of(_wave()), "wave")
    assert wave.side == "left"
    assert 3 <= wave.count <= 4  # 2 Hz for 2 s
    assert one(facts_of(_wave(19)), "wave").side == "right"


def test_wave_boundaries():
    assert facts_of(_wave(amp=2.0)).of_kind("wave") == []  # a 1.7 cm swing is a tremor, not a wave
    assert facts_of(_wave(hz=0.4, seconds=5.0)).of_kind("wave") == []  # a slow sway
    assert facts_of(_wave(seconds=0.5)).of_kind("wave") == []  # just one back-and-forth


def test_wave_swing_is_measured_and_small_waves_count():
    small = one(facts_of(_wave(amp=5.0)), "wave")  # a 4.3 cm swing: a hand-only wave (Bandai 'feminine')
    assert small.value == pytest.approx(0.0436, abs=0.006)
    assert facts_of(_wave(amp=5.0), Thresholds(wave_amplitude=0.06)).of_kind("wave") == []  # the old threshold
    assert one(facts_of(_wave(amp=30.0)), "wave").value > 0.2


def _punches(n: int = 3, joint: int = 18) -> Clip:
    clip = Clip(1.0 + n * 1.0)
    shoulder, sign = (16, 1.0) if joint == 18 else (17, -1.0)
    clip.set(shoulder, "y", -sign * 90.0)
    bend = np.full(clip.T, 120.0)
    for k in range(n):
        t0 = 0.8 + k
        out, back = ramp(clip.t, t0, t0 + 0.15, 120.0, 0.0), ramp(clip.t, t0 + 0.3, t0 + 0.8, 0.0, 120.0)
        bend = np.minimum(bend, np.maximum(out, back))
    clip.set(joint, "y", sign * bend)
    return clip


def test_punches_are_counted():
    punch = one(facts_of(_punches(3)), "punch")
    assert (punch.side, punch.count) == ("left", 3)
    assert one(facts_of(_punches(2, 19)), "punch").side == "right"
    slow = facts_of(_punches(3), Thresholds(punch_speed=10.0))
    assert slow.of_kind("punch") == []


def test_clap():
    clip = Clip(4.0).set(16, "y", -90.0).set(17, "y", 90.0)
    inward = 22.0 * (np.sin(2 * np.pi * 1.0 * clip.t) > 0) * (clip.t > 0.5) * (clip.t < 3.5)
    clip.then(16, "y", -inward).then(17, "y", inward)
    clap = one(facts_of(clip), "clap")
    assert clap.count == 3 and clap.side == "both"


def _kicks(n: int = 1, hip: int = 2, deg: float = 80.0, rise_s: float = 0.2) -> Clip:
    clip = Clip(1.0 + n * 1.2)
    angle = np.zeros(clip.T)
    for k in range(n):
        t0 = 0.8 + 1.2 * k
        up = ramp(clip.t, t0, t0 + rise_s, 0.0, -deg)
        down = ramp(clip.t, t0 + rise_s + 0.1, t0 + rise_s + 0.4, -deg, 0.0)
        angle = np.minimum(angle, np.maximum(up, down))
    return clip.set(hip, "x", angle)


def test_kicks_are_counted_and_need_height():
    kick = one(facts_of(_kicks(2)), "kick")
    assert (kick.side, kick.count, kick.detail) == ("right", 2, "forward")
    assert one(facts_of(_kicks(1, hip=1)), "kick").side == "left"
    assert facts_of(_kicks(1), Thresholds(kick_height=1.2, kick_low_speed=20.0)).of_kind("kick") == []


def test_low_kick_needs_a_fast_swing():
    assert one(facts_of(_kicks(1, deg=38.0, rise_s=0.1)), "kick").side == "right"  # a ball on the ground
    assert facts_of(_kicks(1, deg=38.0, rise_s=0.6)).of_kind("kick") == []  # a slow leg lift


def test_bend_forward_and_lean_back():
    assert ("bend", None, "") in kinds(facts_of(Clip(3.0).set(3, "x", ramp(np.arange(60) / FPS, 0.5, 1.0, 0, 50))))
    assert ("lean_back", None, "") in kinds(facts_of(Clip(3.0).set(3, "x", -30.0)))
    assert not {("bend", None, ""), ("lean_back", None, "")} & kinds(facts_of(Clip(3.0).set(3, "x", 10.0)))


def test_a_bow_in_place_bends_less_than_a_moving_body_leans():
    bow = lambda deg: Clip(3.0).set(3, "x", ramp(np.arange(60) / FPS, 0.5, 1.0, 0, deg))  # spine joint 3
    tilt = compute_signals(bow(45.0).motion().positions(), FPS).tilt.max()  # 31 deg
    assert DEFAULT_THRESHOLDS.bow_deg < tilt < DEFAULT_THRESHOLDS.bend_deg
    assert ("bend", None, "") in kinds(facts_of(bow(45.0)))  # standing still: a bow
    assert ("bend", None, "") not in kinds(facts_of(bow(45.0).walk(1.5)))  # leaning into a walk: no bend


def test_off_the_ground_is_no_walk():
    clip = Clip(5.0).walk(1.0, stride_hz=0.0)
    clip.lift += np.where((clip.t > 1.0) & (clip.t < 4.0), 0.6, 0.0)  # up on a bar, moving along it
    f = facts_of(clip)
    assert [s.base.kind for s in f.segments] == ["walk", "off_ground", "walk"]
    assert one(f, "off_ground").value == pytest.approx(0.6, abs=0.05)  # the lower foot's height
    assert f.of_kind("jump") == []


def test_arm_poses_and_claps_inside_a_wave_are_the_wave():
    from server.data.kinematics import _in_waves

    wave = Fact("wave", "both", 5, 0.35, 10, 70)
    facts = [wave, Fact("arm_side", "both", 2, 0.0, 20, 30), Fact("clap", "both", 3, 0.0, 40, 41),
             Fact("arm_forward", "left", 1, 0.0, 80, 90), Fact("raise", "both", 1, 0.4, 5, 75, "overhead")]
    assert [f.kind for f in _in_waves(facts)] == ["wave", "arm_forward", "raise"]
    one_hand = [Fact("wave", "right", 5, 0.35, 10, 70), Fact("arm_side", "left", 1, 0.0, 20, 30),
                Fact("arm_side", "right", 1, 0.0, 20, 30), Fact("clap", "both", 1, 0.0, 40, 41)]
    assert [(f.kind, f.side) for f in _in_waves(one_hand)] == [("wave", "right"), ("arm_side", "left"),
                                                               ("clap", "both")]


# --- time, mirror, robustness ----------------------------------------------------------------------------


def test_segments_in_order_walk_then_wave():
    clip = _wave(seconds=5.0)
    clip.set(16, "z", np.where(clip.t < 3.0, -80.0, 0.0))
    clip.set(18, "z", np.where(clip.t < 3.0, 0.0, 90.0 + 30.0 * np.sin(2 * np.pi * 2.0 * clip.t)))
    clip.walk(1.2, frames=slice(0, 60))
    f = facts_of(clip)
    assert [s.base.kind for s in f.segments] == ["walk", "stand"]
    assert ("wave", "left", "") in {(x.kind, x.side, x.detail) for x in f.segments[1].facts}
    assert not any(x.kind == "wave" for x in f.segments[0].facts)


def test_repetitions_split_by_other_events_stay_in_order():
    clip = _jumps(4)
    clip.yaw = ramp(clip.t, 2.2, 2.6, 0.0, 180.0)  # two jumps, turn around, two jumps
    f = facts_of(clip)
    assert [(x.kind, x.count) for x in f.segments[0].facts[1:]] == [("jump", 2), ("turn", 1), ("jump", 2)]


MIRROR_CASES = {
    "sideways": lambda: Clip(3.0).walk(1.0, 90.0),
    "turn": lambda: _turn(120.0),
    "curve": lambda: _arc(3.0, 100.0),
    "raise": lambda: _raise((16,)),
    "wave": lambda: _wave(),
    "hop": lambda: _hops("right"),
    "kick": lambda: _kicks(2),
    "punch": lambda: _punches(2),
    "kneel": lambda: _kneel_left(),
}


def _kneel_left() -> Clip:
    clip = _posture(0.0, 90.0, knees=(4,), hips=())
    w = ramp(clip.t, 1.0, 1.5, 0.0, 1.0) * ramp(clip.t, 2.8, 3.3, 1.0, 0.0)
    return clip.set(2, "x", -90.0 * w).set(5, "x", 90.0 * w)


@pytest.mark.parametrize("name", sorted(MIRROR_CASES))
def test_mirror_swaps_every_side_fact(name):
    motion = MIRROR_CASES[name]().motion()
    f = extract_facts(motion)
    assert any(x.side in ("left", "right") for x in f.facts), f.signature()
    assert extract_facts(motion.mirror()).signature() == f.mirrored().signature()
    assert f.mirrored().mirrored() == f


@pytest.mark.parametrize("T", [1, 2, 3, 5])
def test_short_clips_do_not_fail(T):
    clip = Clip(T / FPS).walk(1.0)
    f = extract_facts(clip.motion())
    assert f.num_frames == T and f.segments and f.segments[0].start == 0 and f.segments[-1].end == T


def test_positions_input_and_errors():
    motion = Clip(3.0).walk(1.5).motion()
    assert extract_facts(motion.positions(), fps=20.0).signature() == extract_facts(motion).signature()
    assert extract_facts(motion.resample(30.0)).segments[0].base.kind == "walk"  # thresholds are in seconds
    with pytest.raises(KinematicsError):
        extract_facts(np.zeros((10, 21, 3)))
    bad = motion.positions()
    bad[3, 4, 1] = np.nan
    with pytest.raises(KinematicsError):
        extract_facts(bad)
    with pytest.raises(KinematicsError):
        extract_facts(motion.positions(), fps=0.0)
    s = compute_signals(motion.positions(), 20.0)
    assert s.stand_height == pytest.approx(0.92, abs=0.02)


def test_thresholds_are_documented_and_frozen():
    import dataclasses
    import inspect

    source = inspect.getsource(Thresholds)
    for field in dataclasses.fields(Thresholds):
        after = source.split(f"    {field.name}:", 1)[1].split("\n", 2)[1].strip()
        assert after.startswith('"""'), f"{field.name} has no docstring"
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_THRESHOLDS.walk_min_speed = 1.0  # type: ignore[misc]


def test_fast_enough():
    clip = _wave(seconds=9.0).walk(1.3, frames=slice(0, 100))
    pos = clip.motion().positions()
    extract_facts(pos)
    start = time.perf_counter()
    for _ in range(5):
        extract_facts(pos)
    assert (time.perf_counter() - start) / 5 < 0.05  # a 10 s clip; typically a few ms


# --- real clips -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED_DATA / "extra" / "bandai_namco_1.tar.xz").exists(), reason="no ../shared/data")
def test_real_bandai_clips():
    from server.data.retarget import detect_family, retarget
    from server.data.sources import iter_tar_texts, read_source_bvh

    expect = {"walk_normal_001": ("walk", "forward", None), "walk-back_normal_001": ("walk", "backward", None),
              "dash_angry_001": ("run", "forward", None), "walk-left_angry_001": ("walk", "diagonal", "left")}
    seen = {}
    for name, text in iter_tar_texts(SHARED_DATA / "extra" / "bandai_namco_1.tar.xz", ".bvh"):
        key = name.rsplit("dataset-1_", 1)[-1][:-4]
        if key in expect:
            source = read_source_bvh(text.encode(), "bandai-namco-22")
            motion, _ = retarget(source, detect_family(source.names), target_fps=20.0)
            seen[key] = (extract_facts(motion), extract_facts(motion.mirror()))
        if len(seen) == len(expect):
            break
    assert set(seen) == set(expect)
    for key, (f, mirrored) in seen.items():
        base = max((s.base for s in f.segments), key=lambda b: b.end - b.start)
        assert (base.kind, base.detail, base.side) == expect[key], (key, f.signature())
        strip = lambda sig: [[x[:3] for x in seg] for seg in sig]  # step counts may differ by one
        assert strip(mirrored.signature()) == strip(f.mirrored().signature()), key
