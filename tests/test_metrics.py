"""Metric functions against cases with known answers (server/eval/metrics.py)."""
import numpy as np
import pytest
from scipy import linalg
from scipy.special import gamma

from server.eval import metrics


def test_identical_sets_give_fid_zero():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(metrics.fid(x, x)) < 1e-6


def test_fid_equals_direct_scipy_computation_on_gaussians():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 8))
    b = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    direct = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert metrics.fid(a, b) == pytest.approx(direct, rel=1e-8)
    assert metrics.fid(a, b) > 0.1


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, 1.0])
    v1, v2 = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    expected = 4.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def test_perfectly_matched_embeddings_give_r_precision_one():
    x = np.random.default_rng(2).normal(size=(32, 64))
    assert np.allclose(metrics.r_precision(x, x), [1.0, 1.0, 1.0])
    ids = np.arange(100)
    y = np.random.default_rng(3).normal(size=(100, 64))
    score, used = metrics.r_precision_batched(y, y, ids, np.random.default_rng(0))
    assert np.allclose(score, 1.0) and used == 96


def test_r_precision_of_unrelated_embeddings_is_near_chance_and_ties_do_not_count():
    rng = np.random.default_rng(4)
    t, m = rng.normal(size=(3200, 8)), rng.normal(size=(3200, 8))
    score, _ = metrics.r_precision_batched(t, m, np.arange(3200), rng)
    assert np.allclose(score, np.array([1, 2, 3]) / 32, atol=0.02)
    const = np.ones((32, 4))
    assert np.allclose(metrics.r_precision(const, const), 0.0)


def test_r_precision_known_ranks():
    # text 0 is nearest to motion 1 then motion 0: rank 2; text 1 hits; text 2 is farthest from its own.
    motions = np.array([[0.0], [1.0], [10.0]])
    texts = np.array([[0.9], [1.0], [0.2]])
    assert np.allclose(metrics.r_precision(texts, motions), [1 / 3, 2 / 3, 1.0])


def test_distinct_caption_batches():
    rng = np.random.default_rng(5)
    ids = np.concatenate([np.zeros(200, int), rng.integers(1, 60, 300)])  # one caption dominates ("walk")
    batches = metrics.distinct_caption_batches(ids, 32, rng)
    assert batches and all(len(b) == 32 for b in batches)
    for b in batches:
        assert len(set(ids[b].tolist())) == 32
    flat = np.concatenate(batches)
    assert len(set(flat.tolist())) == len(flat)  # no item used twice
    assert len(metrics.distinct_caption_batches(np.zeros(100, int), 32, rng)) == 0
    with pytest.raises(ValueError):
        metrics.r_precision_batched(np.ones((40, 2)), np.ones((40, 2)), np.arange(40) % 5, rng)


def test_caption_ids_normalise_case_and_punctuation():
    ids = metrics.caption_ids(["Walk.", "walk", " walk ", "run", "a person walks"])
    assert ids[0] == ids[1] == ids[2] and len(set(ids.tolist())) == 3


def test_diversity_and_multimodality_of_constant_sets_are_zero():
    rng = np.random.default_rng(6)
    assert metrics.diversity(np.ones((500, 8)), rng) == 0.0
    assert metrics.multimodality(np.ones((100, 30, 8)), rng) == 0.0
    x = rng.normal(size=(2000, 8))
    # x - y ~ N(0, 2 I_8): E|x - y| = sqrt(2) * E[chi_8] = sqrt(2) * sqrt(2) * Gamma(4.5) / Gamma(4)
    expected = 2.0 * gamma(4.5) / gamma(4.0)
    assert metrics.diversity(x, rng, n_pairs=300) == pytest.approx(expected, rel=0.1)


def test_matching_score_and_interval():
    t = np.zeros((3, 2))
    m = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 2.0]])
    assert metrics.matching_score(t, m) == pytest.approx((5 + 1 + 2) / 3)
    mean, half = metrics.mean_and_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(1.96 * np.std([1, 2, 3, 4]) / 2)


def test_caption_groups_join_clips_that_share_any_caption():
    caps = [["a person walks", "someone walks"], ["Someone walks."], ["a person runs"], ["a person jogs", "a person runs"],
            ["a person waves"]]
    g = metrics.caption_groups(caps)
    assert g[0] == g[1] and g[2] == g[3] and len(set(g.tolist())) == 3
