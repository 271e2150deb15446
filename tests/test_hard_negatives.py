"""Hard negatives (server/eval/hard_negatives.py) and their use in contrastive training (server/eval/contrastive.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from server.data.corpus import Caption, Clip, Corpus, write_corpus
from server.eval import hard_negatives as hn
from server.eval import metrics
from server.eval.contrastive import TrainConfig, contrastive_loss, load_data, uses_heldout_wording
from server.model.text_encoder import TextCache, TextEmbeddings
from shared.motion import Motion
from synthetic_text_motion import CAPTIONS, synthetic_motion

torch.set_num_threads(1)


def _walk(frames: int = 60, speed: float = 1.2) -> Motion:
    """A synthetic walk forward (caption 4 of synthetic_text_motion) at `speed` m/s."""
    m = synthetic_motion(4, np.random.default_rng(0), frames)
    t = m.translation.copy()
    t[:, [0, 2]] = (t[:, [0, 2]] - t[:1, [0, 2]]) * speed + t[:1, [0, 2]]
    return Motion(m.rotations, t, 20.0)


# --- transforms ----------------------------------------------------------------------------------

def test_position_transforms_match_the_wire_transforms_and_invert():
    m = _walk()
    p = m.positions()
    assert np.allclose(hn.mirror_positions(hn.mirror_positions(p)), p)
    assert np.abs(hn.mirror_positions(p) - hn.transform_motion(m, "mirror").positions()).max() < 0.02  # SMPL asymmetry
    for kind in ("reverse", "slow", "fast"):
        a, b = hn.transform_positions(p, kind), hn.transform_motion(m, kind).positions()
        assert a.shape == b.shape and np.abs(a - b).max() < 0.03, kind  # slerp vs linear in between frames
    assert len(hn.transform_positions(p, "slow")) == 2 * len(p) - 1 and len(hn.transform_positions(p, "fast")) == 30
    assert np.allclose(hn.reverse_positions(p)[0], p[-1])
    # the pelvis travels twice as fast at x2, half as fast at x0.5
    dist = lambda q: np.linalg.norm(q[-1, 0, [0, 2]] - q[0, 0, [0, 2]]) / (len(q) - 1)  # noqa: E731
    assert dist(hn.transform_positions(p, "fast")) == pytest.approx(2 * dist(p), rel=0.02)
    assert dist(hn.transform_positions(p, "slow")) == pytest.approx(0.5 * dist(p), rel=0.02)
    mirrored_x = hn.mirror_positions(p)[:, 1, 0]  # the mirror's left hip sits where the right hip was, x negated
    assert np.allclose(mirrored_x, -p[:, 2, 0])
    with pytest.raises(ValueError, match="unknown transform"):
        hn.transform_positions(p, "sideways")


# --- what is a valid negative ----------------------------------------------------------------------

def test_captions_name_sides_and_styles():
    assert hn.names_a_side("a person turns left") and hn.names_a_side("someone circles clockwise")
    assert not hn.names_a_side("a person walks forward") and not hn.names_a_side("he says all right")
    assert hn.styles_named("a person walks happily") == {"happy"}
    assert {"tired", "exhausted"} <= hn.styles_named("someone trudges along")
    assert hn.styles_named("a person walks") == frozenset()


def test_reversal_and_speed_are_negatives_only_when_the_facts_change():
    walk = hn.clip_facts(_walk(80, 1.2).positions())
    assert walk.family == "locomotion" and walk.key[:2] == ("walk", "forward")
    assert walk.changes["reverse"]  # a walk forward played backwards walks backward
    assert walk.changes["fast"]  # 2.4 m/s is no longer a walk
    still = Motion(np.tile(np.array([1.0, 0, 0, 0], np.float32), (60, 22, 1)),
                   np.tile(np.array([0, 0.92, 0], np.float32), (60, 1)), 20.0)
    facts = hn.clip_facts(still.positions())
    assert facts.family == "arm_side" and not any(facts.changes.values())  # a T-pose held still


def test_negative_table_options_and_style_partners():
    def clip(take, mirrored=False):
        return Clip(id=take, source="bandai", skeleton="s", subject="1", take=f"bandai/{take}", split="train",
                    licence="CC BY-NC 4.0", commercial_ok=False, frames=10, mirrored=mirrored)

    labels = [hn.bandai_label(clip(t, m)) for t, m in [("dataset-2_walk_happy_001", False),
                                                        ("dataset-2_walk_tired_002", False),
                                                        ("dataset-2_walk_happy_003", True),
                                                        ("dataset-2_run_tired_004", False)]]
    assert labels[0] == ("walk", "happy") and labels[2] == ("walk~m", "happy")
    facts = [hn.ClipFacts("locomotion", (), {"reverse": True, "slow": False, "fast": True})] * 4
    texts = ["a person walks happily", "a person walks", "a person turns left happily", "someone trudges along"]
    table = hn.NegativeTable(facts, labels, texts)
    assert table.options(0, 0) == ["reverse", "fast", "style"] and table.style_partners(0, 0) == [1]
    assert table.options(0, 1) == ["reverse", "fast"]  # the caption names no style: another style still matches
    assert table.options(2, 2) == ["mirror", "reverse", "fast"]  # no other style of the mirrored walk
    assert table.style_partners(1, 3) == [0]  # "trudges" names the tired walk's style: the happy walk is its negative
    cmu = clip("dataset-2_walk_happy_001")
    cmu.source = "cmu"
    assert hn.bandai_label(cmu) is None


# --- the loss --------------------------------------------------------------------------------------

def test_hard_negatives_join_only_their_own_texts_row():
    torch.manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    m = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    h = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    owners = torch.tensor([0, 2])
    eye = torch.eye(3, dtype=torch.bool)
    got = contrastive_loss(t, m, eye, torch.tensor(10.0), h, owners)
    logits = (10.0 * t @ m.T).double().numpy()
    hard = (10.0 * t @ h.T).double().numpy()
    rows = []
    for i in range(3):
        row = list(logits[i]) + [hard[i, k] for k in range(2) if int(owners[k]) == i]
        rows.append(np.log(np.exp(row).sum()) - logits[i, i])
    cols = [np.log(np.exp(logits[:, j]).sum()) - logits[j, j] for j in range(3)]
    assert float(got) == pytest.approx(0.5 * (np.mean(rows) + np.mean(cols)), rel=1e-5)
    # no hard negatives: the plain loss; a hard negative sitting on its text costs more than one far away
    assert float(contrastive_loss(t, m, eye, torch.tensor(10.0), h[:0], owners[:0])) == \
        pytest.approx(float(contrastive_loss(t, m, eye, torch.tensor(10.0))))
    near = contrastive_loss(t, m, eye, torch.tensor(10.0), t[:1].clone(), torch.tensor([0]))
    far = contrastive_loss(t, m, eye, torch.tensor(10.0), -t[:1].clone(), torch.tensor([0]))
    assert float(near) > float(far)


def test_training_data_keeps_train_wording_only_and_finds_negatives(tmp_path):
    held = "somebody strolls ahead"  # 'strolls' belongs to the held-out half of the paraphrase grammar
    assert uses_heldout_wording(held) and not uses_heldout_wording(CAPTIONS[4])
    rng = np.random.default_rng(0)
    clips, motions = [], []
    for k, split in [(4, "train"), (4, "train"), (0, "train"), (5, "val")]:
        m = synthetic_motion(k, rng, 60)
        caps = [Caption(CAPTIONS[k], "synthetic")] + ([Caption(held, "kitml")] if k == 4 else [])
        clips.append(Clip(id=f"c{len(clips)}", source="synthetic", skeleton="smpl22", subject=str(len(clips)),
                          take="t", split=split, licence="CC0", commercial_ok=True, frames=60, captions=caps))
        motions.append(m)
    write_corpus(tmp_path / "c", clips, motions)
    texts = CAPTIONS + [held]
    emb = torch.nn.functional.normalize(torch.randn(len(texts), 384, generator=torch.Generator().manual_seed(0)), dim=-1)
    cache = TextCache(path=tmp_path / "cache.safetensors")
    cache.add(texts, TextEmbeddings(emb, emb[:, None], torch.ones(len(texts), dtype=torch.int64)))
    logs = []
    data = load_data(tmp_path / "c", TrainConfig(kind="reward", model={"hidden": 32, "embed_dim": 32}), cache, None,
                     "cpu", logs.append)
    assert held not in data.texts and any("held-out" in line for line in logs)
    assert len(data.train) == 3 and all(len(c) == 1 for c in data.train.captions)
    table = data.train.negatives
    walk_text = data.texts.index(CAPTIONS[4])
    assert "reverse" in table.options(0, walk_text) and "mirror" not in table.options(0, walk_text)
    wave_text = data.texts.index(CAPTIONS[0])  # "wave the left arm" names a side
    assert "mirror" in table.options(2, wave_text)
    plain = load_data(tmp_path / "c", TrainConfig(kind="evaluator", wording="all", model={"hidden": 32, "embed_dim": 32}),
                      cache, None, "cpu", logs.append)
    assert held in plain.texts and plain.train.negatives is None
    with pytest.raises(ValueError, match="unknown hard negatives"):
        TrainConfig(kind="reward", hard_negatives=["upside_down"]).negative_types()


def test_auc():
    assert metrics.auc([2, 3], [0, 1]) == 1.0 and metrics.auc([0, 1], [2, 3]) == 0.0
    assert metrics.auc([1, 1], [1, 1]) == 0.5 and metrics.auc([3, 1], [2]) == 0.5
    assert np.isnan(metrics.auc([], [1]))


def test_corpus_negative_set(tmp_path):
    from synthetic_text_motion import make_corpus

    corpus = Corpus(make_corpus(tmp_path / "c", per_caption={"train": 1, "val": 1, "test": 3}))
    data = hn.negative_set(corpus, "test", seed=0)
    assert len(data.motions) == len(data.texts) == 3 * len(CAPTIONS)
    sided = sum(hn.names_a_side(t) for t in data.texts)
    assert len(data.negatives["mirror"]) == sided and len(data.negatives["clip"]) == len(data.texts)
    assert not data.negatives["style"]  # no Bandai labels here
    scored = hn.score_negatives(lambda ms, ts: np.array([m.num_frames for m in ms], float), data)
    slow = next(p for p in scored if p.kind == "slow")
    assert (slow.negative > slow.matched).all()  # x0.5 has more frames
    row = slow.summary()
    assert row["auc"] == 0.0 and row["pairs"] == len(slow.matched) and row["auc_low"] <= row["auc_high"]
    table = hn.auc_table({"frames": [p.summary() for p in scored]})
    assert "| speed x0.5 |" in table and "| another clip |" in table


def test_caption_subset_is_fixed_by_the_clip():
    from server.eval.contrastive import caption_subset

    caps = [Caption(f"caption {k}", "kinematic") for k in range(8)] + [Caption("caption 0", "paraphrase")]
    a = Clip(id="a", source="s", skeleton="s", subject="1", take="t", split="train", licence="CC0", commercial_ok=True,
             frames=10, captions=caps)
    b = Clip(**{**a.__dict__, "id": "b"})
    assert caption_subset(a, None) == [f"caption {k}" for k in range(8)]  # distinct, in corpus order
    assert caption_subset(a, 3) == caption_subset(a, 3) and len(caption_subset(a, 3)) == 3
    assert set(caption_subset(a, 3)) <= {c.text for c in caps}
    assert caption_subset(a, 3) != caption_subset(b, 3) or caption_subset(a, 5) != caption_subset(b, 5)
    assert caption_subset(a, 20) == caption_subset(a, None)
