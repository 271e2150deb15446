"""English forms for the captions: verb inflection, word tokens, numbers in words, and left/right swaps."""
from __future__ import annotations

import re

from server.data.wording import _NUM

_PAST = {"run": "ran", "sit": "sat", "spin": "spun", "swing": "swung", "stand": "stood", "get": "got", "rise": "rose",
         "arise": "arose", "lie": "lay", "kneel": "knelt", "stride": "strode", "throw": "threw", "hold": "held",
         "bend": "bent", "strike": "struck", "put": "put", "take": "took", "go": "went", "make": "made", "do": "did",
         "bring": "brought", "sink": "sank", "spring": "sprang", "tread": "trod", "hit": "hit", "come": "came",
         "spread": "spread", "leap": "leapt", "freeze": "froze", "be": "was", "shoot": "shot", "thrust": "thrust",
         "creep": "crept", "fling": "flung", "speed": "sped", "sweep": "swept", "send": "sent", "draw": "drew",
         "tear": "tore", "keep": "kept", "let": "let", "shake": "shook", "stick": "stuck"}
_DOUBLE = {"run", "sit", "spin", "hop", "jog", "trot", "plod", "strut", "step", "stop", "drop", "slog", "jab", "clap",
           "flap", "wag", "squat", "trek", "get", "put", "hit", "swim", "begin", "snap", "flag", "dip", "tip", "let",
           "drag", "slap", "thud", "zip"}


def _inflect(verb: str, form: str) -> str:
    """Form of a verb phrase (first word inflected): 'base', 's', 'ing' or 'past'."""
    head, _, rest = verb.partition(" ")
    if form == "s":
        w = head + ("es" if re.search(r"(s|sh|ch|x|z|o)$", head) else "s")
        w = re.sub(r"([^aeiou])ys$", r"\1ies", w)
    elif form == "ing":
        w = (head[:-2] + "ying" if head.endswith("ie") else head + head[-1] + "ing" if head in _DOUBLE
             else head[:-1] + "ing" if head.endswith("e") and not head.endswith(("ee", "ye", "oe")) else head + "ing")
    elif form == "past":
        w = _PAST.get(head) or (head + head[-1] + "ed" if head in _DOUBLE else head + "d" if head.endswith("e")
                                else head[:-1] + "ied" if re.search(r"[^aeiou]y$", head) else head + "ed")
    else:
        w = head
    return f"{w} {rest}".strip()


WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated words stay one token: 'about-face', 'counter-clockwise')."""
    return WORD.findall(text.lower())


def _number(n: int) -> str:
    return _NUM[n] if 0 <= n <= 20 else str(n)


def _round_words(x: float) -> str:
    """A count or amount in words: whole numbers up to twenty, then to the nearest ten ('a hundred and twenty')."""
    n = int(round(x))
    if n <= 20:
        return _NUM[max(n, 0)]
    n = int(round(x / 10.0)) * 10
    hundreds, rest = divmod(n, 100)
    tens = _NUM[18 + rest // 10] if rest >= 20 else _NUM[rest] if rest else ""
    if not hundreds:
        return tens
    head = "a hundred" if hundreds == 1 else f"{_NUM[hundreds]} hundred"
    return f"{head} and {tens}" if tens else head


def _speed_words(v: float) -> str:
    """m/s to the nearest half, in words: 'half a metre', 'one metre', 'two and a half metres'."""
    halves = max(int(round(v * 2)), 1)
    whole, half = divmod(halves, 2)
    if not whole:
        return "half a metre"
    return f"{_NUM[whole]} and a half metres" if half else f"{_NUM[whole]} metre" + ("s" if whole > 1 else "")


_SIDE = re.compile(r"\b(counter-?clockwise|anti-?clockwise|clockwise|left|right)"
                   r"(?=(wards?|-hand(ed)?|-footed|hand(ed)?|most)?\b)", re.IGNORECASE)
_NOT_SIDE = re.compile(r"\b(right (away|now|there|here|angles?)|all right|right-angled?)\b", re.IGNORECASE)


def swap_sides(text: str) -> str:
    """Swap every side word (left/right, leftward(s), left-handed ..., clockwise/counterclockwise/anticlockwise),
    keeping case; 'right away', 'all right', 'right angle' are not sides and stay."""
    keep = {m.start() for m in _NOT_SIDE.finditer(text)} | {m.start() + 4 for m in _NOT_SIDE.finditer(text)
                                                            if m.group(0).lower().startswith("all ")}

    def repl(m: re.Match) -> str:
        word = m.group(1)
        if m.start() in keep:
            return word
        low = word.lower()
        new = {"left": "right", "right": "left", "clockwise": "counterclockwise"}.get(low, "clockwise")
        if low in ("counter-clockwise", "anti-clockwise"):
            new = "clockwise"
        return new.capitalize() if word[0].isupper() else new

    return _SIDE.sub(repl, text)
