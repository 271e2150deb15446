"""The wire protocol between motion clients (the Blender add-on) and the motion server.

DESIGN.md section 8. A message is multipart: one UTF-8 JSON header frame, then one raw
little-endian, C-contiguous frame per array, described in order by the header's
``"frames": [{"name", "dtype", "shape"}, ...]``. Every header carries ``"v"`` (the
protocol version), ``"type"`` and ``"id"`` (a client-made uuid); a message's fields sit in
the header beside those keys. Replies carry ``request_id``: the ``id`` of the message they
answer. Encoding and decoding are pure functions that validate everything and raise
:class:`ProtocolError` naming what is wrong; nothing here unpickles or evaluates anything.

numpy, json and the standard library only: the Blender add-on imports this file.
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields as dataclass_fields
from typing import Any, Callable, Collection

import numpy as np

from . import constraints as _constraints

PROTOCOL_VERSION = 1
PROTOCOL_MINOR = 1  # 1.1: optional constraints on `generate` (shared/constraints.py); `v` stays PROTOCOL_VERSION
NUM_JOINTS = 22  # SMPL-22 (shared/skeleton.py); repeated here so this file stands alone

DEFAULT_N = 4
DEFAULT_SECONDS = 6.0
MAX_SEED = 2**63 - 1
MAX_ID_CHARS = 128
MAX_NAME_CHARS = 128
MAX_PATH_CHARS = 4096   # hello_ok's models_dir: an absolute path on the server's machine
MAX_ERROR_CHARS = 4000
MAX_CAPTION_CHARS = 300  # result's nearest_caption
MAX_NDIM = 8
MAX_ARRAYS = 8  # array frames per message

# Error codes: stable strings a client may branch on.
BAD_JSON = "bad_json"            # header frame is not UTF-8 JSON
BAD_HEADER = "bad_header"        # header is not an object, or `id`/`frames` are malformed
BAD_VERSION = "bad_version"      # `v` missing or not PROTOCOL_VERSION
UNKNOWN_TYPE = "unknown_type"    # `type` missing or not a known message type
BAD_FRAMES = "bad_frames"        # frame count differs from the header, or unexpected/missing arrays
BAD_DTYPE = "bad_dtype"          # dtype outside the whitelist or not the one this array needs
BAD_SHAPE = "bad_shape"          # shape malformed, inconsistent, or not matching the frame's bytes
BAD_FIELD = "bad_field"          # a field is missing, unknown, of the wrong type or out of range
TOO_LARGE = "too_large"          # header, array or message beyond the limits
NOT_FINITE = "not_finite"        # NaN or infinity in a float array or a JSON number
# Codes the server uses for well-formed messages it cannot serve.
UNKNOWN_REQUEST = "unknown_request"    # pick/cancel for a request id the server does not know
BAD_INDEX = "bad_index"                # pick index outside the result's candidates
DUPLICATE_ID = "duplicate_id"          # a request id reused for a different request
DUPLICATE_KEY = "duplicate_key"        # an idempotency key reused for a different pick
UNKNOWN_MODEL = "unknown_model"        # `model` is not the loaded model
BAD_CHECKPOINT = "bad_checkpoint"      # reload target missing, outside the models folder, or unloadable
BUSY = "busy"                          # the request queue is full; retry later
CANCELLED = "cancelled"                # the request was cancelled
INTERNAL = "internal"                  # the server failed; it keeps serving
ERROR_CODES = (
    BAD_JSON, BAD_HEADER, BAD_VERSION, UNKNOWN_TYPE, BAD_FRAMES, BAD_DTYPE, BAD_SHAPE,
    BAD_FIELD, TOO_LARGE, NOT_FINITE, UNKNOWN_REQUEST, BAD_INDEX, DUPLICATE_ID,
    DUPLICATE_KEY, UNKNOWN_MODEL, BAD_CHECKPOINT, BUSY, CANCELLED, INTERNAL,
)

# Wire dtype names -> little-endian numpy dtypes.
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"), "float64": np.dtype("<f8"),
    "int32": np.dtype("<i4"), "int64": np.dtype("<i8"), "uint8": np.dtype("u1"),
}
_RESERVED = ("v", "type", "id", "frames")


class ProtocolError(ValueError):
    """A message that cannot be encoded or decoded; ``code`` is one of ``ERROR_CODES``.

    ``msg_id`` and ``msg_type`` are set when the header got far enough to name them, so a
    server can address its ``error`` reply to the offending request.
    """

    def __init__(self, code: str, message: str, msg_id: str | None = None, msg_type: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.msg_id = msg_id
        self.msg_type = msg_type


@dataclass(frozen=True)
class Limits:
    """Hard limits both sides check before any work (the server sends its own in ``hello_ok``)."""

    max_n: int = 8
    max_seconds: float = 10.0
    max_prompt_chars: int = 300
    max_steps: int = 1000
    min_guidance: float = 0.0
    max_guidance: float = 20.0
    max_header_bytes: int = 64 * 1024
    max_array_elements: int = 4 * 1024 * 1024
    max_message_bytes: int = 32 * 1024 * 1024

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "Limits":
        """Limits from a ``hello_ok`` dict: every field present, numbers only, nothing else."""
        if not isinstance(data, dict):
            raise ProtocolError(BAD_FIELD, f"limits must be an object, got {type(data).__name__}")
        names = [f.name for f in dataclass_fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ProtocolError(BAD_FIELD, f"unknown limits {unknown}")
        values = {}
        for f in dataclass_fields(cls):
            if f.name not in data:
                raise ProtocolError(BAD_FIELD, f"limits.{f.name} is missing")
            value = data[f.name]
            ok = _is_int(value) if f.type in ("int", int) else _is_number(value)
            if not ok or value < 0:
                raise ProtocolError(BAD_FIELD, f"limits.{f.name} must be a non-negative {f.type}, got {value!r}")
            values[f.name] = value
        return cls(**values)


@dataclass
class Message:
    """A decoded (or to-be-encoded) message: header fields apart from v/type/id/frames, and arrays."""

    type: str
    id: str
    fields: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def encode(self, limits: Limits | None = None) -> list[bytes | memoryview]:
        return encode_message(self.type, self.fields, self.arrays, self.id, limits)

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or ``default`` where it is absent or null."""
        value = self.fields.get(name)
        return default if value is None else value


