"""Captions from kinematic facts, with a paraphrase grammar split into a train half and a held-out half.

The train half writes training captions; the held-out half never appears in training text and
only serves the evaluation (prompts worded in a way the model never saw). The halves are
disjoint in content words: everything outside `EXEMPT` (articles, pronouns, prepositions,
numbers, side words, units) belongs to exactly one half, and every held-out sentence shape
carries a held-out marker word ('whilst', 'afterwards', 'seen' ...), so a word check also
catches shapes. Captions state only facts found in the motion, plus the source's own style
label; mirrored clips swap every side word (`swap_sides`).

    g = Grammar("train"); g.caption(facts, random.Random(0), style="happy")
    captions_for_clip(facts, ["a person walks forward happily"], rng=0, n=10)
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from server.data.kinematics import LOCOMOTION, POSTURES, Fact, MotionFacts, Segment
from server.data.text_forms import (  # noqa: F401  (re-exported: words, swap_sides ...)
    WORD, _inflect, _number, _round_words, _speed_words, swap_sides, words,
)
from server.data.wording import _NUM, EXEMPT, HALVES, STYLE_WALK, STYLES, L  # noqa: F401  (re-exported)

_VERBS = {"walk", "jog", "run", "turn", "turn_round", "spin", "light", "jump", "jump_n", "hop", "crouch", "sit",
          "kneel", "kneel_both", "lie", "get_up", "stop", "stand", "raise_over", "raise_up", "arm_forward", "arm_side",
          "arms_side", "wave", "punch", "clap", "kick", "kick_side", "bend", "lean_back", "running_jump",
          "lower_again", "straighten", "keep_up", "off_ground"}
_ACTION_KINDS = ("turn", "jump", "hop", "kick", "punch", "wave", "clap", "raise", "bend", "lean_back", "get_up")
"""Event kinds whose repeat later in a clip may be said with 'again'."""
def _options(half: str, key: str, table: dict = L) -> list[str]:
    return table[key][HALVES.index(half)].split("|") if table[key][HALVES.index(half)] else []


@dataclass(frozen=True)
class Clause:
    """A verb phrase: `verb` (base form; its first word gets inflected) + `tail`; `after`: it follows the
    previous clause in time (else it goes with it); `post`: (connector, verb phrase) of a follow-up in the
    same clause, inflected alike ('raises the left hand, then lowers it again')."""

    verb: str
    tail: str = ""
    after: bool = True
    extra: str = ""  # said after any manner phrase: ', covering about three metres'
    post: tuple[str, str] = ("", "")

    def render(self, form: str) -> str:
        text = f"{_inflect(self.verb, form)} {self.tail} {self.extra}".strip()
        if self.post[1]:
            text += f"{self.post[0]}{_inflect(self.post[1], form)}"
        return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", text))

    def with_tail(self, more: str) -> "Clause":
        return replace(self, tail=f"{self.tail} {more}".strip()) if more else self


_DISTANCE_BINS = ((1.0, "dist_short"), (1.5, "dist_one"), (2.5, "dist_couple"), (4.5, "dist_few"),
                  (9.5, "dist_several"), (float("inf"), "dist_far"))
"""Path length (m) up to which each qualitative distance list applies ('dist_far' from 10.5 m only)."""
_STEP_BINS = ((1, ""), (3, "steps_few"), (6, "steps_handful"), (10, ""), (14, "steps_dozen"), (15, ""),
              (10 ** 6, "steps_many"))
"""Step count up to which each qualitative step list applies ('' = say the number)."""
_KICK_BINS = ((0.45, "kick_low"), (0.75, "kick_knee"), (1.05, "kick_hip"), (float("inf"), "kick_high"))
"""Ankle height (m) at a kick's peak up to which each height list applies."""
WAVE_BIG, WAVE_SMALL = 0.25, 0.08
"""m: a wave's mean peak-to-peak wrist swing from which it is big, and below which it is small (Bandai medians:
'active' 0.35, 'masculine' 0.35, 'normal' 0.19, 'feminine' 0.05)."""
WAVE_FAST, WAVE_SLOW = 0.27, 0.5
"""s: a wave's mean half-period (one swing) below which it is quick, above which it is slow (Bandai medians:
'active' 0.24, 'normal' 0.31, 'youthful' 0.44, 'elderly' 0.64)."""
RAISE_FACE = 0.12
"""m: a raised (not overhead) wrist this far above the shoulder is at face height; below it, shoulder height."""
RAISE_HIGH = 0.38
"""m: a hand raised above the head reaches this far above the shoulder before a caption may call it high."""
_HIGH_WORDS = ("high", "sky", "possible", "way up", "straight up")
RAISE_QUICK, RAISE_SLOW = 3.5, 0.9
"""m/s: a raise whose wrist rises at least this fast is quick, at most this fast slow (Bandai medians: 'active'
5.2, 'youthful' 3.0, 'normal' 2.5, 'masculine' 1.7, 'elderly' 0.7)."""
SWING_SMALL, SWING_BIG = 0.2, 0.62
"""m: range of the wrists' forward travel during locomotion below which the arms barely swing, from which they
swing wide (Bandai walks: 'not-confident' 0.11, 'elderly' 0.26, 'normal' 0.46, 'youthful' 0.68; runs to 0.7)."""
FEET_TOGETHER, FEET_APART, FEET_WIDE = 0.12, 0.25, 0.4
"""m: ankle distance of a standing body below which the feet are together, from which apart, and wide apart."""
ARM_STRAIGHT, ARM_BENT = 0.9, 0.5
"""Shoulder-wrist distance / arm length at a raise's peak from which the arm is straight, below which bent."""


