"""Preference losses for diffusion fine-tuning: SoPo, offline DPO, online DPO and SFT (pure functions).

Everything here is a function of per-sample tensors; nothing loads models, samples or
touches data (that is `server/align/preference_training.py`). One code path serves all four
methods: each builds a (winner, loser) pair per caption, the caller noises both with the
SAME timestep t and the SAME noise, runs the policy and the frozen reference (the model
before fine-tuning) on both, and hands the per-sample errors to `preference_loss`.

Error. Our denoisers predict x0 ("sample" prediction, server/model/diffusion.py), so the error of
a motion x is the x0-prediction error the model is trained with (`denoiser_loss`):

    e(x) = mean over real frames and features of (x0_hat(x_t, t, c) - x)^2
           [+ vel_weight * the same on frame-to-frame differences, MDM frames only]

(per sample instead of per batch). This is SoPo's released code's choice (x0 MSE, MDM
predicts x0); Diffusion-DPO's epsilon error is the same up to the per-t factor
alpha_t / sigma_t^2 that w(t) absorbs.

Diffusion-DPO (Wallace et al. 2023, Eq. 14), with L(x) = e_theta(x) - e_ref(x):

    loss = -log sigmoid(-beta * T w(t) * [L(x_w) - L(x_l)])

The T w(t) factor is `scale`, a constant: T w(t) with w(t) constant (the "simple" loss that
trains the model) folds into beta. Default `scale = 1` with beta = 1, as SoPo's released
code (no extra beta scale). Because e is a MEAN over elements, the bracket is small
(~1e-3 early on), so with scale = 1 the sigmoid stays near 0.5 and the loss is nearly
linear: log 2 - (scale beta / 2) [L(x_w) - L(x_l)]. Diffusion-DPO's own runs use
beta T ~ 2500-5000 with mean errors; a larger `scale` makes the sigmoid saturate (the
implicit KL regulariser bites). `scale` is a hyperparameter of ours, recorded in every
checkpoint, so both readings can be tried.

SoPo (Tan et al. 2025): offline preferred x_w; online loser x_l = the lowest-reward of K
policy samples (no grad); S = min_k sim(x_w, x_k); beta_w = beta (C - S);

    r(x_l, c) <  tau:  loss = -log sigmoid(-T w(t) [beta_w L(x_w) - beta L(x_l)])
    r(x_l, c) >= tau:  loss = -log sigmoid(-T w(t)  beta_w L(x_w))

Baselines: offline DPO (both from a fixed set, beta_w = beta), online DPO (both from the
policy, best vs worst by reward, beta_w = beta), SFT (mean e_theta(x_w), the pre-training
objective on the preferred motions).

Metrics use trl's names. The implicit reward of a motion is rho(x) = -scale * beta * L(x)
(how much better than the reference the policy denoises it), the same for every method so
that curves compare: rewards/chosen = mean rho(x_w), rewards/rejected = mean rho(x_l),
rewards/margins = mean (rho(x_w) - rho(x_l)), rewards/accuracies = mean [rho(x_w) > rho(x_l)].
frac_loser_above_tau is the share of pairs whose (reward-model) loser reward is >= tau:
for SoPo the pairs trained on the preferred term only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

METHODS = ("sopo", "offline-dpo", "online-dpo", "sft")
ONLINE_METHODS = ("sopo", "online-dpo")  # sample from the policy every step
PAIR_METHODS = ("sopo", "offline-dpo", "online-dpo")  # have a loser


@dataclass(frozen=True)
class LossConfig:
    beta: float = 1.0
    tau: float = 0.45  # reward threshold below which SoPo keeps the loser term
    C: float = 2.0  # beta_w = beta * (C - S)
    scale: float = 1.0  # the constant T * w(t); see the module docstring


def default_k(family: str) -> int:
    """Online samples per caption: SoPo's K = 4 for MDM-style, 2 for MLD-style backbones."""
    return 4 if family == "mdm" else 2


# --- errors -------------------------------------------------------------------------------------

def x0_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
             vel_weight: float = 0.0) -> torch.Tensor:
    """Per-sample x0-prediction error -> (B,).

    pred, target: (B, T, D) frame features with mask (B, T) True = real frame, or
    (B, K, d) latents with mask None. Same terms as `diffusion.denoiser_loss` (masked MSE,
    plus `vel_weight` times the MSE of frame differences when a mask is given), averaged per
    sample instead of over the batch.
    """
    err = (pred.float() - target.float()).pow(2).mean(-1)  # (B, T) or (B, K)
    if mask is None:
        return err.flatten(1).mean(1)
    m = mask.float()
    out = (err * m).sum(1) / m.sum(1).clamp_min(1.0)
    if vel_weight > 0:
        both = (mask[:, 1:] & mask[:, :-1]).float()  # (B, T - 1)
        dp = pred[:, 1:].float() - pred[:, :-1].float()
        dt = target[:, 1:].float() - target[:, :-1].float()
        vel = (dp - dt).pow(2).mean(-1)  # (B, T - 1)
        out = out + vel_weight * (vel * both).sum(1) / both.sum(1).clamp_min(1.0)
    return out


