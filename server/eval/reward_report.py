"""How well the reward model (and the evaluator) rank a matched (motion, caption) above its hard negatives.

    python server/evaluate.py --reward-auc --checkpoint default

For every clip of the test split, one random caption: r(clip, caption) against r(negative, caption)
for each kind of negative of `hard_negatives.py` (mirror, time reversal, x0.5 and x2 speed, another
style of the same action, another clip) and against the generator's own sample for that caption at
the clip's length. AUC (P(matched scores above the negative)) with a 95% bootstrap interval over
pairs, the paired win rate and the mean scores. SoPo needs the last row: the policy's samples must
score below real motion for its online losers to carry a signal.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from server.eval import hard_negatives as hn
from shared.motion import Motion
from shared.skeleton import FPS


def generated_samples(generate, data: hn.NegativeSet, seed: int = 0) -> list[Motion]:
    """One sample per pair of `generate` (an `evaluation.GenerateFn`) for its caption, at its clip's length."""
    rng = np.random.default_rng([int(seed), 0x5eed])
    seconds = [m.num_frames / FPS for m in data.motions]
    out = generate(data.texts, seconds, 1, rng.integers(0, 2 ** 31 - 1, len(data.texts)).tolist())
    return [Motion(r[0], t[0], FPS) for r, t in out]


def report(models: Sequence[tuple[str, Path]], corpus_path: Path, generator: tuple[str, Path] | None = None,
           split: str = "test", seed: int = 0, device: str | None = None, text_cache=None, out: Path = Path("runs/eval"),
           progress: Callable | None = None, command: str = "", log: Callable = print) -> dict:
    """Score each (name, text-motion checkpoint folder) on the negatives of `split` (and on `generator`'s samples);
    print the AUC table and write `<out>/reward_auc.{md,json}`. Raises CorpusError, CheckpointError,
    FileNotFoundError on bad input."""
    from server.data.corpus import Corpus
    from server.eval.evaluation import generator_fn
    from server.eval.reward import RewardModel

    t0 = time.time()
    corpus = Corpus(corpus_path)
    scorers = [(name, RewardModel.load(path, device, text_cache=text_cache)) for name, path in models]
    data = hn.negative_set(corpus, split, seed, progress=progress)
    generated = None
    gen_name = ""
    if generator is not None:
        from server.model.inference import MotionGenerator

        gen_name, path = generator
        generated = generated_samples(generator_fn(MotionGenerator.load(path, device=device)), data, seed)
    results = {name: [p.summary(seed=seed) for p in hn.score_negatives(rm.reward, data, generated)]
               for name, rm in scorers}
    table = hn.auc_table(results)
    note = (f"{len(data.texts)} {split} clips, one random caption each; AUC = P(r(matched) > r(negative)) over all "
            f"pairs, with a 95% bootstrap interval over pairs; paired wins = share of pairs whose matched motion scores "
            f"above its own negative; a transformed motion is a negative only where it changes what the caption says "
            f"(server/eval/hard_negatives.py)." + (f" Samples: {gen_name}, default settings." if gen_name else ""))
    text = "\n\n".join([table, note, f"{round(time.time() - t0)} s" + (f"; command: {command}" if command else "")])
    log(text)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reward_auc.md").write_text(text + "\n")
    result = {"results": results, "split": split, "seed": seed, "pairs": len(data.texts), "generator": gen_name,
              "models": {name: str(path) for name, path in models}, "corpus_fingerprint": corpus.fingerprint,
              "command": command, "seconds": round(time.time() - t0, 1)}
    (out / "reward_auc.json").write_text(json.dumps(result, indent=1))
    log(f"wrote {out / 'reward_auc.md'} and {out / 'reward_auc.json'}")
    return result
