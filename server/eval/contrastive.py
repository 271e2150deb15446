"""Contrastive training of the evaluator and the reward model on a corpus (library code).

`train(corpus, out_dir, cfg, ...)` reads top to bottom: `load_data` (FK joint positions for every
clip once, caption embeddings), `fit_normalization` (statistics from the training split),
`make_optimization`, then per epoch `train_epoch` (each `train_step`: random crops with one random
caption per clip, a symmetric InfoNCE loss whose negatives exclude every motion that the query
caption also describes, since captions repeat: "walk"; with hard negatives (the reward model's
default, `hard_negatives.py`) each caption also meets one valid hard negative of its own motion:
mirror, reversal, x0.5 or x2 speed, another style of the same action) and `evaluate` (validation
R-precision on held-out subjects, distinct-caption batches, `metrics.py`); `save` keeps the best
epoch's weights. Only train-half wording is trained on: captions with a word of the held-out half
of `server/data/paraphrase.py` are left out (`wording="train"`). Deterministic for a given seed on
a given device.
"""
from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from server.data.corpus import Corpus
from server.data.paraphrase import heldout_vocabulary, words
from server.eval import hard_negatives as hn
from server.eval import metrics
from server.eval import motion_repr
from server.eval.evaluator import EVALUATOR_CONFIG, REWARD_CONFIG, TextMotionConfig, TextMotionModel
from server.model.text_embeddings import sentence_embeddings
from server.model.text_encoder import TextCache

DEFAULT_SEEDS = {"evaluator": 1234, "reward": 271828}
DEFAULT_NEGATIVES = {"evaluator": (), "reward": hn.NEGATIVE_TYPES}
WORDINGS = ("train", "all")


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
    hard_negatives: list[str] | None = None  # types of hn.NEGATIVE_TYPES; None: DEFAULT_NEGATIVES[kind]
    wording: str = "train"  # "train": leave out captions with a held-out-half word; "all": keep every caption
    captions_per_clip: int | None = None  # at most this many captions per clip (`caption_subset`); None: all

    def resolved_seed(self) -> int:
        return DEFAULT_SEEDS[self.kind] if self.seed is None else self.seed

    def negative_types(self) -> tuple[str, ...]:
        types = DEFAULT_NEGATIVES[self.kind] if self.hard_negatives is None else tuple(self.hard_negatives)
        unknown = set(types) - set(hn.NEGATIVE_TYPES)
        if unknown:
            raise ValueError(f"unknown hard negatives {sorted(unknown)}; expected some of {hn.NEGATIVE_TYPES}")
        return types

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
    """One split's clips: positions, caption text indices (into `texts`: captions not in it are left out) and
    normalised caption ids; `negatives` (a hn.NegativeTable) once `attach_negatives` ran."""

    def __init__(self, corpus: Corpus, split: str, texts: dict[str, int], norm_ids: dict[str, int]):
        self.indices = [i for i in corpus.indices(split) if any(c.text in texts for c in corpus.clips[i].captions)
                        and corpus.clips[i].frames >= motion_repr.MIN_FRAMES + 1]
        self.positions = corpus_positions(corpus, self.indices)
        kept = [[c.text for c in corpus.clips[i].captions if c.text in texts] for i in self.indices]
        self.captions = [[texts[t] for t in caps] for caps in kept]
        self.caption_sets = [{norm_ids[metrics.normalize_caption(t)] for t in caps} for caps in kept]
        self.groups = metrics.caption_groups(kept)
        self.labels = [hn.bandai_label(corpus.clips[i]) for i in self.indices]
        self.negatives: hn.NegativeTable | None = None

    def attach_negatives(self, texts: list[str], progress: bool = False) -> None:
        """Kinematic facts of every clip and of its reversed, slowed and sped-up copies (about 50 ms a clip)."""
        from tqdm import tqdm

        facts = [hn.clip_facts(p) for p in tqdm(self.positions, desc="hard negatives: facts", disable=not progress,
                                                 leave=False, dynamic_ncols=True)]
        self.negatives = hn.NegativeTable(facts, self.labels, texts)

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
                     logit_scale: torch.Tensor, hard_z: torch.Tensor | None = None,
                     hard_owner: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over unit vectors; off-diagonal positives are removed from the negatives.

    `hard_z` (M, E) with `hard_owner` (M,) in [0, B): hard negatives, each an extra negative of its owner's
    text only (text -> motion direction; a mirrored "turn left" may well match another text of the batch)."""
    logits = logit_scale * text_z @ motion_z.T
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(positives & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    rows = logits
    if hard_z is not None and len(hard_z):
        b, m = len(logits), len(hard_z)
        hard = logit_scale * text_z @ hard_z.T  # (B, M)
        own = torch.zeros(b, m, dtype=torch.bool, device=logits.device)
        own[hard_owner, torch.arange(m, device=logits.device)] = True
        rows = torch.cat([logits, hard.masked_fill(~own, float("-inf"))], dim=1)
    return 0.5 * (F.cross_entropy(rows, target) + F.cross_entropy(logits.T, target))


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
    """Every distinct caption text of the corpus, sorted."""
    return sorted({c.text for clip in corpus.clips for c in clip.captions})


def caption_subset(clip, n: int | None) -> list[str]:
    """At most `n` distinct caption texts of a clip, a subset fixed by the clip id (crc32-seeded shuffle), so that
    training and whoever fills the text cache pick the same ones. None: all of them, in corpus order."""
    texts = list(dict.fromkeys(c.text for c in clip.captions))
    if n is None or len(texts) <= n:
        return texts
    order = np.random.default_rng(zlib.crc32(clip.id.encode("utf-8"))).permutation(len(texts))
    return [texts[i] for i in sorted(order[:n])]


def training_texts(corpus: Corpus, n: int | None, splits=("train", "val")) -> list[str]:
    """Every caption text training reads (`caption_subset` of each clip of `splits`), sorted."""
    return sorted({t for s in splits for i in corpus.indices(s) for t in caption_subset(corpus.clips[i], n)})


def uses_heldout_wording(text: str) -> bool:
    """True when a caption uses a word of the held-out half of the paraphrase grammar (never trained on)."""
    return not heldout_vocabulary().isdisjoint(words(text))


def _setup(seed: int, device: str | None) -> tuple[np.random.Generator, str]:
    """Seed torch, make the crop/caption RNG, pick the device (deterministic cuDNN); returns (rng, device)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return rng, device