@dataclass
class _Context:
    """What a clause may need beyond its fact: the clip's length and rate, and the segment around it."""

    fps: float
    num_frames: int
    seg: Segment
    prev: Segment | None
    events: list[Fact]


class Grammar:
    """One half of the paraphrase grammar; `caption(facts, rng, style)` writes one caption."""

    def __init__(self, half: str = "train"):
        if half not in HALVES:
            raise ValueError(f"half must be one of {HALVES}, got {half!r}")
        self.half = half

    def pick(self, rng: random.Random, key: str, table: dict = L, **slots) -> str:
        options = _options(self.half, key, table)
        return rng.choice(options).format(**slots) if options else ""

    # --- noun phrases ---------------------------------------------------------------------

    def _part(self, rng: random.Random, side: str | None, key: str = "hand") -> str:
        part = self.pick(rng, key) or "limb"
        if side == "both":
            return "both " + ("feet" if part == "foot" else part + "s")
        return f"the {side} {part}" if side else f"the {part}"

    def _duration(self, rng: random.Random, seconds: float, p: float = 0.3) -> str:
        """Sometimes a phrase for how long a pose or pause lasts (only for 1-6 s: 'for about three seconds')."""
        if not 1.0 <= seconds <= 6.0 or rng.random() >= p:
            return ""
        text = self.pick(rng, "duration", n=_number(int(round(seconds))))
        if "second" in text and round(seconds) < 2:  # 'for about one seconds'
            return ""
        short = any(w in text for w in ("moment", "brief", "instant"))
        fits = ("about" in text or (short and seconds <= 2.0) or ("couple" in text and 1.5 <= seconds <= 2.5)
                or (("few" in text or "while" in text) and seconds >= 2.5))
        return text if fits else ""

    def _count(self, rng: random.Random, n: int) -> str:
        if n <= 1:
            return ""
        if n >= 5 and rng.random() < 0.2:  # 'many times' is no word for three
            return self.pick(rng, "count_many", n=_number(n))
        return self.pick(rng, "count2") if n == 2 else self.pick(rng, "count", n=_number(n))

    def _binned(self, rng: random.Random, bins, x: float, **slots) -> str:
        key = next(k for top, k in bins if x <= top)
        return self.pick(rng, key, **slots) if key else ""

    def _post(self, rng: random.Random, key: str, **slots) -> tuple[str, str]:
        verb = self.pick(rng, key, **slots)
        return (self.pick(rng, "post_conn"), verb) if verb else ("", "")

    # --- facts -> clauses -----------------------------------------------------------------

    def _direction(self, rng: random.Random, f: Fact) -> str:
        return self.pick(rng, f.detail, side=f.side) if f.detail in L else ""

    def _distance(self, rng: random.Random, metres: float) -> str:
        """', covering about four metres', 'for a few metres' ... (numbers round to whole metres)."""
        numeric = metres >= 1.5  # 'about one metres': the qualitative lists say it
        if numeric and rng.random() < 0.4:
            return self.pick(rng, "distance", n=_round_words(metres))
        q = self.pick(rng, "dist_n", n=_round_words(metres)) if numeric and rng.random() < 0.5 else ""
        if not q and (metres <= 9.5 or metres >= 10.5):
            q = self._binned(rng, _DISTANCE_BINS, metres)
        return self.pick(rng, "distance_q", q=q) if q else ""

    def _steps(self, rng: random.Random, n: int) -> str:
        q = self._binned(rng, _STEP_BINS, n) if rng.random() < 0.5 else ""
        q = q or self.pick(rng, "steps_n", n=_round_words(n))
        return self.pick(rng, "steps_q", q=q) if q else ""

    def _locomotion(self, rng: random.Random, f: Fact, path: Fact | None, style: str | None,
                    ctx: _Context | None = None) -> Clause:
        verbs = _options(self.half, f.kind)
        if f.kind == "walk" and style in STYLE_WALK and rng.random() < 0.4:
            verbs = _options(self.half, style, STYLE_WALK) or verbs
        verb, where = rng.choice(verbs), self._direction(rng, f)
        if "{where}" in verb:
            verb, where = verb.format(where=where), ""
        parts, extra = [where], ""
        speed = ("slow" if f.value < 0.8 else "normal_pace" if f.value <= 1.6 else "fast_walk") if f.kind == "walk" \
            else ("run_pace" if f.value <= 3.4 else "fast_run") if f.kind == "run" else None
        if speed and rng.random() < (0.45 if speed in ("normal_pace", "run_pace") else 0.7):
            parts.append(self.pick(rng, speed))
        elif rng.random() < 0.12:
            parts.append(self.pick(rng, "speed_n", n=_speed_words(f.value)) if rng.random() < 0.6 or f.value < 0.6
                         else self.pick(rng, "kmh", n=_round_words(f.value * 3.6)))
        if f.swing and rng.random() < 0.25:
            parts.append(self.pick(rng, "arms_still") if f.swing < SWING_SMALL else
                         self.pick(rng, "arms_pump" if f.kind != "walk" else "arms_wide") if f.swing >= SWING_BIG else
                         self.pick(rng, "arms_swing") if f.kind == "walk" else "")
        if path is not None and path.detail in ("veer", "curve", "circle") and rng.random() < 0.8:
            parts.append(self.pick(rng, path.detail, side=path.side))
            if path.detail == "circle" and rng.random() < 0.5:
                parts.append(self.pick(rng, f"circle_{path.side}"))
        elif path is not None and path.detail == "straight" and rng.random() < 0.2:
            parts.append(self.pick(rng, "straight"))
        if path is not None and path.value >= 3.0 and rng.random() < 0.12:
            parts.append(self.pick(rng, "across"))
        if ctx is not None and ctx.prev is not None and ctx.prev.base.kind == "stand" and rng.random() < 0.2:
            parts.append(self.pick(rng, "start_rest"))
        if f.detail in ("sideways", "diagonal", "back_diagonal", "backward") and rng.random() < 0.2:
            parts.append(self.pick(rng, "no_turn" if f.detail == "backward" else "facing"))
        if path is not None and (path.value < 2.0 or path.value > 8.0) and rng.random() < 0.3:
            parts.append(self.pick(rng, "short_way" if path.value < 2.0 else "long_way"))
        seconds = (f.end - f.start) / (ctx.fps if ctx else 20.0)
        r = rng.random()
        if path is not None and path.value >= 0.8 and r < 0.35:
            extra = self._distance(rng, path.value)
        elif f.count >= 2 and r < 0.55:
            extra = self._steps(rng, f.count)
        elif seconds >= 2.0 and r < 0.7:
            extra = self.pick(rng, "loco_time", n=_round_words(seconds))
        return Clause(verb, " ".join(p for p in parts if p), extra=extra)

    def _turn(self, rng: random.Random, f: Fact, ctx: _Context | None = None) -> Clause:
        side, size = f.side, f.detail
        moving = ""
        if ctx is not None and ctx.seg.base.kind in LOCOMOTION and f.end <= ctx.seg.end - ctx.fps * 0.5 \
                and rng.random() < 0.3:
            moving = self.pick(rng, "turn_moving")
        if rng.random() < 0.15 and f.count == 1:
            deg = self.pick(rng, "turn_deg", n=_round_words(f.value))
            if deg:
                return Clause(self.pick(rng, "turn"), f"{deg} to the {side} {moving}")
        if size == "quarter" and rng.random() < 0.4:
            return Clause(self.pick(rng, "turn_round"), f"{self.pick(rng, 'turn_side', side=side)} {moving}")
        if size == "half" and f.count == 1 and rng.random() < 0.25:
            return Clause(self.pick(rng, "turn"), f"to the {side} {self.pick(rng, 'face_back')} {moving}")
        if rng.random() < 0.5:
            noun = self.pick(rng, f"{size}_n")
            return Clause(self.pick(rng, "light"), f"{noun} to the {side} {self._count(rng, f.count)} {moving}")
        verb = self.pick(rng, "spin" if size == "full" else "turn")
        return Clause(verb, f"{self.pick(rng, size)} to the {side} {self._count(rng, f.count)} {moving}")

    def _detail(self, rng: random.Random, c: Clause, f: Fact, seg: Segment, fps: float) -> Clause:
        """Sometimes one more fact-grounded detail: a turn on the spot, long strides, a straight leg ..."""
        if c.extra or rng.random() >= 0.3:
            return c
        key, seconds = None, (f.end - f.start) / fps
        path = next((g for g in seg.facts if g.kind == "path"), None)
        if f.kind == "turn":
            key = ("turn_fast" if f.value / max(seconds, 1e-3) >= 150.0 else "turn_slow" if seconds >= 2.5
                   else "turn_here" if seg.base.kind == "stand" else None)
        elif f.kind in LOCOMOTION and path is not None and f.count >= 4:
            stride = path.value / f.count
            key = "long_steps" if stride >= 0.85 else "short_steps" if stride <= 0.45 else None
        else:
            key = {"hop": "hop_free", "punch": "punch_full", "kick": "kick_straight", "crouch": "bent_knees",
                   "sit": "bent_knees", "arm_forward": "shoulder_level", "arm_side": "shoulder_level",
                   "clap": "clap_where"}.get(f.kind)
        phrase = self.pick(rng, key) if key else ""
        if not phrase:
            return c
        return replace(c, extra=phrase) if phrase.startswith(",") or f.kind in LOCOMOTION else c.with_tail(phrase)

    def _arm_rest(self, rng: random.Random, f: Fact, ctx: _Context | None) -> tuple[str, str]:
        """A follow-up for a held arm pose: lowered again before the clip ends, or kept up to the end."""
        if ctx is None or rng.random() >= 0.3:
            return ("", "")
        it = "them" if f.side == "both" else "it"
        if f.end >= ctx.num_frames - 2:
            verb = self.pick(rng, "keep_up", it=it)
            end = self.pick(rng, "hold_end")
            return (self.pick(rng, "post_conn"), f"{verb} {end}") if verb and end else ("", "")
        other = [g for g in ctx.events if g is not f and g.kind in ("raise", "arm_forward", "arm_side", "wave", "punch")
                 and g.side in (f.side, "both") and g.start <= f.end + ctx.fps and g.end > f.end]
        if other or f.end > ctx.num_frames - ctx.fps * 0.3:
            return ("", "")
        return self._post(rng, "lower_again", it=it)

    def _event(self, rng: random.Random, f: Fact, ctx: _Context | None = None) -> Clause | None:
        k, side, n = f.kind, f.side, f.count
        if k == "turn":
            return self._turn(rng, f, ctx)
        if k in ("jump", "hop"):
            if f.detail == "running":
                verb = self.pick(rng, "running_jump") if rng.random() < 0.4 else ""
                if verb:
                    return Clause(verb, self._count(rng, n))
                return Clause(self.pick(rng, "jump"), f"{self.pick(rng, 'jump_running')} {self._count(rng, n)}")
            where = self._direction(rng, f) if f.detail else ""
            if k == "hop":
                return Clause(self.pick(rng, "hop", side=side, where=where), self._count(rng, n))
            if n >= 2 and rng.random() < 0.25:
                return Clause(self.pick(rng, "small_jump_n" if f.value < 0.12 else "jump_n", n=_number(n)), where)
            size = ""
            if f.value >= 0.35 and rng.random() < 0.6:
                size = self.pick(rng, "high" if rng.random() < 0.5 else "jump_big")
            elif f.value < 0.12 and rng.random() < 0.4:
                size = self.pick(rng, "jump_small")
            return Clause(self.pick(rng, "jump"), f"{size} {where or self.pick(rng, 'in_place')} {self._count(rng, n)}")
        if k == "get_up":
            return Clause(self.pick(rng, "get_up"))
        if k in ("raise", "arm_forward", "arm_side", "wave"):
            key = {"raise": "raise_over" if f.detail == "overhead" else "raise_up", "arm_forward": "arm_forward",
                   "arm_side": "arms_side" if side == "both" else "arm_side", "wave": "wave"}[k]
            arm = self._part(rng, side, "hand")
            verbs = _options(self.half, key)
            if key == "raise_over" and f.value < RAISE_HIGH:  # just above the head: no 'high', 'up to the sky'
                verbs = [v for v in verbs if not any(w in v for w in _HIGH_WORDS)] or verbs
            c = Clause(rng.choice(verbs).format(arm=arm) if verbs else "", self._count(rng, n))
            if k == "raise" and f.detail != "overhead" and rng.random() < 0.4:
                height = self.pick(rng, "raise_face" if f.value >= RAISE_FACE else "shoulder_level")
                c = c.with_tail(height[3:] if height.startswith("up ") and c.verb.endswith(" up") else height)
            if (k == "raise" and f.rate and f.start > 0 and rng.random() < 0.35  # a raise under way at frame 0: no rate
                    and not c.verb.startswith(("keep", "hold"))):
                c = c.with_tail(self.pick(rng, "raise_quick") if f.rate >= RAISE_QUICK else
                                self.pick(rng, "raise_slow") if f.rate <= RAISE_SLOW else "")
            if k == "raise" and f.reach and rng.random() < 0.3:
                key = "arm_straight" if f.reach >= ARM_STRAIGHT else "arm_bent" if f.reach < ARM_BENT else ""
                c = c.with_tail(self.pick(rng, key + ("_both" if side == "both" else "")) if key else "")
            if k == "wave":
                half_period = (f.end - f.start) / (ctx.fps if ctx else 20.0) / max(2 * n, 1)
                how = []
                if rng.random() < 0.35:
                    how.append(self.pick(rng, "wave_big") if f.value >= WAVE_BIG else
                               self.pick(rng, "wave_small") if 0 < f.value < WAVE_SMALL else "")
                if rng.random() < 0.35:
                    how.append(self.pick(rng, "wave_fast") if half_period < WAVE_FAST else
                               self.pick(rng, "wave_slow") if half_period > WAVE_SLOW else "")
                c = c.with_tail(" ".join(h for h in how if h))
            elif f.count == 1:
                c = replace(c, post=self._arm_rest(rng, f, ctx))
            return c
        if k == "punch":
            fist = self._part(rng, side, "fist") if self.half == "train" else (
                f"the {side}" if side != "both" else "both limbs")
            fast = self.pick(rng, "fast_punch") if f.value >= 3.0 and rng.random() < 0.5 else ""
            return Clause(self.pick(rng, "punch", fist=fist), f"{fast} {self._count(rng, n)}")
        if k == "clap":
            return Clause(self.pick(rng, "clap"), self._count(rng, n))
        if k == "kick":
            leg = self._part(rng, side, "leg")
            height = self._binned(rng, _KICK_BINS, f.value) if rng.random() < 0.5 else ""
            verb = self.pick(rng, "kick_side" if f.detail == "sideways" else "kick", leg=leg)
            return Clause(verb, f"{height} {self._count(rng, n)}")
        if k in ("bend", "lean_back"):
            deep = f.value >= (60.0 if k == "bend" else 35.0)
            how = self.pick(rng, "deep" if deep else "slight") if (deep or f.value < 45.0 - 25.0 * (k == "lean_back")) \
                and rng.random() < 0.5 else ""
            c = Clause(self.pick(rng, k), f"{how} {self._count(rng, n)}")
            if ctx is not None and n == 1 and f.end <= ctx.num_frames - ctx.fps * 0.5 and rng.random() < 0.3:
                c = replace(c, post=self._post(rng, "straighten"))
            return c
        return None

    def _base(self, rng: random.Random, f: Fact, seg: Segment, alone: bool, style: str | None,
              ctx: _Context | None = None) -> Clause | None:
        if f.kind in LOCOMOTION:
            path = next((g for g in seg.facts if g.kind == "path"), None)
            return self._locomotion(rng, f, path, style, ctx)
        if f.kind in POSTURES:
            if f.kind == "kneel":
                both = f.side in ("both", None)
                return Clause(self.pick(rng, "kneel_both" if both else "kneel", side=f.side))
            verb = self.pick(rng, f.kind)
            if f.detail == "down" and f.kind in ("crouch", "lie") and " " not in verb and self.half == "train":
                verb += " down"
            return Clause(verb)
        if f.kind == "off_ground":  # the held-out half has no words for it: its captions leave it out
            verb = self.pick(rng, "off_ground")
            return Clause(verb) if verb else None
        if alone:
            return Clause(self.pick(rng, "stand"), self._stance(rng, f, 0.4))
        return None

    def _stance(self, rng: random.Random, f: Fact, p: float) -> str:
        """Sometimes the feet of a standing body: together, apart or wide apart (from `Fact.width`)."""
        if f.kind != "stand" or not f.width or rng.random() >= p:
            return ""
        key = ("feet_wide" if f.width >= FEET_WIDE else "feet_apart" if f.width >= FEET_APART
               else "feet_together" if f.width < FEET_TOGETHER else "")
        return self.pick(rng, key) if key else ""

    def _still(self, rng: random.Random, i: int, facts: MotionFacts) -> Clause | None:
        """A clause for a standing segment with no events: a pause between actions, or (sometimes) the stillness
        before the first action or after the last ('stands still for about two seconds, then walks ...')."""
        seg, last = facts.segments[i], len(facts.segments) - 1
        seconds = (seg.end - seg.start) / facts.fps
        if 0 < i < last:
            return Clause(self.pick(rng, "stop"), self._duration(rng, seconds))
        if last == 0 or seconds < 1.0 or rng.random() >= 0.35:
            return None
        if i == 0:
            return Clause(self.pick(rng, "stand"), self._duration(rng, seconds, p=0.6))
        end = self.pick(rng, "hold_end") if rng.random() < 0.3 else self._duration(rng, seconds)
        return Clause(self.pick(rng, "stop"), end)

    def clauses(self, facts: MotionFacts, rng: random.Random, style: str | None = None,
                max_clauses: int = 4) -> list[Clause]:
        """Clauses in time order; `after` says whether a clause follows the previous one or goes with it."""
        out: list[Clause] = []
        keys: list[tuple | None] = []  # (kind, side) of each clause's event, for 'again'
        segs: list[int] = []  # each clause's segment
        for i, seg in enumerate(facts.segments):
            events = [f for f in seg.facts[1:] if f.kind != "path"]
            ctx = _Context(facts.fps, facts.num_frames, seg, facts.segments[i - 1] if i else None, events)
            base = self._base(rng, seg.base, seg, alone=not events and len(facts.segments) == 1, style=style, ctx=ctx)
            if base is None and seg.base.kind == "stand" and not events:
                base = self._still(rng, i, facts)
            moving = seg.base.kind in LOCOMOTION
            if base is not None:
                out.append(self._detail(rng, base, seg.base, seg, facts.fps))
                keys.append(None)
                segs.append(i)
            last_end = seg.start
            stance = self._stance(rng, seg.base, 0.25) if base is None else ""
            for f in events:
                c = self._event(rng, f, ctx)
                if c is None:
                    continue
                if stance and f.kind in ("raise", "wave", "clap", "arm_forward", "arm_side", "punch", "bend"):
                    c, stance = c.with_tail(stance), ""
                c = self._detail(rng, c, f, seg, facts.fps)
                if f.kind in ("raise", "arm_forward", "arm_side") and f.count == 1 and not c.post[1]:
                    c = replace(c, extra=self._duration(rng, (f.end - f.start) / facts.fps))
                r = rng.random()
                if facts.num_frames >= 2 * facts.fps and r < 0.12:  # when in the clip it happens
                    mid = (f.start + f.end) / 2 / facts.num_frames
                    c = c.with_tail(self.pick(rng, "when_start" if mid < 0.25 else "when_end" if mid > 0.75
                                              else "when_mid"))
                elif f.start >= 2 * facts.fps and r < 0.2 and not c.post[1]:
                    c = c.with_tail(self.pick(rng, "after_n", n=_round_words(f.start / facts.fps)))
                concurrent = (moving and f.kind not in ("turn",)) or f.start < last_end
                out.append(replace(c, after=not concurrent or not out))
                keys.append((f.kind, f.side) if f.kind in _ACTION_KINDS else None)
                segs.append(i)
                last_end = max(last_end, f.end)
        if len(out) > max_clauses:  # keep the first, then a sorted sample: order stays, nothing invented
            keep = [0] + sorted(rng.sample(range(1, len(out)), max_clauses - 1))
            out, keys, segs = [out[i] for i in keep], [keys[i] for i in keep], [segs[i] for i in keep]
        for i in range(1, len(out)):  # 'with' only joins clauses of one segment (a sample may drop the one between)
            if not out[i].after and segs[i] != segs[i - 1]:
                out[i] = replace(out[i], after=True)
        seen: set[tuple] = set()
        for i, key in enumerate(keys):  # a repeat of an action said before: 'jumps, turns, then jumps again'
            if key is not None and key in seen and rng.random() < 0.6:
                out[i] = out[i].with_tail(self.pick(rng, "again"))
            if key is not None:
                seen.add(key)
        if style and out:
            manner = self.pick(rng, style, STYLES) if style in STYLES else ""
            tail = out[0].tail
            if re.search(r"\w+ly$", tail) and re.fullmatch(r"\w+ly", manner):  # 'slowly and sadly'
                manner = "and " + manner
            out[0] = replace(out[0], tail=f"{tail} {manner}".strip())
        return out

    # --- clauses -> sentence --------------------------------------------------------------------

    def _join(self, rng: random.Random, clauses: list[Clause], form: str) -> str:
        text = clauses[0].render(form)
        for i, c in enumerate(clauses[1:], 1):
            last = i == len(clauses) - 1 and i >= 2 and rng.random() < 0.5
            key = "with" if not c.after else "last" if last else "seq"
            conn = self.pick(rng, key, ing="{ing}")
            text += conn.replace("{ing}", c.render("ing")) if "{ing}" in conn else conn + c.render(form)
        return text

    def sentence(self, clauses: list[Clause], rng: random.Random) -> str:
        subject = self.pick(rng, "subject")
        if not clauses:
            clauses = [Clause(self.pick(rng, "stand"))]
        frames = _options(self.half, "frame")
        if len(clauses) >= 2:
            special = "frame_seq" if clauses[1].after else "frame_with"
            frames = frames + _options(self.half, special) * 2
        frame = rng.choice(frames)
        rest = clauses[1:]
        values = {"S": subject, "B": self._join(rng, clauses, "s"), "Bing": self._join(rng, clauses, "ing"),
                  "Bpast": self._join(rng, clauses, "past"), "C1": clauses[0].render("s"),
                  "C1ing": clauses[0].render("ing")}
        if "{Bbase}" in frame:
            values["Bbase"] = self._join(rng, clauses, "base")
        if "{Clip}" in frame or "{Shows}" in frame:
            values.update(Clip=self.pick(rng, "clip_noun"), Shows=self.pick(rng, "shows"))
        if rest:
            first = [replace(rest[0], after=True)]
            values.update(R=self._join(rng, first + rest[1:], "s"), Ring=self._join(rng, first + rest[1:], "ing"))
        text = frame.format(**values)
        return re.sub(r"\s+", " ", re.sub(r"\s+,", ",", text)).strip(" ,")

    def caption(self, facts: MotionFacts, rng, style: str | None = None, max_clauses: int = 4) -> str:
        rng = _as_rng(rng)
        return self.sentence(self.clauses(facts, rng, style, max_clauses), rng)

    # --- vocabulary ---------------------------------------------------------------------------

    def vocabulary(self) -> frozenset[str]:
        """Every content word (not in EXEMPT) this half can write: all verb forms, plural body parts."""
        out: set[str] = set()
        i = HALVES.index(self.half)
        for table in (L, STYLES, STYLE_WALK):
            for key, pair in table.items():
                for entry in pair[i].split("|"):
                    for side in ("left", "right"):
                        text = re.sub(r"\{(arm|fist|leg|ing|where|q|it|[A-Z][a-zA-Z0-9]*)\}", " ", entry)
                        text = text.replace("{side}", side).replace("{n}", "three").strip()
                        forms = ("base", "s", "ing", "past") if key in _VERBS or table is STYLE_WALK else ("base",)
                        out.update(w for form in forms for w in words(_inflect(text, form) if text else ""))
                        if key in ("hand", "fist", "leg") and text:
                            out.add("feet" if text == "foot" else text + "s")
        return frozenset(w for w in out if w not in EXEMPT and not w.isdigit())

    def shapes(self) -> tuple[str, ...]:
        return tuple(s for key in ("frame", "frame_seq", "frame_with", "seq", "with", "last", "count", "count2")
                     for s in _options(self.half, key))


