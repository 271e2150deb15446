"""Diffusion over motion features or latents: diffusers schedulers, the training loss, the sampler.

We use `diffusers` schedulers as they are (small stateless-ish classes with `set_timesteps`,
`step`, `add_noise`) and unroll the loop here. The network predicts x0 ("sample"
prediction). Classifier-free guidance runs the conditional and unconditional branches in
ONE batched forward: x0 = x0_uncond + g * (x0_cond - x0_uncond), g per motion.
"""
from __future__ import annotations

from typing import Callable

import torch

from .config import ModelConfig
from .networks import TextToMotion
from .text_encoder import TextEmbeddings


class SamplingCancelled(RuntimeError):
    """`should_stop()` returned True between two denoising steps."""


# --- schedulers -------------------------------------------------------------------------------

def train_scheduler(cfg: ModelConfig):
    """The forward process used in training (DDPM betas; only `add_noise` and alphas are used).

    diffusers' DDPMScheduler; where diffusers is not installed (a lent GPU machine), the same
    forward process from `ForwardProcess` (tests check that the two agree exactly).
    """
    try:
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
    except ImportError:
        return ForwardProcess(cfg.train_timesteps, cfg.beta_schedule)
    return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type="sample", clip_sample=False)


class ForwardProcess:
    """q(x_t | x_0) with diffusers' default betas (0.0001 to 0.02) for training without diffusers."""

    def __init__(self, num_train_timesteps: int, beta_schedule: str, beta_start: float = 0.0001,
                 beta_end: float = 0.02):
        import math
        from types import SimpleNamespace

        T = num_train_timesteps
        if beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float32)
        elif beta_schedule == "scaled_linear":
            betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float32) ** 2
        elif beta_schedule == "squaredcos_cap_v2":
            def abar(t):
                return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)],
                                 dtype=torch.float32)
        else:
            raise ValueError(f"unknown beta_schedule {beta_schedule!r}")
        self.config = SimpleNamespace(num_train_timesteps=T, beta_schedule=beta_schedule, prediction_type="sample")
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)[timesteps.long()]
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        return a.sqrt().reshape(shape) * original_samples + (1 - a).sqrt().reshape(shape) * noise


def sampling_scheduler(cfg: ModelConfig, sampler: str | None = None):
    """A fresh sampler (they keep per-run state): DPM-Solver++ (2nd order) or DDIM (eta 0).

    "trailing" timestep spacing makes the first step start at t = T - 1 (pure noise), which
    matters with few steps; both return the x0 prediction at their last step.
    """
    sampler = sampler or cfg.sampler
    common = dict(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule,
                  prediction_type="sample", timestep_spacing="trailing")
    if sampler == "ddim":
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler

        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    if sampler == "dpmsolver++":
        from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           lower_order_final=True, final_sigmas_type="zero")
    raise ValueError(f"unknown sampler {sampler!r}")


# --- losses (pure functions) ---------------------------------------------------------------------

