"""Facts-vs-label agreement (server/data/label_agreement.py): the label map per source and the checks on facts."""
from __future__ import annotations

from dataclasses import replace

from server.data import label_agreement as A
from server.data.corpus import Caption, Clip
from server.data.kinematics import Fact
from server.data.paraphrase import make_facts


def clip(source: str, take: str, *captions: tuple[str, str], mirrored: bool = False) -> Clip:
    return Clip(id=take + ("~m" if mirrored else ""), source=source, skeleton="x", subject="s", take=take,
                split="train", licence="l", commercial_ok=True, frames=100, mirrored=mirrored,
                captions=[Caption(text, tag) for tag, text in captions])


WALK_TURN_LEFT = make_facts([Fact("walk", None, 8, 1.2, 0, 60, "forward"), Fact("path", "left", 1, 4, 0, 60, "curve"),
                             Fact("turn", "left", 1, 90, 30, 50, "quarter")])
RUN = make_facts([Fact("jog", None, 8, 2.3, 0, 60, "forward"), Fact("path", None, 1, 4, 0, 60, "straight")])
VEER = make_facts([Fact("jog", None, 4, 2.3, 0, 30, "forward"), Fact("path", "right", 1, 3, 0, 30, "veer")])


def test_bandai_content_labels():
    walk = clip("bandai", "bandai/dataset-2_walk-turn-left_happy_021")
    assert A.source_labels(walk) == [("Bandai", "locomotion"), ("Bandai", "turn_left")]
    assert all(A.agrees(c, WALK_TURN_LEFT) for _, c in A.source_labels(walk))
    assert not A.agrees("turn_right", WALK_TURN_LEFT) and not A.agrees("running", WALK_TURN_LEFT)
    wave = clip("bandai", "bandai/dataset-2_wave-right-hand_normal_003")
    assert A.source_labels(wave) == [("Bandai", "wave:right")]
    waving = make_facts([Fact("stand", None, 1, 0, 0, 60), Fact("wave", "right", 3, 0.2, 10, 40)])
    assert A.agrees("wave:right", waving) and not A.agrees("wave:left", waving)


def test_elderly_runs_are_checked_as_locomotion_only():
    assert A.source_labels(clip("bandai", "bandai/dataset-2_run_elderly_004")) == [("Bandai", "locomotion")]
    assert ("Bandai", "running") in A.source_labels(clip("bandai", "bandai/dataset-1_run_old_001"))
    assert ("Bandai", "running") in A.source_labels(clip("bandai", "bandai/dataset-2_run_exhausted_004"))


def test_text_labels_of_cmu_kitml_and_deepmimic():
    c = clip("cmu", "cmu/01_01", ("kitml", "A person hops forward, turns around and walks to the left"),
             ("cmu_description", "a person jumps forward on a playground, then turns around"),
             ("paraphrase", "someone runs"))  # paraphrases are no labels
    assert A.source_labels(c) == [("KIT-ML", "locomotion"), ("KIT-ML", "jumping"), ("KIT-ML", "turn_around"),
                                  ("CMU", "jumping"), ("CMU", "turn_around")]
    d = clip("deepmimic", "deepmimic/16_39", ("cmu_description", "a person jogs, then does a veer right"))
    assert A.source_labels(d) == [("DeepMimic", "running"), ("DeepMimic", "veer_right")]
    assert A.agrees("veer_right", VEER) and not A.agrees("turn_right", VEER)  # a veer is no turn
    handstand = clip("deepmimic", "deepmimic/85_05", ("cmu_description", "a person does hand stand kicks"))
    assert A.source_labels(handstand) == []
    assert A.source_labels(clip("cmu", "cmu/02_05", ("cmu_description", "a person turns left"))) == \
        [("CMU", "turn_left")]


def test_li_classes():
    assert A.source_labels(clip("li2018", "li2018/train/running_3")) == [("Li", "locomotion"), ("Li", "running")]
    assert A.source_labels(clip("li2018", "li2018/train/soccer_1")) == []


def test_table_skips_mirrors_and_groups_turns():
    walk = clip("bandai", "bandai/dataset-2_walk-turn-left_happy_021")
    run = clip("li2018", "li2018/train/running_3")
    pairs = [(walk, WALK_TURN_LEFT), (replace(walk, mirrored=True), WALK_TURN_LEFT.mirrored()), (run, RUN),
             (clip("li2018", "li2018/train/running_4"), WALK_TURN_LEFT)]
    table = A.agreement_table(pairs)
    assert table["locomotion"] == {"Bandai": [1, 1], "Li": [2, 2]}
    assert table["running"] == {"Li": [1, 2]}
    assert table["turn_left"] == {"Bandai": [1, 1]}
    g = A.grouped(table)
    assert g["turning"] == {"Bandai": [1, 1], "all": [1, 1]} and g["running"]["all"] == [1, 2]
    assert set(A.AIMED) <= set(A.CHECKS) | {"turning", "jumping", "kicking"}
