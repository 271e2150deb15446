"""The training loop for a text-to-motion model (`python server/train.py` is its CLI); writes runs/<name>/.

`train(cfg)` reads top to bottom: `setup_runtime` (distributed, device, seeds) -> `load_data` (the
corpus's features, cached, and their train-split statistics, or a warm start's (`train.init_from`);
caption embeddings from the text cache, encoding missing ones when the encoder is installed; everything
kept on the device) -> `build` (model, or the warm start's weights; EMA copy, noise schedule, foot-contact
loss) -> `resume` -> `fixed_validation_batches` -> for each stage (`stage_names`; MLD: "vae" (or, warm,
"decoder": the VAE's decoder only) then "denoiser"; MDM: "denoiser") `start_stage` (AdamW) and `train_stage`: `one_step` (warm-up and cosine
decay, bf16 autocast on CUDA, gradient clipping, EMA weights), `evaluate` (validation loss on the fixed
batches), `save` (periodic checkpoints; stop_at / max_minutes) -> `end_stage` (MLD: `calibrate_latent_scale`)
-> `finish`: final checkpoint of the EMA weights, training curve, log JSON.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from server.model.checkpoint import CheckpointError, CheckpointInfo, git_commit, load_checkpoint, save_checkpoint
from server.model.config import ConfigError, RunConfig, TrainConfig, to_dict
from server.model.contact_loss import FootContactLoss
from server.data.corpus import Corpus
from server.model.diffusion import denoiser_loss, train_scheduler, vae_loss
from server.model.features import FeatureLayout, feature_stats
from server.model.networks import build_model
from server.model.text_encoder import TextCache, cache_dir as default_cache_dir, default_cache_path
from server.model.train_data import MotionBank, TextTable, clip_captions, corpus_features, describe
from server.model.warm_start import decoder_only, init_checkpoint, repo_path, stage_names

STATE_VERSION = 1


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of `base`."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def ema_update(ema_module: torch.nn.Module, module: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * current, in place."""
    ema_p = [p for p in ema_module.parameters()]
    cur_p = [p.detach() for p in module.parameters()]
    torch._foreach_lerp_(ema_p, cur_p, 1.0 - decay)


def save_training_state(path: Path, model, ema, optimizer, generator, state: dict) -> None:
    """Everything needed to resume, without pickle: tensors in safetensors, the rest in JSON."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for key, val in st.items():
            tensors[f"opt.{pid}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = generator.get_state().cpu()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "state.safetensors.tmp"))
    os.replace(path / "state.safetensors.tmp", path / "state.safetensors")
    meta = dict(state, version=STATE_VERSION, optimizer_groups=[{k: v for k, v in g.items() if k != "params"}
                                                               for g in opt["param_groups"]])
    (path / "state.json.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.json.tmp", path / "state.json")


def load_training_state(path: Path, model, ema, device) -> tuple[dict, dict]:
    """Load the weights of `save_training_state` into model and ema; returns (its JSON, all its tensors)."""
    from safetensors.torch import load_file

    meta = json.loads((path / "state.json").read_text())
    if meta.get("version") != STATE_VERSION:
        raise RuntimeError(f"{path}: training state version {meta.get('version')}, expected {STATE_VERSION}")
    tensors = load_file(str(path / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return meta, tensors


def plot_curves(log: dict, path: Path) -> None:
    """curve.png: train and validation loss per stage, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("vae", "decoder", "denoiser") if any(h["stage"] == s for h in log["history"])]
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(6 * max(1, len(stages)), 4), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        hist = [h for h in log["history"] if h["stage"] == stage]
        val = [h for h in log["val"] if h["stage"] == stage]
        ax.plot([h["step"] for h in hist], [h["loss"] for h in hist], label="train loss", lw=1)
        if val:
            ax.plot([h["step"] for h in val], [h["loss"] for h in val], "o-", label="val loss (EMA)")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{log['name']}: {stage}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- set-up ---------------------------------------------------------------------------------------

def _dist():
    """torch.distributed, imported only by DDP runs."""
    import torch.distributed as dist

    return dist


