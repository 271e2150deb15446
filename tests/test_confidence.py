"""server/model/confidence.py: the caption index, its calibration, the generator's and the server's confidence."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from server.model.confidence import (INDEX_FILE, CaptionIndex, ConfidenceError, build_index, calibrate, compress,
                                     main)
from shared import protocol as P

HELD_OUT = ["a person strolls forward", "someone sprints ahead", "a person hops in place",
            "someone waves the right hand", "a person turns left while walking"]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_calibration_threshold_and_confidence_mapping():
    rng = np.random.default_rng(0)
    held_out, outside = rng.uniform(0.7, 0.95, 40), rng.uniform(0.2, 0.6, 30)
    threshold, in_anchor, out_anchor, report = calibrate(held_out, outside)
    assert 0.6 < threshold < 0.7 and report["balanced_accuracy"] == 1.0
    assert out_anchor < threshold < in_anchor
    index = CaptionIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], "enc", threshold, in_anchor, out_anchor)
    sims = np.array([-1.0, out_anchor, (out_anchor + threshold) / 2, threshold, in_anchor, 1.0])
    np.testing.assert_allclose(index.confidence_of(sims), [0.0, 0.0, 0.25, 0.5, 1.0, 1.0], atol=1e-9)
    assert np.all(np.diff(index.confidence_of(np.linspace(-1, 1, 101))) >= 0)
    with pytest.raises(ConfidenceError, match="separate"):
        calibrate(outside, held_out)  # "in-data" prompts further away than the out-of-data ones
    with pytest.raises(ConfidenceError, match="both"):
        calibrate(held_out, [])


def test_index_file_round_trip_and_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    emb = unit(rng.normal(size=(20, 8))).astype(np.float32)
    index = CaptionIndex(emb, [f"caption {i}" for i in range(20)], "enc-a", 0.5, 0.8, 0.3, {"note": 1})
    assert CaptionIndex.load(tmp_path) is None  # an old checkpoint: no file, no confidence
    path = index.save(tmp_path)
    assert path.name == INDEX_FILE and path.stat().st_size < 20 * 8 * 2 + 4096  # float16 rows
    back = CaptionIndex.load(tmp_path, "enc-a")
    assert back.captions == index.captions and back.calibration == {"note": 1}
    assert np.abs(back.embeddings - emb).max() < 2e-3
    [hit] = back.score(emb[7:8] * 3.0)
    assert hit.nearest_caption == "caption 7" and hit.similarity > 0.999 and hit.confidence == 1.0 and not hit.low
    with pytest.raises(ConfidenceError, match="enc-a"):
        CaptionIndex.load(tmp_path, "enc-b")
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfidenceError, match="unreadable"):
        CaptionIndex.load(tmp_path)


def test_many_captions_are_clustered_into_named_centroids():
    rng = np.random.default_rng(2)
    centres = unit(rng.normal(size=(5, 16)))
    members = unit(np.repeat(centres, 12, axis=0) + 0.05 * rng.normal(size=(60, 16)))
    names = [f"group {i // 12} item {i % 12}" for i in range(60)]
    rows, row_names = compress(members, names, 5)
    assert rows.shape == (5, 16)
    assert sorted(n.split(" item")[0] for n in row_names) == [f"group {g}" for g in range(5)]
    assert ((members @ rows.T).max(axis=1) > 0.95).all()
    same, same_names = compress(members, names, 100)  # few enough: kept as they are
    assert len(same) == 60 and same_names == names


@pytest.fixture(scope="module")
def indexed_checkpoint(tiny_checkpoint, tiny_corpus, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("indexed") / "tiny"
    shutil.copytree(tiny_checkpoint, folder)
    index = build_index(folder, tiny_corpus, held_out=HELD_OUT, log=lambda *a: None)
    index.save(folder)
    return folder


def test_built_index_calibration(indexed_checkpoint):
    index = CaptionIndex.load(indexed_checkpoint)
    cal = index.calibration
    assert cal["held_out_captions"] == len(HELD_OUT) and cal["out_of_data_prompts"] >= 30
    assert cal["training_captions"] == len(index.captions) == 10  # the tiny corpus' distinct captions
    assert cal["balanced_accuracy"] >= 0.8


def test_generator_reports_lower_confidence_out_of_the_data(indexed_checkpoint, tiny_checkpoint):
    from server.model.checkpoint import CheckpointError
    from server.model.inference import MotionGenerator

    gen = MotionGenerator.load(indexed_checkpoint, device="cpu")
    inside, near, outside = gen.prompt_confidence(["a person walks forward", "a person strolls forward",
                                                   "a person plays the violin"])
    assert inside.similarity > 0.999 and inside.confidence == 1.0 and not inside.low
    assert "walk" in near.nearest_caption
    assert outside.confidence < near.confidence and outside.confidence < 0.5 and outside.low
    old = MotionGenerator.load(tiny_checkpoint, device="cpu")  # made before caption indexes: loads, cannot tell
    assert old.caption_index is None and old.prompt_confidence(["a person walks"]) == [None]
    other = indexed_checkpoint.parent / "other-encoder"
    shutil.copytree(indexed_checkpoint, other)
    index = CaptionIndex.load(other)
    index.encoder_id = "some-other-encoder"
    index.save(other)
    with pytest.raises(CheckpointError, match="some-other-encoder"):
        MotionGenerator.load(other, device="cpu")


def test_cli_writes_the_index_or_says_why_not(tmp_path, tiny_checkpoint, tiny_corpus, capsys):
    from server.data.corpus import Caption, Corpus, write_corpus

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    assert main(["--checkpoint", str(folder), "--corpus", str(tiny_corpus)]) == 2  # every caption is a train one
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no held-out captions" in err[0]
    assert main(["--checkpoint", str(tmp_path / "missing"), "--corpus", str(tiny_corpus)]) == 2
    assert "does not exist" in capsys.readouterr().err
    corpus = Corpus(tiny_corpus)  # the same clips, the val clips captioned in new words
    for k, clip in enumerate(c for c in corpus.clips if c.split == "val"):
        clip.captions = [Caption(HELD_OUT[k % len(HELD_OUT)], "synthetic")]
    reworded = write_corpus(tmp_path / "corpus", corpus.clips, [corpus.motion(i) for i in range(len(corpus))])
    assert main(["--checkpoint", str(folder), "--corpus", str(reworded)]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and (folder / INDEX_FILE).stat().st_size < 5_000_000
    assert CaptionIndex.load(folder).calibration["held_out_captions"] >= 1


def test_protocol_confidence_fields():
    frames = P.generate("a person walks", want_confidence=True).encode()
    assert P.decode_message(frames).fields["want_confidence"] is True
    rot = np.zeros((1, 2, 22, 4), np.float32)
    rot[..., 0] = 1
    trans = np.zeros((1, 2, 3), np.float32)
    msg = P.decode_message(P.result("r1", rot, trans, 20.0, "m", confidence=0.25, nearest_caption="a person walks",
                                    low_confidence=True).encode())
    assert (msg.fields["confidence"], msg.fields["nearest_caption"], msg.fields["low_confidence"]) == \
        (0.25, "a person walks", True)
    assert not {"confidence", "nearest_caption", "low_confidence"} & set(
        P.decode_message(P.result("r1", rot, trans, 20.0, "m").encode()).fields)  # optional
    for field, bad in (("confidence", 1.5), ("confidence", "high"), ("nearest_caption", "x" * 301),
                       ("nearest_caption", 3), ("low_confidence", "no")):
        with pytest.raises(P.ProtocolError) as err:
            P.encode_message("result", {"request_id": "r1", "model": "m", "fps": 20.0, field: bad},
                             {"rotations": rot, "translation": trans})
        assert err.value.code == P.BAD_FIELD and field in err.value.message
    header = {"v": P.PROTOCOL_VERSION, "type": "generate", "id": "g1", "prompt": "a person walks", "want_confidence": 1}
    with pytest.raises(P.ProtocolError, match="want_confidence"):
        P.decode_message([json.dumps(header).encode()])


def test_server_sends_confidence_to_clients_that_ask(tmp_path, indexed_checkpoint):
    from server.service.client import MotionClient
    from server.service.service import MotionService, ServiceConfig

    shutil.copytree(indexed_checkpoint, tmp_path / "models" / "tiny")
    service = MotionService(ServiceConfig(bind="tcp://127.0.0.1:*", data_dir=tmp_path, checkpoint="tiny", device="cpu"))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        assert service.ready.wait(60) and service.endpoint
        ask = dict(n=1, seconds=1.0, seed=1, steps=1)
        with MotionClient(service.endpoint, timeout=60.0) as client:
            inside = client.request(P.generate("a person walks forward", want_confidence=True, **ask))
            outside = client.request(P.generate("a person plays the violin", want_confidence=True, **ask))
            silent = client.request(P.generate("a person plays the violin", **ask))
            again = client.request(P.generate("a person plays the violin", want_confidence=True,
                                              msg_id=outside.fields["request_id"], **ask))  # from the store
        assert inside.fields["confidence"] == 1.0 and inside.fields["low_confidence"] is False
        assert inside.fields["nearest_caption"] == "a person walks forward"
        assert outside.fields["confidence"] < 0.5 and outside.fields["low_confidence"] is True
        assert not {"confidence", "nearest_caption", "low_confidence"} & set(silent.fields)
        assert again.fields["confidence"] == outside.fields["confidence"]
    finally:
        service.stop()
        thread.join(timeout=30)
