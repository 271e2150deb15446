"""Preference data for fine-tuning: picks and corpus clips -> preference items -> padded batches.

    records = export_preferences("picks.db")                   # server/service/picks.py
    items, stats = items_from_picks(records, corpus)           # chosen / rejected / none-good
    items += items_from_corpus(corpus)                         # the paper's setting: dataset motions
    bank = PreferenceBank(items, model, text_table, corpus_features=...)
    batch = bank.batch([0, 5, 7], generator, device)           # x_w (B, T, D) normalised features, ...

An item is one caption (or a clip's paraphrases) with an optional preferred motion and the
motions an artist rejected. How picks become items:
- a pick with a chosen candidate: preferred = the chosen motion, rejected = the others it
  rejected (offline DPO's loser);
- "none are good" with `corpus`: when the prompt is one of the corpus's train captions
  (compared normalised), the preferred motion is that dataset clip and the rejected ones
  stay; without a match (or without a corpus) it has no preferred motion: online DPO can
  still use its prompt, offline DPO its rejected candidates as extra losers of the picks
  that have a preferred motion for the same prompt (`lend_rejected`), SoPo and SFT nothing.
  `none_good_usage` counts which of these happened, for the run's summary.

Knows nothing of losses or optimisers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from server.model.checkpoint import CheckpointError, read_config
from server.data.corpus import Corpus
from server.model.features import FeatureLayout, motion_to_features
from server.eval.metrics import normalize_caption
from server.service.picks import PreferenceRecord
from server.model.text_encoder import TextCache, TextEmbeddings
from shared.motion import Motion
from shared.skeleton import FPS


class PreferenceDataError(ValueError):
    """The preference data cannot be used as asked; the message says why and what to do."""


@dataclass
class PreferenceItem:
    captions: list[str]  # one is drawn per use (corpus clips carry paraphrases)
    preferred: Motion | None = None  # the offline preferred motion x_w (None: use corpus_index, or none)
    rejected: list[Motion] = field(default_factory=list)  # fixed losers (artist-rejected candidates)
    corpus_index: int | None = None  # preferred = this corpus clip (features from the corpus cache)
    source: str = "pick"  # "pick" | "none-good+corpus" | "none-good" | "corpus"
    request_id: str | None = None

    @property
    def has_preferred(self) -> bool:
        return self.preferred is not None or self.corpus_index is not None


@dataclass
class PickStats:
    records: int = 0
    chosen: int = 0  # picks with a chosen candidate
    none_good: int = 0  # "none are good" picks
    none_good_matched: int = 0  # of those, with a corpus clip for the prompt
    rejected_motions: int = 0
    model_ids: dict = field(default_factory=dict)  # model id -> number of picks

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _resample(m: Motion) -> Motion:
    return m if abs(m.fps - FPS) < 1e-6 else m.resample(FPS)


def corpus_caption_index(corpus: Corpus, split: str = "train") -> dict[str, list[int]]:
    """Normalised caption -> the clips of `split` that carry it."""
    index: dict[str, list[int]] = {}
    for i in corpus.indices(split):
        for c in corpus.clips[i].captions:
            index.setdefault(normalize_caption(c.text), []).append(i)
    return index


def items_from_picks(records: list[PreferenceRecord], corpus: Corpus | None = None,
                     split: str = "train") -> tuple[list[PreferenceItem], PickStats]:
    """Picks -> items (see the module docstring); every record gives one item."""
    stats = PickStats(records=len(records))
    caption_index = corpus_caption_index(corpus, split) if corpus is not None else {}
    items = []
    for rec in records:
        stats.model_ids[rec.model_id] = stats.model_ids.get(rec.model_id, 0) + 1
        stats.rejected_motions += len(rec.rejected)
        rejected = [_resample(m) for m in rec.rejected]
        if rec.chosen is not None:
            stats.chosen += 1
            items.append(PreferenceItem([rec.prompt], _resample(rec.chosen), rejected, source="pick",
                                        request_id=rec.request_id))
            continue
        stats.none_good += 1
        match = caption_index.get(normalize_caption(rec.prompt))
        if match:
            stats.none_good_matched += 1
            items.append(PreferenceItem([rec.prompt], None, rejected, corpus_index=match[0],
                                        source="none-good+corpus", request_id=rec.request_id))
        else:
            items.append(PreferenceItem([rec.prompt], None, rejected, source="none-good", request_id=rec.request_id))
    return items, stats


def items_from_corpus(corpus: Corpus, split: str = "train", max_clips: int | None = None,
                      seed: int = 0) -> list[PreferenceItem]:
    """Dataset motions as preferred motions for their own captions (SoPo's setting)."""
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions and corpus.clips[i].frames >= 2]
    if max_clips is not None and len(idx) > max_clips:
        idx = sorted(np.random.default_rng(seed).choice(idx, max_clips, replace=False).tolist())
    return [PreferenceItem([c.text for c in corpus.clips[i].captions], corpus_index=i, source="corpus") for i in idx]