@dataclass
class TrainingData:
    """Every caption text with its sentence embedding and normalised-caption id; the train and val clips."""

    corpus: Corpus
    texts: list[str]
    text_norm: np.ndarray  # (N_texts,) int: id of each text's normalised caption
    sent: torch.Tensor  # (N_texts, D) sentence embeddings on `device`
    train: SplitData
    val: SplitData  # the train split when the corpus has no validation clips
    device: str  # where training runs


def load_data(corpus_path: str | Path, cfg: TrainConfig, text_cache: TextCache | None, encoder, device: str,
              log: Callable[[str], None], progress: bool = False) -> TrainingData:
    """The corpus's captions (embedded once) and its train and val clips as FK joint positions."""
    corpus = Corpus(corpus_path)
    texts = collect_texts(corpus) if cfg.captions_per_clip is None else training_texts(corpus, cfg.captions_per_clip)
    if cfg.wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, got {cfg.wording!r}")
    if cfg.wording == "train":
        held = [t for t in texts if uses_heldout_wording(t)]
        if held:
            log(f"left out {len(held)} of {len(texts)} captions with held-out-half words (e.g. {held[0]!r})")
            texts = [t for t in texts if not uses_heldout_wording(t)]
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
    if cfg.negative_types():
        t0 = time.time()
        train_data.attach_negatives(texts, progress)
        log(f"hard negatives {list(cfg.negative_types())}: facts of {len(train_data)} clips in {time.time() - t0:.0f} s")
    return TrainingData(corpus=corpus, texts=texts, text_norm=text_norm, sent=sent, train=train_data, val=val_data,
                        device=device)


@torch.no_grad()
def fit_normalization(model: TextMotionModel, positions: list[np.ndarray], device: str) -> None:
    """Set the model's feature mean and std from centred crops of the training clips (float64 sums)."""
    total, total_sq, count = 0.0, 0.0, 0
    for s in range(0, len(positions), 256):
        chunk = [p[slice(*motion_repr.crop_window(len(p), model.cfg.max_frames))] for p in positions[s: s + 256]]
        pos, lengths = motion_repr.pad_positions(chunk)
        feats, flen = motion_repr.features_from_positions(pos.to(device), lengths.to(device))
        valid = (torch.arange(feats.shape[1], device=device)[None] < flen[:, None]).reshape(-1)
        f = feats.reshape(-1, feats.shape[-1])[valid].double()
        total, total_sq, count = total + f.sum(0), total_sq + (f * f).sum(0), count + len(f)
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    model.set_normalization(mean.float(), std.float())


@dataclass
class Optimization:
    """AdamW (no weight decay on biases and norms), warm-up then cosine decay, and the step budget."""

    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    batch: int
    steps_per_epoch: int
    total_steps: int


