"""Paraphrase grammar (server/data/paraphrase.py): disjoint halves, clean training text, mirror swaps, determinism."""
from __future__ import annotations

import random
import re
from dataclasses import replace

import numpy as np
import pytest

from server.data.kinematics import Fact, MotionFacts
from server.data.paraphrase import (
    EXEMPT, HALVES, L, STYLES, Grammar, _round_words, _speed_words, caption_from_facts, captions_for_clip,
    heldout_vocabulary, make_facts, sanitize, swap_sides, train_vocabulary, words,
)

TRAIN, HELD = train_vocabulary(), heldout_vocabulary()
SIDES = ("left", "right")


def random_facts(rng: random.Random) -> MotionFacts:
    """A random but plausible fact set: 1-3 segments, each a base and 0-3 events, every kind and detail."""
    segments, t = [], 0
    for _ in range(rng.randint(1, 3)):
        n = rng.randint(20, 80)
        base = rng.choice(["stand", "walk", "jog", "run", "crouch", "sit", "kneel", "lie", "off_ground"])
        side = rng.choice(SIDES + ("both",))
        if base in ("walk", "jog", "run"):
            detail = rng.choice(["forward", "backward", "sideways", "diagonal", "back_diagonal"])
            facts = [Fact(base, rng.choice(SIDES) if detail not in ("forward", "backward") else None,
                          rng.randint(0, 20), rng.uniform(0.4, 4.0), t, t + n, detail, swing=rng.uniform(0, 0.8))]
            shape = rng.choice(["straight", "veer", "curve", "circle"])
            facts.append(Fact("path", None if shape == "straight" else rng.choice(SIDES), 1, rng.uniform(0.5, 12), t,
                              t + n, shape))
        elif base == "off_ground":
            facts = [Fact("off_ground", None, 1, 0.5, t, t + n)]
        elif base in ("crouch", "sit", "kneel", "lie"):
            facts = [Fact(base, side if base == "kneel" else None, 1, 0.4, t, t + n, rng.choice(["", "down"]))]
        else:
            facts = [Fact("stand", None, 1, 0.0, t, t + n, width=rng.uniform(0.05, 0.5))]
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["turn", "jump", "hop", "get_up", "raise", "arm_forward", "arm_side", "wave", "punch",
                               "clap", "kick", "bend", "lean_back"])
            s = t + rng.randint(0, n - 10)
            detail = {"turn": rng.choice(["quarter", "half", "full"]), "raise": rng.choice(["overhead", "up"]),
                      "kick": rng.choice(["forward", "sideways"]),
                      "jump": rng.choice(["", "forward", "sideways", "running"])}.get(kind, "")
            fside = {"turn": rng.choice(SIDES), "hop": rng.choice(SIDES), "kick": rng.choice(SIDES), "clap": "both",
                     "jump": rng.choice(SIDES) if detail == "sideways" else None}.get(kind, side)
            if kind in ("get_up", "bend", "lean_back"):
                fside = None
            value = rng.uniform(0.0, 1.2) if kind in ("jump", "hop", "raise", "wave", "kick") else rng.uniform(50, 400)
            facts.append(Fact(kind, fside, rng.randint(1, 6), value, s, s + rng.randint(2, 10), detail,
                              rate=rng.uniform(0, 6) if kind == "raise" else 0.0,
                              reach=rng.uniform(0.2, 1.0) if kind == "raise" else 0.0))
        segments.append(facts)
        t += n
    return make_facts(*segments)


STYLE_KEYS = [None] + sorted(STYLES)


# --- the two halves ---------------------------------------------------------------------------------


def test_halves_share_no_content_word():
    assert TRAIN and HELD
    assert not TRAIN & HELD, sorted(TRAIN & HELD)
    assert not (TRAIN | HELD) & EXEMPT
    for word in ("stroll", "sprint", "leap", "pivot", "jab", "hoists", "whilst", "somebody"):
        assert word in HELD, word
    for word in ("walk", "runs", "jumping", "turned", "waves", "punches", "person", "while"):
        assert word in TRAIN, word


def test_every_list_and_shape_is_split_in_two():
    for key, (train, held) in L.items():
        assert train.strip(), key  # a train side for every list; the held-out side may be thinner
    train_shapes, held_shapes = set(Grammar("train").shapes()), set(Grammar("heldout").shapes())
    assert train_shapes and held_shapes and not train_shapes & held_shapes
    for shape in held_shapes:  # every held-out shape carries a held-out marker word, so a word check catches it
        marker = {w for w in words(shape.replace("{", " ").replace("}", " ")) if w not in EXEMPT} & HELD
        assert marker, shape
        assert not marker & TRAIN


def test_vocabulary_is_rich():
    assert len(TRAIN) >= 1200
    assert len(HELD) >= 250


