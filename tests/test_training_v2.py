"""Model v2 training: the foot-contact loss, warm starts from a checkpoint (keeping its VAE and statistics)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import train_tiny
from server.data.corpus import Corpus
from server.model.config import ConfigError, preset
from server.model.contact_loss import FootContactLoss, foot_contact_loss, foot_velocities
from server.model.features import FeatureLayout, motion_to_features
from server.model.training import stage_names
from shared import rotations as rot
from shared.motion import Motion
from shared.skeleton import FOOT_JOINTS, NUM_JOINTS

LAYOUT = FeatureLayout()


def _standing(frames: int, speed: float = 0.0, knee: float = 0.3) -> Motion:
    """A still pose (knees bent, turned 30 degrees) whose pelvis moves along +x at `speed` m/s."""
    q = np.tile(rot.quat_identity(), (frames, NUM_JOINTS, 1))
    q[:, 0] = rot.axis_angle_to_quat(np.array([0.0, np.pi / 6, 0.0]))
    q[:, 4] = q[:, 5] = rot.axis_angle_to_quat(np.array([knee, 0.0, 0.0]))
    p = np.zeros((frames, 3))
    p[:, 1] = 0.9
    p[:, 0] = speed * np.arange(frames) / 20.0
    return Motion(q, p, 20.0)


def _features(motion: Motion) -> torch.Tensor:
    return torch.from_numpy(motion_to_features(motion, LAYOUT))[None]


def test_foot_velocities_match_the_redundant_velocity_channels(tiny_corpus):
    """Read from the root channels and leg rotations only, they equal the features' own foot velocities."""
    corpus = Corpus(tiny_corpus)
    for i in range(0, len(corpus), 4):
        f = motion_to_features(corpus.motion(i), LAYOUT)
        v = foot_velocities(torch.from_numpy(f)[None].double(), LAYOUT)[0].numpy()
        ref = f[:, LAYOUT.velocities].reshape(len(f), NUM_JOINTS, 3)[:, list(FOOT_JOINTS)]
        assert np.abs(ref[1:]).max() > 1e-3  # the clip moves its feet
        np.testing.assert_allclose(v[1:], ref[1:], atol=1e-6)
        assert (v[0] == 0).all()


def test_foot_contact_loss_zero_when_still_positive_when_sliding():
    still, sliding = _features(_standing(30)), _features(_standing(30, speed=1.0))
    contacts = still[..., LAYOUT.contacts]  # ground truth: both feet planted all the time
    assert (contacts == 1).all()
    assert foot_contact_loss(still, contacts, None, LAYOUT, 20.0).item() == pytest.approx(0.0, abs=1e-10)
    # the same still pose carried along at 1 m/s: every contact sample slides at 1 m/s
    assert foot_contact_loss(sliding, contacts, None, LAYOUT, 20.0).item() == pytest.approx(1.0, rel=1e-4)
    # frames outside the mask or out of contact do not count
    mask = torch.zeros(1, 30, dtype=torch.bool)
    mask[:, :10] = True
    assert foot_contact_loss(sliding, contacts, mask, LAYOUT, 20.0).item() == pytest.approx(1.0, rel=1e-4)
    assert foot_contact_loss(sliding, torch.zeros_like(contacts), None, LAYOUT, 20.0).item() == 0.0


def test_foot_target_real_asks_for_the_real_foot_motion(tiny_corpus):
    """With target "real" a prediction equal to a moving real clip costs nothing; sliding off it costs."""
    walk = torch.from_numpy(motion_to_features(Corpus(tiny_corpus).motion(0), LAYOUT))[None]
    contacts = torch.ones_like(walk[..., LAYOUT.contacts])
    assert foot_contact_loss(walk, contacts, None, LAYOUT, 20.0).item() > 0.01  # "still": its feet move
    assert foot_contact_loss(walk, contacts, None, LAYOUT, 20.0, target=walk).item() == pytest.approx(0.0, abs=1e-9)
    sliding = walk.clone()
    sliding[:, 1:, LAYOUT.root_vel.start] += 0.05  # the root drifts sideways at 1 m/s, the legs as before
    assert foot_contact_loss(sliding, contacts, None, LAYOUT, 20.0, target=walk).item() == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="foot target"):
        FootContactLoss(LAYOUT, np.zeros(LAYOUT.dim), np.ones(LAYOUT.dim), 20.0, foot_target="zero")


