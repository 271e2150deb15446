"""shared.body_model: the numpy-only reader the add-on uses (never unpickles), and the server's .pkl side."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server.data import body_model as server_body
from shared import body_model as B
from shared.skeleton import PARENTS, REST_JOINTS
from synthetic_body import expected_joints, smplh_parents, synthetic_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.npz"
    model = synthetic_model(seed=7)
    np.savez(path, **model)
    return path, model


def test_imports_with_numpy_alone():
    """Blender's Python has numpy but no torch, scipy or smplx."""
    code = ("import sys; import shared.body_model; "
            "bad = [m for m in ('torch', 'scipy', 'smplx') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_zero_pose_body_is_the_shaped_template(model_file):
    path, model = model_file
    betas = np.array([1.0, -0.5, 0.0, 2.0])
    t = B.template(path, betas)
    b = np.r_[betas, np.zeros(6)]
    np.testing.assert_allclose(t["vertices"], model["v_template"] + model["shapedirs"] @ b, atol=1e-12)
    np.testing.assert_allclose(t["joints"], expected_joints(model, betas), atol=1e-12)
    np.testing.assert_allclose(B.rest_joints(path, betas), t["joints"], atol=0)
    np.testing.assert_array_equal(t["betas"], b)
    np.testing.assert_array_equal(t["parents"], PARENTS)
    assert t["source"] == "SMPL_NEUTRAL.npz"
    np.testing.assert_allclose(B.rest_joints(path), REST_JOINTS, atol=1e-9)  # zero betas: the template


def test_server_functions_are_the_shared_ones(model_file):
    path, _ = model_file
    betas = [0.3, 0.2, -1.0]
    shared_t, server_t = B.template(path, betas), server_body.smpl_template(path, betas)
    assert shared_t.keys() == server_t.keys()
    for key in ("vertices", "faces", "weights", "weights22", "joints"):
        np.testing.assert_array_equal(shared_t[key], server_t[key])
    np.testing.assert_array_equal(B.rest_joints(path, betas), server_body.rest_joints_from_smpl(path, betas))


def test_weights_fold_to_22_bones_for_smplh():
    model = synthetic_model(num_joints=52, num_betas=16, seed=2)
    rng = np.random.default_rng(0)
    w = rng.uniform(size=model["weights"].shape)
    w /= w.sum(1, keepdims=True)
    w24, w22 = B.fold_weights(w, smplh_parents())
    np.testing.assert_allclose(w24[:, :22], w[:, :22])
    np.testing.assert_allclose(w22[:, 20], w[:, 20] + w[:, 22:37].sum(1))
    np.testing.assert_allclose(w22[:, 21], w[:, 21] + w[:, 37:52].sum(1))
    np.testing.assert_allclose(w22[:, :20], w[:, :20])
    np.testing.assert_allclose(w22.sum(1), 1.0)


def test_pickles_are_refused_without_a_reader_and_converted_by_the_server(tmp_path, model_file):
    _, model = model_file
    pkl = tmp_path / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(model, f)
    with pytest.raises(B.BodyModelError, match="Python pickle.*--to-npz"):
        B.template(pkl)
    with pytest.raises(B.BodyModelError, match="only a pickled neutral model.*--to-npz"):
        B.template(tmp_path)  # a folder holding only the .pkl
    expected = server_body.smpl_template(pkl, [0.5])  # the server may unpickle
    out = tmp_path / "converted" / "SMPL_NEUTRAL.npz"
    assert server_body.main(["--to-npz", str(pkl), str(out)]) == 0
    got = B.template(tmp_path / "converted", [0.5])
    for key in ("vertices", "faces", "weights22", "joints"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-12)
    assert B.find_model_file(tmp_path, pickle_ok=True) == pkl  # the server's folder lookup still finds it


def test_object_arrays_are_never_unpickled(tmp_path, model_file):
    _, model = model_file
    bad = dict(model, J_regressor=np.array([model["J_regressor"], None], dtype=object))
    np.savez(tmp_path / "obj.npz", **bad)
    with pytest.raises(B.BodyModelError, match="'J_regressor' is unreadable"):
        B.template(tmp_path / "obj.npz")


@pytest.mark.parametrize("text, expected", [
    ("", None), ("  ", None), ("1.5, -0.3", [1.5, -0.3]), ("1 2 3", [1.0, 2.0, 3.0]), ("[0.1, 0.2,]", [0.1, 0.2]),
])
def test_parse_betas(text, expected):
    got = B.parse_betas(text)
    assert got is None if expected is None else np.allclose(got, expected)


@pytest.mark.parametrize("text", ["tall", "1, nan", "1,,x"])
def test_bad_betas(text):
    with pytest.raises(B.BodyModelError, match="betas"):
        B.parse_betas(text)


def test_clear_errors(tmp_path, model_file):
    _, model = model_file
    with pytest.raises(B.BodyModelNotFound, match="not found"):
        B.template(tmp_path / "missing.npz")
    with pytest.raises(B.BodyModelNotFound, match="no male SMPL model file"):
        B.template(tmp_path, gender="male")
    with pytest.raises(B.BodyModelError, match="gender"):
        B.template(tmp_path, gender="robot")
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(B.BodyModelError, match="not a readable .npz"):
        B.template(tmp_path / "bad.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(B.BodyModelError, match="plain .npy"):
        B.template(tmp_path / "plain.npy")
    np.savez(tmp_path / "nan.npz", **dict(model, v_template=np.full_like(model["v_template"], np.nan)))
    with pytest.raises(B.BodyModelError, match="NaN"):
        B.template(tmp_path / "nan.npz")
    parents = model["kintree_table"].copy()
    parents[0, 5] = 1
    np.savez(tmp_path / "tree.npz", **dict(model, kintree_table=parents))
    with pytest.raises(B.BodyModelError, match="not SMPL's"):
        B.template(tmp_path / "tree.npz")
    np.savez(tmp_path / "ok.npz", **model)
    with pytest.raises(B.BodyModelError, match="betas has NaN"):
        B.template(tmp_path / "ok.npz", [np.nan])
