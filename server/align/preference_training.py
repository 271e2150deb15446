"""Preference fine-tuning of a text-to-motion checkpoint: SoPo, offline DPO, online DPO, SFT.

    result = finetune(FinetuneConfig(method="sopo"), FinetuneInputs(base=..., picks=..., corpus=...), out)

What one run does, top to bottom: load the base checkpoint twice (the policy, trained, and
the frozen reference) -> build preference items from the picks DB and/or the corpus
(`server/align/preference_data.py`), refusing unusable data; a batch is min(batch_size, usable
items) -> text embeddings from the text cache -> for `steps` steps: draw a batch of items; build
each item's (winner, loser) pair as the method says (`server/align/preference_step.py`; SoPo:
offline preferred vs the lowest-reward of K policy samples; online DPO:
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
from server.align.preference_step import PreferenceTrainer, trainable_parameters
from server.model.features import FeatureLayout
from server.model.networks import TextToMotion
from server.align.preference_data import (PickStats, PreferenceBank, PreferenceDataError, PreferenceItem, check_family,
                                          describe_items, describe_none_good, items_from_corpus, items_from_picks,
                                          lend_rejected, lineage_ids, none_good_usage, usable)
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
    tau_quantile: float = 0.0  # > 0: SoPo's tau = this quantile of the rewards of K reference samples per caption
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
        if not 0.0 <= self.tau_quantile < 1.0:
            raise ValueError("tau_quantile must be in [0, 1) (0: use tau as given)")
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
    max_picks: int | None = None  # use only the first (oldest) N picks
    feature_cache_dir: Path | None = None  # corpus feature cache (default data/cache)


@dataclass
class PreparedData:
    items: list[PreferenceItem]  # the items the method trains on (unusable ones are left out)
    usable: list[int]  # item indices the method can train on: all of `items`
    pick_items: list[int]  # of those, the ones from picks
    corpus_items: list[int]
    pick_stats: PickStats | None
    families: dict
    base_config: dict
    texts: list[str]  # every caption of `items`
    corpus: Corpus | None
    corpus_feats: list[np.ndarray] | None
    batch_size: int = 0  # pairs per step: cfg.batch_size, or fewer when fewer items are usable
    none_good: dict = field(default_factory=dict)  # none_good_usage(): how the "none are good" picks are used


def _say(log, *a):
    if log is not None:
        log(*a)


def _read_picks(path: Path, inputs: FinetuneInputs, base_config: dict, corpus: Corpus | None, log
                ) -> tuple[list[PreferenceItem], PickStats, dict]:
    from server.service.picks import export_preferences

    if not path.is_file():
        raise PreferenceDataError(f"no picks database at {path} (the server keeps it in its data folder, "
                                  "e.g. ~/.local/share/sopo-motion/picks.db)")
    records = export_preferences(path)
    if inputs.max_picks is not None:
        records = records[:inputs.max_picks]
    if not records:
        raise PreferenceDataError(f"the picks database {path} holds no picks yet: pick motions in Blender "
                                  "(or run server/simulate_picks.py) first")
    families = {}
    if not inputs.skip_family_check:
        families = check_family(records, base_config["model"]["family"], lineage_ids(base_config), inputs.models_dirs)
    items, stats = items_from_picks(records, corpus)
    _say(log, f"picks {path}: {stats.records} picks ({stats.chosen} chosen, {stats.none_good} none-good, "
              f"{stats.none_good_matched} of those matched to corpus captions) on {sorted(stats.model_ids)}")
    return items, stats, families


def _drop_short_preferred(items: list[PreferenceItem], corpus: Corpus | None) -> None:
    """Preferred motions too short for the reward model / a crop are left out."""
    for it in items:
        n = len(it.preferred.rotations) if it.preferred is not None else (
            corpus.clips[it.corpus_index].frames if it.corpus_index is not None else None)
        if n is not None and n < MIN_FRAMES:
            it.preferred, it.corpus_index = None, None


def prepare_data(cfg: FinetuneConfig, inputs: FinetuneInputs, layout: FeatureLayout, log=print) -> PreparedData:
    """Items for `cfg.method` from the picks DB and/or corpus; raises PreferenceDataError when unusable."""
    base_config = read_config(inputs.base)
    if inputs.picks is None and inputs.corpus is None:
        raise PreferenceDataError("nothing to learn from: give --picks PICKS_DB and/or --corpus CORPUS")
    corpus = Corpus(inputs.corpus) if inputs.corpus is not None else None
    items: list[PreferenceItem] = []
    stats, families = None, {}
    if inputs.picks is not None:
        items, stats, families = _read_picks(Path(inputs.picks), inputs, base_config, corpus, log)
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
    _drop_short_preferred(items, corpus)
    lenders = lend_rejected(items[:n_pick_items])
    none_good = none_good_usage(items[:n_pick_items], cfg.method, lenders)
    if stats is not None and stats.none_good:
        _say(log, describe_none_good(none_good, cfg.method, corpus is not None))
    ok = usable(items, cfg.method)
    pick_ok = [i for i in ok if i < n_pick_items]
    if inputs.picks is not None and not pick_ok and cfg.method != "online-dpo":
        why = ("every pick is 'none are good' and none of their prompts is a corpus caption"
               if stats and stats.none_good == stats.records else "no pick has a usable preferred motion")
        raise PreferenceDataError(f"{why}; {cfg.method} needs preferred motions (a chosen candidate, or --corpus "
                                  "with the prompts' captions)")
    if not ok:
        raise PreferenceDataError(f"no usable preference pairs for {cfg.method}")
    batch_size = min(cfg.batch_size, len(ok))
    if batch_size < cfg.batch_size:
        _say(log, f"batch {batch_size}: only {len(ok)} usable preference pairs for {cfg.method}, fewer than "
                  f"--batch-size {cfg.batch_size} (more picks, or --corpus, give bigger batches)")
    used = [items[i] for i in ok]  # the bank holds only these: unusable items need no text embedding
    n_used_picks = len(pick_ok)
    texts = sorted({c for it in used for c in it.captions})
    return PreparedData(used, list(range(len(used))), list(range(n_used_picks)),
                        list(range(n_used_picks, len(used))), stats, families, base_config, texts, corpus, feats,
                        batch_size, none_good)


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


# --- one run, step by step: set-up, data, trainer, training steps, summary, save -------------------------

@dataclass
class _Run:
    """Where a run happens: device and, under torchrun, its rank in the process group."""
    device: torch.device
    world: int = 1
    rank: int = 0
    own_group: bool = False  # this run started the process group (and ends it)

    @property
    def ddp(self) -> bool:
        return self.world > 1

    @property
    def master(self) -> bool:
        return self.rank == 0


def _start_run(cfg: FinetuneConfig) -> _Run:
    """Device and (under torchrun) the process group; seeds torch per rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if want == "cuda" and world > 1 else want)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    run = _Run(device, world, rank)
    if run.ddp:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            run.own_group = True
    torch.manual_seed(cfg.seed + rank)
    return run