def _as_rng(rng) -> random.Random:
    if isinstance(rng, random.Random):
        return rng
    if hasattr(rng, "integers"):  # a numpy Generator
        return random.Random(int(rng.integers(2 ** 62)))
    return random.Random(rng)


@lru_cache(maxsize=None)
def _vocabulary(half: str) -> frozenset[str]:
    return Grammar(half).vocabulary()


def train_vocabulary() -> frozenset[str]:
    """Content words the train half writes (training captions use only these, EXEMPT words and numbers)."""
    return _vocabulary("train")


def heldout_vocabulary() -> frozenset[str]:
    """Content words only the held-out half writes: none of them may appear in training text."""
    return _vocabulary("heldout")


def caption_from_facts(facts: MotionFacts, rng, half: str = "train", style: str | None = None) -> str:
    """One caption of `facts` in the given half's wording."""
    return Grammar(half).caption(facts, rng, style)


# --- source captions ----------------------------------------------------------------------------------


def _sanitize_map() -> dict[str, str]:
    """Held-out word -> the train word in the same position of its synonym list, where one word maps to one word."""
    out: dict[str, str] = {}
    for table in (L, STYLES, STYLE_WALK):
        for train, held in table.values():
            t_entries, h_entries = train.split("|"), held.split("|")
            for h in h_entries:
                if " " in h.strip() or not h.strip() or not t_entries[0].strip():
                    continue
                t = next((e for e in t_entries if e and " " not in e), None)
                if t is None:
                    continue
                for form in ("base", "s", "ing", "past"):
                    out.setdefault(_inflect(h, form), _inflect(t, form))
    out.update({"whilst": "while", "afterwards": "then", "subsequently": "then", "eventually": "finally",
                "simultaneously": "at the same time", "meanwhile": "at the same time", "approximately": "about",
                "revolution": "full circle", "whole": "full", "halt": "stop", "perform": "do", "performs": "does",
                "ahead": "forward", "laterally": "sideways", "performing": "doing", "performed": "did",
                "hunker": "squat", "hunkers": "squats", "hunkering": "squatting", "hunkered": "squatted"})
    out.pop("palm", None)  # 'palm pilot': drop such a caption rather than rewrite it
    vocab = heldout_vocabulary()
    return {k: v for k, v in out.items() if k in vocab}