def lend_rejected(items: list[PreferenceItem]) -> set[int]:
    """A "none are good" item without a preferred motion gives its rejected candidates to the items with a
    preferred motion and the same prompt (compared normalised), as more fixed losers; returns the lenders."""
    by_prompt: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if it.has_preferred and it.source != "corpus":
            by_prompt.setdefault(normalize_caption(it.captions[0]), []).append(i)
    lenders = set()
    for i, it in enumerate(items):
        if it.source != "none-good" or it.has_preferred or not it.rejected:
            continue
        takers = by_prompt.get(normalize_caption(it.captions[0]), [])
        for j in takers:
            items[j].rejected = items[j].rejected + list(it.rejected)
        if takers:
            lenders.add(i)
    return lenders


def none_good_usage(items: list[PreferenceItem], method: str, lenders: set[int]) -> dict:
    """How `method` uses the "none are good" picks among `items`: counts of each way (they sum to `picks`)."""
    usage = {"picks": 0, "with_corpus_motion": 0, "as_losers": 0, "as_prompt": 0, "unused": 0}
    for i, it in enumerate(items):
        if not it.source.startswith("none-good"):
            continue
        usage["picks"] += 1
        if it.has_preferred:
            usage["with_corpus_motion"] += 1
        elif method == "online-dpo":
            usage["as_prompt"] += 1
        elif method == "offline-dpo" and i in lenders:
            usage["as_losers"] += 1
        else:
            usage["unused"] += 1
    return usage


def describe_none_good(usage: dict, method: str, corpus_given: bool) -> str:
    """One line for the log and the report: how many none-good picks were used, and how."""
    line = (f"none-good picks for {method}: {usage['picks']} ({usage['with_corpus_motion']} with the corpus motion of "
            f"their caption, {usage['as_losers']} as losers of picks on the same prompt, {usage['as_prompt']} as "
            f"prompts for online samples, {usage['unused']} unused")
    if usage["unused"]:
        why = {"sopo": "SoPo needs a preferred motion", "sft": "SFT needs a preferred motion",
               "offline-dpo": "offline DPO pairs them only with a chosen pick on the same prompt"}.get(method, "")
        line += f": {why}" if why else ""
        if not corpus_given:
            line += "; --corpus gives prompts that are corpus captions their dataset motion"
    return line + ")"


def usable(items: list[PreferenceItem], method: str) -> list[int]:
    """Indices of the items `method` can train on: online DPO needs only a caption, the others a
    preferred motion (offline DPO's loser: a rejected motion, else one made once by the reference)."""
    if method == "online-dpo":
        return list(range(len(items)))
    return [i for i, it in enumerate(items) if it.has_preferred]


# --- which model made the picks -------------------------------------------------------------------

