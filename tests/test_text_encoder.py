"""The MiniLM text encoder (offline) and the embedding cache."""
from __future__ import annotations

import pytest
import torch

from server.model.text_encoder import DEFAULT_ENCODER, TextCache, TextEncoderError, default_cache_path, load_encoder


def test_minilm_encodes_offline():
    enc = load_encoder(DEFAULT_ENCODER)
    emb = enc.encode(["a person walks forward", "a person waves with the right hand", "walk"])
    assert emb.pooled.shape == (3, 384) and emb.tokens.shape[0] == 3 and emb.tokens.shape[2] == 384
    assert torch.allclose(emb.pooled.norm(dim=-1), torch.ones(3), atol=1e-4)  # normalised sentence embeddings
    assert emb.lengths.tolist()[2] < emb.lengths.tolist()[1]
    assert (emb.tokens[2, emb.lengths[2]:] == 0).all()
    left = enc.encode(["wave the left hand"]).pooled
    right = enc.encode(["wave the right hand"]).pooled
    assert not torch.allclose(left, right, atol=1e-3)


def test_cache_round_trip_and_training_without_the_encoder(tmp_path):
    path = tmp_path / "cache.safetensors"
    cache = TextCache(DEFAULT_ENCODER, path)
    cache.ensure(["jump", "a person runs"])
    assert cache.save() == path and path.is_file()
    again = TextCache(DEFAULT_ENCODER, path)
    assert len(again) == 2 and "jump" in again
    a, b = cache.lookup(["a person runs", "jump"]), again.lookup(["a person runs", "jump"])
    assert torch.allclose(a.pooled, b.pooled) and torch.allclose(a.tokens, b.tokens, rtol=2e-3, atol=1e-3)  # stored fp16
    assert (a.lengths == b.lengths).all()
    # an encoder that cannot be loaded is fine while everything is cached ...
    other = TextCache("not-installed", tmp_path / "other.safetensors")
    other.add(["jump"], a.index(slice(1, 2)))
    other.ensure(["jump"])
    # ... and a clear error when something is missing
    with pytest.raises(TextEncoderError, match="not in the cache"):
        other.ensure(["jump", "somersault"])
    with pytest.raises(TextEncoderError, match="encoder"):
        TextCache("another-encoder", path)


def test_default_cache_lives_under_data_cache_of_the_repo(monkeypatch, tmp_path):
    monkeypatch.delenv("SOPO_CACHE_DIR", raising=False)
    p = default_cache_path(DEFAULT_ENCODER)
    assert p.parts[-4:] == ("data", "cache", "text", "all-MiniLM-L6-v2.safetensors")
    assert p.is_absolute()
    monkeypatch.setenv("SOPO_CACHE_DIR", str(tmp_path))
    assert default_cache_path(DEFAULT_ENCODER).parent == tmp_path / "text"