def test_still_plus_match_does_not_reward_freezing(tiny_corpus):
    """"still" alone prefers a body that stops moving; "still+match" makes that cost the real foot speed."""
    from server.model.contact_loss import foot_velocity_match

    walk = torch.from_numpy(motion_to_features(Corpus(tiny_corpus).motion(0), LAYOUT))[None]
    frozen = walk.clone()
    frozen[:, :, LAYOUT.root_vel] = 0.0
    frozen[:, :, LAYOUT.root_yaw_vel] = 0.0
    frozen[:, :, LAYOUT.rot6d] = walk[:, :1, LAYOUT.rot6d]  # the first pose held
    frozen[:, :, LAYOUT.root_height] = walk[:, :1, LAYOUT.root_height]
    assert foot_velocity_match(walk, walk, None, LAYOUT, 20.0).item() == pytest.approx(0.0, abs=1e-9)
    stats = (np.zeros(LAYOUT.dim, np.float32), np.ones(LAYOUT.dim, np.float32))
    still = FootContactLoss(LAYOUT, *stats, 20.0, foot_target="still")
    match = FootContactLoss(LAYOUT, *stats, 20.0, foot_target="still+match")
    assert still(frozen, walk, None).item() < 1e-9 < still(walk, walk, None).item()
    assert match(frozen, walk, None).item() > match(walk, walk, None).item()


def test_foot_contact_loss_on_normalised_features_and_its_gradient_reaches_the_root():
    still, sliding = _features(_standing(30)), _features(_standing(30, speed=0.5))
    mean = torch.randn(LAYOUT.dim).numpy() * 0.1
    mean[LAYOUT.contacts] = 0.0
    std = np.full(LAYOUT.dim, 0.5, np.float32)
    std[LAYOUT.contacts] = 1.0
    loss = FootContactLoss(LAYOUT, mean, std, 20.0)
    norm = lambda f: (f - torch.from_numpy(mean)) / torch.from_numpy(std)  # noqa: E731
    assert loss(norm(still), norm(still), None).item() == pytest.approx(0.0, abs=1e-8)
    pred = norm(sliding).requires_grad_(True)
    value = loss(pred, norm(still), None)
    assert value.item() == pytest.approx(0.25, rel=1e-3)
    value.backward()
    assert pred.grad[..., LAYOUT.root_vel].abs().sum() > 0  # it pulls the root velocity towards the legs
    assert pred.grad[..., LAYOUT.velocities].abs().sum() == 0  # not the redundant channels the inverse ignores


def test_stage_names():
    cfg = preset("tiny-mld")
    assert stage_names(cfg) == ["vae", "denoiser"]
    cfg.train.stages = "denoiser"
    with pytest.raises(ConfigError, match="init_from"):
        stage_names(cfg)
    cfg.train.init_from = "somewhere"
    assert stage_names(cfg) == ["denoiser"]
    cfg.train.stages, cfg.train.vae_steps = "", 0
    assert stage_names(cfg) == ["denoiser"]
    cfg.train.stages, cfg.train.vae_steps = "decoder,denoiser", 5
    assert stage_names(cfg) == ["decoder", "denoiser"]
    cfg.train.stages = "vae,decoder"
    with pytest.raises(ConfigError, match="not both"):
        stage_names(cfg)
    cfg.train.stages = "vea"
    with pytest.raises(ConfigError, match="not a stage"):
        stage_names(cfg)
    assert stage_names(preset("tiny-mdm")) == ["denoiser"]


def test_shape_differences_allow_sampling_fields_and_more_text_tokens():
    from server.model.config import shape_differences

    a, b = preset("mld").model, preset("mld").model
    b.default_guidance, b.default_steps, b.dropout, b.text_tokens = 5.0, 8, 0.0, 32
    assert shape_differences(a, b) == []
    b.text_tokens, b.latent_tokens = 0, 4
    diff = shape_differences(a, b)
    assert len(diff) == 2 and diff[0].startswith("latent_tokens") and "text_tokens" in diff[1]


def _differs(a: dict, b: dict, prefix: str) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_warm_start_keeps_the_vae_and_the_statistics(tiny_checkpoint, tiny_corpus, tiny_cache_dir, tmp_path):
    ckpt = train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "warm",
                      **{"train.init_from": str(tiny_checkpoint), "train.stages": "denoiser", "train.steps": 4,
                         "train.latent_foot_weight": 1.0, "train.log_every": 2})
    init_cfg, cfg = (json.loads((c / "config.json").read_text()) for c in (tiny_checkpoint, ckpt))
    assert cfg["features"]["mean"] == init_cfg["features"]["mean"] and cfg["features"]["std"] == init_cfg["features"]["std"]
    assert cfg["latent_scale"] == init_cfg["latent_scale"]
    assert cfg["extra"]["init_from"] == str(tiny_checkpoint) and cfg["extra"]["stages"] == ["denoiser"]
    a, b = load_file(str(tiny_checkpoint / "model.safetensors")), load_file(str(ckpt / "model.safetensors"))
    assert not _differs(a, b, "vae.")  # frozen, even with the foot loss through its decoder
    assert _differs(a, b, "denoiser.")
    log = json.loads((ckpt.parent / "log.json").read_text())
    assert {h["stage"] for h in log["history"]} == {"denoiser"}
    assert all("foot" in h and h["foot"] >= 0 for h in log["history"])