def make_optimization(model: TextMotionModel, cfg: TrainConfig, num_train: int) -> Optimization:
    """The optimizer and schedule for `cfg.epochs` epochs over `num_train` clips (or `cfg.max_steps`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    batch = min(cfg.batch_size, num_train)
    steps_per_epoch = max(1, num_train // batch)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(cfg.max_steps, total_steps)
    warmup = min(cfg.warmup_steps, max(1, total_steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) *
                                              0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total_steps)))))
    return Optimization(params=params, opt=opt, sched=sched, batch=batch, steps_per_epoch=steps_per_epoch,
                        total_steps=total_steps)


def hard_negative_crops(data: SplitData, idx: np.ndarray, pick: list[int], crops: list[np.ndarray],
                        types: tuple[str, ...], max_frames: int, min_crop: float, rng: np.random.Generator
                        ) -> tuple[list[np.ndarray], list[int]]:
    """One hard negative per clip of the batch where its caption allows one (type drawn uniformly among the valid
    ones): the clip's crop transformed, or a crop of another style of its action. Returns (crops, batch positions)."""
    table = data.negatives
    out, owners = [], []
    for k, (i, text) in enumerate(zip(idx, pick)):
        options = [o for o in table.options(int(i), int(text)) if o in types]
        if not options:
            continue
        kind = options[int(rng.integers(len(options)))]
        if kind == "style":
            partners = table.style_partners(int(i), int(text))
            j = partners[int(rng.integers(len(partners)))]
            a, b = _crop(len(data.positions[j]), max_frames, min_crop, rng)
            neg = data.positions[j][a:b]
        else:
            neg = hn.transform_positions(crops[k], kind)
            if len(neg) > max_frames:
                start = int(rng.integers(0, len(neg) - max_frames + 1))
                neg = neg[start: start + max_frames]
            if len(neg) < motion_repr.MIN_FRAMES + 1:
                continue
        out.append(neg)
        owners.append(k)
    return out, owners


def train_step(model: TextMotionModel, data: TrainingData, idx: np.ndarray, cfg: TrainConfig,
               rng: np.random.Generator, optim: Optimization) -> float:
    """One batch of clips `idx`: random crops, one random caption each, hard negatives where configured,
    InfoNCE, a clipped AdamW step."""
    device, train_data, mcfg = data.device, data.train, model.cfg
    crops, pick = [], []
    for i in idx:
        a, b = _crop(len(train_data.positions[i]), mcfg.max_frames, cfg.min_crop, rng)
        crops.append(train_data.positions[i][a:b])
        caps = train_data.captions[i]
        pick.append(caps[int(rng.integers(len(caps)))])
    negs, owners = [], []
    if cfg.negative_types():
        negs, owners = hard_negative_crops(train_data, idx, pick, crops, cfg.negative_types(), mcfg.max_frames,
                                           cfg.min_crop, rng)
    pos, lengths = motion_repr.pad_positions(crops + negs)
    feats, flen = motion_repr.features_from_positions(pos.to(device), lengths.to(device))
    positives = positives_matrix(data.text_norm[pick], [train_data.caption_sets[i] for i in idx])
    positives |= train_data.groups[idx][:, None] == train_data.groups[idx][None, :]
    positives = torch.as_tensor(positives, device=device)
    text_in = data.sent[torch.as_tensor(pick, device=device)]
    if mcfg.negative_filter is not None:
        positives = positives | (text_in @ text_in.T > mcfg.negative_filter)
    all_z = model.encode_features(feats, flen)
    motion_z, hard_z = all_z[: len(crops)], all_z[len(crops):]
    text_z = model.encode_text_embeddings(text_in)
    loss = contrastive_loss(text_z, motion_z, positives, model.log_inv_temperature.exp().clamp(max=100.0),
                            hard_z, torch.as_tensor(owners, dtype=torch.long, device=device))
    optim.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(optim.params, cfg.grad_clip)
    optim.opt.step()
    optim.sched.step()
    return float(loss.detach())


def train_epoch(model: TextMotionModel, data: TrainingData, cfg: TrainConfig, rng: np.random.Generator,
                optim: Optimization, step: int, epoch: int, progress: bool) -> tuple[list[float], int]:
    """One pass over the training clips in a random order, up to the step budget; returns (losses, step)."""
    from tqdm import tqdm

    model.train()
    order = rng.permutation(len(data.train))
    bar = tqdm(range(optim.steps_per_epoch), desc=f"{cfg.kind} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
               leave=False, dynamic_ncols=True)
    losses = []
    for k in bar:
        if step >= optim.total_steps:
            break
        losses.append(train_step(model, data, order[k * optim.batch: (k + 1) * optim.batch], cfg, rng, optim))
        step += 1
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()
    return losses, step