@dataclass
class Runtime:
    """Where this process trains: device, distributed rank and world size, precision, batch RNG, logger."""

    device: torch.device
    rank: int
    world: int
    amp: bool  # bf16 autocast (CUDA only)
    save_dtype: torch.dtype
    batches_rng: torch.Generator  # the training batches' crops, captions, timesteps and noise
    say: Callable[..., None]  # `log` on rank 0, silent on the others

    @property
    def ddp(self) -> bool:
        return self.world > 1

    @property
    def master(self) -> bool:
        return self.rank == 0


def setup_runtime(tc: TrainConfig, log) -> Runtime:
    """Distributed process group (torchrun's environment), device, threads and seeds of this rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = tc.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(f"cuda:{local_rank}" if want == "cuda" else want)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if world > 1:
        _dist().init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed + rank)
    np.random.seed(tc.seed + rank)
    batches_rng = torch.Generator(device=device).manual_seed(tc.seed * 1000 + rank)
    if tc.save_dtype not in ("float32", "float16"):
        raise ConfigError(f"train.save_dtype must be float32 or float16, got {tc.save_dtype!r}")
    return Runtime(device=device, rank=rank, world=world, amp=tc.amp and device.type == "cuda",
                   save_dtype=getattr(torch, tc.save_dtype), batches_rng=batches_rng,
                   say=log if rank == 0 else (lambda *a, **k: None))


def shutdown(rt: Runtime) -> None:
    """Wait for every rank, then leave the process group (DDP only)."""
    if rt.ddp:
        _dist().barrier()
        _dist().destroy_process_group()


@dataclass
class TrainingData:
    """The train and val clips as motion banks, their captions' embeddings and the train-split statistics."""

    corpus: Corpus
    mean: np.ndarray  # (D,) feature mean of the train split
    std: np.ndarray  # (D,)
    table: TextTable
    train_bank: MotionBank
    val_bank: MotionBank
    data_device: torch.device  # where the banks live (the training device unless data.on_device is off)
    device: torch.device  # where batches go
    max_frames: int
    min_frames: int
    crop_min_ratio: float
    init_from: Path | None = None  # the warm start's checkpoint folder (its statistics are mean and std)

    def batch(self, bank: MotionBank, generator: torch.Generator, size: int):
        """A random batch of crops from `bank` with its captions' embeddings, both on the training device."""
        b = bank.sample(size, self.max_frames, self.min_frames, self.crop_min_ratio, generator, self.device)
        return b, self.table(b.captions.to(self.table.pooled.device)).to(self.device)


def load_data(cfg: RunConfig, rt: Runtime) -> TrainingData:
    """Corpus -> features (cached by rank 0 first) and train statistics -> caption embeddings -> banks."""
    dc, mc = cfg.data, cfg.model
    cache_root = repo_path(dc.cache_dir) if dc.cache_dir else default_cache_dir()
    corpus = Corpus(repo_path(dc.corpus))
    layout = FeatureLayout(redundant=mc.redundant_features)
    init = init_checkpoint(cfg)
    if rt.ddp and not rt.master:
        _dist().barrier()  # rank 0 computes and caches the features and text embeddings first
    features = corpus_features(corpus, layout, cache_root, log=rt.say, workers=dc.workers)
    train_ids, val_ids = corpus.indices("train"), corpus.indices("val") or corpus.indices("test")
    if init is None:
        mean, std = feature_stats([features[i] for i in train_ids], layout)
    else:  # the statistics the warm start's networks were trained with
        mean = np.asarray(init[1]["features"]["mean"], np.float32)
        std = np.asarray(init[1]["features"]["std"], np.float32)
        if mean.shape != (layout.dim,) or std.shape != (layout.dim,):
            raise ConfigError(f"train.init_from: feature statistics of size {mean.shape[0]}, features are {layout.dim}-d")
        rt.say(f"warm start from {init[0]}: its weights, feature statistics and latent scale")
    captions = clip_captions(corpus, dc.caption_sources)
    texts = sorted({t for i in train_ids + val_ids for t in captions[i]})
    text_cache = TextCache(mc.text_encoder, repo_path(dc.text_cache) if dc.text_cache else
                           default_cache_path(mc.text_encoder, cache_root))
    text_cache.ensure(texts)
    if rt.master:
        text_cache.save()
    if rt.ddp and rt.master:
        _dist().barrier()
    data_device = rt.device if dc.on_device else torch.device("cpu")
    table = TextTable(text_cache, texts, max(1, mc.text_tokens), data_device)
    rows = {i: [table.row[t] for t in captions[i]] for i in train_ids + val_ids}  # test clips stay unseen
    train_bank = MotionBank([features[i] for i in train_ids], [rows[i] for i in train_ids], mean, std,
                            data_device, pin_memory=not dc.on_device)
    val_bank = MotionBank([features[i] for i in val_ids], [rows[i] for i in val_ids], mean, std, data_device)
    rt.say(f"corpus {corpus.path}: {train_bank.num_clips} train clips "
           f"({train_bank.num_frames / mc.fps / 3600:.2f} h), {val_bank.num_clips} val clips, {len(texts)} captions; "
           f"features {layout.dim}-d on {data_device}")
    return TrainingData(corpus=corpus, mean=mean, std=std, table=table, train_bank=train_bank, val_bank=val_bank,
                        data_device=data_device, device=rt.device, max_frames=mc.max_frames,
                        min_frames=min(dc.min_frames, mc.max_frames), crop_min_ratio=dc.crop_min_ratio,
                        init_from=init[0] if init is not None else None)