def check_family(records: list[PreferenceRecord], base_family: str, base_ids: set[str],
                 search_dirs: list[Path]) -> dict[str, str]:
    """The family of every model the picks were made on; raises PreferenceDataError on another family.

    A record's family comes from its stored params ("family", stored by the server), else from a
    checkpoint of that name in `search_dirs`, else from `base_ids` (the base checkpoint's name and
    its fine-tuning ancestors). Unknown models are refused too: we cannot tell.
    """
    model_ids = sorted({rec.model_id for rec in records})
    families: dict[str, str] = {}
    for rec in records:
        fam = rec.params.get("family") if isinstance(rec.params, dict) else None
        if fam:
            families.setdefault(rec.model_id, fam)
    unknown = [m for m in model_ids if m not in families]
    for model_id in unknown:
        if model_id in base_ids:
            families[model_id] = base_family
            continue
        for folder in search_dirs:
            try:
                cfg = read_config(Path(folder) / model_id)
            except (CheckpointError, OSError):
                continue
            families[model_id] = cfg.get("model", {}).get("family", "?")
            break
    missing = [m for m in model_ids if m not in families]
    if missing:
        raise PreferenceDataError(
            f"cannot tell which model family made the picks of model(s) {missing}: no stored family, and no "
            f"checkpoint of that name in {[str(d) for d in search_dirs]}; pass --models DIR (the server's models "
            "folder) or --skip-family-check if you are sure")
    other = {m: f for m, f in families.items() if f != base_family}
    if other:
        raise PreferenceDataError(
            f"picks were made on another model family: {other}, but the base checkpoint is {base_family!r}; "
            f"fine-tune a {sorted(set(other.values()))[0]} base (--base) or use picks made on a {base_family} model")
    return families


def lineage_ids(config: dict) -> set[str]:
    """A checkpoint's own name plus the names of the checkpoints it was fine-tuned from."""
    ids = {config.get("name", "")}
    ft = config.get("extra", {}).get("finetune", {})
    ids.update(ft.get("lineage", []))
    return {i for i in ids if i}


# --- text embeddings from a cache -------------------------------------------------------------------

class CachedTextConditioner:
    """Drop-in for `text_encoder.TextConditioner` reading a `TextCache` (encoding only missing texts).

    Machines without the MiniLM weights (the GPU box) sample from a cache file made elsewhere:
    `generator.text = CachedTextConditioner(cache, device)`.
    """

    def __init__(self, cache: TextCache, device):
        self.cache = cache
        self.device = device

    def __call__(self, texts: list[str], max_tokens: int) -> TextEmbeddings:
        self.cache.ensure(texts)
        return self.cache.lookup(list(texts), max(1, max_tokens)).to(self.device)


# --- batches -------------------------------------------------------------------------------------------

@dataclass
class PreferenceBatch:
    x_w: torch.Tensor  # (B, T, D) normalised features of the preferred motions, zero on padded frames
    mask_w: torch.Tensor  # (B, T) bool
    len_w: torch.Tensor  # (B,) int64
    text_rows: torch.Tensor  # (B,) rows of the bank's TextTable
    captions: list[str]  # (B,) the drawn caption of each item
    items: list[int]  # (B,) item indices
    x_r: torch.Tensor | None = None  # (B, T', D) one rejected motion per item (offline losers), or None
    mask_r: torch.Tensor | None = None
    len_r: torch.Tensor | None = None
    has_r: torch.Tensor | None = None  # (B,) bool: item has an artist-rejected motion


