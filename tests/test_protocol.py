"""shared/protocol.py: round trips of every message type and every validation error."""
from __future__ import annotations

import json

import numpy as np
import pytest

from shared import protocol as P


def _motion(n=2, t=5, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, t, 22, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q, rng.normal(size=(n, t, 3)).astype(np.float32)


def _roundtrip(message: P.Message) -> P.Message:
    frames = message.encode()
    return P.decode_message([bytes(f) for f in frames])


def _header(msg_type="hello", frames=(), **fields):
    return {"v": 1, "type": msg_type, "id": "m1", "frames": list(frames), **fields}


def _raw(header: dict, *payload: bytes) -> list[bytes]:
    return [json.dumps(header).encode()] + list(payload)


def _code(frames, limits=None) -> str:
    with pytest.raises(P.ProtocolError) as info:
        P.decode_message(frames, limits)
    return info.value.code


def test_every_message_type_round_trips():
    rot, trans = _motion()
    limits = P.Limits()
    skeleton = {"joints": ["pelvis"], "parents": [-1], "fps": 20.0}
    messages = [
        P.hello("blender"),
        P.hello_ok("r", "0.1.0", ["tiny"], "tiny@1", limits, skeleton, "cpu"),
        P.generate("a person walks", n=3, seconds=2.5, seed=7, guidance=2.0, steps=10, model="tiny"),
        P.generate("jump"),
        P.progress("r", 3, 10),
        P.result("r", rot, trans, 20.0, "tiny@1", seed=7, steps=10, guidance=2.0),
        P.error(P.BAD_FIELD, "bad", "r"),
        P.error(P.BAD_JSON, "bad", None),
        P.cancel("r"),
        P.pick("r", 1, "key", [0]),
        P.pick("r", None, "key"),
        P.pick_ok("r", "key", True),
        P.reload("tiny"),
        P.reload_ok("r", "tiny", "tiny@1"),
    ]
    assert {m.type for m in messages} == set(P.MESSAGE_TYPES)
    for message in messages:
        decoded = _roundtrip(message)
        assert (decoded.type, decoded.id) == (message.type, message.id)
        assert decoded.fields == message.fields
        for name, array in message.arrays.items():
            np.testing.assert_array_equal(decoded.arrays[name], array)
            assert decoded.arrays[name].dtype == np.float32


def test_result_frames_are_views_and_header_describes_them():
    rot, trans = _motion(3, 4)
    frames = P.result("r", rot, trans, 20.0, "m").encode()
    assert len(frames) == 3
    header = json.loads(bytes(frames[0]))
    assert header["v"] == P.PROTOCOL_VERSION and header["type"] == "result"
    assert header["frames"] == [{"name": "rotations", "dtype": "float32", "shape": [3, 4, 22, 4]},
                                {"name": "translation", "dtype": "float32", "shape": [3, 4, 3]}]
    assert np.shares_memory(np.frombuffer(frames[1], dtype=np.float32), rot)   # no copy
    assert len(frames[1]) == rot.nbytes


def test_encode_converts_big_endian_and_non_contiguous_arrays():
    rot, trans = _motion(2, 6)
    big = rot.astype(">f4")
    strided = np.ascontiguousarray(np.concatenate([trans, trans], axis=1))[:, ::2]
    decoded = _roundtrip(P.result("r", big, strided, 20.0, "m"))
    np.testing.assert_array_equal(decoded.arrays["rotations"], rot)
    np.testing.assert_array_equal(decoded.arrays["translation"], strided)


def test_decode_accepts_memoryviews_and_bytearrays():
    rot, trans = _motion()
    frames = P.result("r", rot, trans, 20.0, "m").encode()
    decoded = P.decode_message([bytearray(frames[0]), memoryview(bytes(frames[1])), bytes(frames[2])])
    np.testing.assert_array_equal(decoded.arrays["rotations"], rot)


@pytest.mark.parametrize("frames, code", [
    ([], P.BAD_FRAMES),
    ([b"\xff\xfe"], P.BAD_JSON),
    ([b"{not json"], P.BAD_JSON),
    ([b"[1, 2]"], P.BAD_HEADER),
    ([b'{"v": 1, "type": "hello"}'], P.BAD_HEADER),                       # no id
    ([b'{"v": 1, "type": "hello", "id": ""}'], P.BAD_HEADER),
    ([b'{"type": "hello", "id": "x"}'], P.BAD_VERSION),
    ([b'{"v": 2, "type": "hello", "id": "x"}'], P.BAD_VERSION),
    ([b'{"v": true, "type": "hello", "id": "x"}'], P.BAD_VERSION),
    ([b'{"v": 1, "type": "launch", "id": "x"}'], P.UNKNOWN_TYPE),
    ([b'{"v": 1, "id": "x"}'], P.UNKNOWN_TYPE),
    ([b'{"v": 1, "type": "hello", "id": "x", "client": NaN}'], P.NOT_FINITE),
    ([b'{"v": 1, "type": "hello", "id": "x", "client": 1e999}'], P.NOT_FINITE),
    ([b'{"v": 1, "type": "hello", "id": "x", "frames": {}}'], P.BAD_HEADER),
    ([b'{"v": 1, "type": "hello", "id": "x"}', b"extra"], P.BAD_FRAMES),
    ([b"{}"] * 20, P.BAD_FRAMES),
    ([b"[" * 100000 + b"]" * 100000], P.TOO_LARGE),
    ([b'{"v": 1, "type": "hello", "id": "x", "client": "' + b"a" * 70000 + b'"}'], P.TOO_LARGE),
    (["a str is not a buffer"], P.BAD_FRAMES),
])
def test_malformed_headers_are_named(frames, code):
    assert _code(frames) == code


def test_deep_json_nesting_is_bad_json_not_a_crash():
    limits = P.Limits(max_header_bytes=10**7)
    assert _code([b"[" * 200000 + b"]" * 200000], limits) == P.BAD_JSON


def _result_header(rot_shape=(1, 2, 22, 4), trans_shape=(1, 2, 3), rot_dtype="float32", **extra):
    return _header("result", [{"name": "rotations", "dtype": rot_dtype, "shape": list(rot_shape)},
                              {"name": "translation", "dtype": "float32", "shape": list(trans_shape)}],
                   request_id="r", model="m", fps=20.0, **extra)


def _payload(shape, dtype=np.float32, value=0.5):
    return np.full(shape, value, dtype=dtype).tobytes()


def test_array_frame_errors_are_named():
    rot, trans = _payload((1, 2, 22, 4)), _payload((1, 2, 3))
    ok = _raw(_result_header(), rot, trans)
    assert P.decode_message(ok).arrays["rotations"].shape == (1, 2, 22, 4)
    # frame count differs from the header
    assert _code(ok[:2]) == P.BAD_FRAMES
    assert _code(ok + [trans]) == P.BAD_FRAMES
    # bytes do not match shape
    assert _code([ok[0], rot[:-4], trans]) == P.BAD_SHAPE
    # dtype outside the whitelist, and a whitelisted dtype this array does not take
    assert _code(_raw(_result_header(rot_dtype="object"), rot, trans)) == P.BAD_DTYPE
    assert _code(_raw(_result_header(rot_dtype="float16"), rot, trans)) == P.BAD_DTYPE
    assert _code(_raw(_result_header(rot_dtype="float64"), _payload((1, 2, 22, 4), np.float64), trans)) \
        == P.BAD_DTYPE
    # malformed and inconsistent shapes
    assert _code(_raw(_result_header(rot_shape=(1, 2, -22, 4)), rot, trans)) == P.BAD_SHAPE
    assert _code(_raw(_result_header(rot_shape=(1, 2, 22.0, 4)), rot, trans)) == P.BAD_SHAPE
    assert _code(_raw(_result_header(rot_shape=(2, 22, 4)), _payload((2, 22, 4)), trans)) == P.BAD_SHAPE
    assert _code(_raw(_result_header(trans_shape=(1, 3, 3)), rot, _payload((1, 3, 3)))) == P.BAD_SHAPE
    assert _code(_raw(_result_header(rot_shape=(1, 0, 22, 4), trans_shape=(1, 0, 3)), b"", b"")) == P.BAD_SHAPE
    assert _code(_raw(_result_header(rot_shape=(9, 2, 22, 4), trans_shape=(9, 2, 3)),
                      _payload((9, 2, 22, 4)), _payload((9, 2, 3)))) == P.BAD_SHAPE   # n > max_n
    # huge claimed sizes are refused before anything is allocated or read
    assert _code(_raw(_result_header(rot_shape=(10**9, 10**9, 22, 4)), rot, trans)) == P.TOO_LARGE
    small = P.Limits(max_message_bytes=700)
    assert _code(ok, small) == P.TOO_LARGE
    # NaN and infinity in float arrays
    assert _code([ok[0], _payload((1, 2, 22, 4), value=np.nan), trans]) == P.NOT_FINITE
    assert _code([ok[0], rot, _payload((1, 2, 3), value=np.inf)]) == P.NOT_FINITE
    # arrays the type does not carry, duplicate and missing names, malformed descriptions
    extra = _result_header()
    extra["frames"].append({"name": "extra", "dtype": "int32", "shape": [1]})
    assert _code(_raw(extra, rot, trans, _payload((1,), np.int32))) == P.BAD_FRAMES
    dup = _result_header()
    dup["frames"][1]["name"] = "rotations"
    assert _code(_raw(dup, rot, trans)) == P.BAD_FRAMES
    hello_with_array = _header("hello", [{"name": "x", "dtype": "uint8", "shape": [3]}])
    assert _code(_raw(hello_with_array, b"abc")) == P.BAD_FRAMES
    bad_desc = _result_header()
    bad_desc["frames"][0]["extra"] = 1
    assert _code(_raw(bad_desc, rot, trans)) == P.BAD_HEADER


@pytest.mark.parametrize("fields, code", [
    ({}, P.BAD_FIELD),                                        # prompt required
    ({"prompt": ""}, P.BAD_FIELD),
    ({"prompt": "   "}, P.BAD_FIELD),
    ({"prompt": 5}, P.BAD_FIELD),
    ({"prompt": "x" * 301}, P.TOO_LARGE),
    ({"prompt": "walk", "n": 0}, P.BAD_FIELD),
    ({"prompt": "walk", "n": 9}, P.BAD_FIELD),
    ({"prompt": "walk", "n": 2.0}, P.BAD_FIELD),
    ({"prompt": "walk", "n": True}, P.BAD_FIELD),
    ({"prompt": "walk", "seconds": 0}, P.BAD_FIELD),
    ({"prompt": "walk", "seconds": 10.5}, P.BAD_FIELD),
    ({"prompt": "walk", "seconds": "6"}, P.BAD_FIELD),
    ({"prompt": "walk", "seed": -1}, P.BAD_FIELD),
    ({"prompt": "walk", "seed": 2**64}, P.BAD_FIELD),
    ({"prompt": "walk", "guidance": -1.0}, P.BAD_FIELD),
    ({"prompt": "walk", "guidance": 21}, P.BAD_FIELD),
    ({"prompt": "walk", "steps": 0}, P.BAD_FIELD),
    ({"prompt": "walk", "steps": 1001}, P.BAD_FIELD),
    ({"prompt": "walk", "model": 3}, P.BAD_FIELD),
    ({"prompt": "walk", "temperature": 1.0}, P.BAD_FIELD),   # unknown field: no silent typos
    ({"prompt": None}, P.BAD_FIELD),
])
def test_generate_field_errors(fields, code):
    assert _code(_raw(_header("generate", **fields))) == code


def test_generate_optional_fields_may_be_null():
    msg = P.decode_message(_raw(_header("generate", prompt="walk", n=None, seconds=None, seed=None,
                                        guidance=None, steps=None, model=None)))
    assert msg.get("n", P.DEFAULT_N) == P.DEFAULT_N and msg.fields["prompt"] == "walk"


@pytest.mark.parametrize("fields, code", [
    ({"request_id": "r", "idempotency_key": "k"}, P.BAD_FIELD),           # chosen missing
    ({"request_id": "r", "chosen": 0}, P.BAD_FIELD),                      # key missing
    ({"chosen": 0, "idempotency_key": "k"}, P.BAD_FIELD),                 # request id missing
    ({"request_id": "r", "chosen": -1, "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 8, "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": "0", "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "rejected": [1, 1], "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "rejected": [0, 1], "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "rejected": "1", "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "rejected": [99], "idempotency_key": "k"}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "idempotency_key": ""}, P.BAD_FIELD),
    ({"request_id": "r", "chosen": 0, "idempotency_key": "k" * 200}, P.BAD_FIELD),
])
def test_pick_field_errors(fields, code):
    assert _code(_raw(_header("pick", **fields))) == code


@pytest.mark.parametrize("msg_type, fields", [
    ("cancel", {}),
    ("cancel", {"request_id": 5}),
    ("reload", {}),
    ("reload", {"checkpoint": ""}),
    ("hello", {"client": ["x"]}),
    ("progress", {"request_id": "r", "step": 11, "total": 10}),
    ("progress", {"request_id": "r", "step": 1, "total": 0}),
    ("error", {"request_id": "r", "message": "no code"}),
    ("pick_ok", {"request_id": "r", "idempotency_key": "k", "duplicate": 1}),
    ("reload_ok", {"request_id": "r", "checkpoint": "c"}),
    ("hello_ok", {"request_id": "r", "protocol": 1, "server": "s", "models": [], "model": "m",
                  "limits": {"max_n": 8}, "skeleton": {}}),
    ("result", {"request_id": "r", "model": "m"}),   # fps missing (and arrays)
])
def test_other_type_field_errors(msg_type, fields):
    assert _code(_raw(_header(msg_type, **fields))) in (P.BAD_FIELD, P.BAD_FRAMES)


def test_error_carries_the_message_id_and_type_when_known():
    with pytest.raises(P.ProtocolError) as info:
        P.decode_message(_raw(_header("generate", prompt="walk", n=99)))
    assert (info.value.msg_id, info.value.msg_type) == ("m1", "generate")
    assert "'n'" in str(info.value)


def test_encode_validates_too():
    rot, trans = _motion()
    with pytest.raises(P.ProtocolError) as info:
        P.result("r", rot.astype(np.float16), trans, 20.0, "m").encode()
    assert info.value.code == P.BAD_DTYPE
    rot[0, 0, 0, 0] = np.nan
    with pytest.raises(P.ProtocolError) as info:
        P.result("r", rot, trans, 20.0, "m").encode()
    assert info.value.code == P.NOT_FINITE
    with pytest.raises(P.ProtocolError) as info:
        P.encode_message("hello", {"v": 2})
    assert info.value.code == P.BAD_FIELD
    with pytest.raises(P.ProtocolError) as info:
        P.generate("walk", n=20).encode()
    assert info.value.code == P.BAD_FIELD
    with pytest.raises(P.ProtocolError):
        P.encode_message("hello", {"client": object()})


def test_limits_round_trip_and_validation():
    limits = P.Limits(max_n=4, max_seconds=9.8)
    assert P.Limits.from_dict(limits.to_dict()) == limits
    d = limits.to_dict()
    with pytest.raises(P.ProtocolError):
        P.Limits.from_dict({**d, "surprise": 1})
    with pytest.raises(P.ProtocolError):
        P.Limits.from_dict({**d, "max_n": 2.5})
    d.pop("max_n")
    with pytest.raises(P.ProtocolError):
        P.Limits.from_dict(d)
    # a tighter limit applies when decoding
    assert _code(_raw(_header("generate", prompt="walk", n=5)), limits) == P.BAD_FIELD


def test_random_bytes_never_escape_as_other_exceptions():
    rng = np.random.default_rng(0)
    for i in range(500):
        frames = [rng.bytes(int(rng.integers(0, 64))) for _ in range(int(rng.integers(1, 4)))]
        if i % 3 == 0:   # valid JSON prefix with junk fields
            frames[0] = json.dumps(_header(str(rng.choice(list(P.MESSAGE_TYPES))),
                                           prompt=int(rng.integers(0, 9)))).encode()
        with pytest.raises(P.ProtocolError):
            P.decode_message(frames)
