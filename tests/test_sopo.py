"""SoPo / DPO / SFT losses (hand-computed values), picks -> preference items, and a two-step smoke test."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from preference_support import store_result, text_cache_file, train_tiny_text_motion
from server.align import sopo
from server.data.corpus import Corpus
from server.model.diffusion import masked_mse, masked_velocity_mse
from server.service.picks import PicksStore, export_preferences
from server.align.preference_data import PreferenceDataError, items_from_picks, usable
from server.align.preference_training import FinetuneConfig, FinetuneInputs, finetune

torch.set_num_threads(1)


def t64(*v):
    return torch.tensor(v, dtype=torch.float64)


# --- losses ------------------------------------------------------------------------------------------

def test_x0_error_is_the_training_loss_per_sample():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 7, 5, generator=g), torch.randn(3, 7, 5, generator=g)
    mask = torch.arange(7)[None] < torch.tensor([7, 4, 2])[:, None]
    per = sopo.x0_error(pred, target, mask, vel_weight=0.5)
    for i in range(3):
        one = masked_mse(pred[i:i + 1], target[i:i + 1], mask[i:i + 1]) + 0.5 * masked_velocity_mse(
            pred[i:i + 1], target[i:i + 1], mask[i:i + 1])
        assert float(per[i]) == pytest.approx(float(one), rel=1e-6)
    latents = sopo.x0_error(pred, target)  # no mask: mean over everything per sample
    assert torch.allclose(latents, (pred - target).pow(2).mean((1, 2)))


def test_sopo_loss_both_tau_branches_and_beta_w_by_hand():
    cfg = sopo.LossConfig(beta=1.0, tau=0.45, C=2.0, scale=10.0)
    err_w, ref_w = t64(0.30, 0.20), t64(0.25, 0.22)  # L(x_w) = 0.05, -0.02
    err_l, ref_l = t64(0.47, 0.40), t64(0.45, 0.41)  # L(x_l) = 0.02, -0.01
    err_l.requires_grad_(True)
    sim_min = t64(0.8, 0.3)  # beta_w = 1 * (2 - S) = 1.2, 1.7
    loser_reward = t64(0.30, 0.60)  # pair 0: 0.30 < tau -> full term; pair 1: 0.60 >= tau -> preferred only
    loss, m = sopo.preference_loss("sopo", cfg, err_w, ref_w, err_l, ref_l, loser_reward=loser_reward,
                                   sim_min=sim_min)
    # pair 0: -log sigmoid(-10 (1.2 * 0.05 - 1 * 0.02)) = -log sigmoid(-0.4) = log(1 + e^0.4)
    # pair 1: -log sigmoid(-10 * 1.7 * (-0.02))      = -log sigmoid(0.34) = log(1 + e^-0.34)
    expected = (math.log(1 + math.exp(0.4)) + math.log(1 + math.exp(-0.34))) / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-9)
    assert float(loss.detach()) == pytest.approx((0.9130152523999526 + 0.5375281114548287) / 2, rel=1e-9)
    beta_w, beta_l = sopo.sopo_weights(loser_reward, sim_min, cfg)
    assert beta_w.tolist() == pytest.approx([1.2, 1.7]) and beta_l.tolist() == [1.0, 0.0]
    loss.backward()
    assert err_l.grad[1] == 0 and err_l.grad[0] != 0  # the loser term of pair 1 is dropped
    # implicit rewards -10 * L: chosen (-0.5, 0.2), rejected (-0.2, 0.1)
    assert float(m["rewards/chosen"]) == pytest.approx(-0.15)
    assert float(m["rewards/rejected"]) == pytest.approx(-0.05)
    assert float(m["rewards/margins"]) == pytest.approx(-0.1)
    assert float(m["rewards/accuracies"]) == 0.5
    assert float(m["frac_loser_above_tau"]) == 0.5
    assert float(m["beta_w"]) == pytest.approx(1.45) and float(m["sim_min"]) == pytest.approx(0.55)


def test_loser_term_dropped_means_loser_errors_do_not_matter():
    cfg = sopo.LossConfig(scale=3.0)
    args = dict(loser_reward=t64(0.9, 0.5), sim_min=t64(0.0, 1.0))  # both >= tau
    a, _ = sopo.preference_loss("sopo", cfg, t64(0.1, 0.2), t64(0.2, 0.1), t64(5.0, -3.0), t64(0.0, 0.0), **args)
    b, _ = sopo.preference_loss("sopo", cfg, t64(0.1, 0.2), t64(0.2, 0.1), t64(0.0, 0.0), t64(9.0, 1.0), **args)
    # -log sigmoid(-3 * 2 * (-0.1)) and -log sigmoid(-3 * 1 * 0.1)
    expected = (math.log(1 + math.exp(-0.6)) + math.log(1 + math.exp(0.3))) / 2
    assert float(a) == float(b) == pytest.approx(expected, rel=1e-9)


def test_dpo_baselines_and_sft_by_hand():
    cfg = sopo.LossConfig(beta=2.0, scale=5.0)
    w, rw, l, rl = t64(0.3), t64(0.2), t64(0.4), t64(0.6)  # L_w = 0.1, L_l = -0.2
    for method in ("offline-dpo", "online-dpo"):
        loss, m = sopo.preference_loss(method, cfg, w, rw, l, rl)
        # -log sigmoid(-5 * 2 * (0.1 - (-0.2))) = log(1 + e^3)
        assert float(loss) == pytest.approx(math.log(1 + math.exp(3.0)), rel=1e-9)
        assert float(m["rewards/margins"]) == pytest.approx(-3.0) and float(m["rewards/accuracies"]) == 0.0
    loss, m = sopo.preference_loss("sft", cfg, t64(0.3, 0.5), t64(0.1, 0.1))
    assert float(loss) == pytest.approx(0.4) and "rewards/margins" not in m
    with pytest.raises(ValueError):
        sopo.preference_loss("sopo", cfg, w, rw, l, rl)  # no rewards / similarities
    with pytest.raises(ValueError):
        sopo.preference_loss("offline-dpo", cfg, w, rw)


def test_online_pair_selection_and_k_defaults():
    best, worst = sopo.select_online_pair(torch.tensor([[0.2, 0.9, 0.1, 0.5], [0.5, 0.5, 0.5, 0.5]]))
    assert best.tolist() == [1, 0] and worst.tolist() == [2, 3]  # ties: never the same sample
    assert sopo.default_k("mdm") == 4 and sopo.default_k("mld") == 2


# --- picks -> items --------------------------------------------------------------------------------------

def test_picks_db_to_preference_items(tiny_corpus, tmp_path):
    corpus = Corpus(tiny_corpus)
    train = corpus.indices("train")
    m = [corpus.motion(i).slice(0, 30) for i in train[:3]]  # one result: candidates of one length
    train_caption = corpus.clips[train[0]].captions[0].text
    db = tmp_path / "picks.db"
    with PicksStore(db) as store:
        a = store_result(store, "a person does a cartwheel", m)
        store.record_pick("k1", a, 1, [0, 2])  # chosen 1, rejected 0 and 2
        b = store_result(store, train_caption.upper() + ".", m[:2])  # none are good, prompt = a corpus caption
        store.record_pick("k2", b, None)
        c = store_result(store, "something the corpus never saw", m[:2])  # none are good, no match
        store.record_pick("k3", c, None, [1])
    records = export_preferences(db)
    items, stats = items_from_picks(records, corpus)
    assert (stats.records, stats.chosen, stats.none_good, stats.none_good_matched) == (3, 1, 2, 1)
    chosen, matched, unmatched = items
    assert chosen.source == "pick" and chosen.preferred.allclose(m[1]) and chosen.captions == ["a person does a cartwheel"]
    assert len(chosen.rejected) == 2 and chosen.rejected[0].allclose(m[0]) and chosen.rejected[1].allclose(m[2])
    assert matched.source == "none-good+corpus" and matched.preferred is None
    assert train_caption in [c.text for c in corpus.clips[matched.corpus_index].captions]
    assert len(matched.rejected) == 2
    assert unmatched.source == "none-good" and not unmatched.has_preferred and len(unmatched.rejected) == 1
    assert usable(items, "sopo") == usable(items, "sft") == usable(items, "offline-dpo") == [0, 1]
    assert usable(items, "online-dpo") == [0, 1, 2]  # a prompt is enough
    items_no_corpus, _ = items_from_picks(records, None)
    assert usable(items_no_corpus, "sopo") == [0]


# --- fine-tuning: smoke test and refusals ------------------------------------------------------------------

@pytest.fixture(scope="module")
def reward_dir(tiny_corpus, tiny_cache_dir, tiny_checkpoint, tmp_path_factory):
    return train_tiny_text_motion(tiny_corpus, tiny_cache_dir, tmp_path_factory.mktemp("reward") / "reward", "reward")


def _inputs(tiny_checkpoint, tiny_cache_dir, reward_dir, **kw):
    kw.setdefault("corpus", None)
    return FinetuneInputs(base=tiny_checkpoint, reward=reward_dir, text_cache=text_cache_file(tiny_cache_dir),
                          feature_cache_dir=tiny_cache_dir, **kw)


@pytest.mark.parametrize("method,family", [("sopo", "mld"), ("offline-dpo", "mld"), ("online-dpo", "mld"),
                                           ("sft", "mld"), ("sopo", "mdm")])
def test_two_steps_change_every_trainable_parameter_and_not_the_reference(method, family, request, tiny_corpus,
                                                                         tiny_cache_dir, reward_dir, tmp_path):
    tiny_checkpoint = request.getfixturevalue("tiny_checkpoint" if family == "mld" else "tiny_mdm_checkpoint")
    cfg = FinetuneConfig(method=method, steps=2, batch_size=4, lr=1e-4, warmup=0, tau=1.01 if method == "sopo" else 0.45,
                         sample_steps=2, device="cpu", progress=False, log_every=1)
    base = load_file(str(tiny_checkpoint / "model.safetensors"))
    res = finetune(cfg, _inputs(tiny_checkpoint, tiny_cache_dir, reward_dir, corpus=tiny_corpus), tmp_path / "out",
                   log=None, keep_models=True)
    first = res.history[0]
    assert res.summary["k"] == (4 if family == "mdm" else 2)
    if method != "sft":  # at step 1 the policy is the reference: L = 0 for both motions
        assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
        assert abs(first["rewards/margins"]) < 1e-6
    if method == "sopo":  # tau above every reward: the full pair term everywhere
        assert first["frac_loser_above_tau"] == 0.0 and 1.0 <= first["beta_w"] <= 2.0
    tuned = load_file(str(tmp_path / "out" / "model.safetensors"))
    trainable = {f"denoiser.{n}" for n, p in res.policy.denoiser.named_parameters() if p.requires_grad}
    assert trainable and all(".null_" not in n for n in trainable)  # no text dropout: null-text embeddings frozen
    for name, before in base.items():
        changed = not torch.equal(before, tuned[name])
        assert changed == (name in trainable), f"{name}: changed={changed}"
    for name, p in res.reference.state_dict().items():  # the reference is the base, untouched
        assert torch.equal(p.cpu(), base[name]), name


def test_refusals(tiny_checkpoint, tiny_cache_dir, reward_dir, tmp_path, tiny_corpus):
    cfg = FinetuneConfig(method="sopo", steps=1, batch_size=2, device="cpu", progress=False)

    def run(**kw):
        return finetune(cfg, _inputs(tiny_checkpoint, tiny_cache_dir, reward_dir, **kw), tmp_path / "o", log=None)

    with pytest.raises(PreferenceDataError, match="no picks database"):
        run(picks=tmp_path / "missing.db")
    PicksStore(tmp_path / "empty.db").close()
    with pytest.raises(PreferenceDataError, match="holds no picks"):
        run(picks=tmp_path / "empty.db")
    corpus = Corpus(tiny_corpus)
    motions = [corpus.motion(i).slice(0, 30) for i in corpus.indices("train")[:2]]
    with PicksStore(tmp_path / "mdm.db") as store:
        store.record_pick("k", store_result(store, "walk", motions, model_id="big-mdm", family="mdm"), 0)
    with pytest.raises(PreferenceDataError, match="another model family"):
        run(picks=tmp_path / "mdm.db")
    with PicksStore(tmp_path / "unknown.db") as store:
        store.record_pick("k", store_result(store, "walk", motions, model_id="who-knows", family=None), 0)
    with pytest.raises(PreferenceDataError, match="cannot tell which model family"):
        run(picks=tmp_path / "unknown.db")
    with PicksStore(tmp_path / "none.db") as store:
        for k in range(3):
            store.record_pick(f"k{k}", store_result(store, f"nothing like it {k}", motions), None)
    with pytest.raises(PreferenceDataError, match="none are good"):
        run(picks=tmp_path / "none.db")
    assert not (tmp_path / "o").exists()


# --- "none are good" picks: every method trains, and the summary says how they were used ----------------

TYPED = "a person sneaks forward on tiptoes, looking around"  # an artist's prompt that no corpus caption has


def _none_good_db(path, corpus: Corpus):
    """3 chosen picks, a none-good then a chosen pick on a typed prompt, a none-good on a corpus caption."""
    train = corpus.indices("train")
    m = [corpus.motion(i).slice(0, 30) for i in train[:3]]
    captions = list(dict.fromkeys(corpus.clips[i].captions[0].text for i in train))  # distinct, in order
    assert len(captions) >= 4
    caption = captions[3]
    with PicksStore(path) as store:
        for k, text in enumerate(captions[:3]):
            store.record_pick(f"c{k}", store_result(store, text, m), 0)
        store.record_pick("t0", store_result(store, TYPED, m), None)
        store.record_pick("t1", store_result(store, TYPED, m, model_id="tiny-mld-2"), 2)
        store.record_pick("n0", store_result(store, caption, m), None)
    return path


@pytest.mark.parametrize("method", ["sopo", "offline-dpo", "online-dpo", "sft"])
@pytest.mark.parametrize("with_corpus", [False, True])
def test_none_good_picks_train_with_every_method(method, with_corpus, tiny_checkpoint, tiny_cache_dir, reward_dir,
                                                 tiny_corpus, tmp_path):
    db = _none_good_db(tmp_path / "picks.db", Corpus(tiny_corpus))
    cfg = FinetuneConfig(method=method, steps=1, batch_size=16, sample_steps=2, device="cpu", progress=False)
    lines = []
    res = finetune(cfg, _inputs(tiny_checkpoint, tiny_cache_dir, reward_dir, picks=db, corpus_clips=False,
                                corpus=tiny_corpus if with_corpus else None, skip_family_check=True),
                   tmp_path / "out", log=lines.append)
    ng = res.summary["none_good"]
    assert ng["picks"] == 2 and ng["with_corpus_motion"] == (1 if with_corpus else 0)
    # the typed none-good pick has no preferred motion: online DPO uses its prompt, offline DPO its rejected
    # candidates as losers of the typed prompt's chosen pick; SoPo and SFT cannot use it
    assert ng["as_prompt"] == (1 + (not with_corpus) if method == "online-dpo" else 0)
    assert ng["as_losers"] == (1 if method == "offline-dpo" else 0)
    assert ng["unused"] == 2 - ng["with_corpus_motion"] - ng["as_prompt"] - ng["as_losers"]
    pairs = 6 if method == "online-dpo" else 4 + with_corpus
    assert res.summary["batch_size"] == pairs and res.summary["items"]["items"] == pairs
    assert any(f"batch {pairs}" in line and "fewer than --batch-size 16" in line for line in lines)
    assert sum(line.startswith(f"none-good picks for {method}: 2 (") for line in lines) == 1
    assert res.history[-1]["loss"] == res.history[-1]["loss"]  # finite, not NaN