@pytest.mark.parametrize("half", HALVES)
def test_captions_use_only_their_half(half):
    rng = random.Random(7)
    own, other = (TRAIN, HELD) if half == "train" else (HELD, TRAIN)
    seen = set()
    for i in range(400):
        text = caption_from_facts(random_facts(rng), random.Random(i), half, style=rng.choice(STYLE_KEYS))
        assert text == text.strip() and "  " not in text and "{" not in text and " ," not in text, text
        for w in words(text):
            if w in EXEMPT or w.isdigit():
                continue
            assert w in own, (w, text)
            assert w not in other, (w, text)
            seen.add(w)
    assert len(seen) >= (250 if half == "train" else 150)


def test_training_captions_for_clips_have_no_heldout_word():
    rng = random.Random(3)
    sources = ["a person sprints forward energetically", "A person hops forward, afterwards leaps back.",
               "someone is strolling ahead whilst waving", "a person walks forward"]
    for i in range(150):
        caps = captions_for_clip(random_facts(rng), sources, rng=i, n=10, style=rng.choice(STYLE_KEYS))
        for text in caps:
            assert not set(words(text)) & HELD, text


def test_sanitize_maps_heldout_words_or_drops():
    assert sanitize("a person sprints forward energetically") == "a person runs forward energetically"
    assert sanitize("A person strolls ahead, afterwards leaps") == "a person walks forward, then jumps"
    assert sanitize("someone walks whilst waving") == "someone walks while waving"
    assert sanitize("using a palm pilot") is None  # no safe train word: the caption is dropped
    assert sanitize("a person walks", half="heldout") == "a person walks"


# --- facts -> words -------------------------------------------------------------------------------------

EXPECT = {  # one fact, and the words one of which its caption must contain, per half
    "jog": (Fact("jog", None, 8, 2.3, 0, 40, "forward"), {"jog", "jogs", "jogging", "jogged", "trot", "trots",
                                                         "trotting",
                                                         "trotted", "lightly", "easy", "runs", "ran", "running"},
            {"lope", "lopes", "loping", "loped"}),
    "run": (Fact("run", None, 8, 3.0, 0, 40, "forward"), {"run", "runs", "running", "ran", "dash", "dashes", "dashing",
                                                         "dashed", "race", "races", "racing", "raced", "rush", "rushes",
                                                         "rushing", "rushed", "hurry", "hurries", "hurrying",
                                                         "hurried", "speed", "speeds", "speeding", "sped",
                                                         "dart", "darts", "darting", "darted", "bolt", "bolts",
                                                         "bolting", "bolted", "hasten", "hastens", "hastening",
                                                         "hastened", "zoom", "zooms", "zooming", "zoomed", "tear",
                                                         "tears", "tearing", "tore"},
            {"sprint", "sprints", "sprinting", "sprinted", "hurtle", "hurtles", "hurtling", "hurtled", "charge",
             "charges", "charging", "charged", "career", "careers", "careering", "careered"}),
    "backward": (Fact("walk", None, 8, 1.0, 0, 40, "backward"), {"backward", "backwards", "reverse", "back"},
                 {"rearward", "rearwards"}),
    "wave": (Fact("wave", "right", 3, 0, 5, 30), {"wave", "waves", "waving", "waved", "forth", "side", "signal",
                                                  "signals", "signalling", "signaled", "signaling", "signalled"},
             {"waggle", "waggles", "waggling", "waggled", "wag", "wags", "wagging", "wagged"}),
    "jump": (Fact("jump", None, 2, 0.2, 5, 30), {"jump", "jumps", "jumping", "jumped", "spring", "springs", "springing",
                                                 "sprang", "bounce", "bounces", "bouncing", "bounced"},
             {"leap", "leaps", "leaping", "leapt", "bound", "bounds", "bounding", "bounded"}),
    "punch": (Fact("punch", "left", 2, 0, 5, 30), {"punch", "punches", "punching", "punched", "strike", "strikes",
                                                   "striking", "struck", "box", "boxes", "boxing", "boxed", "hit",
                                                   "hits", "hitting"},
              {"jab", "jabs", "jabbing", "jabbed", "blow"}),
}


@pytest.mark.parametrize("name", sorted(EXPECT))
@pytest.mark.parametrize("half", HALVES)
def test_captions_state_the_facts(name, half):
    fact, train_words, held_words = EXPECT[name]
    segment = [fact] if fact.kind in ("jog", "run", "walk") else [Fact("stand", None, 1, 0.0, 0, 40), fact]
    facts = make_facts(segment)
    want = train_words if half == "train" else held_words
    for seed in range(30):
        assert set(words(caption_from_facts(facts, seed, half))) & want, caption_from_facts(facts, seed, half)


