"""A compact, lossless-enough copy of a corpus's training data, for a machine with a small upload limit.

The GPU machines take at most 64 MiB of files per call; the corpus (motions.npz, ~200 MB) and
the text cache do not fit. A pack keeps only what training reads:
- the train and val clips' metadata (clips.jsonl, gzip), mirrored copies included;
- the motions of the non-mirrored train and val clips (mirrored ones are rebuilt with
  `Motion.mirror()`, exactly as the corpus build made them): quaternions as int16 (step 3e-5,
  renormalised on unpacking), pelvis positions as int32 tenths of a millimetre, both delta
  coded over time and deflated;
- the caption embeddings of these clips: token embeddings as int8 with one scale per dimension
  (about 1% relative error, cosine >= 0.998), pooled embeddings as float16.

    python server/model/train_pack.py pack --corpus data/corpus --out data/pack      # here (~38 MB)
    python server/model/train_pack.py unpack --pack data/pack --out data/corpus      # on the GPU machine

Unpacking writes an ordinary corpus folder, whose `splits.json` records the source corpus's
fingerprint, and the text cache where train.py looks by default
(`data/cache/text/<encoder>.safetensors`). It refuses to overwrite either without --force.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from server.data.corpus import Clip, Corpus, write_corpus
from server.model.text_encoder import DEFAULT_ENCODER, TextCache, TextEmbeddings, default_cache_path
from shared import rotations as rot
from shared.motion import Motion

QUAT_SCALE = 32767.0
POS_SCALE = 10000.0  # 0.1 mm
PACK_FORMAT = "sopo-train-pack-1"


def pack(corpus_dir: str | Path, out: str | Path, encoder_id: str = DEFAULT_ENCODER,
         text_cache: str | Path | None = None, splits=("train", "val")) -> Path:
    corpus = Corpus(corpus_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keep = [i for s in splits for i in corpus.indices(s)]
    by_id = {c.id: i for i, c in enumerate(corpus.clips)}
    stored = [i for i in keep if not corpus.clips[i].mirrored or corpus.clips[i].id[:-2] not in by_id]
    q_parts, p_parts, lengths = [], [], []
    for i in stored:
        m = corpus.motion(i)
        q = rot.quat_fix_continuity(m.rotations.astype(np.float64), axis=0)
        qi = np.round(q * QUAT_SCALE).astype(np.int16)
        pi = np.round(m.translation.astype(np.float64) * POS_SCALE).astype(np.int32)
        q_parts.append(np.diff(qi, axis=0, prepend=np.zeros_like(qi[:1])))  # int16 wrap-around is undone by cumsum
        p_parts.append(np.diff(pi, axis=0, prepend=np.zeros_like(pi[:1])))
        lengths.append(m.num_frames)
    np.savez_compressed(out / "motions.npz", quat_delta=np.concatenate(q_parts), pos_delta=np.concatenate(p_parts),
                        lengths=np.array(lengths, np.int64), ids=np.array([corpus.clips[i].id for i in stored]))
    with gzip.open(out / "clips.jsonl.gz", "wt", encoding="utf-8") as f:
        for i in keep:
            f.write(json.dumps(asdict(corpus.clips[i]), ensure_ascii=False) + "\n")
    texts = sorted({c.text for i in keep for c in corpus.clips[i].captions})
    cache = TextCache(encoder_id, text_cache or default_cache_path(encoder_id))
    cache.ensure(texts)
    emb = cache.lookup(texts)
    mask = emb.token_mask()
    tokens = emb.tokens[mask]  # (sum of lengths, dim), ragged
    scale = tokens.abs().amax(0).clamp_min(1e-8) / 127.0  # per dimension: BERT has a few large dimensions
    save_file({"pooled": emb.pooled.half().contiguous(), "tokens_int8": torch.round(tokens / scale).clamp(-127, 127)
               .to(torch.int8).contiguous(), "token_scale": scale.float().contiguous(), "lengths": emb.lengths.contiguous()},
              str(out / "text.safetensors"), metadata={"encoder": encoder_id, "texts": json.dumps(texts, ensure_ascii=False)})
    (out / "pack.json").write_text(json.dumps({"format": PACK_FORMAT, "source_fingerprint": corpus.fingerprint,
                                               "source": str(corpus.path), "splits": list(splits),
                                               "clips": len(keep), "stored_motions": len(stored),
                                               "encoder": encoder_id}, indent=1))
    return out


def unpack_text(pack_dir: Path, cache_path: Path) -> TextCache:
    """The pack's caption embeddings (int8 tokens, float16 pooled; about 1% error) as a text cache file."""
    from safetensors import safe_open

    with safe_open(str(pack_dir / "text.safetensors"), framework="pt") as f:
        meta = f.metadata()
        pooled, tokens = f.get_tensor("pooled").float(), f.get_tensor("tokens_int8").float() * f.get_tensor("token_scale")
        lengths = f.get_tensor("lengths")
    texts = json.loads(meta["texts"])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
    padded = torch.zeros(len(texts), int(lengths.max()) if len(texts) else 1, tokens.shape[-1])
    for i in range(len(texts)):
        padded[i, :int(lengths[i])] = tokens[int(offsets[i]):int(offsets[i + 1])]
    if cache_path.is_file():
        cache_path.unlink()
    cache = TextCache(meta["encoder"], cache_path)
    cache.add(texts, TextEmbeddings(pooled, padded, lengths))
    cache.save()
    return cache


