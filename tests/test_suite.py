"""The prompt-following suite (server/eval/suite.py, checkers.py, prompt_suite_v1.json) on motions built here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from server.data import paraphrase
from server.data.corpus import Caption, Clip, write_corpus
from server.eval import checkers, suite
from server.eval.checkers import Sample, caption_labels, check_prompt, check_step
from server.eval.suite import SuiteError, load_suite, score_real, score_suite, wilson
from shared import rotations as rot
from shared.motion import Motion

FPS = 20.0
BRIEF_CATEGORIES = ("walk_forward", "walk_backward", "walk_sideways", "slow_walk", "jog", "run", "turn_left",
                    "turn_right", "walk_circle", "jump", "hop", "squat", "kick_left", "kick_right", "punch_left",
                    "punch_right", "wave_left", "wave_right", "raise_one_arm", "raise_both_arms", "bend_forward",
                    "combination")


class Body:
    """A synthetic motion: local rotations per joint, facing yaw and a horizontal path, grounded every frame."""

    def __init__(self, seconds: float):
        self.T = int(round(seconds * FPS))
        self.t = np.arange(self.T) / FPS
        self.q = np.tile([1.0, 0.0, 0.0, 0.0], (self.T, 22, 1))
        self.yaw = np.zeros(self.T)  # degrees, + = counter-clockwise seen from above (a left turn)
        self.xz = np.zeros((self.T, 2))
        self.lift = np.zeros(self.T)  # m above the grounded height
        self.set(16, "z", -80.0).set(17, "z", 80.0)  # arms hang down (the rest pose is a T-pose)

    def set(self, joint: int, axis: str, deg, frames=slice(None)) -> Body:
        aa = np.zeros((self.T, 3))
        aa[:, "xyz".index(axis)] = np.radians(np.broadcast_to(deg, (self.T,)))
        self.q[frames, joint] = rot.axis_angle_to_quat(aa)[frames]
        return self

    def walk(self, speed: float, heading_deg: float = 0.0, frames=slice(None), stride_hz: float = 0.9) -> Body:
        """Travel at `speed` m/s along `heading_deg` relative to the facing (0 forward, 90 left), legs swinging."""
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

    def turn(self, degrees: float, start: float, end: float) -> Body:
        self.yaw = self.yaw + degrees * np.clip((self.t - start) / (end - start), 0.0, 1.0)
        return self

    def wave(self, side: str, start: float = 0.0, end: float | None = None) -> Body:
        """Upper arm level, forearm up and swinging 30 deg at 2 Hz from `start` to `end` seconds."""
        shoulder, elbow, sign = (16, 18, 1.0) if side == "left" else (17, 19, -1.0)
        on = (self.t >= start) & (self.t < (end if end is not None else np.inf))
        frames = np.nonzero(on)[0]
        self.set(shoulder, "z", 0.0, frames)
        self.set(elbow, "z", sign * (90.0 + 30.0 * np.sin(2 * np.pi * 2.0 * self.t)), frames)
        return self

    def ramp(self, t0: float, t1: float, t2: float, t3: float) -> np.ndarray:
        """0 before t0, up to 1 at t1, 1 until t2, down to 0 at t3."""
        up = np.clip((self.t - t0) / (t1 - t0), 0.0, 1.0)
        return np.minimum(up, np.clip((t3 - self.t) / (t3 - t2), 0.0, 1.0))

    def jumps(self, n: int, height: float = 0.25, airtime: float = 0.4) -> Body:
        for k in range(n):
            u = (self.t - (0.8 + k)) / airtime
            self.lift += np.where((u > 0) & (u < 1), 4 * height * u * (1 - u), 0.0)
        return self

    def hops(self, side: str, n: int = 3) -> Body:
        free_hip, free_knee = (1, 4) if side == "right" else (2, 5)  # the other leg held up
        return self.jumps(n, height=0.12, airtime=0.3).set(free_hip, "x", -20.0).set(free_knee, "x", 90.0)

    def squat(self) -> Body:
        w = self.ramp(1.0, 1.5, 2.8, 3.3)
        return self.set(1, "x", -90.0 * w).set(2, "x", -90.0 * w).set(4, "x", 135.0 * w).set(5, "x", 135.0 * w) \
            .set(7, "x", -45.0 * w).set(8, "x", -45.0 * w)

    def kick(self, side: str) -> Body:
        return self.set(1 if side == "left" else 2, "x", -80.0 * self.ramp(0.8, 1.0, 1.1, 1.4))

    def punch(self, side: str, n: int = 2) -> Body:
        shoulder, elbow, sign = (16, 18, 1.0) if side == "left" else (17, 19, -1.0)
        self.set(shoulder, "y", -sign * 90.0)
        bend = 120.0 * (1 - sum(self.ramp(0.8 + k, 0.95 + k, 1.1 + k, 1.6 + k) for k in range(n)))
        return self.set(elbow, "y", sign * bend)

    def bend(self) -> Body:
        return self.set(3, "x", 50.0 * self.ramp(0.5, 1.0, 2.0, 2.5))

    def raise_arm(self, side: str) -> Body:
        return self.set(16, "z", 80.0) if side == "left" else self.set(17, "z", -80.0)

    def motion(self) -> Motion:
        q = self.q.copy()
        yaw = np.zeros((self.T, 3))
        yaw[:, 1] = np.radians(self.yaw)
        q[:, 0] = rot.quat_multiply(rot.axis_angle_to_quat(yaw), q[:, 0])
        trans = np.stack([self.xz[:, 0], np.zeros(self.T), self.xz[:, 1]], -1)
        p = Motion(q, trans, FPS).positions()
        trans[:, 1] = -p[:, [7, 8, 10, 11], 1].min(1) + self.lift  # lowest foot joint on the floor, then lifted
        return Motion(q, trans, FPS)


def sample(body: Body) -> Sample:
    return Sample.of(body.motion().positions(), FPS)


def passes(body: Body, *steps: dict) -> bool:
    return check_prompt(sample(body), list(steps))


W = lambda check, **kw: {"check": check, **kw}


# --- the suite file ------------------------------------------------------------------------------------


def test_bundled_suite_size_categories_and_wording():
    s = load_suite()
    assert s.version == "v1"
    assert len(s.prompts) >= 150
    assert len(s.categories) >= 15
    assert set(BRIEF_CATEGORIES) <= set(s.categories)
    held = [p for p in s.prompts if p.wording == "heldout"]
    assert len(held) >= len(s.prompts) / 3
    for c in s.categories:
        assert sum(p.category == c for p in s.prompts) >= 6, c
    assert all(1.0 <= p.seconds <= 10.0 for p in s.prompts)
    combos = [p for p in s.prompts if p.category == "combination"]
    assert combos and all(len(p.steps) == 2 for p in combos)


def _content_words(text: str) -> list[str]:
    return [w for w in paraphrase.words(text) if w not in paraphrase.EXEMPT and not w.isdigit()]


def test_heldout_prompts_use_only_heldout_words():
    """Every content word of a held-out prompt is in the held-out vocabulary (or exempt), never a train-only word;
    train prompts use no held-out word."""
    held_vocab, train_vocab = paraphrase.heldout_vocabulary(), paraphrase.train_vocabulary()
    s = load_suite()
    for p in s.prompts:
        words = _content_words(p.text)
        if p.wording == "heldout":
            assert words, p.id
            assert all(w in held_vocab for w in words), (p.id, [w for w in words if w not in held_vocab])
            assert not any(w in train_vocab and w not in held_vocab for w in words), p.id
        else:
            assert not any(w in held_vocab for w in words), (p.id, [w for w in words if w in held_vocab])
            assert all(w in train_vocab for w in words), (p.id, [w for w in words if w not in train_vocab])


def _write(tmp_path: Path, prompts: list[dict], version="t1") -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"version": version, "prompts": prompts}))
    return path


GOOD = {"id": "a", "text": "a person walks forward", "category": "walk_forward", "seconds": 4.0, "wording": "train",
        "steps": [{"check": "walk_forward"}]}


@pytest.mark.parametrize("change, message", [
    ({"steps": [{"check": "fly"}]}, "check"),
    ({"steps": [{"check": "wave", "side": "up"}]}, "side"),
    ({"steps": [{"check": "jump", "count": 0}]}, "count"),
    ({"steps": [{"check": "jump", "speed": 2}]}, "unknown step fields"),
    ({"steps": []}, "steps"),
    ({"wording": "other"}, "wording"),
    ({"seconds": 30}, "seconds"),
    ({"text": " "}, "empty text"),
])
def test_malformed_prompts_are_named(tmp_path, change, message):
    with pytest.raises(SuiteError, match=message) as err:
        load_suite(_write(tmp_path, [{**GOOD, **change}]))
    assert "prompt 0 (a)" in str(err.value)


def test_malformed_files(tmp_path):
    with pytest.raises(SuiteError, match="duplicate id"):
        load_suite(_write(tmp_path, [GOOD, GOOD]))
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SuiteError, match="not JSON"):
        load_suite(tmp_path / "bad.json")
    with pytest.raises(SuiteError, match="no prompts"):
        load_suite(_write(tmp_path, []))


# --- checkers on synthetic motions -------------------------------------------------------------------


@pytest.mark.parametrize("speed, heading, ok", [
    (1.2, 0.0, {"walk_forward"}), (0.8, 0.0, {"walk_forward", "slow_walk"}), (1.2, 180.0, {"walk_backward"}),
    (1.0, 90.0, {"walk_sideways"}), (2.3, 0.0, {"jog", "run"}), (3.2, 0.0, {"run"}), (0.0, 0.0, set()),
])
def test_locomotion_checks(speed, heading, ok):
    s = sample(Body(5.0).walk(speed, heading))
    for name in checkers.LOCOMOTION_CHECKS:
        assert check_prompt(s, [W(name)]) == (name in ok), name


def test_sideways_side():
    assert passes(Body(5.0).walk(1.0, 90.0), W("walk_sideways", side="left"))
    assert not passes(Body(5.0).walk(1.0, 90.0), W("walk_sideways", side="right"))
    assert passes(Body(5.0).walk(1.0, -90.0), W("walk_sideways", side="right"))


def test_locomotion_must_cover_half_the_clip():
    assert not passes(Body(6.0).walk(1.2, frames=slice(0, 40)), W("walk_forward"))  # 2 s of 6
    assert passes(Body(6.0).walk(1.2, frames=slice(0, 80)), W("walk_forward"))  # 4 s of 6


@pytest.mark.parametrize("degrees, left, right", [(90.0, True, False), (-90.0, False, True), (40.0, False, False),
                                                   (180.0, True, False)])
def test_turns_are_signed_and_need_60_degrees(degrees, left, right):
    body = Body(4.0).turn(degrees, 1.0, 2.5)
    s = sample(body)
    assert check_prompt(s, [W("turn", side="left")]) == left
    assert check_prompt(s, [W("turn", side="right")]) == right


def test_a_twist_that_swings_back_is_no_turn():
    body = Body(4.0).turn(90.0, 1.0, 1.8).turn(-90.0, 2.2, 3.0)
    assert not passes(body, W("turn", side="left"))


def test_walking_in_a_circle():
    body = Body(10.0).turn(400.0, 0.0, 10.0).walk(1.2)
    assert passes(body, W("circle"))
    assert passes(body, W("circle", side="left"))
    assert not passes(body, W("circle", side="right"))
    assert not passes(Body(10.0).turn(150.0, 0.0, 10.0).walk(1.2), W("circle"))


def test_wave_is_sided_and_periodic():
    assert passes(Body(4.0).wave("right"), W("wave", side="right"))
    assert not passes(Body(4.0).wave("right"), W("wave", side="left"))
    assert passes(Body(4.0).wave("left"), W("wave", side="left"))
    assert not passes(Body(4.0).raise_arm("right"), W("wave", side="right"))  # a raised hand that does not wave
    both = Body(4.0).wave("left").wave("right")
    assert passes(both, W("wave", side="both"))
    assert not passes(both, W("wave", side="right"))  # asked for one hand, waved both


def test_mirrored_motion_swaps_the_checked_side():
    m = Body(4.0).wave("right").motion().mirror()
    s = Sample.of(m.positions(), FPS)
    assert check_prompt(s, [W("wave", side="left")]) and not check_prompt(s, [W("wave", side="right")])


def test_raise_one_or_both_arms():
    assert passes(Body(3.0).raise_arm("left"), W("raise", side="left"))
    assert not passes(Body(3.0).raise_arm("left"), W("raise", side="right"))
    assert not passes(Body(3.0).raise_arm("left"), W("raise", side="both"))
    assert passes(Body(3.0).raise_arm("left").raise_arm("right"), W("raise", side="both"))
    assert not passes(Body(3.0).raise_arm("left").raise_arm("right"), W("raise", side="left"))


def test_standing_still_shows_no_event():
    s = sample(Body(4.0))
    for name in checkers.CHECKS:
        for side in checkers.SIDED.get(name, (None,)):
            step = W(name) if side is None else W(name, side=side)
            assert not check_prompt(s, [step]), step


EVENTS = {
    "jump": (lambda: Body(4.0).jumps(2), W("jump")),
    "jump twice": (lambda: Body(4.0).jumps(2), W("jump", count=2)),
    "hop left": (lambda: Body(4.0).hops("left"), W("hop", side="left")),
    "hop right": (lambda: Body(4.0).hops("right"), W("hop", side="right")),
    "squat": (lambda: Body(4.0).squat(), W("squat")),
    "kick left": (lambda: Body(2.0).kick("left"), W("kick", side="left")),
    "kick right": (lambda: Body(2.0).kick("right"), W("kick", side="right")),
    "punch left": (lambda: Body(3.0).punch("left"), W("punch", side="left")),
    "punch right": (lambda: Body(3.0).punch("right"), W("punch", side="right")),
    "bend": (lambda: Body(3.0).bend(), W("bend")),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_event_checks_pass_their_own_motion_only(name):
    make, step = EVENTS[name]
    assert passes(make(), step)
    for other, (make_other, other_step) in EVENTS.items():
        if other_step["check"] != step["check"] or other_step.get("side") != step.get("side"):
            if not (step["check"] == other_step["check"] == "jump"):
                assert not passes(make_other(), step), (name, other)
    assert not passes(Body(4.0).jumps(1), W("jump", count=2))


def test_combination_in_order():
    body = Body(7.0).walk(1.2, frames=slice(0, 80)).wave("right", start=4.5)
    assert passes(body, W("walk_forward"), W("wave", side="right"))
    assert not passes(body, W("wave", side="right"), W("walk_forward"))
    assert not passes(body, W("walk_forward"), W("wave", side="left"))
    first = Body(7.0).wave("right", end=2.5).walk(1.2, frames=slice(55, 140))
    assert passes(first, W("wave", side="right"), W("walk_forward"))
    assert not passes(first, W("walk_forward"), W("wave", side="right"))


def test_check_step_returns_spans():
    spans = check_step(sample(Body(4.0).turn(90.0, 1.0, 2.5)), W("turn", side="left"))
    assert len(spans) == 1
    a, b = spans[0]
    assert 15 <= a <= 30 and 30 <= b <= 55  # the turn happens between 1.0 and 2.5 s


def test_eval_thresholds_document_every_override():
    for name, (value, why) in checkers.EVAL_OVERRIDES.items():
        assert getattr(checkers.EVAL_THRESHOLDS, name) == value and len(why) > 20
        assert getattr(checkers.DEFAULT_THRESHOLDS, name) != value


# --- captions of real clips --------------------------------------------------------------------------


@pytest.mark.parametrize("captions, labels", [
    (["a person walks and turns left energetically"], ["turn_left", "walk_turn_left"]),
    (["a person walks forward", "a person walks and turns right"], ["turn_right", "walk_turn_right"]),
    (["a person runs forward in a feminine manner"], ["run"]),
    (["a person runs forward like an elderly person"], []),
    (["a person walks forward angrily", "a person steps sideways to the left angrily"], []),
    (["a person waves the right hand as if exhausted"], ["wave_right"]),
    (["a person raises both hands"], ["raise_both"]),
    (["a person does hand stand kicks"], []),
    (["a person kicks"], ["kick"]),
    (["a person walks forward, then does a backward"], []),
])
def test_caption_labels(captions, labels):
    assert caption_labels(captions) == labels


def test_score_real_checks_labelled_clips_and_near_misses(tmp_path):
    bodies = {"walk": Body(4.0).walk(1.2), "wave": Body(4.0).wave("right"), "raise": Body(4.0).raise_arm("right")}
    texts = {"walk": "a person walks forward", "wave": "a person waves the right hand",
             "raise": "a person raises the right hand"}
    clips, motions = [], []
    for i, (kind, body) in enumerate(bodies.items()):
        m = body.motion()
        clips.append(Clip(id=f"t/{kind}", source="test", skeleton="smpl22", subject="s", take=kind,
                          split="test", licence="CC0", commercial_ok=True, frames=m.num_frames,
                          captions=[Caption(texts[kind], "label_template"), Caption("nonsense", "synthetic")]))
        motions.append(m)
    from server.data.corpus import Corpus

    real = score_real(Corpus(write_corpus(tmp_path / "c", clips, motions)))
    assert real.row("walk_forward").units == 1 and real.row("walk_forward").rate == 1.0
    assert real.row("wave_right").rate == 1.0 and real.row("raise_one_arm").rate == 1.0
    near = {r.name: r for r in real.near_miss}
    assert near["wave_right"].units == 1 and near["wave_right"].rate == 0.0  # the raised hand is not a wave
    assert real.overall.units == 3
    assert real.physics["clips"][0] == 3
    table = suite.checker_table(real)
    assert "| wave_right | 1 | 100.0 [" in table


def test_wilson_interval():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert all(np.isnan(wilson(0, 0)))


# --- scoring ---------------------------------------------------------------------------------------------


def _mini_suite(tmp_path: Path) -> Path:
    prompts = [
        {**GOOD, "id": "walk-t", "seconds": 5.0},
        {**GOOD, "id": "walk-h", "text": "somebody strolls ahead", "wording": "heldout", "seconds": 5.0},
        {"id": "wave-t", "text": "a person waves the right hand", "category": "wave_right", "seconds": 4.0,
         "wording": "train", "steps": [{"check": "wave", "side": "right"}]},
        {"id": "turn-t", "text": "a person turns left", "category": "turn_left", "seconds": 4.0, "wording": "train",
         "steps": [{"check": "turn", "side": "left"}]},
    ]
    return _write(tmp_path, prompts)


def scripted(kind_of_text):
    """A generator that answers each prompt with the synthetic motion `kind_of_text(text)` names."""
    def make(kind: str, seconds: float, k: int) -> Motion:
        body = Body(seconds)
        if kind == "walk":
            body.walk(1.0 + 0.1 * k)
        elif kind == "wave":
            body.wave("right")
        elif kind == "turn":
            body.turn(90.0, 1.0, 2.5)
        return body.motion()

    def generate(prompts, seconds, seed, n):
        out = []
        for text, sec in zip(prompts, seconds):
            ms = [make(kind_of_text(text), sec, k) for k in range(n)]
            out.append((np.stack([m.rotations for m in ms]), np.stack([m.translation for m in ms])))
        return out

    return generate


def _kind(text: str) -> str:
    return "wave" if "wave" in text else "turn" if "turn" in text else "walk"


def test_score_suite_separates_a_following_generator_from_a_still_one(tmp_path):
    s = load_suite(_mini_suite(tmp_path))
    good = score_suite(scripted(_kind), s, seeds=(0, 1), n=2, name="good")
    still = score_suite(scripted(lambda text: "stand"), s, seeds=(0, 1), n=2, name="still")
    assert good.overall.rate == 1.0 and still.overall.rate == 0.0
    assert good.row("walk_forward").samples == 2 * 2 * 2
    assert good.row("heldout wording").units == 1 and good.row("train wording").units == 3
    assert good.passes["wave-t"] == [[True, True], [True, True]]
    assert good.physics["clips"][0] == 4 * 2 * 2
    half = score_suite(scripted(lambda text: "walk"), s, seeds=(0,), n=2)  # walks whatever it is asked
    assert half.overall.rate == 0.5 and half.row("walk_forward").rate == 1.0 and half.row("turn_left").rate == 0.0
    assert half.overall.low < 0.5 < half.overall.high
    table = suite.markdown_table([good, still])
    assert re.search(r"\| \*\*overall\*\* \| 4 \| 100\.0 \[100\.0, 100\.0\] \| 0\.0 \[0\.0, 0\.0\] \|", table)
    mean = suite.category_mean(half, ["walk_forward", "turn_left"])
    assert mean.rate == 0.5 and mean.units == 3
    with pytest.raises(SuiteError, match="n >= 1"):
        score_suite(scripted(_kind), s, seeds=(0,), n=0)


def test_score_suite_with_a_real_checkpoint_is_reproducible(tmp_path, tiny_checkpoint):
    from server.model.inference import MotionGenerator

    g = MotionGenerator.load(tiny_checkpoint, device="cpu")
    s = load_suite(_mini_suite(tmp_path))
    a = score_suite(suite.motion_generator_fn(g, batch_size=4), s, seeds=(3,), n=2)
    b = score_suite(suite.motion_generator_fn(g, batch_size=1), s, seeds=(3,), n=2)
    assert a.passes == b.passes  # a prompt's seed does not depend on batching (only float rounding does)
    for k, v in a.physics.items():
        assert np.allclose(v, b.physics[k], rtol=1e-4, atol=1e-6, equal_nan=True), k
    out = suite.motion_generator_fn(g)(["a person walks forward"], [2.0], 0, 3)
    assert out[0][0].shape == (3, 40, 22, 4) and out[0][1].shape == (3, 40, 3)


def test_evaluate_cli_suite(tmp_path, tiny_checkpoint, tiny_corpus, capsys):
    from server.evaluate import main

    out = tmp_path / "out"
    args = ["--suite", "--check-checkers", "--checkpoint", str(tiny_checkpoint), "--corpus", str(tiny_corpus),
            "--suite-file", str(_mini_suite(tmp_path)), "--seeds", "0", "--candidates", "2", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| **overall** | 4 |" in text and "Foot skate" in text and "Near-miss" in text
    saved = json.loads((out / "suite.json").read_text())
    assert saved["generators"][0]["settings"] == {"seeds": [0], "n": 2, "prompts": 4}
    assert (out / "suite.md").read_text().startswith("Prompt-following suite t1")
    assert main(args[:-6] + ["--suite-file", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "no such suite file" in capsys.readouterr().err