def test_sides_counts_and_order_are_said():
    facts = make_facts([Fact("walk", None, 10, 1.2, 0, 60, "forward"), Fact("path", None, 1, 7.0, 0, 60, "straight")],
                       [Fact("stand", None, 1, 0, 60, 100), Fact("turn", "left", 1, 90, 62, 70, "quarter"),
                        Fact("wave", "right", 3, 0, 75, 95)])
    for seed in range(40):
        text = caption_from_facts(facts, seed, "train", style="happy")
        ws = words(text)
        assert "left" in ws and "right" in ws, text
        assert ws.index("left") < ws.index("right"), text  # the turn comes before the wave
        assert "three" in ws or any(p in text for p in L["count_many"][0].split("|")), text
        assert "happily" in text or any(m in text for m in STYLES["happy"][0].split("|")), text


def test_style_only_from_the_label():
    facts = make_facts([Fact("walk", None, 10, 1.2, 0, 60, "forward")])
    manners = {m for v in STYLES.values() for half in v for m in half.split("|") if m}
    for seed in range(30):
        text = caption_from_facts(facts, seed)
        assert not any(f" {m}" in text for m in manners if " " in m or m.endswith("ly")), text


def test_deterministic_given_the_seed():
    facts = random_facts(random.Random(1))
    a = captions_for_clip(facts, ["a person walks"], rng=11, n=10, style="sad")
    b = captions_for_clip(facts, ["a person walks"], rng=random.Random(11), n=10, style="sad")
    c = captions_for_clip(facts, ["a person walks"], rng=np.random.default_rng(5), n=10, style="sad")
    d = captions_for_clip(facts, ["a person walks"], rng=np.random.default_rng(5), n=10, style="sad")
    assert a == b and c == d
    assert captions_for_clip(facts, [], rng=12, n=10) != captions_for_clip(facts, [], rng=13, n=10)


def test_captions_for_clip_sources_first_and_enough_distinct():
    facts = make_facts([Fact("walk", None, 10, 1.2, 0, 60, "forward"), Fact("path", "left", 1, 7.0, 0, 60, "curve"),
                        Fact("turn", "left", 1, 90, 20, 50, "quarter")],
                       [Fact("stand", None, 1, 0, 60, 100), Fact("wave", "right", 3, 0, 70, 90)])
    caps = captions_for_clip(facts, ["a person walks and turns left energetically.", "a person sprints"], rng=0, n=12,
                             style="active")
    assert caps[:2] == ["a person walks and turns left energetically", "a person runs"]
    assert len(caps) == len(set(caps)) == 12


# --- measured detail ---------------------------------------------------------------------------------------


def _texts(facts: MotionFacts, n: int = 120, style: str | None = None) -> list[str]:
    return [caption_from_facts(facts, seed, "train", style) for seed in range(n)]


def _options_of(*keys: str) -> list[str]:
    return [o for k in keys for o in L[k][0].split("|") if o]


def test_numbers_are_written_in_words():
    assert [_round_words(x) for x in (0.4, 7.2, 19.6, 23.0, 114.0, 178.0, 270.0, 361.0)] == [
        "zero", "seven", "twenty", "twenty", "a hundred and ten", "a hundred and eighty", "two hundred and seventy",
        "three hundred and sixty"]
    assert [_speed_words(v) for v in (0.3, 1.1, 1.3, 2.6, 3.0)] == [
        "half a metre", "one metre", "one and a half metres", "two and a half metres", "three metres"]


def test_distances_and_turn_degrees_match_the_measure():
    walk = make_facts([Fact("walk", None, 12, 1.3, 0, 110, "forward"), Fact("path", None, 1, 7.2, 0, 110, "straight")],
                      [Fact("stand", None, 1, 0.0, 110, 160), Fact("turn", "left", 1, 114.0, 115, 130, "quarter")])
    texts = " | ".join(_texts(walk, 300))
    assert "seven metres" in texts or "seven meters" in texts
    assert "several metres" in texts or "several meters" in texts or "quite a few metres" in texts
    for wrong in (r"(?<!quite )a few metres", "a couple of metres", "six metres", "eight metres",
                  "hundred and twenty degrees"):
        assert not re.search(wrong, texts), wrong
    short = make_facts([Fact("walk", None, 2, 1.0, 0, 20, "forward"), Fact("path", None, 1, 1.1, 0, 20, "straight")])
    assert not any("one metres" in t or "one meters" in t for t in _texts(short, 300))
    assert "hundred and ten degrees" in texts


