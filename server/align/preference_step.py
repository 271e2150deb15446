"""One fine-tuning step of a preference method: build each item's (winner, loser) pair, x0 errors, the loss.

    trainer = PreferenceTrainer(cfg, policy, reference, bank, text_table, reward, device)
    loss, metrics = trainer.step_loss(item_indices, generator)

SoPo: offline preferred vs the lowest-reward of K policy samples; online DPO: best vs worst of
K policy samples; offline DPO: preferred vs a fixed loser (artist-rejected, else the
lowest-reward reference sample, made once); SFT: preferred only. Winner and loser share t
and noise. The run around it (data, optimizer, logging, saving) is preference_training.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from server.align import sopo
from server.align.preference_data import PreferenceBank, PreferenceDataError
from server.model.diffusion import frame_mask_from_lengths, sample, train_scheduler
from server.model.features import features_to_wire
from server.model.networks import TextToMotion
from server.model.train_data import TextTable

if TYPE_CHECKING:
    from server.align.preference_training import FinetuneConfig


def trainable_parameters(model: TextToMotion, cond_drop: float) -> list[torch.nn.Parameter]:
    """The denoiser's parameters (the MLD VAE stays frozen); the null-text embeddings only with text dropout."""
    if model.vae is not None:
        model.vae.requires_grad_(False)
    params = []
    for name, p in model.denoiser.named_parameters():
        train_it = cond_drop > 0 or ".null_" not in f".{name}"
        p.requires_grad_(train_it)
        if train_it:
            params.append(p)
    return params


