"""Networks, diffusion loop, checkpoints and the inference interface on tiny models."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from server.model.checkpoint import FORMAT_VERSION, CheckpointError, CheckpointInfo, load_checkpoint, save_checkpoint
from server.model.config import ConfigError, ModelConfig, RunConfig, apply_overrides, preset
from server.model.diffusion import denoiser_loss, guided_x0, masked_mse, sample, sampling_scheduler, train_scheduler
from server.model.inference import GenerationRequest, MotionGenerator, RequestError, SamplingCancelled, default_checkpoint_dir
from server.model.networks import build_model
from server.model.text_encoder import TextEmbeddings
from shared.motion import Motion


def _text(batch: int, tokens: int = 5, dim: int = 384, seed: int = 0) -> TextEmbeddings:
    g = torch.Generator().manual_seed(seed)
    return TextEmbeddings(torch.randn(batch, dim, generator=g), torch.randn(batch, tokens, dim, generator=g),
                          torch.full((batch,), tokens))


@pytest.fixture(scope="module")
def generator(tiny_checkpoint):
    return MotionGenerator.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def mdm_generator(tiny_mdm_checkpoint):
    return MotionGenerator.load(tiny_mdm_checkpoint, device="cpu")


# --- interface ------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["generator", "mdm_generator"])
def test_generate_shapes_batching_and_determinism(which, request):
    gen: MotionGenerator = request.getfixturevalue(which)
    assert gen.family == ("mld" if which == "generator" else "mdm")
    assert gen.fps == 20.0 and gen.max_seconds == 10.0 and 1 <= gen.default_steps <= gen.max_steps
    reqs = [GenerationRequest("a person walks forward", n=2, seconds=3.0, seed=7),
            GenerationRequest("a person jumps in place", n=3, seconds=1.5, seed=8)]
    calls = []
    out = gen.generate(reqs, progress=lambda i, total: calls.append((i, total)))
    assert [o[0].shape for o in out] == [(2, 60, 22, 4), (3, 30, 22, 4)]
    assert [o[1].shape for o in out] == [(2, 60, 3), (3, 30, 3)]
    for rot, trans in out:
        assert rot.dtype == np.float32 and trans.dtype == np.float32
        Motion(rot[0], trans[0], gen.fps)  # valid wire format (unit quaternions, finite)
        assert np.allclose(trans[:, 0, [0, 2]], 0.0, atol=1e-5)  # starts at the origin
    assert calls[-1][0] == calls[-1][1] and [c[0] for c in calls] == sorted(c[0] for c in calls)
    # same seed -> same motions, alone or batched with others; another seed -> other motions
    alone = gen.generate([reqs[0]])[0]
    assert np.allclose(alone[0], out[0][0], atol=1e-5) and np.allclose(alone[1], out[0][1], atol=1e-5)
    again = gen.generate([reqs[0]])[0]
    assert np.array_equal(again[0], alone[0])
    other = gen.generate([GenerationRequest("a person walks forward", n=2, seconds=3.0, seed=9)])[0]
    assert not np.array_equal(other[0], alone[0])  # (a tiny model's motions differ only slightly)
    assert not np.array_equal(alone[0][0], alone[0][1])  # the n candidates differ from each other


@pytest.mark.parametrize("which", ["generator", "mdm_generator"])
def test_guidance_changes_the_result(which, request):
    gen = request.getfixturevalue(which)
    a = gen.generate([GenerationRequest("a person waves with the right hand", n=1, seconds=2, seed=3, guidance=1.0)])
    b = gen.generate([GenerationRequest("a person waves with the right hand", n=1, seconds=2, seed=3, guidance=5.0)])
    assert not np.array_equal(a[0][0], b[0][0])


def test_requests_with_different_steps_and_random_seed(generator):
    out = generator.generate([GenerationRequest("walk", n=1, seconds=1, steps=2),
                              GenerationRequest("run", n=1, seconds=1, steps=3, seed=None)])
    assert len(out) == 2 and len(generator.last_seeds) == 2


@pytest.mark.parametrize("bad, field", [
    (dict(prompt=""), "prompt"), (dict(prompt="   "), "prompt"),
    (dict(n=0), "n"), (dict(n=-2), "n"), (dict(n=1.5), "n"),
    (dict(seconds=0), "seconds"), (dict(seconds=-1), "seconds"), (dict(seconds=10.5), "seconds"),
    (dict(seconds=float("nan")), "seconds"),
    (dict(steps=0), "steps"), (dict(steps=10_000), "steps"),
    (dict(guidance=-1.0), "guidance"), (dict(guidance=float("inf")), "guidance"),
    (dict(seed="x"), "seed"),
])
def test_bad_requests_raise_request_error(generator, bad, field):
    args = dict(prompt="a person walks", n=1, seconds=1.0, seed=0)
    args.update(bad)
    with pytest.raises(RequestError) as err:
        generator.generate([GenerationRequest(**args)])
    assert err.value.field == field and str(err.value)


def test_should_stop_cancels(generator):
    with pytest.raises(SamplingCancelled):
        generator.generate([GenerationRequest("walk", n=1, seconds=1, seed=0)], should_stop=lambda: True)


def test_default_checkpoint_dir_is_under_server_checkpoints():
    path = default_checkpoint_dir()
    assert path.parent.name == "checkpoints" or path.parent.parent.name == "checkpoints" or "checkpoints" in path.parts


# --- checkpoints -----------------------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_outputs(tiny_checkpoint, tmp_path):
    model, info = load_checkpoint(tiny_checkpoint)
    save_checkpoint(tmp_path / "copy", model, info)
    model2, info2 = load_checkpoint(tmp_path / "copy")
    assert info2.step == info.step and np.array_equal(info2.mean, info.mean) and info2.latent_scale == info.latent_scale
    g1 = MotionGenerator.load(tiny_checkpoint)
    g2 = MotionGenerator.load(tmp_path / "copy")
    req = [GenerationRequest("a person runs forward", n=2, seconds=2, seed=11)]
    a, b = g1.generate(req)[0], g2.generate(req)[0]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    for key in ("format_version", "model", "features", "text_encoder", "corpus", "step", "git_commit", "latent_scale"):
        assert key in config
    assert config["corpus"]["fingerprint"] and config["corpus"]["licences"]
    assert not list(tiny_checkpoint.glob("*.pt")) and not list(tiny_checkpoint.glob("*.pkl"))


def test_bad_checkpoints_give_clear_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        MotionGenerator.load(tmp_path / "nowhere")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    (bad / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        MotionGenerator.load(bad)
    shutil.copy(tiny_checkpoint / "config.json", bad / "config.json")
    config = json.loads((bad / "config.json").read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="version"):
        MotionGenerator.load(bad)
    del config["format_version"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format_version"):
        MotionGenerator.load(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        MotionGenerator.load(bad)
    shutil.copy(tiny_checkpoint / "config.json", bad / "config.json")
    (bad / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MotionGenerator.load(bad)


# --- diffusion ---------------------------------------------------------------------------------------

class _ConstantDenoiser(torch.nn.Module):
    """Predicts the same x0 whatever the input: every sampler must end exactly there."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, x, *args):
        return self.target.expand(x.shape[0], *self.target.shape[1:])


