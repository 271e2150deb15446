"""Paraphrase grammar (server/data/paraphrase.py): disjoint halves, clean training text, mirror swaps, determinism."""
from __future__ import annotations

import random

import numpy as np
import pytest

from server.data.kinematics import Fact, MotionFacts
from server.data.paraphrase import (
    EXEMPT, HALVES, L, STYLES, Grammar, caption_from_facts, captions_for_clip, heldout_vocabulary, make_facts,
    sanitize, swap_sides, train_vocabulary, words,
)

TRAIN, HELD = train_vocabulary(), heldout_vocabulary()
SIDES = ("left", "right")


def random_facts(rng: random.Random) -> MotionFacts:
    """A random but plausible fact set: 1-3 segments, each a base and 0-3 events, every kind and detail."""
    segments, t = [], 0
    for _ in range(rng.randint(1, 3)):
        n = rng.randint(20, 80)
        base = rng.choice(["stand", "walk", "jog", "run", "crouch", "sit", "kneel", "lie"])
        side = rng.choice(SIDES + ("both",))
        if base in ("walk", "jog", "run"):
            detail = rng.choice(["forward", "backward", "sideways", "diagonal", "back_diagonal"])
            facts = [Fact(base, rng.choice(SIDES) if detail not in ("forward", "backward") else None,
                          rng.randint(0, 20), rng.uniform(0.4, 4.0), t, t + n, detail)]
            shape = rng.choice(["straight", "curve", "circle"])
            facts.append(Fact("path", None if shape == "straight" else rng.choice(SIDES), 1, rng.uniform(0.5, 12), t,
                              t + n, shape))
        elif base in ("crouch", "sit", "kneel", "lie"):
            facts = [Fact(base, side if base == "kneel" else None, 1, 0.4, t, t + n, rng.choice(["", "down"]))]
        else:
            facts = [Fact("stand", None, 1, 0.0, t, t + n)]
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["turn", "jump", "hop", "get_up", "raise", "arm_forward", "arm_side", "wave", "punch",
                               "clap", "kick", "bend", "lean_back"])
            s = t + rng.randint(0, n - 10)
            detail = {"turn": rng.choice(["quarter", "half", "full"]), "raise": rng.choice(["overhead", "up"]),
                      "kick": rng.choice(["forward", "sideways"]),
                      "jump": rng.choice(["", "forward", "sideways"])}.get(kind, "")
            fside = {"turn": rng.choice(SIDES), "hop": rng.choice(SIDES), "kick": rng.choice(SIDES), "clap": "both",
                     "jump": rng.choice(SIDES) if detail == "sideways" else None}.get(kind, side)
            if kind in ("get_up", "bend", "lean_back"):
                fside = None
            facts.append(Fact(kind, fside, rng.randint(1, 6), rng.uniform(50, 400), s, s + rng.randint(2, 10), detail))
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
    assert len(TRAIN) >= 600
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
                                                         "hastened", "zoom", "zooms", "zooming", "zoomed"},
            {"sprint", "sprints", "sprinting", "sprinted", "hurtle", "hurtles", "hurtling", "hurtled", "charge",
             "charges", "charging", "charged", "career", "careers", "careering", "careered"}),
    "backward": (Fact("walk", None, 8, 1.0, 0, 40, "backward"), {"backward", "backwards", "reverse", "back"},
                 {"rearward", "rearwards"}),
    "wave": (Fact("wave", "right", 3, 0, 5, 30), {"wave", "waves", "waving", "waved"},
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