@dataclass
class TrainingRun:
    """One training as it goes: what it trains on and with, its log, and where it stands."""

    cfg: RunConfig
    command: str
    rt: Runtime
    data: TrainingData
    model: torch.nn.Module
    ema: torch.nn.Module  # the EMA weights: validated, saved and shipped
    scheduler: object  # the forward noise process
    run_dir: Path
    stages: list[str]  # MLD: ["vae", "denoiser"]; MDM: ["denoiser"]; fewer with train.stages / 0 steps
    log_data: dict  # log.json: config, history (train losses), val (validation losses)
    foot: FootContactLoss | None = None  # train.foot_weight / latent_foot_weight > 0
    init_from: str = ""  # the warm start's checkpoint folder
    stage_index: int = 0
    start_step: int = 0  # the current stage's first step (non-zero after a resume)
    elapsed: float = 0.0  # training seconds, earlier runs of a resumed training included
    resume_tensors: dict | None = None  # the saved optimizer state, for the resumed stage's optimizer
    val_batches: list = field(default_factory=list)  # [((batch, text), (timesteps, noise))], fixed
    t_start: float = 0.0  # time.time() less the seconds of earlier runs
    t_run: float = 0.0  # when this process began its steps (train.max_minutes)

    @property
    def stage(self) -> str:
        return self.stages[self.stage_index]


def build(cfg: RunConfig, command: str, rt: Runtime, data: TrainingData) -> TrainingRun:
    """The model (the same initial weights on every rank, or the warm start's), its EMA copy, the noise schedule,
    the foot-contact loss, an empty log."""
    tc, mc = cfg.train, cfg.model
    stages = stage_names(cfg)
    torch.manual_seed(tc.seed)  # the same initial weights on every rank (EMA copies included)
    model = build_model(mc, data.mean, data.std).to(rt.device)
    if data.init_from is not None:
        try:
            loaded, info = load_checkpoint(data.init_from)
        except CheckpointError as exc:
            raise ConfigError(f"train.init_from {tc.init_from!r}: {exc}") from None
        model.load_state_dict(loaded.state_dict())
        model.latent_scale = info.latent_scale
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    torch.manual_seed(tc.seed + rt.rank)
    scheduler = train_scheduler(mc)
    counts = model.parameter_counts()
    rt.say(f"model {mc.family}: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items())
           + f"; device {rt.device}" + (f" x{rt.world}" if rt.ddp else "") + (", bf16 autocast" if rt.amp else ""))
    log_data = {"name": tc.name, "config": to_dict(cfg), "command": command, "history": [], "val": [],
                "parameters": counts, "device": str(rt.device), "world_size": rt.world, "stages": stages}
    foot = None
    if tc.foot_weight > 0 or tc.latent_foot_weight > 0:
        try:
            foot = FootContactLoss(model.layout, data.mean, data.std, mc.fps, rt.device, tc.foot_target)
        except ValueError as exc:
            raise ConfigError(f"train.foot_target / model.redundant_features: {exc}") from None
    init_from = str(data.init_from or "")
    if init_from:
        log_data["init_from"] = init_from
    return TrainingRun(cfg=cfg, command=command, rt=rt, data=data, model=model, ema=ema, scheduler=scheduler,
                       run_dir=repo_path(tc.out_dir) / tc.name, log_data=log_data, stages=stages, foot=foot,
                       init_from=init_from)