def new_id() -> str:
    """A fresh message id (uuid4 hex)."""
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------
# Field checks. Each raises ProtocolError(BAD_FIELD) naming the field and what it wanted.

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _present(f: dict, name: str, required: bool, nullable: bool) -> bool:
    """Whether the field needs checking; raises if it is required and absent, or null when not allowed."""
    if name not in f:
        if required:
            raise ProtocolError(BAD_FIELD, f"field '{name}' is required")
        return False
    if f[name] is None:
        if not nullable:
            raise ProtocolError(BAD_FIELD, f"field '{name}' must not be null")
        return False
    return True


def _str(f: dict, name: str, *, required: bool = False, nullable: bool = False,
         min_len: int = 0, max_len: int = MAX_NAME_CHARS) -> None:
    if not _present(f, name, required, nullable):
        return
    value = f[name]
    if not isinstance(value, str):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be a string, got {type(value).__name__}")
    if len(value) < min_len:
        raise ProtocolError(BAD_FIELD, f"field '{name}' must have at least {min_len} characters")
    if len(value) > max_len:
        code = TOO_LARGE if name == "prompt" else BAD_FIELD
        raise ProtocolError(code, f"field '{name}' has {len(value)} characters, the limit is {max_len}")


def _int(f: dict, name: str, lo: int, hi: int, *, required: bool = False, nullable: bool = False) -> None:
    if not _present(f, name, required, nullable):
        return
    value = f[name]
    if not _is_int(value):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ProtocolError(BAD_FIELD, f"field '{name}' is {value}, must be in [{lo}, {hi}]")