class PreferenceTrainer:
    """One method's step on a policy/reference pair; `step_loss(batch_items, generator)` -> loss, metrics."""

    def __init__(self, cfg: FinetuneConfig, policy: TextToMotion, ref: TextToMotion, bank: PreferenceBank,
                 table: TextTable, reward=None, device="cpu", net: torch.nn.Module | None = None):
        self.cfg = cfg
        self.loss_cfg = cfg.loss_config()
        self.policy, self.ref, self.bank, self.table, self.reward = policy, ref, bank, table, reward
        self.net = net if net is not None else policy.denoiser  # the DDP wrapper when distributed
        self.device = torch.device(device)
        self.mc = policy.cfg
        self.frames_model = policy.vae is None  # MDM: diffuse frame features (masked loss)
        self.scheduler = train_scheduler(self.mc)
        self.k = cfg.k or sopo.default_k(self.mc.family)
        self.sample_steps = cfg.sample_steps or self.mc.default_steps
        self.guidance = self.mc.default_guidance if cfg.guidance < 0 else cfg.guidance
        self.amp = cfg.amp and self.device.type == "cuda"
        self.fixed_losers: dict[int, torch.Tensor] = {}  # offline DPO: reference-made losers, made once per item
        self.tau_calibration: dict | None = None  # calibrate_tau's record
        needs_reward = cfg.method in sopo.ONLINE_METHODS
        if needs_reward and reward is None:
            raise PreferenceDataError(f"{cfg.method} ranks policy samples with the reward model: give --reward")

    # --- motions ------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample_motions(self, model: TextToMotion, rows: torch.Tensor, lengths: torch.Tensor, k: int,
                       g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """k samples per row -> normalised features (B k, T, D) (rows b k .. b k + k - 1 belong to b), mask."""
        was = model.training
        model.eval()
        rep = torch.arange(len(rows), device=rows.device).repeat_interleave(k)
        text = self.table(rows[rep]).to(self.device)
        lens = lengths[rep].to(self.device)
        T = int(lens.max())
        noise = torch.randn(model.diffusion_shape(len(rep), T), generator=g).to(self.device)
        if self.frames_model:
            noise = noise * frame_mask_from_lengths(lens, T)[..., None]
        guidance = torch.full((len(rep),), float(self.guidance), device=self.device)
        feats, mask = sample(model, text, lens, noise, guidance, self.sample_steps)
        model.train(was)
        return feats.float() * mask[..., None], mask

    def wire(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised features (N, T, D) -> rotations (N, T, 22, 4), translation (N, T, 3)."""
        return features_to_wire(self.policy.denormalize(feats.float()), self.policy.layout)

    @torch.no_grad()
    def embed(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalised features (N, T, D) -> the reward model's unit motion embeddings (N, E)."""
        rot, trans = self.wire(feats)
        dev = self.reward.device
        return self.reward.embed_motions_torch(rot.to(dev), trans.to(dev), lengths.cpu()).to(self.device)

    @torch.no_grad()
    def rewards_of(self, emb: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """r(x, c) = cos(e_x, e_c) / 2 + 1/2 (N,) from motion embeddings (N, E), as RewardModel.reward_torch."""
        text = self.reward.embed_texts(captions, n=len(emb)).to(self.device)
        return ((emb * text).sum(-1) * 0.5 + 0.5).clamp(0.0, 1.0)

    @torch.no_grad()
    def rewards(self, feats: torch.Tensor, lengths: torch.Tensor, captions: list[str]) -> torch.Tensor:
        return self.rewards_of(self.embed(feats, lengths), captions)

    @torch.no_grad()
    def fixed_losers_for(self, items: list[int], rows: torch.Tensor, lengths: torch.Tensor, captions: list[str],
                         g: torch.Generator) -> list[torch.Tensor]:
        """Offline DPO without an artist-rejected motion: per item, the lowest-reward of K samples of the
        REFERENCE model, made once (in one batch for the items of a step that have none yet) and reused."""
        todo = [j for j, item in enumerate(items) if item not in self.fixed_losers]
        if todo:
            if self.reward is None:
                raise PreferenceDataError("offline-dpo on items without rejected motions (corpus clips, picks of one "
                                          "candidate) ranks reference samples with the reward model: give --reward")
            idx = torch.tensor(todo, device=self.device)
            feats, _ = self.sample_motions(self.ref, rows[idx], lengths[idx], self.k, g)  # (n K, T, D)
            len_k = lengths[idx].repeat_interleave(self.k)
            r = self.rewards(feats, len_k, [captions[j] for j in todo for _ in range(self.k)]).view(len(todo), self.k)
            worst = sopo.select_online_pair(r)[1]
            for n, j in enumerate(todo):
                self.fixed_losers[items[j]] = feats[n * self.k + int(worst[n]), :int(lengths[j])].cpu()
        return [self.fixed_losers[item] for item in items]

    @torch.no_grad()
    def calibrate_tau(self, items: list[int], quantile: float, seed: int = 0, max_captions: int = 64) -> float:
        """SoPo's tau on our reward's scale: the `quantile` of r(x, c) over K samples of the reference model
        (the policy at step 0) for up to `max_captions` training items drawn at random; sets and returns it.

        The paper's tau = 0.45 belongs to TMR's scale; ours puts matched pairs near 1, so a fixed number
        either always or never keeps the loser term. A quantile q keeps it for about a share q of the
        pairs at the start (the loser is the lowest of K, so somewhat more)."""
        if self.reward is None:
            raise PreferenceDataError("calibrating tau needs the reward model: give --reward")
        g = torch.Generator().manual_seed(seed + 7919)  # its own stream: training draws the same batches either way
        pick = torch.randperm(len(items), generator=g)[:max_captions].tolist()
        chosen = [items[i] for i in pick]
        rewards = []
        for s in range(0, len(chosen), 16):
            b = self.bank.batch(chosen[s:s + 16], g, self.device)
            feats, _ = self.sample_motions(self.ref, b.text_rows, b.len_w, self.k, g)
            rewards.append(self.rewards(feats, b.len_w.repeat_interleave(self.k), [c for c in b.captions
                                                                                   for _ in range(self.k)]))
        r = torch.cat(rewards).float().cpu()
        tau = float(torch.quantile(r, quantile))
        self.loss_cfg = sopo.LossConfig(beta=self.loss_cfg.beta, tau=tau, C=self.loss_cfg.C, scale=self.loss_cfg.scale)
        self.tau_calibration = {"quantile": quantile, "captions": len(chosen), "samples": int(r.numel()), "tau": tau,
                                "reward_percentiles": {q: float(torch.quantile(r, q / 100))
                                                       for q in (5, 25, 50, 75, 95)}}
        return tau

    # --- errors -------------------------------------------------------------------------------------

    @torch.no_grad()
    def to_space(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalised features -> the denoiser's targets, as train.py makes them."""
        return self.policy.to_diffusion_space(x.float(), mask, sample=False).float()

    def errors(self, x0: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor,
               t: torch.Tensor, noise: torch.Tensor, with_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy and reference x0 errors (N,), (N,) of targets x0 (N, ...) at timesteps t with `noise`."""
        x_t = self.scheduler.add_noise(x0, noise, t)
        m = mask if self.frames_model else None
        if m is not None:
            x_t = x_t * m[..., None]
        text = self.table(rows).to(self.device)
        drop = torch.zeros(len(x0), dtype=torch.bool, device=self.device)
        if self.cfg.cond_drop > 0:
            drop = torch.rand(len(x0), device=self.device) < self.cfg.cond_drop
        vel = self.cfg.vel_weight if self.frames_model else 0.0

        def run(net):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                return net(x_t, t, text.pooled, text.tokens, text.token_mask(), drop, m, lengths).float()

        with torch.set_grad_enabled(with_grad):
            err = sopo.x0_error(run(self.net), x0, m, vel)
        with torch.no_grad():
            ref_err = sopo.x0_error(run(self.ref.denoiser), x0, m, vel)
        return err, ref_err

    # --- one step -----------------------------------------------------------------------------------

    def step_loss(self, idx: list[int], g: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        method = self.cfg.method
        b = self.bank.batch(idx, g, self.device, with_rejected=method == "offline-dpo")
        B = len(idx)
        x_w, m_w, len_w = b.x_w, b.mask_w, b.len_w
        x_l = m_l = len_l = None
        loser_reward = sim_min = winner_reward = None
        if method in sopo.ONLINE_METHODS:
            feats, mask = self.sample_motions(self.policy, b.text_rows, len_w, self.k, g)  # (B K, T, D)
            len_k = len_w.repeat_interleave(self.k)
            caps_k = [c for c in b.captions for _ in range(self.k)]
            emb = self.embed(feats, len_k)  # (B K, E): the samples are embedded once, for r and for S
            r = self.rewards_of(emb, caps_k).view(B, self.k)  # (B, K)
            best, worst = sopo.select_online_pair(r)
            ar = torch.arange(B, device=self.device)
            loser_reward = r[ar, worst]
            li = ar * self.k + worst
            x_l, m_l, len_l = feats[li], mask[li], len_w
            if method == "sopo":
                emb_w = self.embed(x_w, len_w).repeat_interleave(self.k, 0)  # (B K, E)
                sim = ((emb_w * emb).sum(-1) * 0.5 + 0.5).clamp(0.0, 1.0).view(B, self.k)  # sim(x_w, x_k)
                sim_min = sim.min(1).values  # S = min_k sim(x_w, x_k)
            else:  # online DPO: the winner is the best policy sample too
                wi = ar * self.k + best
                x_w, m_w = feats[wi], mask[wi]
                winner_reward = r[ar, best]
        elif method == "offline-dpo":
            need = [j for j in range(B) if not bool(b.has_r[j])]
            made = self.fixed_losers_for([idx[j] for j in need], b.text_rows[need], len_w[need],
                                         [b.captions[j] for j in need], g) if need else []
            made_by_j = dict(zip(need, made))
            losers = [made_by_j[j] if j in made_by_j else b.x_r[j, :int(b.len_r[j])].cpu() for j in range(B)]
            len_l = torch.tensor([len(x) for x in losers], device=self.device)
            T = int(len_l.max())
            x_l = torch.zeros(B, T, x_w.shape[-1], device=self.device)
            for j, x in enumerate(losers):
                x_l[j, :len(x)] = x.to(self.device)
            m_l = frame_mask_from_lengths(len_l, T)

        if x_l is not None:  # winner and loser on one time axis, sharing t and noise
            T = max(x_w.shape[1], x_l.shape[1])
            x_w, m_w = _pad_time(x_w, T), _pad_time(m_w, T)
            x_l, m_l = _pad_time(x_l, T), _pad_time(m_l, T)
        x0_w = self.to_space(x_w, m_w)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (B,), generator=g).to(self.device)
        noise = torch.randn(x0_w.shape, generator=g).to(self.device)
        if x_l is None:
            err_w, ref_w = self.errors(x0_w, m_w, len_w, b.text_rows, t, noise)
            err_l = ref_l = None
        else:
            x0 = torch.cat([x0_w, self.to_space(x_l, m_l)])
            err, ref = self.errors(x0, torch.cat([m_w, m_l]), torch.cat([len_w, len_l]),
                                   b.text_rows.repeat(2), t.repeat(2), noise.repeat(2, *([1] * (noise.ndim - 1))))
            err_w, err_l = err[:B], err[B:]
            ref_w, ref_l = ref[:B], ref[B:]
        return sopo.preference_loss(method, self.loss_cfg, err_w, ref_w, err_l, ref_l, loser_reward=loser_reward,
                                    sim_min=sim_min, winner_reward=winner_reward)


def _pad_time(x: torch.Tensor, T: int) -> torch.Tensor:
    if x.shape[1] >= T:
        return x
    pad = torch.zeros(x.shape[0], T - x.shape[1], *x.shape[2:], dtype=x.dtype, device=x.device)
    return torch.cat([x, pad], 1)