def evaluate(model: TextMotionModel, data: TrainingData, cfg: TrainConfig, val_seed: int, epoch: int, step: int,
             losses: list[float], optim: Optimization, t_epoch: float, log: Callable[[str], None]) -> dict:
    """The epoch's log row: mean loss, R-precision and MM-Dist on the val split and a train subset."""
    val = retrieval_metrics(model, data.val, data.sent, val_seed, cfg.val_repeats)
    tr = retrieval_metrics(model, data.train, data.sent, val_seed, cfg.val_repeats, subset=max(len(data.val), 32))
    row = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(losses)) if losses else float("nan"),
           "lr": optim.sched.get_last_lr()[0], "temperature": float(1 / model.log_inv_temperature.detach().exp()),
           "val": val, "train_subset": tr, "seconds": round(time.time() - t_epoch, 2)}
    log(f"epoch {epoch + 1}: loss {row['loss']:.4f}  val R@1/2/3 {val['top1']:.3f}/{val['top2']:.3f}/"
        f"{val['top3']:.3f} MM-Dist {val['mm_dist']:.3f}  (train subset R@3 {tr['top3']:.3f})  {row['seconds']:.1f} s")
    return row


def save(model: TextMotionModel, out_dir: Path, summary: dict, log: Callable[[str], None]) -> None:
    """Write `out_dir/{model.safetensors, config.json}` with the summary as metadata."""
    model.save(out_dir, meta=summary)
    log(f"saved {out_dir} (best epoch {summary['best_epoch']}, {summary['train_seconds']} s)")


def train(corpus_path: str | Path, out_dir: str | Path, cfg: TrainConfig, text_cache: TextCache | None = None,
          encoder=None, device: str | None = None, progress: bool = True,
          log: Callable[[str], None] = print) -> dict:
    """Train one model; writes `out_dir/{model.safetensors, config.json, train_log.jsonl}`. Returns the summary."""
    seed = cfg.resolved_seed()
    rng, device = _setup(seed, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = load_data(corpus_path, cfg, text_cache, encoder, device, log, progress)
    mcfg = cfg.model_config()
    model = TextMotionModel(mcfg).to(device)
    fit_normalization(model, data.train.positions, device)
    optim = make_optimization(model, cfg, len(data.train))
    log(f"{cfg.kind}: {sum(p.numel() for p in optim.params) / 1e6:.2f} M parameters ({mcfg.arch}), "
        f"{len(data.train)} train / {len(data.val)} val clips, {len(data.texts)} texts, "
        f"{optim.steps_per_epoch} steps/epoch, {optim.total_steps} steps, device {device}, seed {seed}")

    best, best_state, step, epochs_run = None, None, 0, 0
    with open(out_dir / "train_log.jsonl", "w", encoding="utf-8") as log_file:
        for epoch in range(cfg.epochs):
            if step >= optim.total_steps:
                break
            t_epoch = time.time()
            losses, step = train_epoch(model, data, cfg, rng, optim, step, epoch, progress)
            epochs_run += 1
            row = evaluate(model, data, cfg, seed + 1, epoch, step, losses, optim, t_epoch, log)
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()
            if best is None or _score(row["val"]) > _score(best["val"]):
                best = row
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    summary = {
        "kind": cfg.kind, "train_config": asdict(cfg), "seed": seed, "best_epoch": best["epoch"] if best else None,
        "best_val": best["val"] if best else None, "epochs_run": epochs_run, "steps": step,
        "train_seconds": round(time.time() - t0, 1), "device": _device_name(device),
        "torch": torch.__version__, "corpus": str(corpus_path), "corpus_fingerprint": data.corpus.fingerprint,
        "licences": data.corpus.licences,
        "commercial_ok": all(data.corpus.clips[i].commercial_ok for i in data.train.indices),
        "split": {"train": len(data.train), "val": len(data.val)},
        "parameters": sum(p.numel() for p in optim.params),
    }
    save(model, out_dir, summary, log)
    return summary


def _score(val: dict) -> tuple:
    """Model selection: val R@1 + R@2 + R@3 (R@3 alone saturates), then the smaller MM-Dist."""
    r = val["top1"] + val["top2"] + val["top3"]
    return (-1.0, 0.0) if math.isnan(r) else (round(r, 6), -val["mm_dist"])


def _device_name(device: str) -> str:
    """The GPU's name, or the CPU's with the thread count (for the summary)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