def _number(f: dict, name: str, lo: float, hi: float, *, required: bool = False,
            nullable: bool = False, lo_open: bool = False) -> None:
    if not _present(f, name, required, nullable):
        return
    value = f[name]
    if not _is_number(value):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be a finite number, got {value!r}")
    if value > hi or value < lo or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        raise ProtocolError(BAD_FIELD, f"field '{name}' is {value}, must be in {bracket}{lo}, {hi}]")


def _bool(f: dict, name: str, *, required: bool = False, nullable: bool = False) -> None:
    if _present(f, name, required, nullable) and not isinstance(f[name], bool):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be true or false, got {f[name]!r}")


def _int_list(f: dict, name: str, lo: int, hi: int, max_len: int, *, required: bool = False,
              nullable: bool = False) -> None:
    if not _present(f, name, required, nullable):
        return
    value = f[name]
    if not isinstance(value, list) or not all(_is_int(v) for v in value):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be a list of integers, got {value!r}")
    if len(value) > max_len:
        raise ProtocolError(BAD_FIELD, f"field '{name}' has {len(value)} entries, the limit is {max_len}")
    if len(set(value)) != len(value):
        raise ProtocolError(BAD_FIELD, f"field '{name}' repeats an index: {value}")
    bad = [v for v in value if not lo <= v <= hi]
    if bad:
        raise ProtocolError(BAD_FIELD, f"field '{name}' has indices {bad} outside [{lo}, {hi}]")


def _str_list(f: dict, name: str, *, required: bool = False, max_len: int = 1000) -> None:
    if not _present(f, name, required, False):
        return
    value = f[name]
    if (not isinstance(value, list) or len(value) > max_len
            or not all(isinstance(v, str) and len(v) <= MAX_NAME_CHARS for v in value)):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be a list of at most {max_len} short strings")


def _object(f: dict, name: str, *, required: bool = False) -> None:
    if _present(f, name, required, False) and not isinstance(f[name], dict):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be an object, got {type(f[name]).__name__}")


def _request_id(f: dict, *, nullable: bool = False) -> None:
    _str(f, "request_id", required=True, nullable=nullable, min_len=1, max_len=MAX_ID_CHARS)


# ---------------------------------------------------------------------------------------
# Per-type checks: the allowed fields, their types and ranges, and the arrays a type carries.

def _check_hello(f: dict, arrays: dict, limits: Limits) -> None:
    _str(f, "client", nullable=True, max_len=MAX_NAME_CHARS)
    _bool(f, "want_models_dir")