def sanitize(text: str, half: str = "train") -> str | None:
    """Source text for the train half: held-out words replaced by their train synonyms; None if one has none."""
    if half != "train":
        return text
    held, mapping = heldout_vocabulary(), _SANITIZE

    def repl(m: re.Match) -> str:
        w = m.group(0).lower()
        return mapping.get(w, m.group(0)) if w in held else m.group(0)

    out = WORD.sub(repl, text.lower()) if any(w in held for w in words(text)) else text
    return None if any(w in held for w in words(out)) else out


_SANITIZE = _sanitize_map()


def captions_for_clip(facts: MotionFacts, source_captions, rng, n: int = 10, half: str = "train",
                      style: str | None = None) -> list[str]:
    """The clip's source captions (cleaned for the half) first, then kinematic captions of its facts
    (whole clip, main part, with the style label's manner) until n distinct captions (or the grammar runs dry)."""
    rng = _as_rng(rng)
    grammar = Grammar(half)
    out: list[str] = []
    for text in source_captions:
        clean = sanitize(str(text).strip().rstrip("."), half)
        if clean and clean not in out:
            out.append(clean)
    for attempt in range(6 * n):
        if len(out) >= n:
            break
        st = style if style and rng.random() < 0.7 else None
        sub = facts
        if len(facts.segments) > 1 and rng.random() < 0.25:  # the longest part alone
            seg = max(facts.segments, key=lambda s: s.end - s.start)
            sub = MotionFacts((seg,), facts.fps, facts.num_frames)
        text = grammar.caption(sub, rng, st, max_clauses=rng.choice((2, 3, 4)))
        if text not in out:
            out.append(text)
    return out


def make_facts(*segments: list[Fact], fps: float = 20.0) -> MotionFacts:
    """MotionFacts from lists of facts (each list a segment, its first fact the base): for prompts and tests."""
    segs, t = [], 0
    for facts in segments:
        facts = list(facts)
        start = min((f.start for f in facts), default=t)
        end = max((f.end for f in facts), default=t + 1)
        segs.append(Segment(start, max(end, start + 1), tuple(facts)))
        t = max(end, start + 1)
    return MotionFacts(tuple(segs), fps, t)