def resume(run: TrainingRun) -> None:
    """With train.resume and a saved state: weights, stage, step, log and random states from runs/<name>/state."""
    state_dir = run.run_dir / "state"
    if not (run.cfg.train.resume and (state_dir / "state.json").is_file()):
        return
    meta, tensors = load_training_state(state_dir, run.model, run.ema, run.rt.device)
    run.stage_index, run.start_step, run.elapsed = run.stages.index(meta["stage"]), meta["step"], meta["elapsed"]
    run.model.latent_scale = run.ema.latent_scale = meta["latent_scale"]
    run.log_data["history"], run.log_data["val"] = meta["history"], meta["val"]
    torch.set_rng_state(tensors["rng.torch"])
    rng = run.rt.batches_rng
    rng.set_state(tensors["rng.batches"].to(rng.get_state().device))
    run.resume_tensors = tensors
    run.rt.say(f"resumed {run.run_dir} at stage {meta['stage']} step {run.start_step}")


def fixed_validation_batches(run: TrainingRun) -> list:
    """Validation batches with their timesteps and noise, the same at every evaluation."""
    tc, data = run.cfg.train, run.data
    val_rng = torch.Generator(device=data.data_device).manual_seed(12345)
    batches = [data.batch(data.val_bank, val_rng, tc.batch_size) for _ in range(tc.eval_batches)]
    gen = torch.Generator(device="cpu").manual_seed(54321)
    device = run.rt.device
    noise = [(torch.randint(0, run.cfg.model.train_timesteps, (b.x.shape[0],), generator=gen).to(device),
              torch.randn(run.model.diffusion_shape(b.x.shape[0], b.x.shape[1]), generator=gen).to(device))
             for b, _ in batches]
    return list(zip(batches, noise))


# --- one stage: one step, evaluate, save ------------------------------------------------------------

@dataclass
class Stage:
    """One stage's training objects: the module it trains (`net`: DDP-wrapped), its EMA twin, optimizer, bar."""

    name: str  # "vae" | "decoder" | "denoiser"
    total: int  # steps
    base_lr: float
    module: torch.nn.Module
    ema_module: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    bar: object = None  # tqdm on rank 0 with train.progress


def _load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict, device) -> None:
    """Put the saved `opt.<param id>.<name>` tensors into `optimizer`'s state."""
    opt_state = optimizer.state_dict()
    for key, val in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = val.to(device) if name != "step" else val
    optimizer.load_state_dict(opt_state)


def start_stage(run: TrainingRun) -> Stage:
    """The current stage's module in train mode (the VAE frozen for the denoiser, its encoder for the decoder),
    AdamW, progress bar."""
    tc, rt, name = run.cfg.train, run.rt, run.stage
    vae = name in ("vae", "decoder")
    total, base_lr = (tc.vae_steps, tc.vae_lr) if vae else (tc.steps, tc.lr)
    module = run.model.vae if vae else run.model.denoiser
    ema_module = run.ema.vae if vae else run.ema.denoiser
    if not vae and run.model.vae is not None:
        run.model.vae.eval().requires_grad_(False)
    module.train()
    params = decoder_only(module) if name == "decoder" else list(module.parameters())
    net = module
    if rt.ddp:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(module, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(params, lr=base_lr, betas=(0.9, 0.99), weight_decay=tc.weight_decay,
                                  fused=rt.device.type == "cuda")
    if run.resume_tensors is not None and run.start_step > 0:
        _load_optimizer_state(optimizer, run.resume_tensors, rt.device)
    run.resume_tensors = None
    bar = None
    if rt.master and tc.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=run.start_step, desc=name, dynamic_ncols=True)
    rt.say(f"stage {name}: {total} steps, batch {tc.batch_size}" + (f" x {rt.world} ranks" if rt.ddp else "")
           + f", lr {base_lr:g}")
    return Stage(name=name, total=total, base_lr=base_lr, module=module, ema_module=ema_module, net=net,
                 optimizer=optimizer, bar=bar)


