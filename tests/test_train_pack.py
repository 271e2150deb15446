"""The training pack (for small-upload GPU machines) rebuilds the corpus and the caption embeddings."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from server.data.corpus import Corpus, write_corpus
from server.model.text_encoder import DEFAULT_ENCODER, TextCache, default_cache_path
from server.model.train_pack import pack, unpack


def test_pack_and_unpack_round_trip(tiny_corpus, tiny_cache_dir, tmp_path):
    src = Corpus(tiny_corpus)
    clips, motions = list(src.clips), [src.motion(i) for i in range(len(src))]
    for i in src.indices("train")[:3]:  # mirrored copies, as the corpus build makes them
        clips.append(dataclasses.replace(src.clips[i], id=src.clips[i].id + "~m", mirrored=True))
        motions.append(src.motion(i).mirror())
    corpus = Corpus(write_corpus(tmp_path / "corpus", clips, motions))
    cache_file = default_cache_path(DEFAULT_ENCODER, tiny_cache_dir)
    cache = TextCache(DEFAULT_ENCODER, cache_file)
    cache.ensure({c.text for cl in clips for c in cl.captions})
    cache.save()
    pack(corpus.path, tmp_path / "pack", text_cache=cache_file)
    out = unpack(tmp_path / "pack", tmp_path / "unpacked", text_cache=tmp_path / "text.safetensors")
    with pytest.raises(FileExistsError):
        unpack(tmp_path / "pack", tmp_path / "unpacked", text_cache=tmp_path / "other.safetensors")
    back = Corpus(out)
    keep = [i for s in ("train", "val") for i in corpus.indices(s)]
    assert [c.id for c in back.clips] == [corpus.clips[i].id for i in keep]
    for j, i in enumerate(keep):
        assert back.clips[j].captions == corpus.clips[i].captions
        a, b = corpus.motion(i), back.motion(j)
        assert a.allclose(b, atol=1e-4)
    texts = sorted({c.text for cl in back.clips for c in cl.captions})
    orig = TextCache(DEFAULT_ENCODER, cache_file).lookup(texts)
    rebuilt = TextCache(DEFAULT_ENCODER, tmp_path / "text.safetensors").lookup(texts)
    assert (orig.lengths == rebuilt.lengths).all()
    mask = orig.token_mask()
    cos = torch.nn.functional.cosine_similarity(orig.tokens[mask], rebuilt.tokens[mask], dim=-1)
    assert cos.min() > 0.995 and torch.allclose(orig.pooled, rebuilt.pooled, atol=2e-3)
    assert np.isfinite(back.rotations).all()
