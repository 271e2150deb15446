"""Evaluator / reward model: motion representation, models, training script, evaluation protocol.

A synthetic corpus whose captions determine the motion (tests/synthetic_text_motion.py) and
tiny models keep this to seconds on one CPU thread.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from server.eval import evaluation
from server.eval import metrics
from server.eval import motion_repr
from server.eval.contrastive import TrainConfig, contrastive_loss, positives_matrix, train
from server.data.corpus import Corpus
from server.eval.evaluator import TextMotionConfig, TextMotionModel
from server.eval.reward import RewardModel
from server.model.text_embeddings import open_cache
from shared.motion import forward_kinematics
from shared.rotations import axis_angle_to_quat, quat_multiply, quat_to_matrix
from synthetic_text_motion import CAPTIONS, make_corpus, synthetic_motion

torch.set_num_threads(1)

TINY = {"hidden": 32, "embed_dim": 32, "layers": 1, "heads": 2, "max_frames": 48, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("syn") / "corpus")


@pytest.fixture(scope="module")
def text_cache(corpus_dir):
    return open_cache(corpus_dir / "text_cache.safetensors")


def _train(corpus_dir, text_cache, out, kind, epochs=6, **kw):
    cfg = TrainConfig(kind=kind, epochs=epochs, batch_size=16, lr=2e-3, warmup_steps=5, model=dict(TINY), **kw)
    return train(corpus_dir, out, cfg, text_cache=text_cache, device="cpu", progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def trained(corpus_dir, text_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    _train(corpus_dir, text_cache, root / "evaluator", "evaluator")
    _train(corpus_dir, text_cache, root / "reward", "reward")
    return root


def _test_items(corpus_dir):
    c = Corpus(corpus_dir)
    idx = c.indices("test")
    return [c.motion(i) for i in idx], [c.clips[i].captions[0].text for i in idx]


# --- motion representation ----------------------------------------------------------------

def test_torch_fk_matches_shared_fk():
    m = synthetic_motion(6, np.random.default_rng(0), 40)
    ours = motion_repr.forward_kinematics(torch.tensor(m.rotations), torch.tensor(m.translation)).numpy()
    assert np.abs(ours - forward_kinematics(m.rotations, m.translation)).max() < 1e-5


def test_features_ignore_start_position_and_heading_and_see_walking_direction():
    m = synthetic_motion(4, np.random.default_rng(1), 40)  # "walk forward"
    q = axis_angle_to_quat([0.0, 2.0, 0.0])
    rot = m.rotations.copy()
    rot[:, 0] = quat_multiply(q, rot[:, 0])
    trans = m.translation @ quat_to_matrix(q).T + np.array([5.0, 0.0, -2.0])
    f1, n1 = motion_repr.features(torch.tensor(m.rotations)[None], torch.tensor(m.translation)[None])
    f2, _ = motion_repr.features(torch.tensor(rot)[None].float(), torch.tensor(trans)[None].float())
    assert f1.shape == (1, 39, motion_repr.FEATURE_DIM) and int(n1[0]) == 39
    assert (f1 - f2).abs().max() < 1e-3
    root_velocity = f1[0, :, 64:67].mean(0)  # pelvis velocity in the heading frame: forward is +Z
    assert root_velocity[2] > 0.8 and abs(root_velocity[0]) < 0.2


def test_padding_does_not_change_features_or_embeddings():
    rng = np.random.default_rng(2)
    a, b = synthetic_motion(0, rng, 30), synthetic_motion(5, rng, 45)
    alone, _ = motion_repr.features(torch.tensor(a.rotations)[None], torch.tensor(a.translation)[None])
    rot = torch.zeros(2, 45, 22, 4)
    rot[..., 0] = 1
    trans = torch.zeros(2, 45, 3)
    rot[0, :30], trans[0, :30] = torch.tensor(a.rotations), torch.tensor(a.translation)
    rot[1], trans[1] = torch.tensor(b.rotations), torch.tensor(b.translation)
    batched, lengths = motion_repr.features(rot, trans, torch.tensor([30, 45]))
    assert lengths.tolist() == [29, 44]
    assert torch.allclose(batched[0, :29], alone[0], atol=1e-5) and batched[0, 29:].abs().max() == 0
    for arch in ("convgru", "transformer"):
        torch.manual_seed(0)
        model = TextMotionModel(TextMotionConfig(arch=arch, **TINY)).eval()
        one = model.embed_motions([a])
        both = model.embed_motions([a, b])
        assert np.allclose(one[0], both[0], atol=1e-5)
        assert np.allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)


# --- training objective ---------------------------------------------------------------------

def test_duplicate_captions_are_masked_out_of_the_negatives():
    # texts: clip 0 "walk", clip 1 "walk" (duplicate caption), clip 2 "run"
    pos = positives_matrix(np.array([0, 0, 1]), [{0}, {0, 5}, {1}])
    assert pos.tolist() == [[True, True, False], [True, True, False], [False, False, True]]
    torch.manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    m = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    loss = contrastive_loss(t, m, torch.as_tensor(pos), torch.tensor(10.0))
    logits = (10.0 * t @ m.T).numpy().astype(np.float64)
    keep = ~pos | np.eye(3, dtype=bool)  # each row/column: its own match plus the true negatives

    def ce(mat):
        return np.mean([np.log(np.exp(mat[i][keep[i]]).sum()) - mat[i, i] for i in range(3)])

    keep_t = keep.T
    cols = np.mean([np.log(np.exp(logits[:, j][keep_t[j]]).sum()) - logits[j, j] for j in range(3)])
    assert float(loss) == pytest.approx(0.5 * (ce(logits) + cols), rel=1e-5)
    # the duplicate's motion sitting on top of text 0 costs nothing
    m2 = m.clone()
    m2[1] = t[0]
    unmasked = contrastive_loss(t, m2, torch.eye(3, dtype=torch.bool), torch.tensor(10.0))
    assert float(contrastive_loss(t, m2, torch.as_tensor(pos), torch.tensor(10.0))) < float(unmasked)


# --- trained tiny models ----------------------------------------------------------------------

def test_train_writes_safetensors_checkpoint_and_log(trained):
    for kind in ("evaluator", "reward"):
        folder = trained / kind
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "train_log.jsonl"]
        cfg = json.loads((folder / "config.json").read_text())
        assert cfg["kind"] == kind and cfg["corpus_fingerprint"] and cfg["licences"] == ["CC0"]
        assert cfg["config"]["arch"] == {"evaluator": "convgru", "reward": "transformer"}[kind]
        rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and "val" in rows[0]
    seeds = [json.loads((trained / k / "config.json").read_text())["seed"] for k in ("evaluator", "reward")]
    assert seeds[0] != seeds[1]


def test_evaluator_retrieves_its_captions(trained, corpus_dir, text_cache):
    ev = TextMotionModel.load(trained / "evaluator", "cpu")
    motions, texts = _test_items(corpus_dir)
    r, _ = metrics.r_precision_batched(ev.embed_texts(texts, cache=text_cache), ev.embed_motions(motions),
                                       metrics.caption_ids(texts), np.random.default_rng(0), batch_size=8)
    assert r[2] >= 0.8  # chance is 3/8


def test_reward_in_unit_interval_and_ranks_own_caption_above_shuffled(trained, corpus_dir, text_cache):
    rm = RewardModel.load(trained / "reward", "cpu", text_cache=text_cache)
    motions, texts = _test_items(corpus_dir)
    own = rm.reward(motions, texts)
    other = rm.reward(motions, [CAPTIONS[(CAPTIONS.index(t) + 3) % len(CAPTIONS)] for t in texts])
    assert own.dtype == np.float32 and own.shape == (len(motions),)
    assert ((own >= 0) & (own <= 1) & (other >= 0) & (other <= 1)).all()
    assert (own > other).mean() >= 0.9 and own.mean() > other.mean() + 0.1

    # batched torch path == list path; one string broadcasts; similarity in [0, 1], 1 for identical motions
    rot = torch.tensor(np.stack([m.rotations[:30] for m in motions[:4]]))
    trans = torch.tensor(np.stack([m.translation[:30] for m in motions[:4]]))
    r_torch = rm.reward_torch(rot, trans, torch.full((4,), 30), texts[:4]).numpy()
    r_list = rm.reward([m.slice(0, 30) for m in motions[:4]], texts[:4])
    assert np.allclose(r_torch, r_list, atol=1e-5)
    assert rm.reward((rot.numpy(), trans.numpy()), texts[0]).shape == (4,)
    sim = rm.similarity(motions[:5], motions[:5])
    assert np.allclose(sim, 1.0, atol=1e-5)
    cross = rm.similarity_matrix(motions[:5], motions[5:10])
    assert cross.shape == (5, 5) and ((cross >= 0) & (cross <= 1)).all()
    s_torch = rm.similarity_torch(rot, trans, None, rot[:1], trans[:1], None).numpy()
    assert s_torch.shape == (4,) and abs(s_torch[0] - 1) < 1e-5


def test_training_is_deterministic(corpus_dir, text_cache, tmp_path):
    a = _train(corpus_dir, text_cache, tmp_path / "a", "reward", epochs=1, max_steps=3)
    b = _train(corpus_dir, text_cache, tmp_path / "b", "reward", epochs=1, max_steps=3)
    assert a["steps"] == 3
    wa = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert wa == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_train_script_runs_a_few_steps(corpus_dir, tmp_path, capsys):
    from server import train_evaluator

    for kind in ("evaluator", "reward"):
        rc = train_evaluator.main(["--kind", kind, "--corpus", str(corpus_dir), "--out", str(tmp_path / kind),
                                   "--tiny", "--max-steps", "2", "--epochs", "1", "--batch-size", "8",
                                   "--device", "cpu", "--no-progress",
                                   "--text-cache", str(corpus_dir / "text_cache.safetensors")])
        assert rc == 0 and (tmp_path / kind / "model.safetensors").is_file()
    assert '"best_val"' in capsys.readouterr().out
    bad = ["--kind", "reward", "--corpus", str(corpus_dir), "--hard-negatives", "upside_down", "--device", "cpu",
           "--text-cache", str(corpus_dir / "text_cache.safetensors")]
    assert train_evaluator.main(bad) == 2 and "upside_down" in capsys.readouterr().err


# --- evaluation protocol ------------------------------------------------------------------------

def test_evaluation_rows_and_degradation(trained, corpus_dir, text_cache, tmp_path):
    ev = TextMotionModel.load(trained / "evaluator", "cpu")
    test = evaluation.load_test_set(Corpus(corpus_dir), r_batch=8)
    texts = evaluation._TextEmbedder(ev, [c for caps in test.captions for c in caps], cache=text_cache)
    real = evaluation.evaluate_real(ev, test, repeats=3, texts=texts)
    assert real["summary"]["fid"][0] == 0 and real["summary"]["top3"][0] >= 0.8
    degraded = {r["name"].split(" (")[0]: r for r in evaluation.evaluate_degraded(ev, test, 3, texts=texts)}
    shuffled = degraded["Real, shuffled texts"]["summary"]
    assert shuffled["top1"][0] < real["summary"]["top1"][0] - 0.3
    assert shuffled["mm_dist"][0] > real["summary"]["mm_dist"][0]
    assert degraded["Real + noise"]["summary"]["fid"][0] > 0

    # an oracle generator (a fresh motion of the caption's kind) scores like Real; a frozen pose does not
    rng = np.random.default_rng(3)

    def oracle(prompts, seconds, n, seeds):
        out = []
        for p, s in zip(prompts, seconds):
            ms = [synthetic_motion(CAPTIONS.index(p), rng, int(round(s * 20))) for _ in range(n)]
            out.append((np.stack([m.rotations for m in ms]), np.stack([m.translation for m in ms])))
        return out

    def frozen(prompts, seconds, n, seeds):
        frames = [int(round(s * 20)) for s in seconds]
        return [(np.tile(np.array([1, 0, 0, 0], np.float32), (n, f, 22, 1)), np.zeros((n, f, 3), np.float32))
                for f in frames]

    good = evaluation.evaluate_generator("oracle", ev, oracle, test, 2, mm_captions=5, mm_generations=4,
                                         mm_pairs=3, texts=texts)
    bad = evaluation.evaluate_generator("frozen", ev, frozen, test, 2, mm_captions=5, mm_generations=4,
                                        mm_pairs=3, texts=texts)
    assert good["summary"]["top3"][0] >= 0.8 and bad["summary"]["top1"][0] <= 0.2
    assert good["summary"]["fid"][0] < bad["summary"]["fid"][0]
    assert good["summary"]["multimodality"][0] > 0 and bad["summary"]["multimodality"][0] < 1e-4
    table = evaluation.markdown_table([real, good, bad])
    assert table.count("\n") == 4 and "| oracle |" in table


def test_evaluate_cli_writes_table_and_json(trained, corpus_dir, tmp_path, capsys):
    from server import evaluate

    out = tmp_path / "eval"
    rc = evaluate.main(["--evaluator", str(trained / "evaluator"), "--corpus", str(corpus_dir), "--repeats", "2",
                        "--r-batch", "8", "--degrade", "--device", "cpu", "--out", str(out),
                        "--text-cache", str(corpus_dir / "text_cache.safetensors")])
    assert rc == 0
    result = json.loads((out / "metrics.json").read_text())
    assert [r["name"] for r in result["rows"]][0] == "Real" and len(result["rows"]) == 4
    assert "| Real |" in (out / "metrics.md").read_text()


def test_evaluate_cli_scores_a_generator_checkpoint(trained, corpus_dir, tiny_checkpoint, tmp_path):
    """End to end: Real row plus a row for a real (tiny) generator checkpoint, MultiModality, hard pools and the
    held-out wording rows included."""
    from server import evaluate

    out = tmp_path / "eval"
    rc = evaluate.main(["--checkpoint", str(tiny_checkpoint), "--evaluator", str(trained / "evaluator"),
                        "--corpus", str(corpus_dir), "--repeats", "2", "--r-batch", "8", "--mm-captions", "3",
                        "--mm-generations", "4", "--device", "cpu", "--out", str(out), "--pool-size", "8", "--heldout",
                        "--text-cache", str(corpus_dir / "text_cache.safetensors")])
    assert rc == 0
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    name = str(tiny_checkpoint)
    assert [r["name"] for r in rows] == ["Real", "Real (held-out wording)", name, f"{name} (held-out wording)"]
    gen = rows[2]["summary"]
    assert set(gen) == set(evaluation.METRICS) and all(np.isfinite(v[0]) for v in gen.values())
    assert gen["fid"][0] > 0 and len(rows[2]["metrics"]["top1"]) == 2
    assert rows[2]["settings"]["steps"] == 4 and "multimodality" not in rows[3]["summary"]
    assert "Hard-pool Top-1" in (out / "metrics.md").read_text()


def test_hard_pools_and_heldout_wording(trained, corpus_dir, text_cache):
    """Pools hold clips of one family, as varied as it allows; same-key clips do not compete; held-out captions are
    new wording of the same clips."""
    test = evaluation.load_test_set(Corpus(corpus_dir), r_batch=8, pool_size=8)
    assert len(test.families) == len(test) and len(test.keys) == len(test) and len(test.heldout) == len(test)
    assert test.pool_families() and all(n >= 8 for n in test.pool_families().values())
    assert all(set(h).isdisjoint(c) for h, c in zip(test.heldout, test.captions))
    pools = evaluation.hard_pools(test.families, test.keys, np.random.default_rng(0), 8)
    assert pools and all(len(p) == 8 and len(set(test.families[p])) == 1 for p in pools)
    for p in pools:  # round-robin over keys: a pool repeats a key only when its family has fewer than 8 keys
        fam = test.families[p[0]]
        assert len(set(test.keys[p])) == min(8, len(set(test.keys[test.families == fam])))
    # a perfect embedding retrieves everything; one that only knows the family is at chance unless keys repeat
    onehot = np.eye(len(test))
    hp, used = evaluation.hard_pool_r_precision(onehot, onehot, test.families, test.keys, np.random.default_rng(0), 8)
    assert used == 8 * len(pools) and hp[0] == 1.0
    ev = TextMotionModel.load(trained / "evaluator", "cpu")
    texts = evaluation._TextEmbedder(ev, [c for caps in test.captions for c in caps], cache=text_cache)
    real = evaluation.evaluate_real(ev, test, 2, texts=texts)
    assert 0.0 <= real["summary"]["hard1"][0] <= real["summary"]["hard3"][0] <= 1.0
    with pytest.raises(ValueError, match="wording"):
        test.captions_for("other")


def test_r_precision_excludes_equally_right_answers():
    text = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    motion = np.array([[0.5, 0.0], [0.0, 0.0], [3.0, 0.0]])  # texts 0 and 1 each sit closer to the other motion
    assert metrics.r_precision(text, motion, 1)[0] == pytest.approx(1 / 3)
    same = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], bool)  # motions 0 and 1 answer texts 0 and 1 equally
    assert metrics.r_precision(text, motion, 1, exclude=same)[0] == 1.0


def test_evaluate_cli_reproduces_its_numbers(trained, corpus_dir, tiny_checkpoint, tmp_path):
    """The same command twice gives the same numbers (MultiModality included: the README's 0.145 read 0.184 on a
    fresh clone before every draw came from the command's seed); MultiModality's repeats leave the others alone."""
    from server import evaluate

    def run(out, *extra):
        rc = evaluate.main(["--checkpoint", str(tiny_checkpoint), "--evaluator", str(trained / "evaluator"),
                            "--corpus", str(corpus_dir), "--repeats", "2", "--r-batch", "8", "--mm-captions", "3",
                            "--mm-generations", "4", "--device", "cpu", "--out", str(out),
                            "--text-cache", str(corpus_dir / "text_cache.safetensors"), *extra])
        assert rc == 0
        return json.loads((out / "metrics.json").read_text())["rows"]

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert [r["metrics"] for r in a] == [r["metrics"] for r in b]
    assert len(a[1]["metrics"]["multimodality"]) == 2 and np.all(np.isfinite(a[1]["metrics"]["multimodality"]))
    c = run(tmp_path / "c", "--mm-repeats", "1")
    assert len(c[1]["metrics"]["multimodality"]) == 1
    assert {k: v for k, v in c[1]["metrics"].items() if k != "multimodality"} == \
        {k: v for k, v in a[1]["metrics"].items() if k != "multimodality"}
