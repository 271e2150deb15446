"""Hard negatives for the reward model and hard retrieval pools: mirror, time reversal, speed, other style, action keys.

A hard negative is a motion close to a matched one that its caption no longer describes:

    mirror   left and right swapped (x -> -x, left/right joints exchanged)
    reverse  played backwards
    slow     half speed (x0.5: twice the frames)
    fast     double speed (x2: half the frames)
    style    another clip of the same labelled action in another style (Bandai Namco's labels)
    clip     any other clip (the ordinary in-batch negative; listed for the AUC report)

A transformed motion only counts as a negative of a caption when it changes what the caption
says: the mirror when the caption names a side; reversal and speed when the motion's kinematic
facts (`server.data.kinematics`: locomotion kind and direction, turn sides, postures entered or
left, ...) change; another style when the caption names the clip's own style and not the other
clip's. So "a person waves" played backwards is not a negative, "a person walks forward" is.

Action families and keys (`ClipFacts`) build the hard retrieval pools of the evaluation: clips of
one family ("locomotion", "raise", "wave", ...) that differ in side, direction, speed or style.
Transforms work on FK joint positions (training) and on the wire format (`Motion`; reports).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from server.data.kinematics import LOCOMOTION, MotionFacts, extract_facts
from server.data.paraphrase import STYLE_WALK, STYLES, swap_sides
from shared.motion import Motion
from shared.skeleton import FPS, MIRROR_PERMUTATION

TRANSFORMS = ("mirror", "reverse", "slow", "fast")
NEGATIVE_TYPES = TRANSFORMS + ("style",)
REPORT_TYPES = NEGATIVE_TYPES + ("clip",)
SPEED = {"slow": 0.5, "fast": 2.0}
# the family of a clip that does not move from the spot: its first event kind in this order
EVENT_FAMILIES = ("wave", "punch", "kick", "hop", "jump", "clap", "raise", "arm_forward", "arm_side", "turn", "crouch",
                  "sit", "kneel", "lie", "bend", "lean_back")
SIDED = ("left", "right", "both")


# --- transforms ---------------------------------------------------------------------------------

def mirror_positions(pos: np.ndarray) -> np.ndarray:
    """(T, 22, 3) -> (T, 22, 3): x -> -x with left and right joints exchanged (exact for a symmetric skeleton)."""
    out = np.array(pos[:, MIRROR_PERMUTATION], dtype=pos.dtype, copy=True)
    out[..., 0] *= -1
    return out


def reverse_positions(pos: np.ndarray) -> np.ndarray:
    """(T, 22, 3) -> (T, 22, 3) played backwards."""
    return np.ascontiguousarray(pos[::-1])


def resample_positions(pos: np.ndarray, factor: float) -> np.ndarray:
    """(T, 22, 3) played `factor` times as fast: frame k of the result is source time k * factor (linear)."""
    t = len(pos)
    count = int(np.floor((t - 1) / factor + 1e-9)) + 1
    src = np.arange(count) * factor
    i0 = np.minimum(np.floor(src).astype(np.int64), t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    a = (src - i0).astype(pos.dtype)[:, None, None]
    return (1 - a) * pos[i0] + a * pos[i1]


def transform_positions(pos: np.ndarray, kind: str) -> np.ndarray:
    """One of TRANSFORMS on (T, 22, 3) joint positions."""
    if kind == "mirror":
        return mirror_positions(pos)
    if kind == "reverse":
        return reverse_positions(pos)
    if kind in SPEED:
        return resample_positions(pos, SPEED[kind])
    raise ValueError(f"unknown transform {kind!r}; expected one of {TRANSFORMS}")


def transform_motion(motion: Motion, kind: str) -> Motion:
    """One of TRANSFORMS on a wire-format motion (20 fps in, 20 fps out)."""
    if kind == "mirror":
        return motion.mirror()
    if kind == "reverse":
        return Motion(motion.rotations[::-1].copy(), motion.translation[::-1].copy(), motion.fps)
    if kind in SPEED:
        return Motion(motion.rotations, motion.translation, motion.fps * SPEED[kind]).resample(motion.fps)
    raise ValueError(f"unknown transform {kind!r}; expected one of {TRANSFORMS}")


# --- what a caption names -------------------------------------------------------------------------

def names_a_side(text: str) -> bool:
    """True when the caption says left, right, clockwise ...: its mirror image is another motion."""
    return swap_sides(text) != text


@lru_cache(maxsize=None)
def _style_patterns() -> dict[str, re.Pattern]:
    """Style label -> a regex of its train-half manner phrases and walking verbs (server/data/paraphrase.py)."""
    out = {}
    for label, (train, _held) in STYLES.items():
        phrases = [p for p in train.split("|") if p]
        verbs = [v.split()[0] for v in STYLE_WALK.get(label, ("", ""))[0].split("|") if v]
        parts = [re.escape(p.lower()) for p in phrases] + [re.escape(v.rstrip("e")) + r"\w*" for v in verbs]
        out[label] = re.compile(r"\b(?:" + "|".join(parts) + r")\b")
    return out


def styles_named(text: str) -> frozenset[str]:
    """The Bandai Namco style labels whose manner words the caption uses."""
    low = text.lower()
    return frozenset(label for label, pat in _style_patterns().items() if pat.search(low))


def bandai_label(clip) -> tuple[str, str] | None:
    """(action, style) of a Bandai Namco clip from its take ('bandai/dataset-2_walk-turn-left_happy_021'); the action
    carries '~m' for mirrored copies (their sides are swapped); None for other sources."""
    if clip.source != "bandai":
        return None
    parts = clip.take.split("/")[-1].split("_")
    if len(parts) < 4:
        return None
    return parts[1] + ("~m" if clip.mirrored else ""), parts[2]


# --- kinematic summaries ----------------------------------------------------------------------------

def fact_summary(facts: MotionFacts) -> frozenset[tuple]:
    """What captions can say about a motion, order and amounts aside: (kind, side, detail) of every fact
    (locomotion direction, turn side, posture entered, ...), the path shape left out (noisy on crops)."""
    return frozenset((f.kind, f.side, f.detail) for f in facts.facts if f.kind != "path")


def action_family(facts: MotionFacts) -> str:
    """'locomotion' when the longest segment walks, jogs or runs; else the first of EVENT_FAMILIES present;
    else 'stand'."""
    longest = max(facts.segments, key=lambda s: s.end - s.start)
    if longest.base.kind in LOCOMOTION:
        return "locomotion"
    kinds = {f.kind for f in facts.facts}
    return next((k for k in EVENT_FAMILIES if k in kinds), "stand")


def hard_key(facts: MotionFacts, style: str = "") -> tuple:
    """What tells clips of one family apart: the longest segment's kind and direction, every sided fact with its
    side, and the style label. Clips with equal keys are equally right answers in a hard pool."""
    longest = max(facts.segments, key=lambda s: s.end - s.start)
    sided = tuple(sorted({(f.kind, f.side) for f in facts.facts if f.side in SIDED}))
    return longest.base.kind, longest.base.detail, sided, style


@dataclass
class ClipFacts:
    """Per clip: the family, the hard key, and which transforms change its facts (reverse, slow, fast)."""

    family: str
    key: tuple
    changes: dict[str, bool]  # transform -> its facts differ from the clip's


def clip_facts(positions: np.ndarray, style: str = "", fps: float = FPS, transforms=("reverse", "slow", "fast")
               ) -> ClipFacts:
    """Facts of (T, 22, 3) positions and of each transform of them (mirror needs none: it swaps sides)."""
    facts = extract_facts(positions, fps)
    base = fact_summary(facts)
    changes = {}
    for kind in transforms:
        moved = transform_positions(positions, kind)
        changes[kind] = len(moved) >= 4 and fact_summary(extract_facts(moved, fps)) != base
    return ClipFacts(action_family(facts), hard_key(facts, style), changes)


# --- negatives for one (clip, caption) ---------------------------------------------------------------

class NegativeTable:
    """Which hard negatives are valid for the clips of one split and the texts of a corpus.

    `kinds[i]`: ClipFacts of clip i; `labels[i]`: its Bandai (action, style) or None; `side_text[t]`,
    `style_text[t]`: what text t names. `options(i, t)` lists the valid negative types for clip i
    described by text t; `style_partners(i, t)` the clips that make a valid 'style' negative.
    """

    def __init__(self, clip_facts_: list[ClipFacts], labels: list[tuple[str, str] | None], texts: list[str]):
        self.facts = clip_facts_
        self.labels = labels
        self.side_text = np.array([names_a_side(t) for t in texts], dtype=bool)
        self.style_text = [styles_named(t) for t in texts]
        self._by_action: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            if lab is not None:
                self._by_action.setdefault(lab[0], []).append(i)

    def style_partners(self, i: int, text: int) -> list[int]:
        lab = self.labels[i]
        named = self.style_text[text]
        if lab is None or lab[1] not in named:
            return []
        return [j for j in self._by_action.get(lab[0], []) if self.labels[j][1] != lab[1]
                and self.labels[j][1] not in named]

    def options(self, i: int, text: int) -> list[str]:
        out = ["mirror"] if self.side_text[text] else []
        out += [k for k in ("reverse", "slow", "fast") if self.facts[i].changes.get(k, False)]
        if self.style_partners(i, text):
            out.append("style")
        return out


# --- the AUC report: matched pairs against each kind of negative -------------------------------------

@dataclass
class ScoredPairs:
    """Scores r(x, c) of matched (clip, caption) pairs and of one negative per pair, for one negative type."""

    kind: str
    matched: np.ndarray  # (P,)
    negative: np.ndarray  # (P,)

    def summary(self, resamples: int = 1000, seed: int = 0) -> dict:
        """AUC with a 95% bootstrap interval over pairs, the paired win rate and the mean scores."""
        from server.eval.metrics import auc

        n = len(self.matched)
        if n == 0:
            return {"kind": self.kind, "pairs": 0}
        rng = np.random.default_rng(seed)
        boot = [auc(self.matched[s], self.negative[s]) for s in rng.integers(0, n, (resamples, n))]
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return {"kind": self.kind, "pairs": n, "auc": auc(self.matched, self.negative), "auc_low": float(lo),
                "auc_high": float(hi), "wins": float(np.mean(self.matched > self.negative)),
                "matched_mean": float(self.matched.mean()), "negative_mean": float(self.negative.mean())}


@dataclass
class NegativeSet:
    """Matched (motion, caption) pairs of a split with one negative motion per pair and type (where valid)."""

    motions: list[Motion]
    texts: list[str]
    negatives: dict[str, list[tuple[int, Motion]]]  # type -> [(pair index, negative motion)]


def negative_set(corpus, split: str = "test", seed: int = 0, min_frames: int = 16, progress=None) -> NegativeSet:
    """One random caption per clip of `split`, and its valid negatives of every REPORT_TYPES type."""
    from server.eval.metrics import caption_groups

    rng = np.random.default_rng(seed)
    idx = [i for i in corpus.indices(split) if corpus.clips[i].captions and corpus.clips[i].frames >= min_frames]
    motions = [corpus.motion(i) for i in idx]
    labels = [bandai_label(corpus.clips[i]) for i in idx]
    texts = [corpus.clips[i].captions[int(rng.integers(len(corpus.clips[i].captions)))].text for i in idx]
    it = progress(motions, desc="negatives: facts") if progress else motions
    facts = [clip_facts(m.positions(), lab[1] if lab else "", m.fps) for m, lab in zip(it, labels)]
    table = NegativeTable(facts, labels, texts)
    groups = caption_groups([[c.text for c in corpus.clips[i].captions] for i in idx])
    negatives: dict[str, list[tuple[int, Motion]]] = {k: [] for k in REPORT_TYPES}
    for k, motion in enumerate(motions):
        for kind in table.options(k, k):
            if kind == "style":
                partners = table.style_partners(k, k)
                negatives[kind].append((k, motions[partners[int(rng.integers(len(partners)))]]))
            else:
                moved = transform_motion(motion, kind)
                if moved.num_frames >= min_frames // 2:
                    negatives[kind].append((k, moved))
        others = np.nonzero(groups != groups[k])[0]
        if len(others):
            negatives["clip"].append((k, motions[int(others[int(rng.integers(len(others)))])]))
    return NegativeSet(motions, texts, negatives)


def score_negatives(score, data: NegativeSet, generated: list[Motion] | None = None) -> list[ScoredPairs]:
    """`score(motions, texts) -> (N,)` (e.g. `RewardModel.reward`) on every matched pair and negative; with
    `generated` (one generated motion per pair, same caption) also a 'generated' row."""
    matched = np.asarray(score(data.motions, data.texts), dtype=np.float64)
    out = []
    for kind, items in data.negatives.items():
        if not items:
            continue
        pair = [k for k, _ in items]
        neg = np.asarray(score([m for _, m in items], [data.texts[k] for k in pair]), dtype=np.float64)
        out.append(ScoredPairs(kind, matched[pair], neg))
    if generated is not None:
        out.append(ScoredPairs("generated", matched, np.asarray(score(generated, data.texts), dtype=np.float64)))
    return out


def auc_table(results: dict[str, list[dict]]) -> str:
    """Markdown: one line per negative type; per model its AUC [95% interval], the paired win rate (matched above
    its own negative) and the mean r of matched pairs / negatives."""
    names = list(results)
    kinds = list(dict.fromkeys(row["kind"] for rows in results.values() for row in rows))
    head = ["Negative", "Pairs"]
    for n in names:
        head += [f"{n}: AUC [95% CI] ↑", f"{n}: paired wins ↑", f"{n}: r matched / negative"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in kinds:
        rows = [next((r for r in results[n] if r["kind"] == kind), None) for n in names]
        cells = [DESCRIPTIONS.get(kind, kind), next((str(r["pairs"]) for r in rows if r), "0")]
        for r in rows:
            if r and r.get("pairs"):
                cells += [f"{r['auc']:.3f} [{r['auc_low']:.3f}, {r['auc_high']:.3f}]", f"{100 * r['wins']:.1f}%",
                          f"{r['matched_mean']:.3f} / {r['negative_mean']:.3f}"]
            else:
                cells += ["-", "-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DESCRIPTIONS = {"mirror": "left/right mirror", "reverse": "time reversal", "slow": "speed x0.5", "fast": "speed x2",
                "style": "another style, same action", "clip": "another clip",
                "generated": "the model's sample, same caption"}