@pytest.mark.parametrize("sampler", ["ddim", "dpmsolver++"])
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_sampling_loop_ends_at_the_predicted_x0(sampler, steps):
    cfg = preset("tiny-mdm").model
    model = build_model(cfg)
    target = torch.randn(1, 12, model.feature_dim)
    model.denoiser = _ConstantDenoiser(target)
    lengths = torch.tensor([12, 12])
    noise = torch.randn(2, 12, model.feature_dim, generator=torch.Generator().manual_seed(0))
    out, mask = sample(model, _text(2), lengths, noise, torch.tensor([2.0, 1.0]), steps, sampler=sampler)
    assert torch.allclose(out, target.expand(2, -1, -1), atol=1e-4)
    assert sampling_scheduler(cfg, sampler).config.prediction_type == "sample"


def test_cfg_runs_cond_and_uncond_in_one_batched_forward():
    cfg = preset("tiny-mld").model
    model = build_model(cfg).eval()
    calls = []
    original = model.denoiser.forward

    def spy(x, t, pooled, tokens, tmask, drop, fmask, lengths):
        calls.append(drop.clone())
        return original(x, t, pooled, tokens, tmask, drop, fmask, lengths)

    model.denoiser.forward = spy
    x = torch.randn(3, cfg.latent_tokens, cfg.latent_dim)
    lengths = torch.tensor([20, 30, 40])
    mask = torch.arange(40)[None] < lengths[:, None]
    with torch.no_grad():
        g = guided_x0(model, x, torch.tensor([500]), _text(3), torch.tensor([3.0, 3.0, 1.0]), mask, lengths)
        assert len(calls) == 1 and calls[0].tolist() == [False] * 3 + [True] * 3
        plain = guided_x0(model, x, torch.tensor([500]), _text(3), torch.ones(3), mask, lengths)
        assert len(calls) == 2 and calls[1].tolist() == [False] * 3
    assert torch.allclose(g[2], plain[2], atol=1e-5)  # guidance 1 = the conditional prediction
    assert not torch.allclose(g[0], plain[0], atol=1e-4)