def _end_run(run: _Run) -> None:
    if run.ddp:
        import torch.distributed as dist
        dist.barrier()
        if run.own_group:
            dist.destroy_process_group()


def _load_data(cfg: FinetuneConfig, inputs: FinetuneInputs, run: _Run, policy: TextToMotion, encoder_id: str,
               say) -> tuple[PreparedData, TextCache]:
    """Preference items and their text embeddings; rank 0 computes and caches them before the other ranks."""
    if run.ddp and not run.master:
        import torch.distributed as dist
        dist.barrier()  # rank 0 computes and caches corpus features and text embeddings first
    failure = None
    try:
        data = prepare_data(cfg, inputs, policy.layout, log=say)
        cache = load_text_cache(encoder_id, inputs.text_cache, data.texts)
        if run.master:
            cache.save()
    except PreferenceDataError as exc:
        failure = exc
    if run.ddp and run.master:
        import torch.distributed as dist
        dist.barrier()
    if failure is not None:
        raise failure
    return data, cache


def _load_reward(cfg: FinetuneConfig, inputs: FinetuneInputs, device, cache: TextCache):
    """The reward model (None for SFT, or for offline DPO when none is given or found)."""
    if inputs.reward is None or cfg.method == "sft":
        return None
    from server.eval.reward import RewardModel
    reward_path = Path(inputs.reward)
    if (reward_path / "model.safetensors").is_file():
        return RewardModel.load(reward_path, device, text_cache=cache)
    if cfg.method in sopo.ONLINE_METHODS:  # offline DPO needs it only for items without a rejected motion
        raise PreferenceDataError(f"no reward model at {reward_path} (train it with "
                                  "python server/train_evaluator.py --kind reward)")
    return None


