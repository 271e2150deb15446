"""server.data.body_model (on shared.body_model): rest joints and template mesh from a synthetic model
file in SMPL's .npz layout (tests/synthetic_body.py), cross-checked against smplx.SMPL."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from server.data.body_model import BodyModelError, BodyModelNotFound, rest_joints_from_smpl, smpl_template
from shared.skeleton import PARENTS, REST_JOINTS
from synthetic_body import expected_joints, synthetic_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.npz"
    model = synthetic_model()
    np.savez(path, **model)
    return path, model


def test_template_rest_joints_are_the_skeletons(model_file):
    path, _ = model_file
    joints = rest_joints_from_smpl(path)
    assert joints.shape == (22, 3) and joints.dtype == np.float64
    np.testing.assert_allclose(joints, REST_JOINTS, atol=1e-9)


def test_betas_move_joints_as_shapedirs_say(model_file):
    path, model = model_file
    betas = np.array([1.5, -2.0, 0.7, 0.0, 0.3])
    joints = rest_joints_from_smpl(path, betas=betas)
    np.testing.assert_allclose(joints, expected_joints(model, betas), atol=1e-9)
    assert np.abs(joints - REST_JOINTS).max() > 0.005


def test_agrees_with_smplx_smpl_forward(model_file):
    """Cross-check against smplx.SMPL's own forward pass at zero pose."""
    import torch
    import smplx
    from smplx.utils import Struct

    path, model = model_file
    betas = np.array([0.5, -1.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = smplx.SMPL(model_path=str(path), data_struct=Struct(**dict(np.load(path))), num_betas=10,
                          dtype=torch.float64, use_hands=False, use_feet_keypoints=False,
                          vertex_ids={k: 0 for k in ("nose", "reye", "leye", "rear", "lear")})
        out = body(betas=torch.tensor(betas)[None])
    np.testing.assert_allclose(rest_joints_from_smpl(path, betas=betas), out.joints[0, :22].detach().numpy(), atol=1e-6)
    template = smpl_template(path, betas=betas)
    np.testing.assert_allclose(template["vertices"], out.vertices[0].detach().numpy(), atol=1e-6)


def test_folder_lookup_by_gender(tmp_path):
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **synthetic_model(seed=0))
    male = synthetic_model(seed=1)
    male["v_template"] = male["v_template"] * 1.1
    np.savez(tmp_path / "SMPL_MALE.npz", **male)
    np.testing.assert_allclose(rest_joints_from_smpl(tmp_path), REST_JOINTS, atol=1e-9)
    np.testing.assert_allclose(rest_joints_from_smpl(tmp_path, gender="male"), REST_JOINTS * 1.1, atol=1e-9)
    with pytest.raises(BodyModelNotFound, match="female"):
        rest_joints_from_smpl(tmp_path, gender="female")


def test_template_mesh(model_file):
    path, model = model_file
    t = smpl_template(path)
    V = model["v_template"].shape[0]
    assert t["vertices"].shape == (V, 3) and t["faces"].shape == (96, 3) and t["faces"].dtype == np.int64
    np.testing.assert_allclose(t["vertices"], model["v_template"], atol=1e-12)
    np.testing.assert_array_equal(t["faces"], model["f"].astype(np.int64))
    np.testing.assert_allclose(t["weights"], model["weights"])
    assert t["weights22"].shape == (V, 22)
    np.testing.assert_allclose(t["weights22"].sum(1), 1.0)
    np.testing.assert_allclose(t["weights22"][:, 20], model["weights"][:, 20] + model["weights"][:, 22])
    np.testing.assert_allclose(t["joints"], REST_JOINTS, atol=1e-9)
    np.testing.assert_array_equal(t["parents"], PARENTS)


def test_smplh_layout_with_16_betas(tmp_path):
    """AMASS's SMPL-H model.npz: 52 joints and 16 betas; body joints are SMPL's first 22."""
    model = synthetic_model(num_joints=52, num_betas=16, seed=3)
    (tmp_path / "male").mkdir()
    np.savez(tmp_path / "male" / "model.npz", **model, bs_style="lbs")  # extra keys are ignored
    betas = np.linspace(-1, 1, 16)
    np.testing.assert_allclose(rest_joints_from_smpl(tmp_path, betas=betas, gender="male"),
                               expected_joints(model, betas), atol=1e-9)
    t = smpl_template(tmp_path / "male" / "model.npz")
    assert t["weights"].shape == (model["v_template"].shape[0], 24)
    np.testing.assert_allclose(t["weights"][:, 22], model["weights"][:, 22:37].sum(1))  # left fingers
    np.testing.assert_allclose(t["weights"][:, 23], model["weights"][:, 37:52].sum(1))  # right fingers
    np.testing.assert_allclose(t["weights22"].sum(1), 1.0)


def test_extra_betas_warn(model_file):
    path, model = model_file
    betas = np.arange(1, 17) * 0.1
    with pytest.warns(UserWarning, match="10 shape components"):
        joints = rest_joints_from_smpl(path, betas=betas)
    np.testing.assert_allclose(joints, expected_joints(model, betas[:10]), atol=1e-9)


def test_clear_errors(tmp_path, model_file):
    with pytest.raises(FileNotFoundError, match="not found"):
        rest_joints_from_smpl(tmp_path / "missing.npz")
    corrupt = tmp_path / "SMPL_NEUTRAL.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(BodyModelError, match="not a readable .npz"):
        rest_joints_from_smpl(corrupt)
    model = dict(model_file[1])
    del model["J_regressor"]
    np.savez(tmp_path / "no_regressor.npz", **model)
    with pytest.raises(BodyModelError, match="missing 'J_regressor'"):
        rest_joints_from_smpl(tmp_path / "no_regressor.npz")
    model = dict(model_file[1], weights=model_file[1]["weights"][:, :20])
    np.savez(tmp_path / "bad_weights.npz", **model)
    with pytest.raises(BodyModelError, match="weights must be"):
        rest_joints_from_smpl(tmp_path / "bad_weights.npz")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(BodyModelError, match="not a readable SMPL .pkl"):
        rest_joints_from_smpl(tmp_path / "junk.pkl")