def test_decoder_stage_trains_the_decoder_only(tiny_checkpoint, tiny_corpus, tiny_cache_dir, tmp_path):
    """Encoder, denoiser and latent scale stay the init's: the init's denoiser still reads the latents."""
    ckpt = train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "dec",
                      **{"train.init_from": str(tiny_checkpoint), "train.stages": "decoder", "train.vae_steps": 3,
                         "train.foot_weight": 1.0, "train.log_every": 1})
    a, b = load_file(str(tiny_checkpoint / "model.safetensors")), load_file(str(ckpt / "model.safetensors"))
    encoder = ("vae.enc_input.", "vae.queries", "vae.encoder.", "vae.to_dist.")
    assert not any(not torch.equal(a[k], b[k]) for k in a if k.startswith(encoder))
    assert not _differs(a, b, "denoiser.")
    assert _differs(a, b, "vae.decoder.") and _differs(a, b, "vae.dec_output.")
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["latent_scale"] == json.loads((tiny_checkpoint / "config.json").read_text())["latent_scale"]
    log = json.loads((ckpt.parent / "log.json").read_text())
    assert [h["stage"] for h in log["history"]] == ["decoder"] * 3 and all("foot" in h for h in log["history"])
    assert log["val"] and all("foot" in v and "rec" in v for v in log["val"])


def test_warm_start_continues_from_the_weights_not_from_scratch(tiny_checkpoint, tiny_corpus, tiny_cache_dir, tmp_path):
    """One small-lr step from the checkpoint stays next to it; a fresh model is far from it."""
    ckpt = train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "near",
                      **{"train.init_from": str(tiny_checkpoint), "train.steps": 1, "train.vae_steps": 1,
                         "train.lr": 1e-6, "train.vae_lr": 1e-6})
    fresh = train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "fresh",
                       **{"train.steps": 1, "train.vae_steps": 1, "train.lr": 1e-6, "train.vae_lr": 1e-6,
                          "train.seed": 7})
    a, b, c = (load_file(str(p / "model.safetensors")) for p in (tiny_checkpoint, ckpt, fresh))
    near = max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())
    far = max((a[k] - c[k]).abs().max().item() for k in a if a[k].is_floating_point())
    assert near < 1e-3 < far


def test_warm_start_rejects_another_shape_and_a_missing_folder(tiny_checkpoint, tiny_corpus, tiny_cache_dir, tmp_path):
    with pytest.raises(ConfigError, match="d_model"):
        train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "bad",
                   **{"train.init_from": str(tiny_checkpoint), "model.d_model": 64})
    with pytest.raises(ConfigError, match="does not exist"):
        train_tiny("mld", tiny_corpus, tiny_cache_dir, tmp_path, "bad", **{"train.init_from": str(tmp_path / "none")})


@pytest.mark.parametrize("family, key", [("mld", "train.foot_weight"), ("mdm", "train.foot_weight")])
def test_foot_weight_changes_training_and_zero_is_the_old_loss(family, key, tiny_corpus, tiny_cache_dir, tmp_path):
    steps = {"train.steps": 3, "train.vae_steps": 3, "train.log_every": 1}
    old = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "old", "run", **steps)
    zero = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "zero", "run", **steps, **{key: 0.0})
    foot = train_tiny(family, tiny_corpus, tiny_cache_dir, tmp_path / "foot", "run", **steps, **{key: 10.0})
    a, b, c = (load_file(str(p / "model.safetensors")) for p in (old, zero, foot))
    assert not _differs(a, b, "")
    trained = "vae." if family == "mld" else "denoiser."
    assert _differs(a, c, trained)
    log = json.loads((foot.parent / "log.json").read_text())
    stage = "vae" if family == "mld" else "denoiser"
    assert all("foot" in h for h in log["history"] if h["stage"] == stage)
    assert not any("foot" in h for h in json.loads((old.parent / "log.json").read_text())["history"])
