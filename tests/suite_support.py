"""A few prompts of the bundled prompt suite in a suite file: the real checkers at a test's budget."""
from __future__ import annotations

import json
from pathlib import Path


def write_tiny_suite(path: Path, train: int = 2, heldout: int = 1, max_seconds: float = 3.0) -> Path:
    """The first `train` train-wording and `heldout` held-out-wording prompts of the bundled suite."""
    from server.eval.suite import load_suite

    suite = load_suite()
    keep = ([p for p in suite.prompts if p.wording == "train"][:train]
            + [p for p in suite.prompts if p.wording == "heldout"][:heldout])
    path.write_text(json.dumps({"version": "tiny", "prompts": [
        {"id": p.id, "text": p.text, "category": p.category, "seconds": min(p.seconds, max_seconds),
         "wording": p.wording, "steps": list(p.steps)} for p in keep]}))
    return path