def _build_trainer(cfg: FinetuneConfig, inputs: FinetuneInputs, run: _Run, policy: TextToMotion, info,
                   data: PreparedData, cache: TextCache) -> tuple[PreferenceTrainer, list[torch.nn.Parameter]]:
    """The frozen reference, the trainable parameters, the preference bank and the method's trainer."""
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    policy.eval()  # dropout off: policy and reference errors compare (see the module docstring)
    params = trainable_parameters(policy, cfg.cond_drop)
    table = TextTable(cache, data.texts, max(1, info.model.text_tokens), run.device)
    bank = PreferenceBank(data.items, policy.layout, info.mean, info.std, table.row, info.model.max_frames,
                          data.corpus_feats)
    reward = _load_reward(cfg, inputs, run.device, cache)
    net: torch.nn.Module = policy.denoiser
    if run.ddp:
        from torch.nn.parallel import DistributedDataParallel
        device = run.device
        net = DistributedDataParallel(policy.denoiser, device_ids=[device.index] if device.type == "cuda" else None)
    return PreferenceTrainer(cfg, policy, ref, bank, table, reward, run.device, net), params


class _MetricLog:
    """Sums the step metrics; every `log_every` steps one history entry of their means (over ranks too)."""

    def __init__(self, cfg: FinetuneConfig, run: _Run, say, t0: float):
        self.cfg, self.run, self.say, self.t0 = cfg, run, say, t0
        self.history: list[dict] = []
        self.sums: dict[str, float] = {}
        self.count = 0
        self.t_last = time.time()
        self.bar = None
        if run.master and cfg.progress:
            from tqdm import tqdm
            self.bar = tqdm(total=cfg.steps, desc=cfg.method, dynamic_ncols=True)

    def add(self, step: int, lr: float, metrics: dict[str, torch.Tensor]) -> None:
        for key, val in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(val)
        self.count += 1
        if (step + 1) % self.cfg.log_every == 0 or step + 1 == self.cfg.steps:
            self._flush(step, lr)
        if self.bar is not None:
            self.bar.update(1)

    def _flush(self, step: int, lr: float) -> None:
        keys = sorted(self.sums)
        vals = torch.tensor([self.sums[k] / self.count for k in keys], device=self.run.device)
        if self.run.ddp:
            import torch.distributed as dist
            dist.all_reduce(vals)
            vals /= self.run.world
        now = time.time()
        entry = {"step": step + 1, "lr": lr, "time": round(now - self.t0, 2),
                 "steps_per_s": round(self.count / max(now - self.t_last, 1e-9), 3)}
        entry.update({k: float(v) for k, v in zip(keys, vals.tolist())})
        self.history.append(entry)
        self.sums, self.count, self.t_last = {}, 0, now
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{entry['loss']:.4f}", margin=f"{entry.get('rewards/margins', float('nan')):.2e}")
        elif self.say is not None:
            self.say(f"step {step + 1}/{self.cfg.steps} " + " ".join(
                f"{k}={entry[k]:.4g}" for k in ("loss", "rewards/margins", "frac_loser_above_tau") if k in entry))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_step(cfg: FinetuneConfig, trainer: PreferenceTrainer, optimizer: torch.optim.Optimizer,
                params: list[torch.nn.Parameter], batch: list[int], g: torch.Generator, lr: float) -> dict:
    """One optimizer step on one batch of items; returns its metrics."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss, metrics = trainer.step_loss(batch, g)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip).detach()
    optimizer.step()
    return metrics


def _summary(cfg: FinetuneConfig, inputs: FinetuneInputs, run: _Run, info, data: PreparedData,
             trainer: PreferenceTrainer, history: list[dict], elapsed: float) -> dict:
    """What `extra.finetune` of the new checkpoint records: base, method, settings, data counts, final metrics."""
    base_cfg = data.base_config
    return {
        "base": str(Path(inputs.base).resolve()), "base_name": base_cfg.get("name", ""),
        "base_step": int(base_cfg.get("step", 0)), "lineage": sorted(lineage_ids(base_cfg)),
        "family": info.model.family, "method": cfg.method, "hyperparameters": asdict(cfg),
        "batch_size": data.batch_size, "k": trainer.k,
        "sample_steps": trainer.sample_steps, "guidance": trainer.guidance,
        "picks_db": str(inputs.picks) if inputs.picks else None,
        "picks": data.pick_stats.as_dict() if data.pick_stats else None,
        "number_of_picks": data.pick_stats.records if data.pick_stats else 0,
        "none_good": data.none_good,
        "tau_used": trainer.loss_cfg.tau, "tau_calibration": trainer.tau_calibration,
        "corpus": str(inputs.corpus) if inputs.corpus else None,
        "corpus_clips": bool(inputs.corpus and inputs.corpus_clips),
        "reward_model": str(inputs.reward) if inputs.reward else None,
        "items": describe_items([data.items[i] for i in data.usable]),
        "families_of_picks": data.families, "world_size": run.world, "device": str(run.device),
        "elapsed_s": round(elapsed, 1), "final": history[-1] if history else {},
    }


def _save(out: Path, policy: TextToMotion, info, cfg: FinetuneConfig, summary: dict, history: list[dict],
          command: str) -> None:
    """The new checkpoint folder: weights, config (its `extra.finetune` = summary) and finetune_log.json."""
    extra = dict(info.extra)
    extra["finetune"] = summary
    ckpt_info = CheckpointInfo(model=info.model, mean=info.mean, std=info.std, latent_scale=policy.latent_scale,
                               name=out.name, step=info.step + cfg.steps, corpus=info.corpus,
                               git_commit=git_commit(), command=command, extra=extra)
    save_checkpoint(out, policy, ckpt_info)
    (out / "finetune_log.json").write_text(json.dumps({"finetune": summary, "history": history}, indent=1))


def finetune(cfg: FinetuneConfig, inputs: FinetuneInputs, out: Path, command: str = "", log: Callable | None = print,
             keep_models: bool = False, on_step: Callable[[int, TextToMotion], None] | None = None) -> FinetuneResult:
    """Fine-tune `inputs.base` on preferences; writes the checkpoint folder `out` (+ finetune_log.json).

    `on_step(steps_done, policy)` is called after every optimizer step (experiments score the policy there;
    it must leave the policy as it found it)."""
    cfg.validate()
    run = _start_run(cfg)
    say = log if run.master else None
    t0 = time.time()

    policy, info = load_checkpoint(inputs.base, run.device)
    data, cache = _load_data(cfg, inputs, run, policy, info.model.text_encoder, say)
    trainer, params = _build_trainer(cfg, inputs, run, policy, info, data, cache)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed * 1000 + run.rank)
    sampler = BatchSampler(data.pick_items, data.corpus_items, data.batch_size, cfg.picks_fraction, g)
    if cfg.method == "sopo" and cfg.tau_quantile > 0:
        tau = trainer.calibrate_tau(data.usable, cfg.tau_quantile, cfg.seed)
        _say(say, f"tau {tau:.4f}: the {100 * cfg.tau_quantile:g}th percentile of the reward of {trainer.k} reference "
                  f"samples for each of {trainer.tau_calibration['captions']} training captions")
    _say(say, f"{cfg.method}: {cfg.steps} steps x batch {data.batch_size}"
         + (f" x {run.world} ranks" if run.ddp else "")
         + f", lr {cfg.lr:g}, {len(data.usable)} usable items ({len(data.pick_items)} from picks), "
         f"{len(params)} trainable tensors, K {trainer.k}, device {run.device}" + (", bf16 autocast" if trainer.amp else ""))

    metric_log = _MetricLog(cfg, run, say, t0)
    for step in range(cfg.steps):
        lr = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        metrics = _train_step(cfg, trainer, optimizer, params, sampler(), g, lr)
        metric_log.add(step, lr, metrics)
        if on_step is not None:
            on_step(step + 1, policy)
    metric_log.close()
    elapsed = time.time() - t0

    summary = _summary(cfg, inputs, run, info, data, trainer, metric_log.history, elapsed)
    out = Path(out)
    if run.master:
        _save(out, policy, info, cfg, summary, metric_log.history, command)
        _say(say, f"checkpoint {out} ({elapsed:.0f} s)")
    _end_run(run)
    return FinetuneResult(out, metric_log.history, summary, policy if keep_models else None,
                          trainer.ref if keep_models else None)
