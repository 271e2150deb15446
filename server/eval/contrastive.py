"""Contrastive training of the evaluator and the reward model on a corpus (library code).

`train(corpus, kind, out_dir, ...)` reads top to bottom: FK joint positions for every clip
once, normalisation statistics from the training split, then epochs of random crops with
one random caption per clip, a symmetric InfoNCE loss whose negatives exclude every motion
that the query caption also describes (captions repeat: "walk"), and validation R-precision
on held-out subjects (distinct-caption batches, `metrics.py`) after each epoch; the best
epoch's weights are saved. Deterministic for a given seed on a given device.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from server.eval import metrics
from server.eval import motion_repr
from server.data.corpus import Corpus
from server.eval.evaluator import EVALUATOR_CONFIG, REWARD_CONFIG, TextMotionConfig, TextMotionModel
from server.model.text_embeddings import sentence_embeddings
from server.model.text_encoder import TextCache

DEFAULT_SEEDS = {"evaluator": 1234, "reward": 271828}


@dataclass
class TrainConfig:
    kind: str = "evaluator"  # "evaluator" | "reward"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    min_crop: float = 0.7  # random crops keep at least this fraction of a clip (up to max_frames)
    grad_clip: float = 1.0
    seed: int | None = None  # None: DEFAULT_SEEDS[kind]
    max_steps: int | None = None  # stop early (smoke tests)
    val_repeats: int = 5  # R-precision batchings averaged per validation
    model: dict = field(default_factory=dict)  # overrides of the kind's TextMotionConfig

    def resolved_seed(self) -> int:
        return DEFAULT_SEEDS[self.kind] if self.seed is None else self.seed

    def model_config(self) -> TextMotionConfig:
        base = {"evaluator": EVALUATOR_CONFIG, "reward": REWARD_CONFIG}[self.kind]
        return TextMotionConfig.from_dict({**asdict(base), **self.model})


# --- data ----------------------------------------------------------------------------------

@torch.no_grad()
def corpus_positions(corpus: Corpus, indices: list[int], chunk: int = 65536) -> list[np.ndarray]:
    """(T_i, 22, 3) float32 FK joint positions of the given clips (FK runs on all their frames at once)."""
    if not indices:
        return []
    frames = np.concatenate([np.arange(corpus.offsets[i], corpus.offsets[i + 1]) for i in indices])
    pos = np.empty((len(frames), 22, 3), np.float32)
    for s in range(0, len(frames), chunk):
        f = frames[s: s + chunk]
        pos[s: s + chunk] = motion_repr.forward_kinematics(
            torch.as_tensor(corpus.rotations[f], dtype=torch.float32),
            torch.as_tensor(corpus.translation[f], dtype=torch.float32)).numpy()
    lengths = [int(corpus.offsets[i + 1] - corpus.offsets[i]) for i in indices]
    return np.split(pos, np.cumsum(lengths)[:-1])


class SplitData:
    """One split's clips: positions, caption text indices (into `texts`) and normalised caption ids."""

    def __init__(self, corpus: Corpus, split: str, texts: dict[str, int], norm_ids: dict[str, int]):
        self.indices = [i for i in corpus.indices(split) if corpus.clips[i].captions
                        and corpus.clips[i].frames >= motion_repr.MIN_FRAMES + 1]
        self.positions = corpus_positions(corpus, self.indices)
        self.captions = [[texts[c.text] for c in corpus.clips[i].captions] for i in self.indices]
        self.caption_sets = [{norm_ids[metrics.normalize_caption(c.text)] for c in corpus.clips[i].captions}
                             for i in self.indices]
        self.groups = metrics.caption_groups([[c.text for c in corpus.clips[i].captions] for i in self.indices])

    def __len__(self) -> int:
        return len(self.indices)


def _crop(length: int, max_frames: int, min_crop: float, rng: np.random.Generator) -> tuple[int, int]:
    full = min(length, max_frames)
    lo = max(motion_repr.MIN_FRAMES + 1, int(math.ceil(min_crop * full)))
    n = int(rng.integers(min(lo, full), full + 1))
    start = int(rng.integers(0, length - n + 1))
    return start, start + n


def positives_matrix(text_norm_ids: np.ndarray, caption_sets: list[set[int]]) -> np.ndarray:
    """(B, B) bool: [i, j] when clip j is also described by text i (always on the diagonal)."""
    b = len(text_norm_ids)
    pos = np.array([[int(text_norm_ids[i]) in caption_sets[j] for j in range(b)] for i in range(b)])
    pos[np.arange(b), np.arange(b)] = True
    return pos


