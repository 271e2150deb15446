"""Preference fine-tuning of a text-to-motion checkpoint: SoPo, offline DPO, online DPO, SFT.

    result = finetune(FinetuneConfig(method="sopo"), FinetuneInputs(base=..., picks=..., corpus=...), out)

What one run does, top to bottom: load the base checkpoint twice (the policy, trained, and
the frozen reference) -> build preference items from the picks DB and/or the corpus
(`server/align/preference_data.py`), refusing unusable data -> text embeddings from the text cache
-> for `steps` steps: draw a batch of items; build each item's (winner, loser) pair as the
method says (SoPo: offline preferred vs the lowest-reward of K policy samples; online DPO:
best vs worst of K policy samples; offline DPO: preferred vs a fixed loser; SFT: preferred
only); noise winner and loser with the SAME t and noise; policy and reference x0 errors;
`sopo.preference_loss`; AdamW with warm-up + cosine decay (`train.lr_at`) -> a new
checkpoint (safetensors + config.json whose `extra.finetune` records base, method,
hyperparameters and data counts) and a log of the trl-style metrics.

Details shared by all methods (so they differ only in their pairs and loss):
- the MLD VAE stays frozen (only the denoiser trains, as in train.py's denoiser stage);
  every motion enters the denoiser's space the way train.py makes its targets
  (`to_diffusion_space(..., sample=False)`: the posterior mean for MLD);
- dropout is off for the policy too (eval mode while training), so at step 0 the policy and
  the reference give identical errors (L = 0, loss = log 2) and L measures training alone;
- no text dropout by default (`cond_drop = 0`): the preference loss trains the conditional
  branch; the unconditional "null text" embeddings then get no gradient and are frozen;
- online samples use the model's default sampler, steps and guidance, without gradients;
- bf16 autocast for the training forwards on CUDA; `torchrun` runs DistributedDataParallel
  (every rank draws its own batch; rank 0 writes).
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from server.align import sopo
from server.model.checkpoint import CheckpointInfo, git_commit, load_checkpoint, read_config, save_checkpoint
from server.data.corpus import Corpus
from server.model.diffusion import frame_mask_from_lengths, sample, train_scheduler
from server.model.features import FeatureLayout, features_to_wire
from server.model.networks import TextToMotion
from server.align.preference_data import (PickStats, PreferenceBank, PreferenceDataError, PreferenceItem, check_family,
                                    describe_items, items_from_corpus, items_from_picks, lineage_ids, usable)
from server.model.text_encoder import TextCache, TextEncoderError, default_cache_path
from server.model.training import lr_at
from server.model.train_data import TextTable, corpus_features

MIN_FRAMES = 16  # shorter preferred motions are left out (the reward model needs >= 8 frames)


@dataclass
class FinetuneConfig:
    method: str = "sopo"  # sopo | offline-dpo | online-dpo | sft
    steps: int = 200
    batch_size: int = 64  # the paper's batch
    lr: float = 1e-5  # the paper's AdamW learning rate
    warmup: int = 10  # linear warm-up steps, then cosine decay to 10% (train.lr_at)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    beta: float = 1.0
    tau: float = 0.45
    C: float = 2.0
    scale: float = 1.0  # the constant T * w(t) (see server/align/sopo.py)
    k: int = 0  # online samples per caption; 0 = 4 for MDM, 2 for MLD
    sample_steps: int = 0  # sampler steps for online samples; 0 = the model's default
    guidance: float = -1.0  # classifier-free guidance for online samples; < 0 = the model's default
    cond_drop: float = 0.0  # text dropout while fine-tuning (0: the conditional branch only)
    vel_weight: float = 1.0  # MDM only: weight of the frame-difference term in the x0 error (train.py's default)
    picks_fraction: float = 0.5  # share of a batch drawn from picks when picks and corpus items are both used
    corpus_clips: int = 0  # use at most this many corpus clips (0 = all of the split)
    seed: int = 0
    device: str = ""  # "" = cuda when available
    amp: bool = True  # bf16 autocast on CUDA
    log_every: int = 10
    progress: bool = True

    def validate(self) -> "FinetuneConfig":
        if self.method not in sopo.METHODS:
            raise ValueError(f"method must be one of {sopo.METHODS}, got {self.method!r}")
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps and batch size must be >= 1 and lr > 0")
        if self.method in sopo.ONLINE_METHODS and self.k == 1:
            raise ValueError("online methods need k >= 2 samples per caption")
        if not 0.0 <= self.picks_fraction <= 1.0:
            raise ValueError("picks_fraction must be in [0, 1]")
        return self

    def loss_config(self) -> sopo.LossConfig:
        return sopo.LossConfig(beta=self.beta, tau=self.tau, C=self.C, scale=self.scale)


@dataclass
class FinetuneInputs:
    base: Path  # checkpoint folder
    picks: Path | None = None  # picks.db
    corpus: Path | None = None  # corpus folder (dataset preferred motions; none-good captions)
    reward: Path | None = None  # reward-model folder (needed by sopo, online-dpo, offline-dpo without rejected)
    text_cache: Path | None = None  # text-embedding cache file (default: data/cache/text/<encoder>.safetensors)
    models_dirs: list[Path] = field(default_factory=list)  # where to look up the checkpoints picks were made on
    skip_family_check: bool = False
    corpus_clips: bool = True  # False: the corpus only supplies preferred motions for "none are good" picks
    feature_cache_dir: Path | None = None  # corpus feature cache (default data/cache)


@dataclass
class PreparedData:
    items: list[PreferenceItem]
    usable: list[int]  # item indices the method can train on
    pick_items: list[int]  # of those, the ones from picks
    corpus_items: list[int]
    pick_stats: PickStats | None
    families: dict
    base_config: dict
    texts: list[str]
    corpus: Corpus | None
    corpus_feats: list[np.ndarray] | None


def _say(log, *a):
    if log is not None:
        log(*a)


def prepare_data(cfg: FinetuneConfig, inputs: FinetuneInputs, layout: FeatureLayout, log=print) -> PreparedData:
    """Items for `cfg.method` from the picks DB and/or corpus; raises PreferenceDataError when unusable."""
    from server.service.picks import export_preferences

    base_config = read_config(inputs.base)
    family = base_config["model"]["family"]
    if inputs.picks is None and inputs.corpus is None:
        raise PreferenceDataError("nothing to learn from: give --picks PICKS_DB and/or --corpus CORPUS")
    corpus = Corpus(inputs.corpus) if inputs.corpus is not None else None
    items: list[PreferenceItem] = []
    stats, families = None, {}
    if inputs.picks is not None:
        path = Path(inputs.picks)
        if not path.is_file():
            raise PreferenceDataError(f"no picks database at {path} (the server keeps it in its data folder, "
                                      "e.g. ~/.local/share/sopo-motion/picks.db)")
        records = export_preferences(path)
        if not records:
            raise PreferenceDataError(f"the picks database {path} holds no picks yet: pick motions in Blender "
                                      "(or run server/simulate_picks.py) first")
        if not inputs.skip_family_check:
            families = check_family(records, family, lineage_ids(base_config), inputs.models_dirs)
        items, stats = items_from_picks(records, corpus)
        _say(log, f"picks {path}: {stats.records} picks ({stats.chosen} chosen, {stats.none_good} none-good, "
                  f"{stats.none_good_matched} of those matched to corpus captions) on {sorted(stats.model_ids)}")
    n_pick_items = len(items)
    if corpus is not None and inputs.corpus_clips:
        items += items_from_corpus(corpus, "train", cfg.corpus_clips or None, cfg.seed)
        _say(log, f"corpus {corpus.path}: {len(items) - n_pick_items} train clips as preferred motions")
    feats = None
    if corpus is not None and any(it.corpus_index is not None for it in items):
        cache_root = inputs.feature_cache_dir
        if cache_root is None:
            from server.model.text_encoder import cache_dir
            cache_root = cache_dir()
        feats = corpus_features(corpus, layout, cache_root, log=lambda *a: _say(log, *a), workers=0)
    # preferred motions too short for the reward model / a crop are left out
    for it in items:
        n = len(it.preferred.rotations) if it.preferred is not None else (
            corpus.clips[it.corpus_index].frames if it.corpus_index is not None else None)
        if n is not None and n < MIN_FRAMES:
            it.preferred, it.corpus_index = None, None
    ok = usable(items, cfg.method)
    pick_ok = [i for i in ok if i < n_pick_items]
    corpus_ok = [i for i in ok if i >= n_pick_items]
    if inputs.picks is not None and not pick_ok and cfg.method != "online-dpo":
        why = ("every pick is 'none are good' and none of their prompts is a corpus caption"
               if stats and stats.none_good == stats.records else "no pick has a usable preferred motion")
        raise PreferenceDataError(f"{why}; {cfg.method} needs preferred motions (a chosen candidate, or --corpus "
                                  "with the prompts' captions)")
    if len(ok) < cfg.batch_size:
        raise PreferenceDataError(
            f"only {len(ok)} usable preference pairs for {cfg.method}, fewer than the batch size {cfg.batch_size}: "
            f"collect more picks, add --corpus, or lower --batch-size")
    texts = sorted({c for i in ok for c in items[i].captions})
    return PreparedData(items, ok, pick_ok, corpus_ok, stats, families, base_config, texts, corpus, feats)


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
    def rewards(self, feats: torch.Tensor, lengths: torch.Tensor, captions: list[str]) -> torch.Tensor:
        rot, trans = self.wire(feats)
        dev = self.reward.device
        return self.reward.reward_torch(rot.to(dev), trans.to(dev), lengths.cpu(), captions).to(self.device)

    @torch.no_grad()
    def similarities(self, feats_a: torch.Tensor, len_a: torch.Tensor, feats_b: torch.Tensor,
                     len_b: torch.Tensor) -> torch.Tensor:
        ra, ta = self.wire(feats_a)
        rb, tb = self.wire(feats_b)
        dev = self.reward.device
        return self.reward.similarity_torch(ra.to(dev), ta.to(dev), len_a.cpu(), rb.to(dev), tb.to(dev),
                                            len_b.cpu()).to(self.device)

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
            r = self.rewards(feats, len_k, caps_k).view(B, self.k)  # (B, K)
            best, worst = sopo.select_online_pair(r)
            ar = torch.arange(B, device=self.device)
            loser_reward = r[ar, worst]
            li = ar * self.k + worst
            x_l, m_l, len_l = feats[li], mask[li], len_w
            if method == "sopo":
                x_rep = x_w.repeat_interleave(self.k, 0)
                sim = self.similarities(x_rep, len_k, feats[:, :x_w.shape[1]], len_k).view(B, self.k)
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


class BatchSampler:
    """Item indices per step: without replacement within an epoch; `picks_fraction` of each batch from picks."""

    def __init__(self, pick_items: list[int], corpus_items: list[int], batch_size: int, picks_fraction: float,
                 g: torch.Generator):
        self.pools = [p for p in (pick_items, corpus_items) if p]
        if len(self.pools) == 2:
            n_picks = int(round(batch_size * picks_fraction))
            self.sizes = [n_picks, batch_size - n_picks]
        else:
            self.sizes = [batch_size]
        self.g = g
        self.orders = [[] for _ in self.pools]

    def __call__(self) -> list[int]:
        out = []
        for k, (pool, size) in enumerate(zip(self.pools, self.sizes)):
            while len(self.orders[k]) < size:
                self.orders[k] += [pool[i] for i in torch.randperm(len(pool), generator=self.g).tolist()]
            out += self.orders[k][:size]
            self.orders[k] = self.orders[k][size:]
        return out


@dataclass
class FinetuneResult:
    checkpoint: Path
    history: list[dict]
    summary: dict
    policy: TextToMotion | None = None
    reference: TextToMotion | None = None


def load_text_cache(encoder_id: str, path: Path | None, texts: list[str]) -> TextCache:
    cache = TextCache(encoder_id, path or default_cache_path(encoder_id))
    try:
        cache.ensure(texts)
    except TextEncoderError as exc:
        raise PreferenceDataError(f"{exc}\nbuild a text cache where MiniLM is installed (python server/model/text_encoder.py "
                                  "--corpus ...) and pass it with --text-cache") from None
    return cache


def finetune(cfg: FinetuneConfig, inputs: FinetuneInputs, out: Path, command: str = "", log: Callable | None = print,
             keep_models: bool = False) -> FinetuneResult:
    """Fine-tune `inputs.base` on preferences; writes the checkpoint folder `out` (+ finetune_log.json)."""
    cfg.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    ddp = world > 1
    want = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if want == "cuda" and ddp else want)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    own_group = False
    if ddp:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            own_group = True
    master = rank == 0
    say = log if master else None
    torch.manual_seed(cfg.seed + rank)
    t0 = time.time()

    policy, info = load_checkpoint(inputs.base, device)
    if ddp and not master:
        dist.barrier()  # rank 0 computes and caches corpus features and text embeddings first
    failure = None
    try:
        data = prepare_data(cfg, inputs, policy.layout, log=say)
        cache = load_text_cache(info.model.text_encoder, inputs.text_cache, data.texts)
        if master:
            cache.save()
    except PreferenceDataError as exc:
        failure = exc
    if ddp and master:
        dist.barrier()
    if failure is not None:
        raise failure
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.eval()  # dropout off: policy and reference errors compare (see the module docstring)
    params = trainable_parameters(policy, cfg.cond_drop)
    table = TextTable(cache, data.texts, max(1, info.model.text_tokens), device)
    bank = PreferenceBank(data.items, policy.layout, info.mean, info.std, table.row, info.model.max_frames,
                          data.corpus_feats)
    reward = None
    if inputs.reward is not None and (cfg.method != "sft"):
        from server.eval.reward import RewardModel
        reward_path = Path(inputs.reward)
        if (reward_path / "model.safetensors").is_file():
            reward = RewardModel.load(reward_path, device, text_cache=cache)
        elif cfg.method in sopo.ONLINE_METHODS:  # offline DPO needs it only for items without a rejected motion
            raise PreferenceDataError(f"no reward model at {reward_path} (train it with "
                                      "python server/train_evaluator.py --kind reward)")
    net: torch.nn.Module = policy.denoiser
    if ddp:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(policy.denoiser, device_ids=[device.index] if device.type == "cuda" else None)
    trainer = PreferenceTrainer(cfg, policy, ref, bank, table, reward, device, net)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    sampler = BatchSampler(data.pick_items, data.corpus_items, cfg.batch_size, cfg.picks_fraction, g)
    _say(say, f"{cfg.method}: {cfg.steps} steps x batch {cfg.batch_size}" + (f" x {world} ranks" if ddp else "")
         + f", lr {cfg.lr:g}, {len(data.usable)} usable items ({len(data.pick_items)} from picks), "
         f"{len(params)} trainable tensors, K {trainer.k}, device {device}" + (", bf16 autocast" if trainer.amp else ""))

    history: list[dict] = []
    sums: dict[str, float] = {}
    count = 0
    bar = None
    if master and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, desc=cfg.method, dynamic_ncols=True)
    t_last = time.time()
    for step in range(cfg.steps):
        lr = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, metrics = trainer.step_loss(sampler(), g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip).detach()
        optimizer.step()
        for key, val in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(val)
        count += 1
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            keys = sorted(sums)
            vals = torch.tensor([sums[k] / count for k in keys], device=device)
            if ddp:
                dist.all_reduce(vals)
                vals /= world
            now = time.time()
            entry = {"step": step + 1, "lr": lr, "time": round(now - t0, 2),
                     "steps_per_s": round(count / max(now - t_last, 1e-9), 3)}
            entry.update({k: float(v) for k, v in zip(keys, vals.tolist())})
            history.append(entry)
            sums, count, t_last = {}, 0, now
            if bar is not None:
                bar.set_postfix(loss=f"{entry['loss']:.4f}", margin=f"{entry.get('rewards/margins', float('nan')):.2e}")
            elif say is not None:
                say(f"step {step + 1}/{cfg.steps} " + " ".join(f"{k}={entry[k]:.4g}" for k in
                                                              ("loss", "rewards/margins", "frac_loser_above_tau")
                                                              if k in entry))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    elapsed = time.time() - t0

    base_cfg = data.base_config
    lineage = sorted(lineage_ids(base_cfg))
    finetune_info = {
        "base": str(Path(inputs.base).resolve()), "base_name": base_cfg.get("name", ""),
        "base_step": int(base_cfg.get("step", 0)), "lineage": lineage, "family": info.model.family,
        "method": cfg.method, "hyperparameters": asdict(cfg), "k": trainer.k,
        "sample_steps": trainer.sample_steps, "guidance": trainer.guidance,
        "picks_db": str(inputs.picks) if inputs.picks else None,
        "picks": data.pick_stats.as_dict() if data.pick_stats else None,
        "number_of_picks": data.pick_stats.records if data.pick_stats else 0,
        "corpus": str(inputs.corpus) if inputs.corpus else None,
        "reward_model": str(inputs.reward) if inputs.reward else None,
        "items": describe_items([data.items[i] for i in data.usable]),
        "families_of_picks": data.families, "world_size": world, "device": str(device),
        "elapsed_s": round(elapsed, 1), "final": history[-1] if history else {},
    }
    out = Path(out)
    if master:
        extra = dict(info.extra)
        extra["finetune"] = finetune_info
        ckpt_info = CheckpointInfo(model=info.model, mean=info.mean, std=info.std, latent_scale=policy.latent_scale,
                                   name=out.name, step=info.step + cfg.steps, corpus=info.corpus,
                                   git_commit=git_commit(), command=command, extra=extra)
        save_checkpoint(out, policy, ckpt_info)
        (out / "finetune_log.json").write_text(json.dumps({"finetune": finetune_info, "history": history}, indent=1))
        _say(say, f"checkpoint {out} ({elapsed:.0f} s)")
    if ddp:
        dist.barrier()
        if own_group:
            dist.destroy_process_group()
    return FinetuneResult(out, history, finetune_info, policy if keep_models else None,
                          ref if keep_models else None)