def stage_loss(run: TrainingRun, stage: str, net, batch, text, generator=None, fixed=None):
    """Loss of one batch for this stage; `fixed` = (timesteps, noise) for validation. Returns (loss, parts)."""
    tc, model, device = run.cfg.train, run.model, run.rt.device
    x, mask = batch.x, batch.frame_mask
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.rt.amp):
        if stage in ("vae", "decoder"):
            recon, mu, logvar = net(x, mask, sample=fixed is None)
            return vae_loss(recon.float(), x, mask, mu.float(), logvar.float(), tc.kl_weight, tc.vel_weight,
                            foot_loss=run.foot, foot_weight=tc.foot_weight)
        with torch.no_grad():  # MLD: the posterior mean, the latent the decoder reads best
            x0 = model.to_diffusion_space(x, mask, sample=False).float()
        mask_or_none = mask if model.vae is None else None

        def denoise(x_t, t, drop):
            return net(x_t, t, text.pooled, text.tokens, text.token_mask(), drop, mask_or_none, batch.lengths).float()

        if model.vae is None:  # MDM: the foot-contact loss on the x0 features
            foot_weight = tc.foot_weight

            def foot_loss(pred):
                return run.foot(pred, x, mask)
        else:  # MLD: on the x0 latents decoded by the frozen VAE decoder
            foot_weight = tc.latent_foot_weight

            def foot_loss(pred):
                return run.foot(model.vae.decode(pred * model.latent_scale, mask).float(), x, mask)

        foot = dict(foot_loss=foot_loss if run.foot is not None else None, foot_weight=foot_weight)
        if fixed is not None:
            return denoiser_loss(denoise, x0, mask_or_none, run.scheduler, None, 0.0, tc.vel_weight,
                                 timesteps=fixed[0], noise=fixed[1],
                                 drop=torch.zeros(x.shape[0], dtype=torch.bool, device=device), **foot)
        return denoiser_loss(denoise, x0, mask_or_none, run.scheduler, generator, run.cfg.model.cond_drop,
                             tc.vel_weight, **foot)


def one_step(run: TrainingRun, st: Stage, step: int):
    """Learning rate, a random batch, loss, backward, clipped AdamW step, EMA update. Returns (loss, parts, lr)."""
    tc = run.cfg.train
    lr = lr_at(step, st.total, st.base_lr, tc.warmup)
    for group in st.optimizer.param_groups:
        group["lr"] = lr
    batch, text = run.data.batch(run.data.train_bank, run.rt.batches_rng, tc.batch_size)
    loss, parts = stage_loss(run, st.name, st.net, batch, text, generator=run.rt.batches_rng)
    st.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if tc.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(st.module.parameters(), tc.grad_clip)
    st.optimizer.step()
    ema_update(st.ema_module, st.module, min(tc.ema_decay, (1 + step) / (10 + step)))
    return loss, parts, lr


def log_train_loss(run: TrainingRun, st: Stage, step: int, lr: float, parts: dict, loss_sum, loss_n: int,
                   t_last: float) -> float:
    """Append the mean loss since the last entry to the history and show it; returns the time now."""
    mean_loss = float(loss_sum) / loss_n
    now = time.time()
    entry = {"stage": st.name, "step": step + 1, "loss": mean_loss, "lr": lr,
             "steps_per_s": round(loss_n / max(now - t_last, 1e-9), 2), "time": round(now - run.t_start, 1)}
    entry.update({k: float(v) for k, v in parts.items()})
    run.log_data["history"].append(entry)
    if st.bar is not None:
        st.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
    elif run.rt.master:
        run.rt.say(f"{st.name} step {step + 1}/{st.total} loss {mean_loss:.4f}")
    return now