def test_raise_manner_follows_its_speed_and_arm():
    base = Fact("stand", None, 1, 0.0, 0, 100)
    quick = make_facts([base, Fact("raise", "left", 1, 0.45, 20, 60, "overhead", rate=5.2, reach=0.95)])
    slow = make_facts([base, Fact("raise", "left", 1, 0.1, 20, 60, "up", rate=0.7, reach=0.4)])
    quick_words, slow_words = set(_options_of("raise_quick")), set(_options_of("raise_slow"))
    q, sl = " | ".join(_texts(quick)), " | ".join(_texts(slow))
    assert any(w in q for w in quick_words) and not any(f" {w} " in f" {q} " for w in slow_words - quick_words)
    assert any(w in sl for w in slow_words) and not any(f" {w} " in f" {sl} " for w in quick_words - slow_words)
    assert "elbow bent" in sl or "bent arm" in sl or "bending the elbow" in sl or "crooked elbow" in sl
    assert not any(w in q for w in ("elbow bent", "bent arm", "crooked elbow"))


def test_lowering_only_when_the_hand_comes_down_before_the_end():
    base = Fact("stand", None, 1, 0.0, 0, 100)
    down = " | ".join(_texts(make_facts([base, Fact("raise", "right", 1, 0.45, 10, 50, "overhead")]), 200))
    held = " | ".join(_texts(make_facts([base, Fact("raise", "right", 1, 0.45, 10, 100, "overhead")]), 200))
    lowers = ("lowers it", "lowering it", "brings it back down", "puts it down", "drops it", "returns it")
    assert any(w in down for w in lowers) and not any(w in held for w in lowers)
    assert any(w in held for w in _options_of("hold_end")) and not any(w in down for w in _options_of("hold_end"))


def test_wave_stance_and_arm_swing_words_follow_the_measure():
    base = Fact("stand", None, 1, 0.0, 0, 80, width=0.08)
    small = " | ".join(_texts(make_facts([base, Fact("wave", "left", 4, 0.05, 10, 60)])))  # 0.31 s per swing
    big = " | ".join(_texts(make_facts([replace(base, width=0.3), Fact("wave", "left", 4, 0.35, 10, 30)])))
    assert any(w in small for w in _options_of("wave_small", "feet_together"))
    assert not any(w in small for w in _options_of("wave_big", "wave_fast", "feet_apart"))
    assert any(w in big for w in _options_of("wave_big", "wave_fast", "feet_apart"))
    assert not any(w in big for w in _options_of("wave_small", "feet_together"))
    still = " | ".join(_texts(make_facts([Fact("walk", None, 8, 1.0, 0, 80, "forward", swing=0.1)])))
    assert any(w in still for w in _options_of("arms_still"))
    own = _options_of("arms_still")
    assert not any(w in still for w in _options_of("arms_swing", "arms_wide") if not any(w in o for o in own))


def test_running_jump_and_again():
    run = Fact("run", None, 6, 3.0, 0, 60, "forward")
    texts = _texts(make_facts([run, Fact("jump", None, 1, 0.4, 20, 29, "running")]))
    for t in texts:
        assert not any(w in t for w in ("both feet", "feet together", "on the spot", "in place")), t
    assert any("running jump" in t or "off one foot" in t for t in texts)
    base = Fact("stand", None, 1, 0.0, 0, 100)
    repeat = make_facts([base, Fact("jump", None, 1, 0.2, 10, 18), Fact("turn", "left", 1, 180, 30, 50, "half"),
                         Fact("jump", None, 1, 0.2, 60, 68)])
    again = _options_of("again")
    assert any(any(a in t for a in again) for t in _texts(repeat))
    once = make_facts([base, Fact("jump", None, 1, 0.2, 10, 18), Fact("turn", "left", 1, 180, 30, 50, "half")])
    assert not any(f" {a}" in t for t in _texts(once) for a in ("again", "once more", "a second time"))


# --- mirror -----------------------------------------------------------------------------------------------


def test_swap_sides_words():
    assert swap_sides("Left hand up, then the right; leftward and rightwards") == \
        "Right hand up, then the left; rightward and leftwards"
    assert swap_sides("turns counterclockwise, then clockwise, then anti-clockwise") == \
        "turns clockwise, then counterclockwise, then clockwise"
    assert swap_sides("a left-handed throw") == "a right-handed throw"
    idioms = "turns right away, at a right angle, all right"
    assert swap_sides(idioms) == idioms
    assert swap_sides("the bright light") == "the bright light"


def test_mirrored_clip_captions_swap_every_side_word():
    rng = random.Random(5)
    for i in range(60):
        facts = random_facts(rng)
        sources = ["a person raises the left hand and turns right"]
        caps = captions_for_clip(facts, sources, rng=i, n=8)
        mirrored = captions_for_clip(facts.mirrored(), [swap_sides(s) for s in sources], rng=i, n=8)
        assert mirrored == [swap_sides(c) for c in caps]
        assert [swap_sides(c) for c in mirrored] == caps