def contrastive_loss(text_z: torch.Tensor, motion_z: torch.Tensor, positives: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over unit vectors; off-diagonal positives are removed from the negatives."""
    logits = logit_scale * text_z @ motion_z.T
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(positives & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@torch.no_grad()
def embed_positions(model: TextMotionModel, positions: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
    """Centred crops of FK positions -> (N, E) motion embeddings (eval mode)."""
    was = model.training
    model.eval()
    out = []
    order = np.argsort([len(p) for p in positions])
    for s in range(0, len(positions), batch_size):
        chunk = []
        for i in order[s: s + batch_size]:
            a, b = motion_repr.crop_window(len(positions[i]), model.cfg.max_frames)
            chunk.append(positions[i][a:b])
        pos, lengths = motion_repr.pad_positions(chunk)
        feats, flen = motion_repr.features_from_positions(pos.to(model.device), lengths.to(model.device))
        out.append(model.encode_features(feats, flen).cpu())
    model.train(was)
    emb = torch.cat(out).numpy()
    result = np.empty_like(emb)
    result[order] = emb
    return result


def retrieval_metrics(model: TextMotionModel, data: SplitData, text_emb: torch.Tensor, seed: int,
                      repeats: int = 5, subset: int | None = None) -> dict:
    """R-precision top-1/2/3 and MM-Dist on a split (one random caption per clip per repeat).

    Batches hold one clip per caption group (clips sharing any caption), as in evaluation.
    """
    rng = np.random.default_rng(seed)
    idx = np.arange(len(data)) if subset is None or subset >= len(data) else rng.choice(len(data), subset, replace=False)
    motion_emb = embed_positions(model, [data.positions[i] for i in idx])
    was = model.training
    with torch.no_grad():
        model.eval()
        all_text = model.encode_text_embeddings(text_emb).cpu().numpy()
    model.train(was)
    r, mm, batch = [], [], 32
    for _ in range(repeats):
        pick = np.array([data.captions[i][int(rng.integers(len(data.captions[i])))] for i in idx])
        ids = data.groups[idx]
        batch = min(32, len(set(ids.tolist())))
        if batch < 2:
            break
        rp, _ = metrics.r_precision_batched(all_text[pick], motion_emb, ids, rng, batch_size=batch)
        r.append(rp)
        mm.append(metrics.matching_score(all_text[pick], motion_emb))
    if not r:
        return {"top1": float("nan"), "top2": float("nan"), "top3": float("nan"), "mm_dist": float("nan"),
                "batch_size": batch, "clips": int(len(idx))}
    r = np.mean(r, axis=0)
    return {"top1": float(r[0]), "top2": float(r[1]), "top3": float(r[2]), "mm_dist": float(np.mean(mm)),
            "batch_size": batch, "clips": int(len(idx))}


# --- training ------------------------------------------------------------------------------

def collect_texts(corpus: Corpus) -> list[str]:
    return sorted({c.text for clip in corpus.clips for c in clip.captions})


def train(corpus_path: str | Path, out_dir: str | Path, cfg: TrainConfig, text_cache: TextCache | None = None,
          encoder=None, device: str | None = None, progress: bool = True,
          log: Callable[[str], None] = print) -> dict:
    """Train one model; writes `out_dir/{model.safetensors, config.json, train_log.jsonl}`. Returns the summary."""
    from tqdm import tqdm

    seed = cfg.resolved_seed()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    corpus = Corpus(corpus_path)
    texts = collect_texts(corpus)
    text_index = {t: i for i, t in enumerate(texts)}
    norm_index: dict[str, int] = {}
    for t in texts:
        norm_index.setdefault(metrics.normalize_caption(t), len(norm_index))
    text_norm = np.array([norm_index[metrics.normalize_caption(t)] for t in texts])
    sent = torch.as_tensor(sentence_embeddings(texts, text_cache, encoder, cfg.model_config().text_encoder),
                           device=device)
    train_data = SplitData(corpus, "train", text_index, norm_index)
    val_data = SplitData(corpus, "val", text_index, norm_index)
    if len(train_data) < 2:
        raise ValueError(f"{corpus_path}: fewer than 2 usable training clips")
    if len(val_data) == 0:
        log("warning: the corpus has no validation clips; validating on the training split")
        val_data = train_data
    mcfg = cfg.model_config()
    model = TextMotionModel(mcfg).to(device)

    # normalisation statistics from centred crops of the training clips
    with torch.no_grad():
        total, total_sq, count = 0.0, 0.0, 0
        for s in range(0, len(train_data), 256):
            chunk = [p[slice(*motion_repr.crop_window(len(p), mcfg.max_frames))] for p in train_data.positions[s: s + 256]]
            pos, lengths = motion_repr.pad_positions(chunk)
            feats, flen = motion_repr.features_from_positions(pos.to(device), lengths.to(device))
            valid = (torch.arange(feats.shape[1], device=device)[None] < flen[:, None]).reshape(-1)
            f = feats.reshape(-1, feats.shape[-1])[valid].double()
            total, total_sq, count = total + f.sum(0), total_sq + (f * f).sum(0), count + len(f)
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
        model.set_normalization(mean.float(), std.float())

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    batch = min(cfg.batch_size, len(train_data))
    steps_per_epoch = max(1, len(train_data) // batch)
    total_steps = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    warmup = min(cfg.warmup_steps, max(1, total_steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) *
                                              0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total_steps)))))
    log(f"{cfg.kind}: {sum(p.numel() for p in params) / 1e6:.2f} M parameters ({mcfg.arch}), "
        f"{len(train_data)} train / {len(val_data)} val clips, {len(texts)} texts, {steps_per_epoch} steps/epoch, "
        f"{total_steps} steps, device {device}, seed {seed}")

    history, best, best_state, step = [], None, None, 0
    log_path = out_dir / "train_log.jsonl"
    log_file = open(log_path, "w", encoding="utf-8")
    val_seed = seed + 1
    epochs_run = 0
    for epoch in range(cfg.epochs):
        if step >= total_steps:
            break
        model.train()
        order = rng.permutation(len(train_data))
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg.kind} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, dynamic_ncols=True)
        losses, t_epoch = [], time.time()
        for k in bar:
            if step >= total_steps:
                break
            idx = order[k * batch: (k + 1) * batch]
            crops, pick = [], []
            for i in idx:
                a, b = _crop(len(train_data.positions[i]), mcfg.max_frames, cfg.min_crop, rng)
                crops.append(train_data.positions[i][a:b])
                caps = train_data.captions[i]
                pick.append(caps[int(rng.integers(len(caps)))])
            pos, lengths = motion_repr.pad_positions(crops)
            feats, flen = motion_repr.features_from_positions(pos.to(device), lengths.to(device))
            positives = positives_matrix(text_norm[pick], [train_data.caption_sets[i] for i in idx])
            positives |= train_data.groups[idx][:, None] == train_data.groups[idx][None, :]
            positives = torch.as_tensor(positives, device=device)
            text_in = sent[torch.as_tensor(pick, device=device)]
            if mcfg.negative_filter is not None:
                positives = positives | (text_in @ text_in.T > mcfg.negative_filter)
            motion_z = model.encode_features(feats, flen)
            text_z = model.encode_text_embeddings(text_in)
            loss = contrastive_loss(text_z, motion_z, positives, model.log_inv_temperature.exp().clamp(max=100.0))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        bar.close()
        epochs_run += 1
        val = retrieval_metrics(model, val_data, sent, val_seed, cfg.val_repeats)
        tr = retrieval_metrics(model, train_data, sent, val_seed, cfg.val_repeats,
                              subset=max(len(val_data), 32))
        row = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(losses)) if losses else float("nan"),
               "lr": sched.get_last_lr()[0], "temperature": float(1 / model.log_inv_temperature.detach().exp()),
               "val": val, "train_subset": tr, "seconds": round(time.time() - t_epoch, 2)}
        history.append(row)
        log_file.write(json.dumps(row) + "\n")
        log_file.flush()
        log(f"epoch {epoch + 1}: loss {row['loss']:.4f}  val R@1/2/3 {val['top1']:.3f}/{val['top2']:.3f}/"
            f"{val['top3']:.3f} MM-Dist {val['mm_dist']:.3f}  (train subset R@3 {tr['top3']:.3f})  {row['seconds']:.1f} s")
        if best is None or _score(val) > _score(best["val"]):
            best = row
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    log_file.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    summary = {
        "kind": cfg.kind, "train_config": asdict(cfg), "seed": seed, "best_epoch": best["epoch"] if best else None,
        "best_val": best["val"] if best else None, "epochs_run": epochs_run, "steps": step,
        "train_seconds": round(time.time() - t0, 1), "device": _device_name(device),
        "torch": torch.__version__, "corpus": str(corpus_path), "corpus_fingerprint": corpus.fingerprint,
        "licences": corpus.licences,
        "commercial_ok": all(corpus.clips[i].commercial_ok for i in train_data.indices),
        "split": {"train": len(train_data), "val": len(val_data)},
        "parameters": sum(p.numel() for p in params),
    }
    model.save(out_dir, meta=summary)
    log(f"saved {out_dir} (best epoch {summary['best_epoch']}, {summary['train_seconds']} s)")
    return summary


def _score(val: dict) -> tuple:
    """Model selection: val R@1 + R@2 + R@3 (R@3 alone saturates), then the smaller MM-Dist."""
    r = val["top1"] + val["top2"] + val["top3"]
    return (-1.0, 0.0) if math.isnan(r) else (round(r, 6), -val["mm_dist"])


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