@torch.no_grad()
def evaluate(run: TrainingRun, st: Stage, step: int) -> float:
    """Validation loss of the EMA weights on the fixed batches; appended to the log and shown."""
    st.ema_module.eval()
    results = [stage_loss(run, st.name, st.ema_module, b, t, fixed=f) for (b, t), f in run.val_batches]
    val = float(np.mean([loss.item() for loss, _ in results])) if results else float("nan")
    parts = {k: float(np.mean([p[k].item() for _, p in results])) for k in (results[0][1] if results else {})}
    run.log_data["val"].append({"stage": st.name, "step": step, "loss": val, **parts})
    history = run.log_data["history"]
    if st.bar is not None:
        st.bar.set_postfix(loss=f"{history[-1]['loss']:.4f}" if history else "-", val=f"{val:.4f}")
    else:
        run.rt.say(f"{st.name} step {step}: val loss {val:.4f}")
    return val


def _state(run: TrainingRun, stage: str, step: int, elapsed: float) -> dict:
    """The JSON half of the training state: where to resume, and the log so far."""
    return {"stage": stage, "step": step, "elapsed": elapsed, "latent_scale": run.ema.latent_scale,
            "history": run.log_data["history"], "val": run.log_data["val"], "config": to_dict(run.cfg)}


def checkpoint_info(run: TrainingRun, step: int) -> CheckpointInfo:
    """What config.json says about the EMA checkpoint at `step`."""
    mc, log_data = run.cfg.model, run.log_data
    return CheckpointInfo(model=mc, mean=run.data.mean, std=run.data.std, latent_scale=run.ema.latent_scale,
                          name=run.cfg.train.name, step=step, corpus=describe(run.data.corpus), git_commit=git_commit(),
                          command=run.command,
                          extra={"stage": run.stage, "stages": run.stages, "init_from": run.init_from,
                                 "elapsed_s": round(run.elapsed, 1),
                                 "device": str(run.rt.device), "world_size": run.rt.world,
                                 "final_train_loss": log_data["history"][-1]["loss"] if log_data["history"] else None,
                                 "final_val_loss": log_data["val"][-1]["loss"] if log_data["val"] else None})


def save(run: TrainingRun, st: Stage, step: int) -> None:
    """Rank 0: the training state (to resume), the EMA checkpoint, log.json and the curve."""
    run.elapsed = time.time() - run.t_start
    if not run.rt.master:
        return
    save_training_state(run.run_dir / "state", run.model, run.ema, st.optimizer, run.rt.batches_rng,
                        _state(run, st.name, step, time.time() - run.t_start))
    save_checkpoint(run.run_dir / "checkpoint", run.ema, checkpoint_info(run, step), dtype=run.rt.save_dtype)
    (run.run_dir / "log.json").write_text(json.dumps(run.log_data, indent=1))
    plot_curves(run.log_data, run.run_dir / "curve.png")


def should_stop(run: TrainingRun, st: Stage, step: int) -> bool:
    """After `step`: train.stop_at reached, or train.max_minutes spent on any rank (checked at log steps)."""
    tc, rt = run.cfg.train, run.rt
    done_before = sum(tc.steps if s == "denoiser" else tc.vae_steps for s in run.stages[:run.stage_index])
    stop = tc.stop_at and done_before + step + 1 >= tc.stop_at and step + 1 < st.total
    if tc.max_minutes and (step + 1) % tc.log_every == 0:
        out_of_time = torch.tensor([float(time.time() - run.t_run > 60 * tc.max_minutes)], device=rt.device)
        if rt.ddp:
            _dist().all_reduce(out_of_time, op=_dist().ReduceOp.MAX)
        stop = stop or (bool(out_of_time.item()) and step + 1 < st.total)
    return bool(stop)


