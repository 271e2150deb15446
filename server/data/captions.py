"""Captions for the corpus: terse labels turned into short natural sentences, plus kinematic captions per clip.

Sources give thin text: CMU trial descriptions ("playground - forward jumps, turn around",
"run/jog"), Bandai Namco content x style labels, Li et al. action labels. We turn each into a
few plain sentences ("a person jumps forward on a playground, then turns around") and
paraphrase the subject. Nothing here invents motion that the label does not name.
`clip_captions` then gives a clip its source captions (cleaned of held-out-half words) and
captions written from its kinematic facts by the train half of `server/data/paraphrase.py`,
each tagged with its `Caption.source` ("kinematic" for the computed ones).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from server.data.corpus import Caption
from server.data.kinematics import MotionFacts
from server.data.paraphrase import captions_for_clip, sanitize

KINEMATIC = "kinematic"
"""`Caption.source` of captions written from a clip's kinematic facts (every other tag names a source's own text)."""
KINEMATIC_PER_CLIP = 10
"""Distinct kinematic captions written per clip (fewer when the grammar runs dry on a clip with few facts)."""

SUBJECTS = ("a person", "someone", "a human", "the person")

# base verb -> third person singular
_VERBS = {
    "walk": "walks", "run": "runs", "jog": "jogs", "jump": "jumps", "hop": "hops", "climb": "climbs",
    "punch": "punches", "strike": "strikes", "bend": "bends", "wash": "washes", "dance": "dances",
    "navigate": "navigates", "stretch": "stretches", "crouch": "crouches", "get": "gets", "fall": "falls",
    "grip": "grips", "kick": "kicks", "turn": "turns", "dribble": "dribbles", "swing": "swings",
    "hang": "hangs", "stride": "strides", "sit": "sits", "stand": "stands", "throw": "throws",
    "catch": "catches", "reach": "reaches", "pick": "picks", "lift": "lifts", "carry": "carries",
    "push": "pushes", "pull": "pulls", "step": "steps", "spin": "spins", "twist": "twists", "roll": "rolls",
    "dive": "dives", "duck": "ducks", "wave": "waves", "bow": "bows", "march": "marches", "skip": "skips",
    "sneak": "sneaks", "tiptoe": "tiptoes", "limp": "limps", "stumble": "stumbles", "balance": "balances",
    "box": "boxes", "play": "plays", "swim": "swims", "flip": "flips", "shuffle": "shuffles", "lean": "leans",
    "look": "looks", "point": "points", "raise": "raises", "clap": "claps", "salute": "salutes",
    "squat": "squats", "kneel": "kneels", "crawl": "crawls", "slide": "slides", "dash": "dashes",
    "guide": "guides", "call": "calls", "respond": "responds", "slash": "slashes", "shoot": "shoots",
    "grab": "grabs", "stop": "stops", "sway": "sways", "shake": "shakes", "mop": "mops", "sweep": "sweeps",
}
_THIRD = set(_VERBS.values())
_LOCOMOTION = {"walk", "run", "jog", "dash", "hop", "crawl", "march", "skip"}
_FIXES = ((r"\bself\b", "themselves"), (r"\bfrom ground\b", "from the ground"), (r"\bkicks ball\b", "kicks a ball"),
          (r"\bto quick stop\b", "to a quick stop"), (r"\bthrows ball\b", "throws a ball"))
_ADVERBS = {"slow": "slowly", "brisk": "briskly", "quick": "quickly", "fast": "fast", "forward": "forward",
            "backward": "backward", "backwards": "backward", "sideways": "sideways", "careful": "carefully"}
_CONTEXTS = {
    "playground": "on a playground", "basketball": "with a basketball", "dance": "as a dance move",
    "soccer": "playing soccer", "navigate": "", "swordplay": "with a sword", "boxing": "boxing",
}
_NOT_CAPTIONS = {"", "unknown", "clean", "cleaned", "bad amc", "story", "motorcycle", "none"}


def _clause(phrase: str) -> str | None:
    """'forward jumps' -> 'jumps forward'; 'slow walk' -> 'walks slowly'; 'jumping jacks' -> 'does jumping jacks'."""
    words = phrase.strip().lower().split()
    if not words:
        return None
    adverb = None
    if words[0] in _ADVERBS and len(words) > 1:
        adverb, words = _ADVERBS[words[0]], words[1:]
    head = words[0]
    if head.endswith("s") and head[:-1] in _VERBS:  # "forward jumps" -> "jumps"
        head = head[:-1]
    if head in _VERBS:
        out = [_VERBS[head]]
        rest = words[1:]
        # "run duck underneath": consecutive verbs become a list of actions
        chain = []
        for w in rest:
            if w in _VERBS and out[-1] == "to" and w not in _LOCOMOTION:
                out.append(w)  # purpose: "jumps up to grab"
            elif w in _VERBS and (w != "stop" or len(out) == 1):
                if out[-1] == "to":
                    out.pop()  # transition: "walk to run" -> "walks, then runs"
                chain.append(" ".join(out))
                out = [_VERBS[w]]
            else:
                out.append(w)
        chain.append(" ".join(out))
        text = ", then ".join(chain)
        if adverb:
            first, *others = text.split(" ", 1)
            text = f"{first} {adverb}" + (f" {others[0]}" if others else "")
        return text
    if head in _THIRD:
        return " ".join(words)
    noun = " ".join(words)
    article = "" if noun.endswith("s") or noun.endswith("play") else ("an " if noun[0] in "aeiou" else "a ")
    return f"does {article}{noun}" + (f" {adverb}" if adverb else "")


def describe(label: str) -> list[str]:
    """Natural captions (first is the main one) for a terse action label, or [] if it is not a description."""
    raw = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label.strip().strip('"')).replace("_", " ")
    if raw.lower() in _NOT_CAPTIONS or re.fullmatch(r"\d+_\d+(\.amc)?", raw.lower()):
        return []
    context = ""
    if " - " in raw:
        ctx, raw = raw.split(" - ", 1)
        context = _CONTEXTS.get(ctx.strip().lower(), f"({ctx.strip().lower()})")
    alternatives = [a for a in re.split(r"/", raw) if a.strip()]
    sentences = []
    for alt in alternatives:
        parts = [p for p in re.split(r",| and then | then | and ", alt) if p.strip()]
        clauses = [c for c in (_clause(p) for p in parts) if c]
        if not clauses:
            continue
        body = clauses[0] + (" " + context if context else "")
        if len(clauses) > 1:
            body += ", then " + ", then ".join(clauses[1:])
        body = re.sub(r"\s+", " ", body).strip()
        for pattern, fix in _FIXES:
            body = re.sub(pattern, fix, body)
        sentences.append(body)
    return [f"a person {s}" for s in sentences]


def paraphrase(sentence: str) -> list[str]:
    """The sentence with each subject in SUBJECTS (the sentence itself first)."""
    s = sentence.strip().rstrip(".")
    m = re.match(r"^(a person|someone|a human|the person|a man|a woman)\s+(.*)$", s, flags=re.IGNORECASE)
    if not m:
        return [s]
    out = [s] + [f"{subj} {m.group(2)}" for subj in SUBJECTS if subj != m.group(1).lower()]
    return list(dict.fromkeys(out))


_STYLE_WORDS = {
    "active": "energetically", "angry": "angrily", "childish": "like a child", "chimpira": "like a swaggering street thug",
    "feminine": "in a feminine way", "giant": "like a giant", "happy": "happily", "masculine": "in a masculine way",
    "masculinity": "in a masculine way", "exhausted": "as if exhausted",
    "musical": "rhythmically", "normal": "", "not-confident": "unconfidently", "old": "like an elderly person",
    "elderly": "like an elderly person", "proud": "proudly", "sad": "sadly", "tired": "tiredly", "youthful": "youthfully",
}
_CONTENT_PHRASES = {
    "walk": ["walks", "walks forward"], "run": ["runs", "runs forward"], "dash": ["dashes forward", "runs fast"],
    "walk-back": ["walks backward"], "walk-left": ["walks to the left", "steps sideways to the left"],
    "walk-right": ["walks to the right", "steps sideways to the right"],
    "walk-turn-left": ["walks and turns left"], "walk-turn-right": ["walks and turns right"],
    "bow": ["bows"], "bye": ["waves goodbye"], "byebye": ["waves goodbye with both hands"],
    "guide": ["gestures to guide someone"], "call": ["calls someone over with a hand gesture"],
    "respond": ["responds with a gesture"], "kick": ["kicks"], "punch": ["punches"], "slash": ["slashes with an arm"],
    "dance-short": ["dances"], "dance-long": ["dances"], "raise-up-both-hands": ["raises both hands"],
    "raise-up-left-hand": ["raises the left hand"], "raise-up-right-hand": ["raises the right hand"],
    "wave-both-hands": ["waves both hands"], "wave-left-hand": ["waves the left hand"],
    "wave-right-hand": ["waves the right hand"],
}


def bandai_captions(content: str, style: str, template: str) -> list[str]:
    """The dataset's own template caption first, then content x style sentences."""
    out = [template.strip().rstrip(".")]
    how = _STYLE_WORDS.get(style, style.replace("-", " "))
    for verb in _CONTENT_PHRASES.get(content, [content.replace("-", " ")]):
        out.append(f"a person {verb} {how}".strip())
    return list(dict.fromkeys(out))