def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error over the real frames only; mask (B, T) True = real (None: all)."""
    err = (pred.float() - target.float()).pow(2).mean(-1)
    if mask is None:
        return err.mean()
    m = mask.float()
    return (err * m).sum() / m.sum().clamp_min(1.0)


def masked_velocity_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE of frame-to-frame differences, over pairs of real frames."""
    both = mask[:, 1:] & mask[:, :-1]
    return masked_mse(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1], both)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), mean over elements."""
    return 0.5 * (mean.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).mean()


def vae_loss(recon, x, frame_mask, mean, logvar, kl_weight: float, vel_weight: float,
             foot_loss: Callable | None = None, foot_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """Reconstruction + velocity + KL; with `foot_weight` > 0 also `foot_loss(recon, x, frame_mask)` (the
    foot-contact loss, server/model/contact_loss.py: feet still where the target's contact labels say)."""
    rec = masked_mse(recon, x, frame_mask)
    vel = masked_velocity_mse(recon, x, frame_mask)
    kl = kl_divergence(mean, logvar)
    loss = rec + vel_weight * vel + kl_weight * kl
    parts = {"rec": rec.detach(), "vel": vel.detach(), "kl": kl.detach()}
    if foot_loss is not None and foot_weight > 0:
        foot = foot_loss(recon, x, frame_mask)
        parts["foot"] = foot.detach()
        loss = loss + foot_weight * foot
    return loss, parts


def denoiser_loss(denoise: Callable, x0: torch.Tensor, frame_mask: torch.Tensor | None, scheduler,
                  generator: torch.Generator | None, cond_drop: float, vel_weight: float,
                  timesteps: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                  drop: torch.Tensor | None = None, foot_loss: Callable | None = None,
                  foot_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
    """x0-prediction loss. `denoise(x_t, t, drop)` is the network with its text bound.

    For frame features pass `frame_mask` (padded frames are out of the loss; their inputs are
    masked out of attention, so they do not reach the real frames either). For latents pass None.
    With `foot_weight` > 0, `foot_loss(pred_x0)` (the foot-contact loss of the prediction, e.g. decoded
    by the frozen VAE decoder, with the target's contacts bound) is added with that weight.
    """
    B = x0.shape[0]
    dev = x0.device
    if timesteps is None:
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (B,), device=dev, generator=generator)
    if noise is None:
        noise = torch.randn(x0.shape, device=dev, generator=generator, dtype=x0.dtype)
    if drop is None:
        drop = torch.rand(B, device=dev, generator=generator) < cond_drop
    x_t = scheduler.add_noise(x0, noise, timesteps)
    if frame_mask is not None:
        x_t = x_t * frame_mask[..., None]
    pred = denoise(x_t, timesteps, drop)
    loss = masked_mse(pred, x0, frame_mask)
    parts = {"x0": loss.detach()}
    if frame_mask is not None and vel_weight > 0:
        vel = masked_velocity_mse(pred, x0, frame_mask)
        parts["vel"] = vel.detach()
        loss = loss + vel_weight * vel
    if foot_loss is not None and foot_weight > 0:
        foot = foot_loss(pred)
        parts["foot"] = foot.detach()
        loss = loss + foot_weight * foot
    return loss, parts


# --- sampling ------------------------------------------------------------------------------------

def frame_mask_from_lengths(lengths: torch.Tensor, frames: int | None = None) -> torch.Tensor:
    frames = int(lengths.max()) if frames is None else frames
    return torch.arange(frames, device=lengths.device)[None] < lengths[:, None]


def guided_x0(model: TextToMotion, x: torch.Tensor, t: torch.Tensor, text: TextEmbeddings,
              guidance: torch.Tensor, frame_mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Classifier-free guided x0 for a batch; cond and uncond in one forward (skipped if all g == 1)."""
    B = x.shape[0]
    tt = t.expand(B) if t.ndim == 1 and t.shape[0] == 1 else t.reshape(-1).expand(B)
    mask = frame_mask if model.vae is None else None
    if bool((guidance == 1.0).all()):
        drop = torch.zeros(B, dtype=torch.bool, device=x.device)
        return model.denoiser(x, tt, text.pooled, text.tokens, text.token_mask(), drop, mask, lengths)
    drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(x.device)
    out = model.denoiser(torch.cat([x, x]), torch.cat([tt, tt]), text.pooled.repeat(2, 1), text.tokens.repeat(2, 1, 1),
                         text.token_mask().repeat(2, 1), drop, None if mask is None else mask.repeat(2, 1),
                         lengths.repeat(2))
    cond, uncond = out.chunk(2)
    g = guidance.reshape(B, *([1] * (x.ndim - 1))).to(out.dtype)
    return uncond + g * (cond - uncond)


@torch.no_grad()
def sample(model: TextToMotion, text: TextEmbeddings, lengths: torch.Tensor, noise: torch.Tensor,
           guidance: torch.Tensor, steps: int, sampler: str | None = None,
           progress: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
           total: int | None = None,
           edit_x0: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole reverse process for one batch -> (normalised features (B, T, D), frame mask (B, T)).

    `noise` has `model.diffusion_shape(B, T)`; for MDM its padded frames should be zero.
    `progress(i, total)` is called after each step (total defaults to steps).
    `edit_x0(i, t, x0)`, if given, returns the x0 prediction the solver takes at step i (after
    guidance; e.g. constraints, server/model/constraints.py); the last step's is the result.
    """
    frame_mask = frame_mask_from_lengths(lengths)
    scheduler = sampling_scheduler(model.cfg, sampler)
    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    total = total or steps
    for i, t in enumerate(scheduler.timesteps):
        if should_stop is not None and should_stop():
            raise SamplingCancelled("generation cancelled")
        x_in = scheduler.scale_model_input(x, t)
        x0 = guided_x0(model, x_in, t.reshape(1).to(noise.device), text, guidance, frame_mask, lengths)
        if edit_x0 is not None:
            x0 = edit_x0(i, t, x0)
        x = scheduler.step(x0, t, x).prev_sample
        if model.vae is None:
            x = x * frame_mask[..., None]
        if progress is not None:
            progress(i + 1, total)
    return model.from_diffusion_space(x, frame_mask), frame_mask
