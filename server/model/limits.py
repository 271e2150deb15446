"""The protocol's request limits for a loaded generator, checked in-process with the server's own validation.

The server refuses a ``generate`` beyond ``shared.protocol.Limits`` (its defaults, with
``max_seconds`` and ``max_steps`` capped by the loaded model); a CLI that runs the model itself
checks the same limits the same way, so a user sees the same message either way.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared import protocol as P


def generator_limits(generator: Any, base: P.Limits | None = None) -> P.Limits:
    """``base`` (default: the protocol's) with seconds and steps capped by what ``generator`` can do."""
    base = base or P.Limits()
    return replace(base, max_seconds=min(base.max_seconds, float(generator.max_seconds)),
                   max_steps=min(base.max_steps, int(generator.max_steps)))


def check_generate(limits: P.Limits, prompt: str, n: int | None = None, seconds: float | None = None,
                   seed: int | None = None, guidance: float | None = None, steps: int | None = None) -> None:
    """Raise ``shared.protocol.ProtocolError`` (the server's message) if this request is outside ``limits``."""
    P.generate(prompt, n=n, seconds=seconds, seed=seed, guidance=guidance, steps=steps).encode(limits)