# --- pair selection and SoPo's weights ---------------------------------------------------------------

def select_online_pair(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards (B, K) of K policy samples per caption -> (best (B,), worst (B,)) sample indices.

    Ties go to the lower index for the best and the higher index for the worst, so K >= 2
    always gives two different samples."""
    B, K = rewards.shape
    best = rewards.argmax(1)
    flipped = rewards.flip(1).argmin(1)  # the last minimum
    worst = K - 1 - flipped
    return best, worst


def sopo_weights(loser_reward: torch.Tensor, sim_min: torch.Tensor, cfg: LossConfig
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """loser_reward r(x_l, c) (B,), sim_min S = min_k sim(x_w, x_k) (B,) ->
    (beta_w (B,) = beta (C - S), beta_l (B,) = beta where r(x_l, c) < tau else 0)."""
    beta_w = cfg.beta * (cfg.C - sim_min)
    beta_l = cfg.beta * (loser_reward < cfg.tau).to(sim_min.dtype)
    return beta_w, beta_l


# --- losses ------------------------------------------------------------------------------------------

def dpo_terms(err_w: torch.Tensor, ref_err_w: torch.Tensor, err_l: torch.Tensor, ref_err_l: torch.Tensor,
              beta_w: torch.Tensor | float, beta_l: torch.Tensor | float, scale: float = 1.0) -> torch.Tensor:
    """Per-pair Diffusion-DPO loss (B,): -log sigmoid(-scale [beta_w L(x_w) - beta_l L(x_l)]).

    All errors (B,); L(x) = e_theta(x) - e_ref(x). beta_l = 0 drops the loser term (SoPo)."""
    L_w = err_w - ref_err_w  # (B,)
    L_l = err_l - ref_err_l  # (B,)
    logits = -scale * (beta_w * L_w - beta_l * L_l)  # (B,)
    return -F.logsigmoid(logits)


def preference_loss(method: str, cfg: LossConfig, err_w: torch.Tensor, ref_err_w: torch.Tensor,
                    err_l: torch.Tensor | None = None, ref_err_l: torch.Tensor | None = None,
                    loser_reward: torch.Tensor | None = None, sim_min: torch.Tensor | None = None,
                    winner_reward: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one batch for `method` and its metrics (detached scalars).

    err_w, ref_err_w: policy and reference errors of the preferred motions (B,).
    err_l, ref_err_l: the same for the losers (B,); required for the DPO methods, optional
    (metrics only) for SFT. loser_reward r(x_l, c) (B,) and sim_min S (B,): required for SoPo;
    loser_reward (and winner_reward) feed the metrics of the other methods when given.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    has_loser = err_l is not None and ref_err_l is not None
    if method in PAIR_METHODS and not has_loser:
        raise ValueError(f"{method} needs loser errors")
    beta_w: torch.Tensor | float = cfg.beta
    beta_l: torch.Tensor | float = cfg.beta
    if method == "sopo":
        if loser_reward is None or sim_min is None:
            raise ValueError("sopo needs loser_reward and sim_min")
        beta_w, beta_l = sopo_weights(loser_reward, sim_min, cfg)
    if method == "sft":
        loss = err_w.mean()
    else:
        loss = dpo_terms(err_w, ref_err_w, err_l, ref_err_l, beta_w, beta_l, cfg.scale).mean()

    with torch.no_grad():
        metrics: dict[str, torch.Tensor] = {"loss": loss.detach()}
        chosen = -cfg.scale * cfg.beta * (err_w - ref_err_w).detach()  # (B,)
        metrics["rewards/chosen"] = chosen.mean()
        metrics["error/chosen"] = err_w.detach().mean()
        if has_loser:
            rejected = -cfg.scale * cfg.beta * (err_l - ref_err_l).detach()
            metrics["rewards/rejected"] = rejected.mean()
            metrics["rewards/margins"] = (chosen - rejected).mean()
            metrics["rewards/accuracies"] = (chosen > rejected).float().mean()
            metrics["error/rejected"] = err_l.detach().mean()
        if loser_reward is not None:
            metrics["reward_model/loser"] = loser_reward.float().mean()
            metrics["frac_loser_above_tau"] = (loser_reward.float() >= cfg.tau).float().mean()
        if winner_reward is not None:
            metrics["reward_model/winner"] = winner_reward.float().mean()
        if method == "sopo":
            metrics["sim_min"] = sim_min.float().mean()
            metrics["beta_w"] = torch.as_tensor(beta_w).float().mean()
    return loss, metrics