def unpack(pack_dir: str | Path, out: str | Path, text_cache: str | Path | None = None, force: bool = False) -> Path:
    """Rebuild a corpus folder at `out` and the text cache (default: data/cache/text/<encoder>.safetensors)."""
    pack_dir = Path(pack_dir)
    info = json.loads((pack_dir / "pack.json").read_text())
    if info.get("format") != PACK_FORMAT:
        raise ValueError(f"{pack_dir}: not a {PACK_FORMAT} pack")
    if (Path(out) / "motions.npz").is_file() and not force:
        raise FileExistsError(f"{out} already holds a corpus; unpacking (lossy) would replace it: pass --force")
    cache_path = Path(text_cache) if text_cache else default_cache_path(info["encoder"])
    if cache_path.is_file() and not force:
        raise FileExistsError(f"{cache_path} exists; unpacking would replace it: pass --force or --text-cache")
    unpack_text(pack_dir, cache_path)
    with np.load(pack_dir / "motions.npz", allow_pickle=False) as data:
        qd, pd, lengths, ids = data["quat_delta"], data["pos_delta"], data["lengths"], data["ids"]
    motions: dict[str, Motion] = {}
    start = 0
    for clip_id, n in zip(ids, lengths):
        q = np.cumsum(qd[start:start + n], axis=0, dtype=np.int16).astype(np.float64) / QUAT_SCALE
        p = np.cumsum(pd[start:start + n], axis=0, dtype=np.int32).astype(np.float64) / POS_SCALE
        motions[str(clip_id)] = Motion(rot.quat_normalize(q), p, 20.0)
        start += n
    with gzip.open(pack_dir / "clips.jsonl.gz", "rt", encoding="utf-8") as f:
        clips = [Clip.from_json(json.loads(line)) for line in f if line.strip()]
    out_motions = []
    for clip in clips:
        if clip.id in motions:
            out_motions.append(motions[clip.id])
        else:  # a mirrored copy of a stored clip
            out_motions.append(motions[clip.id[:-2]].mirror())
    return write_corpus(out, clips, out_motions,
                        splits_info={"source_fingerprint": info["source_fingerprint"], "unpacked_from": str(pack_dir)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--corpus", default="data/corpus")
    p.add_argument("--out", default="data/pack")
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--text-cache", default=None)
    u = sub.add_parser("unpack")
    u.add_argument("--pack", default="data/pack")
    u.add_argument("--out", default="data/corpus")
    u.add_argument("--text-cache", default=None, help="where to write the caption embeddings "
                   "(default data/cache/text/<encoder>.safetensors, which train.py reads)")
    u.add_argument("--force", action="store_true", help="replace an existing corpus / text cache")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        out = pack(args.corpus, args.out, args.encoder, args.text_cache)
        size = sum(f.stat().st_size for f in out.iterdir()) / 2 ** 20
        print(f"pack {out}: {size:.1f} MiB")
    else:
        out = unpack(args.pack, args.out, args.text_cache, args.force)
        print(f"corpus {out}: {len(Corpus(out))} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