def _check_hello_ok(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _int(f, "protocol", 1, 2**31, required=True)
    _str(f, "server", required=True)
    _str_list(f, "models", required=True)
    _str(f, "model", required=True, min_len=1)
    _object(f, "limits", required=True)
    Limits.from_dict(f["limits"])
    _object(f, "skeleton", required=True)
    _str(f, "device", nullable=True)
    _str(f, "models_dir", nullable=True, min_len=1, max_len=MAX_PATH_CHARS)


def _check_generate(f: dict, arrays: dict, limits: Limits) -> None:
    _str(f, "prompt", required=True, min_len=1, max_len=limits.max_prompt_chars)
    if not f["prompt"].strip():
        raise ProtocolError(BAD_FIELD, "field 'prompt' is blank")
    _int(f, "n", 1, limits.max_n, nullable=True)
    _number(f, "seconds", 0.0, limits.max_seconds, nullable=True, lo_open=True)
    _int(f, "seed", 0, MAX_SEED, nullable=True)
    _number(f, "guidance", limits.min_guidance, limits.max_guidance, nullable=True)
    _int(f, "steps", 1, limits.max_steps, nullable=True)
    _str(f, "model", nullable=True, min_len=1)
    _bool(f, "foot_cleanup", nullable=True)
    _bool(f, "want_confidence", nullable=True)
    frames = _constraints.clip_frames(f.get("seconds") or DEFAULT_SECONDS)
    try:   # v1.1 constraints: every field and array checked against the clip's frames (at 20 fps)
        _constraints.Constraints.from_wire(f, arrays, frames)
    except _constraints.ConstraintError as exc:
        raise ProtocolError(exc.code, exc.message) from None


def _check_progress(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _int(f, "total", 1, 2**31, required=True)
    _int(f, "step", 0, f["total"], required=True)


def _check_result(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _str(f, "model", required=True, min_len=1)
    _number(f, "fps", 0.0, 1000.0, required=True, lo_open=True)
    _int(f, "seed", 0, MAX_SEED, nullable=True)
    _int(f, "steps", 1, 2**31, nullable=True)
    _number(f, "guidance", -1e6, 1e6, nullable=True)
    _number(f, "confidence", 0.0, 1.0, nullable=True)
    _str(f, "nearest_caption", nullable=True, max_len=MAX_CAPTION_CHARS)
    _bool(f, "low_confidence", nullable=True)
    rot, trans = arrays["rotations"], arrays["translation"]
    if rot.ndim != 4 or rot.shape[2:] != (NUM_JOINTS, 4):
        raise ProtocolError(BAD_SHAPE, f"array 'rotations' must be (n, T, {NUM_JOINTS}, 4), got {rot.shape}")
    if trans.ndim != 3 or trans.shape[2] != 3:
        raise ProtocolError(BAD_SHAPE, f"array 'translation' must be (n, T, 3), got {trans.shape}")
    if rot.shape[:2] != trans.shape[:2]:
        raise ProtocolError(BAD_SHAPE, f"'rotations' {rot.shape} and 'translation' {trans.shape} differ in (n, T)")
    if not 1 <= rot.shape[0] <= limits.max_n or rot.shape[1] < 1:
        raise ProtocolError(BAD_SHAPE, f"result must have 1..{limits.max_n} candidates of >= 1 frame, got {rot.shape[:2]}")


def _check_error(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f, nullable=True)
    _str(f, "code", required=True, min_len=1, max_len=64)
    _str(f, "message", required=True, max_len=MAX_ERROR_CHARS)


def _check_cancel(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)


def _check_pick(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _str(f, "idempotency_key", required=True, min_len=1, max_len=MAX_ID_CHARS)
    if "chosen" not in f:
        raise ProtocolError(BAD_FIELD, "field 'chosen' is required (an index, or null for 'none are good')")
    _int(f, "chosen", 0, limits.max_n - 1, nullable=True)
    _int_list(f, "rejected", 0, limits.max_n - 1, limits.max_n, nullable=True)
    if f.get("chosen") is not None and f["chosen"] in (f.get("rejected") or []):
        raise ProtocolError(BAD_FIELD, f"candidate {f['chosen']} is both chosen and rejected")


def _check_pick_ok(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _str(f, "idempotency_key", required=True, min_len=1, max_len=MAX_ID_CHARS)
    _bool(f, "duplicate", required=True)


def _check_reload(f: dict, arrays: dict, limits: Limits) -> None:
    _str(f, "checkpoint", required=True, min_len=1, max_len=MAX_NAME_CHARS)


def _check_reload_ok(f: dict, arrays: dict, limits: Limits) -> None:
    _request_id(f)
    _str(f, "checkpoint", required=True, min_len=1)
    _str(f, "model", required=True, min_len=1)


@dataclass(frozen=True)
class _TypeSpec:
    fields: tuple[str, ...]
    check: Callable[[dict, dict, Limits], None]
    arrays: tuple[tuple[str, str], ...] = ()   # (name, dtype) in frame order, all required
    optional_arrays: tuple[tuple[str, str], ...] = ()   # (name, dtype): any of them, in this order


CLIENT_TYPES = ("hello", "generate", "cancel", "pick", "reload")              # what a server accepts
SERVER_TYPES = ("hello_ok", "progress", "result", "error", "pick_ok", "reload_ok")  # what a client accepts

MESSAGE_TYPES: dict[str, _TypeSpec] = {
    "hello": _TypeSpec(("client", "want_models_dir"), _check_hello),
    "hello_ok": _TypeSpec(("request_id", "protocol", "server", "models", "model", "limits",
                           "skeleton", "device", "models_dir"), _check_hello_ok),
    "generate": _TypeSpec(("prompt", "n", "seconds", "seed", "guidance", "steps", "model", "foot_cleanup",
                           "want_confidence") + _constraints.FIELDS,
                          _check_generate, optional_arrays=tuple((a, "float32") for a in _constraints.ARRAYS)),
    "progress": _TypeSpec(("request_id", "step", "total"), _check_progress),
    "result": _TypeSpec(("request_id", "model", "fps", "seed", "steps", "guidance", "confidence",
                         "nearest_caption", "low_confidence"), _check_result,
                        (("rotations", "float32"), ("translation", "float32"))),
    "error": _TypeSpec(("request_id", "code", "message"), _check_error),
    "cancel": _TypeSpec(("request_id",), _check_cancel),
    "pick": _TypeSpec(("request_id", "chosen", "rejected", "idempotency_key"), _check_pick),
    "pick_ok": _TypeSpec(("request_id", "idempotency_key", "duplicate"), _check_pick_ok),
    "reload": _TypeSpec(("checkpoint",), _check_reload),
    "reload_ok": _TypeSpec(("request_id", "checkpoint", "model"), _check_reload_ok),
}


def _validate(msg_type: str, fields: dict, arrays: dict[str, np.ndarray], limits: Limits) -> None:
    """Type-specific checks shared by encoding and decoding."""
    spec = MESSAGE_TYPES.get(msg_type)
    if spec is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {msg_type!r}; known: {sorted(MESSAGE_TYPES)}")
    unknown = sorted(set(fields) - set(spec.fields))
    if unknown:
        raise ProtocolError(BAD_FIELD, f"'{msg_type}' has unknown fields {unknown}; allowed: {list(spec.fields)}")
    wanted = [name for name, _ in spec.arrays]
    optional = [name for name, _ in spec.optional_arrays]
    if spec.optional_arrays:
        if [a for a in optional if a in arrays] != list(arrays):
            raise ProtocolError(BAD_FRAMES, f"'{msg_type}' may carry arrays {optional} (in this order), "
                                f"got {list(arrays)}")
    elif list(arrays) != wanted:
        raise ProtocolError(BAD_FRAMES, f"'{msg_type}' carries arrays {wanted}, got {list(arrays)}")
    for name, dtype in spec.arrays + tuple(a for a in spec.optional_arrays if a[0] in arrays):
        if arrays[name].dtype != DTYPES[dtype]:
            raise ProtocolError(BAD_DTYPE, f"array '{name}' must be {dtype}, got {arrays[name].dtype}")
    spec.check(fields, arrays, limits)


def _check_finite(name: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise ProtocolError(NOT_FINITE, f"array '{name}' contains NaN or infinity")


# ---------------------------------------------------------------------------------------
# Encoding and decoding.

def encode_message(msg_type: str, fields: dict[str, Any] | None = None,
                   arrays: dict[str, np.ndarray] | None = None, msg_id: str | None = None,
                   limits: Limits | None = None) -> list[bytes | memoryview]:
    """Validate and encode a message: header JSON bytes, then one byte view per array.

    Arrays are converted to little-endian C order only where needed; otherwise the frames are
    views of the caller's arrays (send them with ``copy=False`` and keep the arrays alive).
    """
    limits = limits or Limits()
    fields = dict(fields or {})
    msg_id = new_id() if msg_id is None else msg_id
    clash = sorted(set(fields) & set(_RESERVED))
    if clash:
        raise ProtocolError(BAD_FIELD, f"fields {clash} are reserved header keys")
    if not isinstance(msg_id, str) or not 1 <= len(msg_id) <= MAX_ID_CHARS:
        raise ProtocolError(BAD_HEADER, f"message id must be a string of 1..{MAX_ID_CHARS} characters")
    wire: dict[str, np.ndarray] = {}
    for name, array in (arrays or {}).items():
        array = np.asarray(array)
        wire_name = array.dtype.name if array.dtype.kind in "fiu" else None
        if wire_name not in DTYPES:
            raise ProtocolError(BAD_DTYPE, f"array '{name}' has dtype {array.dtype}; allowed: {sorted(DTYPES)}")
        array = np.ascontiguousarray(array, dtype=DTYPES[wire_name])
        _check_array_size(name, array.shape, array.dtype, limits)
        _check_finite(name, array)
        wire[name] = array
    _validate(msg_type, fields, wire, limits)
    header = {"v": PROTOCOL_VERSION, "type": msg_type, "id": msg_id,
              "frames": [{"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in wire.items()],
              **fields}
    try:
        head = json.dumps(header, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError(BAD_FIELD, f"fields are not JSON-serialisable finite values: {exc}") from None
    if len(head) > limits.max_header_bytes:
        raise ProtocolError(TOO_LARGE, f"header has {len(head)} bytes, the limit is {limits.max_header_bytes}")
    return [head] + [memoryview(a).cast("B") if a.size else b"" for a in wire.values()]


def _check_array_size(name: str, shape: tuple[int, ...], dtype: np.dtype, limits: Limits) -> int:
    elements = math.prod(shape)
    if elements > limits.max_array_elements:
        raise ProtocolError(TOO_LARGE, f"array '{name}' has {elements} elements, the limit is {limits.max_array_elements}")
    return elements * dtype.itemsize


def _reject_constant(name: str) -> float:
    raise ProtocolError(NOT_FINITE, f"JSON number {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(NOT_FINITE, f"JSON number {text} overflows to infinity")
    return value


def _frame_bytes(frame: Any) -> memoryview:
    """A byte view of a frame: bytes, bytearray, memoryview, or a zmq.Frame."""
    buffer = getattr(frame, "buffer", frame)
    try:
        view = memoryview(buffer)
    except TypeError:
        raise ProtocolError(BAD_FRAMES, f"frame of type {type(frame).__name__} is not a byte buffer") from None
    return view.cast("B") if view.ndim != 1 or view.itemsize != 1 else view


def decode_header(frame: Any, limits: Limits | None = None, accept: Collection[str] | None = None) -> dict[str, Any]:
    """Parse and check the header frame's JSON, version, type and id (not the fields).

    ``accept`` restricts the types this side takes (a server takes no ``result``).
    """
    limits = limits or Limits()
    raw = _frame_bytes(frame)
    if len(raw) > limits.max_header_bytes:
        raise ProtocolError(TOO_LARGE, f"header frame has {len(raw)} bytes, the limit is {limits.max_header_bytes}")
    try:
        header = json.loads(bytes(raw).decode("utf-8"), parse_constant=_reject_constant,
                            parse_float=_finite_float)
    except ProtocolError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_JSON, f"header frame is not UTF-8 JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError(BAD_HEADER, f"header must be a JSON object, got {type(header).__name__}")
    msg_id = header.get("id")
    if not isinstance(msg_id, str) or not 1 <= len(msg_id) <= MAX_ID_CHARS:
        raise ProtocolError(BAD_HEADER, f"header 'id' must be a string of 1..{MAX_ID_CHARS} characters")
    msg_type = header.get("type") if isinstance(header.get("type"), str) else None
    version = header.get("v")
    if not _is_int(version) or version != PROTOCOL_VERSION:
        raise ProtocolError(BAD_VERSION, f"protocol version {version!r} is not supported; this side speaks "
                            f"{PROTOCOL_VERSION}", msg_id, msg_type)
    if msg_type not in MESSAGE_TYPES:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {header.get('type')!r}; known: "
                            f"{sorted(MESSAGE_TYPES)}", msg_id)
    if accept is not None and msg_type not in accept:
        raise ProtocolError(UNKNOWN_TYPE, f"'{msg_type}' is not accepted here; send one of {sorted(accept)}",
                            msg_id, msg_type)
    return header


def decode_message(frames: list[Any], limits: Limits | None = None,
                   accept: Collection[str] | None = None) -> Message:
    """Decode and validate a multipart message; raises :class:`ProtocolError` naming the problem.

    Arrays are read-only views of the frames (no copy). ``accept`` restricts the message types.
    """
    limits = limits or Limits()
    if not frames:
        raise ProtocolError(BAD_FRAMES, "empty message")
    if len(frames) > 1 + MAX_ARRAYS:
        raise ProtocolError(BAD_FRAMES, f"message has {len(frames)} frames, the limit is {1 + MAX_ARRAYS}")
    header = decode_header(frames[0], limits, accept)
    msg_id, msg_type = header["id"], header["type"]
    try:
        descriptions = header.get("frames", [])
        if not isinstance(descriptions, list):
            raise ProtocolError(BAD_HEADER, "header 'frames' must be a list")
        if len(descriptions) != len(frames) - 1:
            raise ProtocolError(BAD_FRAMES, f"header describes {len(descriptions)} array frames, "
                                f"message has {len(frames) - 1}")
        arrays: dict[str, np.ndarray] = {}
        total = len(_frame_bytes(frames[0]))
        for i, (desc, frame) in enumerate(zip(descriptions, frames[1:])):
            name, dtype, shape = _parse_description(i, desc)
            if name in arrays:
                raise ProtocolError(BAD_FRAMES, f"array name '{name}' appears twice")
            nbytes = _check_array_size(name, shape, dtype, limits)
            total += nbytes
            if total > limits.max_message_bytes:
                raise ProtocolError(TOO_LARGE, f"message exceeds {limits.max_message_bytes} bytes")
            raw = _frame_bytes(frame)
            if len(raw) != nbytes:
                raise ProtocolError(BAD_SHAPE, f"array '{name}' {dtype.name}{list(shape)} needs {nbytes} "
                                    f"bytes, its frame has {len(raw)}")
            array = np.frombuffer(raw, dtype=dtype).reshape(shape)
            _check_finite(name, array)
            arrays[name] = array
        fields = {k: v for k, v in header.items() if k not in _RESERVED}
        _validate(msg_type, fields, arrays, limits)
    except ProtocolError as exc:
        exc.msg_id, exc.msg_type = msg_id, msg_type
        raise
    return Message(msg_type, msg_id, fields, arrays)


def _parse_description(i: int, desc: Any) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not isinstance(desc, dict) or set(desc) != {"name", "dtype", "shape"}:
        raise ProtocolError(BAD_HEADER, f"frames[{i}] must be an object with exactly name, dtype, shape")
    name, dtype, shape = desc["name"], desc["dtype"], desc["shape"]
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise ProtocolError(BAD_HEADER, f"frames[{i}].name must be a short string")
    if dtype not in DTYPES:
        raise ProtocolError(BAD_DTYPE, f"array '{name}' has dtype {dtype!r}; allowed: {sorted(DTYPES)}")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(_is_int(s) and s >= 0 for s in shape)):
        raise ProtocolError(BAD_SHAPE, f"array '{name}' shape must be a list of at most {MAX_NDIM} "
                            f"non-negative integers, got {shape!r}")
    return name, DTYPES[dtype], tuple(shape)


# ---------------------------------------------------------------------------------------
# Constructors, one per message type. Each returns a Message; call .encode() to send it.

def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def hello(client: str | None = None, msg_id: str | None = None, want_models_dir: bool | None = None) -> Message:
    """``want_models_dir``: ask for the server's models folder (answered only to clients on its machine)."""
    return Message("hello", msg_id or new_id(), _drop_none(client=client, want_models_dir=want_models_dir))


def hello_ok(request_id: str, server: str, models: list[str], model: str, limits: Limits,
             skeleton: dict[str, Any], device: str | None = None, msg_id: str | None = None,
             models_dir: str | None = None) -> Message:
    return Message("hello_ok", msg_id or new_id(), _drop_none(
        request_id=request_id, protocol=PROTOCOL_VERSION, server=server, models=list(models), model=model,
        limits=limits.to_dict(), skeleton=skeleton, device=device, models_dir=models_dir))


def generate(prompt: str, n: int | None = None, seconds: float | None = None, seed: int | None = None,
             guidance: float | None = None, steps: int | None = None, model: str | None = None,
             msg_id: str | None = None, constraints: "_constraints.Constraints | None" = None,
             foot_cleanup: bool | None = None, want_confidence: bool | None = None) -> Message:
    """``constraints`` (v1.1): pinned poses, loop, root path, kept joints (shared/constraints.py).
    ``foot_cleanup`` False: the raw sampled motion, without foot pinning (None: the server's default, on).
    ``want_confidence``: ask for the prompt's confidence in the result (opt-in: older clients refuse the fields)."""
    fields = _drop_none(prompt=prompt, n=n, seconds=seconds, seed=seed, guidance=guidance, steps=steps, model=model,
                        foot_cleanup=foot_cleanup, want_confidence=want_confidence)
    arrays: dict[str, np.ndarray] = {}
    if constraints is not None and not constraints.is_empty():
        try:
            constraints.check(_constraints.clip_frames(DEFAULT_SECONDS if seconds is None else seconds))
        except _constraints.ConstraintError as exc:
            raise ProtocolError(exc.code, exc.message) from None
        extra, arrays = constraints.to_wire()
        fields.update(extra)
    return Message("generate", msg_id or new_id(), fields, arrays)


def generate_constraints(msg: Message) -> "_constraints.Constraints | None":
    """The constraints of a decoded ``generate`` (arrays copied out of the frames), or None without any."""
    frames = _constraints.clip_frames(msg.get("seconds", DEFAULT_SECONDS))
    try:
        return _constraints.Constraints.from_wire(msg.fields, msg.arrays, frames)
    except _constraints.ConstraintError as exc:
        raise ProtocolError(exc.code, exc.message, msg.id, msg.type) from None


def progress(request_id: str, step: int, total: int, msg_id: str | None = None) -> Message:
    return Message("progress", msg_id or new_id(), {"request_id": request_id, "step": step, "total": total})


def result(request_id: str, rotations: np.ndarray, translation: np.ndarray, fps: float, model: str,
           seed: int | None = None, steps: int | None = None, guidance: float | None = None,
           msg_id: str | None = None, confidence: float | None = None, nearest_caption: str | None = None,
           low_confidence: bool | None = None) -> Message:
    """``confidence`` in [0, 1] (below 0.5 = ``low_confidence``: the prompt is far from the training captions),
    ``nearest_caption`` the training caption nearest to the prompt; sent only to a generate with
    ``want_confidence``, and absent when the model cannot tell."""
    return Message("result", msg_id or new_id(),
                   _drop_none(request_id=request_id, model=model, fps=float(fps), seed=seed, steps=steps,
                              guidance=None if guidance is None else float(guidance),
                              confidence=None if confidence is None else float(confidence),
                              nearest_caption=None if nearest_caption is None else nearest_caption[:MAX_CAPTION_CHARS],
                              low_confidence=low_confidence),
                   {"rotations": rotations, "translation": translation})


def error(code: str, message: str, request_id: str | None = None, msg_id: str | None = None) -> Message:
    return Message("error", msg_id or new_id(),
                   {"request_id": request_id, "code": code, "message": message[:MAX_ERROR_CHARS]})


def cancel(request_id: str, msg_id: str | None = None) -> Message:
    return Message("cancel", msg_id or new_id(), {"request_id": request_id})


def pick(request_id: str, chosen: int | None, idempotency_key: str, rejected: list[int] | None = None,
         msg_id: str | None = None) -> Message:
    """``chosen=None`` means "none are good"; ``rejected=None`` means every other candidate."""
    fields = {"request_id": request_id, "chosen": chosen, "idempotency_key": idempotency_key}
    if rejected is not None:
        fields["rejected"] = [int(i) for i in rejected]
    return Message("pick", msg_id or new_id(), fields)


def pick_ok(request_id: str, idempotency_key: str, duplicate: bool, msg_id: str | None = None) -> Message:
    return Message("pick_ok", msg_id or new_id(),
                   {"request_id": request_id, "idempotency_key": idempotency_key, "duplicate": duplicate})


def reload(checkpoint: str, msg_id: str | None = None) -> Message:
    return Message("reload", msg_id or new_id(), {"checkpoint": checkpoint})


def reload_ok(request_id: str, checkpoint: str, model: str, msg_id: str | None = None) -> Message:
    return Message("reload_ok", msg_id or new_id(),
                   {"request_id": request_id, "checkpoint": checkpoint, "model": model})