def test_masks_keep_padded_frames_out_of_the_loss():
    torch.manual_seed(0)
    cfg = preset("tiny-mdm").model
    model = build_model(cfg).train()
    sched = train_scheduler(cfg)
    B, T, D = 3, 20, model.feature_dim
    lengths = torch.tensor([20, 12, 7])
    mask = torch.arange(T)[None] < lengths[:, None]
    x0 = torch.randn(B, T, D) * mask[..., None]
    text = _text(B)
    t = torch.tensor([10, 500, 900])
    noise = torch.randn(B, T, D)
    drop = torch.zeros(B, dtype=torch.bool)

    def loss_of(x0_, noise_):
        x0_ = x0_.clone().requires_grad_(True)

        def denoise(x_t, tt, dr):
            return model.denoiser(x_t, tt, text.pooled, text.tokens, text.token_mask(), dr, mask, lengths)

        loss, _ = denoiser_loss(denoise, x0_, mask, sched, None, 0.0, 1.0, timesteps=t, noise=noise_, drop=drop)
        loss.backward()
        return loss.item(), x0_.grad

    base, grad = loss_of(x0, noise)
    junk = torch.where(mask[..., None], x0, torch.full_like(x0, 100.0))
    junk_noise = torch.where(mask[..., None], noise, torch.full_like(noise, -50.0))
    other, _ = loss_of(junk, junk_noise)
    assert abs(base - other) < 1e-5 * max(1.0, abs(base))
    assert grad[~mask].abs().max() == 0 and grad[mask].abs().max() > 0
    # the masked MSE itself ignores padded frames
    assert masked_mse(junk, x0, mask).item() == 0.0


@pytest.mark.parametrize("family", ["mld", "mdm"])
def test_padding_does_not_change_real_frames(family):
    """A motion decoded/denoised alone or padded in a batch with a longer one gives the same frames."""
    cfg = preset(f"tiny-{family}").model
    model = build_model(cfg).eval()
    text = _text(1)
    with torch.no_grad():
        if family == "mld":
            z = torch.randn(1, cfg.latent_tokens, cfg.latent_dim)
            short = model.vae.decode(z, torch.ones(1, 9, dtype=torch.bool))
            padded = model.vae.decode(z, torch.arange(16)[None] < 9)
        else:
            x = torch.randn(1, 16, model.feature_dim)
            args = (torch.tensor([300]), text.pooled, text.tokens, text.token_mask(), torch.zeros(1, dtype=torch.bool))
            short = model.denoiser(x[:, :9], *args, torch.ones(1, 9, dtype=torch.bool), torch.tensor([9]))
            padded = model.denoiser(x, *args, torch.arange(16)[None] < 9, torch.tensor([9]))
    assert torch.allclose(short[0], padded[0, :9], atol=1e-5)


# --- config ------------------------------------------------------------------------------------

def test_config_overrides_and_typos():
    cfg = apply_overrides(preset("mld"), ["--model.latent_dim", "128", "--train.steps=7", "--data.on_device", "false"])
    assert cfg.model.latent_dim == 128 and cfg.train.steps == 7 and cfg.data.on_device is False
    with pytest.raises(ConfigError, match="latent_dim"):
        apply_overrides(RunConfig(), ["--model.latnet_dim", "3"])
    with pytest.raises(ConfigError, match="unknown config key"):
        apply_overrides(RunConfig(), ["--modle.latent_dim", "3"])
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(RunConfig(), ["--train.steps", "many"])
    with pytest.raises(ConfigError):
        apply_overrides(RunConfig(), ["--train.steps"])
    with pytest.raises(ConfigError, match="family"):
        ModelConfig(family="gpt").validate()


@pytest.mark.parametrize("name", ["mld", "mdm"])
def test_real_presets_are_a_few_million_parameters(name):
    model = build_model(preset(name).model)
    total = model.parameter_counts()["total"]
    assert 2e6 < total < 8e6  # fp32 weights < 32 MB


@pytest.mark.parametrize("schedule", ["scaled_linear", "squaredcos_cap_v2", "linear"])
def test_forward_process_without_diffusers_matches_diffusers(schedule):
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    from server.model.diffusion import ForwardProcess

    ours = ForwardProcess(1000, schedule)
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule=schedule, prediction_type="sample")
    assert torch.allclose(ours.alphas_cumprod, theirs.alphas_cumprod, rtol=1e-6, atol=1e-7)
    x0, noise = torch.randn(4, 7, 5), torch.randn(4, 7, 5)
    t = torch.tensor([0, 10, 500, 999])
    assert torch.allclose(ours.add_noise(x0, noise, t), theirs.add_noise(x0, noise, t), atol=1e-6)