def train_stage(run: TrainingRun, st: Stage) -> bool:
    """The stage's steps from `run.start_step`, logging, evaluating and saving; True when stopped early."""
    tc = run.cfg.train
    loss_sum, loss_n, t_last = 0.0, 0, time.time()
    for step in range(run.start_step, st.total):
        loss, parts, lr = one_step(run, st, step)
        loss_sum += loss.detach()
        loss_n += 1
        if (step + 1) % tc.log_every == 0 or step + 1 == st.total:
            t_last = log_train_loss(run, st, step, lr, parts, loss_sum, loss_n, t_last)
            loss_sum, loss_n = 0.0, 0
        if st.bar is not None:
            st.bar.update(1)
        if tc.eval_every and ((step + 1) % tc.eval_every == 0 or step + 1 == st.total):
            evaluate(run, st, step + 1)
        if tc.save_every and (step + 1) % tc.save_every == 0 and step + 1 < st.total:
            save(run, st, step + 1)
        if should_stop(run, st, step):
            if st.bar is not None:
                st.bar.close()
            save(run, st, step + 1)
            run.rt.say(f"stopped at {st.name} step {step + 1}; continue with --train.resume true")
            return True
    if st.bar is not None:
        st.bar.close()
    return False


def calibrate_latent_scale(run: TrainingRun) -> None:
    """After the VAE: the denoiser learns the EMA VAE's latents (the VAE that ships), scaled to unit spread."""
    model, ema, rt, tc = run.model, run.ema, run.rt, run.cfg.train
    model.vae.load_state_dict(ema.vae.state_dict())
    with torch.no_grad():
        ema.vae.eval()
        zs = []
        for _ in range(max(4, tc.eval_batches)):
            b, _ = run.data.batch(run.data.train_bank, rt.batches_rng, tc.batch_size)
            zs.append(ema.vae.encode(b.x, b.frame_mask)[0].float())
        scale = float(torch.cat(zs).std())
        if rt.ddp:
            t = torch.tensor([scale], device=rt.device)
            _dist().all_reduce(t)
            scale = float(t) / rt.world
    model.latent_scale = ema.latent_scale = max(scale, 1e-3)
    rt.say(f"latent scale {ema.latent_scale:.4f}")


def end_stage(run: TrainingRun, st: Stage) -> None:
    """After a stage's last step: the latent scale (VAE) or the EMA decoder (decoder) for the denoiser stage, then
    the final save or the next stage's state."""
    if st.name == "vae":
        calibrate_latent_scale(run)
    elif st.name == "decoder":  # same encoder, same latents and scale; decode with the decoder that ships
        run.model.vae.load_state_dict(run.ema.vae.state_dict())
    run.elapsed = time.time() - run.t_start
    run.start_step = 0
    if run.stage_index == len(run.stages) - 1:
        save(run, st, st.total)
    elif run.rt.master:
        save_training_state(run.run_dir / "state", run.model, run.ema, st.optimizer, run.rt.batches_rng,
                            _state(run, run.stages[run.stage_index + 1], 0, run.elapsed))


def finish(run: TrainingRun) -> None:
    """Rank 0: the final log.json and curve (also inside the checkpoint folder)."""
    if not run.rt.master:
        return
    ckpt = run.run_dir / "checkpoint"
    run.log_data["elapsed_s"] = round(time.time() - run.t_start, 1)
    (run.run_dir / "log.json").write_text(json.dumps(run.log_data, indent=1))
    plot_curves(run.log_data, run.run_dir / "curve.png")
    (ckpt / "training_curve.png").write_bytes((run.run_dir / "curve.png").read_bytes())
    run.rt.say(f"done in {run.log_data['elapsed_s']:.0f} s: checkpoint {ckpt}")


# --- the whole training -------------------------------------------------------------------------

def train(cfg: RunConfig, command: str = "", log=print) -> Path:
    """Run the whole training described by `cfg`; returns the final checkpoint folder."""
    cfg.model.validate()
    stage_names(cfg)  # a bad train.stages fails before the data is loaded
    rt = setup_runtime(cfg.train, log)
    data = load_data(cfg, rt)
    run = build(cfg, command, rt, data)
    resume(run)
    run.val_batches = fixed_validation_batches(run)
    run.t_start = time.time() - run.elapsed
    run.t_run = time.time()
    for index in range(run.stage_index, len(run.stages)):
        run.stage_index = index
        st = start_stage(run)
        if train_stage(run, st):
            break
        end_stage(run, st)
    else:
        finish(run)
    shutdown(rt)
    return run.run_dir / "checkpoint"