def _pad(seqs: list[torch.Tensor], dim: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    T = int(lengths.max())
    x = torch.zeros(len(seqs), T, dim)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
    mask = torch.arange(T)[None] < lengths[:, None]
    return x.to(device), mask.to(device), lengths.to(device)


class PreferenceBank:
    """Items' features (normalised with the model's statistics) and caption rows, ready to batch.

    `corpus_features`: unnormalised features per corpus clip (`train_data.corpus_features`),
    needed when items refer to corpus clips. Motions longer than `max_frames` are cropped at
    random in every batch (captions describe whole clips; the crop keeps the longest window).
    An item without a preferred motion (online DPO on a prompt) gets the length of its first
    rejected motion, else `default_frames`; its x_w rows are not used.
    """

    def __init__(self, items: list[PreferenceItem], layout: FeatureLayout, mean: np.ndarray, std: np.ndarray,
                 text_rows: dict[str, int], max_frames: int, corpus_features: list[np.ndarray] | None = None,
                 default_frames: int = 120):
        self.items = items
        self.max_frames = max_frames
        self.default_frames = min(default_frames, max_frames)
        self.dim = layout.dim
        mean = np.asarray(mean, np.float32)
        std = np.asarray(std, np.float32)

        def norm(f: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(((np.asarray(f, np.float32) - mean) / std).astype(np.float32))

        self.preferred: list[torch.Tensor | None] = []
        self.rejected: list[list[torch.Tensor]] = []
        for it in items:
            if it.preferred is not None:
                self.preferred.append(norm(motion_to_features(it.preferred, layout)))
            elif it.corpus_index is not None:
                if corpus_features is None:
                    raise PreferenceDataError("items refer to corpus clips but no corpus features were given")
                self.preferred.append(norm(corpus_features[it.corpus_index]))
            else:
                self.preferred.append(None)
            self.rejected.append([norm(motion_to_features(m, layout)) for m in it.rejected])
        missing = sorted({c for it in items for c in it.captions if c not in text_rows})
        if missing:
            raise PreferenceDataError(f"{len(missing)} captions have no text embedding (e.g. {missing[0]!r})")
        self.text_rows = text_rows

    def __len__(self) -> int:
        return len(self.items)

    def _crop(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if len(x) <= self.max_frames:
            return x
        start = int(torch.randint(0, len(x) - self.max_frames + 1, (1,), generator=g))
        return x[start:start + self.max_frames]

    def batch(self, idx: list[int], g: torch.Generator, device, with_rejected: bool = False) -> PreferenceBatch:
        """Items `idx` -> one padded batch; a caption and (with_rejected) a rejected motion drawn per item."""
        caps = []
        for i in idx:
            c = self.items[i].captions
            caps.append(c[int(torch.randint(0, len(c), (1,), generator=g))] if len(c) > 1 else c[0])
        rows = torch.tensor([self.text_rows[c] for c in caps], dtype=torch.int64, device=device)
        pref = []
        for i in idx:
            p = self.preferred[i]
            if p is None:  # online DPO on a caption alone: only the length is used (a rejected motion's, or default)
                p = self.rejected[i][0] if self.rejected[i] else torch.zeros(self.default_frames, self.dim)
            pref.append(self._crop(p, g))
        x_w, mask_w, len_w = _pad(pref, self.dim, device)
        out = PreferenceBatch(x_w * mask_w[..., None], mask_w, len_w, rows, caps, list(idx))
        if with_rejected:
            rej, has = [], []
            for i in idx:
                r = self.rejected[i]
                has.append(bool(r))
                if r:
                    pick = r[int(torch.randint(0, len(r), (1,), generator=g))] if len(r) > 1 else r[0]
                    rej.append(self._crop(pick, g))
                else:
                    rej.append(torch.zeros(2, self.dim))
            out.x_r, out.mask_r, out.len_r = _pad(rej, self.dim, device)
            out.x_r = out.x_r * out.mask_r[..., None]
            out.has_r = torch.tensor(has, device=device)
        return out


def describe_items(items: list[PreferenceItem]) -> dict:
    counts: dict[str, int] = {}
    for it in items:
        counts[it.source] = counts.get(it.source, 0) + 1
    return {"items": len(items), "by_source": counts,
            "with_preferred": sum(it.has_preferred for it in items),
            "with_rejected": sum(bool(it.rejected) for it in items)}


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=str)