@dataclass
class CaptionCounts:
    """What `clip_captions` did to a clip's source captions."""

    kept: int = 0
    rewritten: int = 0  # held-out-half words replaced by their train synonyms
    dropped: int = 0  # a held-out word with no safe train synonym, or a duplicate after rewriting
    kinematic: int = 0


def clip_captions(source: list[Caption], facts: MotionFacts, seed: str, style: str | None = None,
                  kinematic: int = KINEMATIC_PER_CLIP) -> tuple[list[Caption], CaptionCounts]:
    """The clip's source captions in the train half's words (their tags kept), then `kinematic` distinct
    captions of its facts (tag "kinematic"; kinematic captions given in `source` are replaced), deterministic
    for a given `seed` (the clip id)."""
    counts = CaptionCounts()
    out: list[Caption] = []
    seen: set[str] = set()
    for c in source:
        if c.source == KINEMATIC:  # written from the facts again below
            continue
        text = sanitize(c.text.strip().rstrip("."))
        if text is None or text in seen:
            counts.dropped += 1
            continue
        counts.rewritten += text != c.text.strip().rstrip(".")
        counts.kept += 1
        seen.add(text)
        out.append(Caption(text, c.source))
    for text in captions_for_clip(facts, [], random.Random(seed), n=kinematic, style=style):
        if text not in seen:
            seen.add(text)
            out.append(Caption(text, KINEMATIC))
            counts.kinematic += 1
    return out, counts
