"""The training loop for a text-to-motion model (`python server/train.py` is its CLI); writes runs/<name>/.

What it does, top to bottom: set up (distributed, device, seeds) -> load the corpus, compute
features (cached) and their train-split statistics -> caption embeddings from the text cache
(encoding missing ones when the encoder is installed) -> keep everything on the device -> for
each stage (MLD: "vae" then "denoiser"; MDM: "denoiser"): AdamW with warm-up and cosine decay,
bf16 autocast on CUDA, gradient clipping, EMA weights, periodic validation loss on fixed
batches, periodic checkpoints -> final checkpoint of the EMA weights, training curve, log JSON.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from server.model.checkpoint import CheckpointInfo, git_commit, save_checkpoint
from server.model.config import ConfigError, RunConfig, to_dict
from server.data.corpus import Corpus
from server.model.diffusion import denoiser_loss, train_scheduler, vae_loss
from server.model.features import FeatureLayout, feature_stats
from server.model.networks import build_model
from server.model.text_encoder import TextCache, cache_dir as default_cache_dir, default_cache_path
from server.model.train_data import MotionBank, TextTable, clip_captions, corpus_features, describe

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_VERSION = 1


def repo_path(p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else REPO_ROOT / path


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of `base`."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def ema_update(ema_module: torch.nn.Module, module: torch.nn.Module, decay: float) -> None:
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
    from safetensors.torch import load_file

    meta = json.loads((path / "state.json").read_text())
    if meta.get("version") != STATE_VERSION:
        raise RuntimeError(f"{path}: training state version {meta.get('version')}, expected {STATE_VERSION}")
    tensors = load_file(str(path / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return meta, tensors


def plot_curves(log: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("vae", "denoiser") if any(h["stage"] == s for h in log["history"])]
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


def train(cfg: RunConfig, command: str = "", log=print) -> Path:
    """Run the whole training described by `cfg`; returns the final checkpoint folder."""
    tc, dc, mc = cfg.train, cfg.data, cfg.model
    mc.validate()

    # --- distributed, device, seeds ---------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ddp = world > 1
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = tc.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(f"cuda:{local_rank}" if want == "cuda" else want)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if ddp:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed + rank)
    np.random.seed(tc.seed + rank)
    batches_rng = torch.Generator(device=device).manual_seed(tc.seed * 1000 + rank)
    amp = tc.amp and device.type == "cuda"
    if tc.save_dtype not in ("float32", "float16"):
        raise ConfigError(f"train.save_dtype must be float32 or float16, got {tc.save_dtype!r}")
    save_dtype = getattr(torch, tc.save_dtype)
    say = log if master else (lambda *a, **k: None)
    run_dir = repo_path(tc.out_dir) / tc.name
    cache_root = repo_path(dc.cache_dir) if dc.cache_dir else default_cache_dir()

    # --- data: features, statistics, captions ---------------------------------------------------
    corpus = Corpus(repo_path(dc.corpus))
    layout = FeatureLayout(redundant=mc.redundant_features)
    if ddp and not master:
        dist.barrier()  # rank 0 computes and caches the features and text embeddings first
    features = corpus_features(corpus, layout, cache_root, log=say, workers=dc.workers)
    train_ids, val_ids = corpus.indices("train"), corpus.indices("val") or corpus.indices("test")
    mean, std = feature_stats([features[i] for i in train_ids], layout)
    captions = clip_captions(corpus, dc.caption_sources)
    texts = sorted({t for i in train_ids + val_ids for t in captions[i]})
    text_cache = TextCache(mc.text_encoder, repo_path(dc.text_cache) if dc.text_cache else
                           default_cache_path(mc.text_encoder, cache_root))
    text_cache.ensure(texts)
    if master:
        text_cache.save()
    if ddp and master:
        dist.barrier()
    data_device = device if dc.on_device else torch.device("cpu")
    table = TextTable(text_cache, texts, max(1, mc.text_tokens), data_device)
    rows = {i: [table.row[t] for t in captions[i]] for i in train_ids + val_ids}  # test clips stay unseen
    train_bank = MotionBank([features[i] for i in train_ids], [rows[i] for i in train_ids], mean, std,
                            data_device, pin_memory=not dc.on_device)
    val_bank = MotionBank([features[i] for i in val_ids], [rows[i] for i in val_ids], mean, std, data_device)
    say(f"corpus {corpus.path}: {train_bank.num_clips} train clips ({train_bank.num_frames / mc.fps / 3600:.2f} h), "
        f"{val_bank.num_clips} val clips, {len(texts)} captions; features {layout.dim}-d on {data_device}")

    def get_batch(bank, generator, size):
        b = bank.sample(size, mc.max_frames, min(dc.min_frames, mc.max_frames), dc.crop_min_ratio, generator, device)
        return b, table(b.captions.to(table.pooled.device)).to(device)

    # --- model, EMA, noise schedule ---------------------------------------------------------------
    torch.manual_seed(tc.seed)  # the same initial weights on every rank (EMA copies included)
    model = build_model(mc, mean, std).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    torch.manual_seed(tc.seed + rank)
    scheduler = train_scheduler(mc)
    counts = model.parameter_counts()
    say(f"model {mc.family}: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items()) + f"; device {device}"
        + (f" x{world}" if ddp else "") + (", bf16 autocast" if amp else ""))

    stages = ["vae", "denoiser"] if mc.family == "mld" else ["denoiser"]
    log_data = {"name": tc.name, "config": to_dict(cfg), "command": command, "history": [], "val": [],
                "parameters": counts, "device": str(device), "world_size": world}
    stage_index, start_step, elapsed = 0, 0, 0.0
    resume_tensors = None
    if tc.resume and (run_dir / "state" / "state.json").is_file():
        meta, resume_tensors = load_training_state(run_dir / "state", model, ema, device)
        stage_index, start_step, elapsed = stages.index(meta["stage"]), meta["step"], meta["elapsed"]
        model.latent_scale = ema.latent_scale = meta["latent_scale"]
        log_data["history"], log_data["val"] = meta["history"], meta["val"]
        torch.set_rng_state(resume_tensors["rng.torch"])
        batches_rng.set_state(resume_tensors["rng.batches"].to(batches_rng.get_state().device))
        say(f"resumed {run_dir} at stage {meta['stage']} step {start_step}")

    # Fixed validation batches: same crops, timesteps and noise at every evaluation.
    val_rng = torch.Generator(device=data_device).manual_seed(12345)
    val_batches = [get_batch(val_bank, val_rng, tc.batch_size) for _ in range(tc.eval_batches)]
    val_gen = torch.Generator(device="cpu").manual_seed(54321)
    val_noise = [(torch.randint(0, mc.train_timesteps, (b.x.shape[0],), generator=val_gen).to(device),
                  torch.randn(model.diffusion_shape(b.x.shape[0], b.x.shape[1]), generator=val_gen).to(device))
                 for b, _ in val_batches]

    def checkpoint_info(step):
        return CheckpointInfo(model=mc, mean=mean, std=std, latent_scale=ema.latent_scale, name=tc.name, step=step,
                              corpus=describe(corpus), git_commit=git_commit(), command=command,
                              extra={"stage": stages[stage_index], "elapsed_s": round(elapsed, 1),
                                     "device": str(device), "world_size": world,
                                     "final_train_loss": log_data["history"][-1]["loss"] if log_data["history"] else None,
                                     "final_val_loss": log_data["val"][-1]["loss"] if log_data["val"] else None})

    t_start = time.time() - elapsed
    t_run = time.time()
    for stage_index in range(stage_index, len(stages)):
        stage = stages[stage_index]
        total = tc.vae_steps if stage == "vae" else tc.steps
        base_lr = tc.vae_lr if stage == "vae" else tc.lr
        module = model.vae if stage == "vae" else model.denoiser
        ema_module = ema.vae if stage == "vae" else ema.denoiser
        if stage == "denoiser" and model.vae is not None:
            model.vae.eval().requires_grad_(False)
        module.train()
        net = module
        if ddp:
            from torch.nn.parallel import DistributedDataParallel

            net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = torch.optim.AdamW(module.parameters(), lr=base_lr, betas=(0.9, 0.99), weight_decay=tc.weight_decay,
                                      fused=device.type == "cuda")
        if resume_tensors is not None and start_step > 0:
            opt_state = optimizer.state_dict()
            for key, val in resume_tensors.items():
                if key.startswith("opt."):
                    _, pid, name = key.split(".", 2)
                    opt_state["state"].setdefault(int(pid), {})[name] = val.to(device) if name != "step" else val
            optimizer.load_state_dict(opt_state)
        resume_tensors = None

        def stage_loss(net_, batch, text, generator=None, fixed=None):
            """Loss of one batch for this stage; `fixed` = (timesteps, noise) for validation."""
            x, mask = batch.x, batch.frame_mask
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                if stage == "vae":
                    recon, mu, logvar = net_(x, mask, sample=fixed is None)
                    return vae_loss(recon.float(), x, mask, mu.float(), logvar.float(), tc.kl_weight, tc.vel_weight)
                with torch.no_grad():  # MLD: the posterior mean, the latent the decoder reads best
                    x0 = model.to_diffusion_space(x, mask, sample=False).float()
                mask_or_none = mask if model.vae is None else None

                def denoise(x_t, t, drop):
                    return net_(x_t, t, text.pooled, text.tokens, text.token_mask(), drop, mask_or_none,
                                batch.lengths).float()

                if fixed is not None:
                    return denoiser_loss(denoise, x0, mask_or_none, scheduler, None, 0.0, tc.vel_weight,
                                         timesteps=fixed[0], noise=fixed[1],
                                         drop=torch.zeros(x.shape[0], dtype=torch.bool, device=device))
                return denoiser_loss(denoise, x0, mask_or_none, scheduler, generator, mc.cond_drop, tc.vel_weight)

        @torch.no_grad()
        def evaluate(step):
            ema_module.eval()
            losses = [stage_loss(ema_module, b, t, fixed=f)[0].item() for (b, t), f in zip(val_batches, val_noise)]
            entry = {"stage": stage, "step": step, "loss": float(np.mean(losses)) if losses else float("nan")}
            log_data["val"].append(entry)
            return entry["loss"]

        def save(step, final=False):
            if not master:
                return
            save_training_state(run_dir / "state", model, ema, optimizer, batches_rng,
                                {"stage": stage, "step": step, "elapsed": time.time() - t_start,
                                 "latent_scale": ema.latent_scale, "history": log_data["history"],
                                 "val": log_data["val"], "config": to_dict(cfg)})
            save_checkpoint(run_dir / "checkpoint", ema, checkpoint_info(step), dtype=save_dtype)
            (run_dir / "log.json").write_text(json.dumps(log_data, indent=1))
            plot_curves(log_data, run_dir / "curve.png")

        bar = None
        if master and tc.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start_step, desc=stage, dynamic_ncols=True)
        say(f"stage {stage}: {total} steps, batch {tc.batch_size}" + (f" x {world} ranks" if ddp else "")
            + f", lr {base_lr:g}")
        loss_sum, loss_n, t_last = 0.0, 0, time.time()
        for step in range(start_step, total):
            lr = lr_at(step, total, base_lr, tc.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch, text = get_batch(train_bank, batches_rng, tc.batch_size)
            loss, parts = stage_loss(net, batch, text, generator=batches_rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(module.parameters(), tc.grad_clip)
            optimizer.step()
            ema_update(ema_module, module, min(tc.ema_decay, (1 + step) / (10 + step)))
            loss_sum += loss.detach()
            loss_n += 1
            if (step + 1) % tc.log_every == 0 or step + 1 == total:
                mean_loss = float(loss_sum) / loss_n
                now = time.time()
                entry = {"stage": stage, "step": step + 1, "loss": mean_loss, "lr": lr,
                         "steps_per_s": round(loss_n / max(now - t_last, 1e-9), 2), "time": round(now - t_start, 1)}
                entry.update({k: float(v) for k, v in parts.items()})
                log_data["history"].append(entry)
                loss_sum, loss_n, t_last = 0.0, 0, now
                if bar is not None:
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
                elif master:
                    say(f"{stage} step {step + 1}/{total} loss {mean_loss:.4f}")
            if bar is not None:
                bar.update(1)
            if tc.eval_every and ((step + 1) % tc.eval_every == 0 or step + 1 == total):
                val = evaluate(step + 1)
                if bar is not None:
                    bar.set_postfix(loss=f"{log_data['history'][-1]['loss']:.4f}" if log_data["history"] else "-",
                                    val=f"{val:.4f}")
                else:
                    say(f"{stage} step {step + 1}: val loss {val:.4f}")
            if tc.save_every and (step + 1) % tc.save_every == 0 and step + 1 < total:
                elapsed = time.time() - t_start
                save(step + 1)
            done_before = sum(tc.vae_steps if s == "vae" else tc.steps for s in stages[:stage_index])
            stop = tc.stop_at and done_before + step + 1 >= tc.stop_at and step + 1 < total
            if tc.max_minutes and (step + 1) % tc.log_every == 0:
                out_of_time = torch.tensor([float(time.time() - t_run > 60 * tc.max_minutes)], device=device)
                if ddp:
                    dist.all_reduce(out_of_time, op=dist.ReduceOp.MAX)
                stop = stop or (bool(out_of_time.item()) and step + 1 < total)
            if stop:
                if bar is not None:
                    bar.close()
                elapsed = time.time() - t_start
                save(step + 1)
                say(f"stopped at {stage} step {step + 1}; continue with --train.resume true")
                if ddp:
                    dist.barrier()
                    dist.destroy_process_group()
                return run_dir / "checkpoint"
        if bar is not None:
            bar.close()
        if stage == "vae":
            # The denoiser learns the EMA VAE's latents (the VAE that ships), scaled to unit spread.
            model.vae.load_state_dict(ema.vae.state_dict())
            with torch.no_grad():
                ema.vae.eval()
                zs = []
                for _ in range(max(4, tc.eval_batches)):
                    b, _ = get_batch(train_bank, batches_rng, tc.batch_size)
                    zs.append(ema.vae.encode(b.x, b.frame_mask)[0].float())
                scale = float(torch.cat(zs).std())
                if ddp:
                    t = torch.tensor([scale], device=device)
                    dist.all_reduce(t)
                    scale = float(t) / world
            model.latent_scale = ema.latent_scale = max(scale, 1e-3)
            say(f"latent scale {ema.latent_scale:.4f}")
        elapsed = time.time() - t_start
        start_step = 0
        if stage_index == len(stages) - 1:
            save(total, final=True)
        elif master:
            save_training_state(run_dir / "state", model, ema, optimizer, batches_rng,
                                {"stage": stages[stage_index + 1], "step": 0, "elapsed": elapsed,
                                 "latent_scale": ema.latent_scale, "history": log_data["history"],
                                 "val": log_data["val"], "config": to_dict(cfg)})

    if master:
        ckpt = run_dir / "checkpoint"
        log_data["elapsed_s"] = round(time.time() - t_start, 1)
        (run_dir / "log.json").write_text(json.dumps(log_data, indent=1))
        plot_curves(log_data, run_dir / "curve.png")
        (ckpt / "training_curve.png").write_bytes((run_dir / "curve.png").read_bytes())
        say(f"done in {log_data['elapsed_s']:.0f} s: checkpoint {ckpt}")
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir / "checkpoint"
