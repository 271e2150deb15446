"""Write docs/captions_audit.md: 24 random corpus clips (fixed seed) with a stick-figure strip, facts and captions.

    .venv/bin/python docs/captions_audit/make_audit.py --old data/corpus_v1 --new data/corpus

Each clip gets an 8-frame strip (server/eval/render.py), its kinematic facts, its captions in the
old corpus and in the new one (source and kinematic), and how its facts agree with its label.
The notes written after looking at the strips live in notes.json (clip id -> text) beside this
script and are kept when the page is written again.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from server.data import label_agreement as agreement  # noqa: E402
from server.data.corpus import Corpus  # noqa: E402
from server.data.corpus_build import caption_stats  # noqa: E402
from server.data.kinematics import LOCOMOTION, MotionFacts, extract_facts  # noqa: E402
from server.eval.render import render_strip  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED, COUNT = 13, 24


def describe_facts(facts: MotionFacts) -> str:
    """One line per segment: 'walk forward 1.2 m/s, 8 steps; path straight 4.1 m; turn left quarter 92 deg'."""
    lines = []
    for seg in facts.segments:
        parts = []
        for f in seg.facts:
            side = f" {f.side}" if f.side else ""
            if f.kind in LOCOMOTION:
                parts.append(f"{f.kind} {f.detail}{side} {f.value:.1f} m/s, {f.count} steps, arm swing {f.swing:.2f} m")
            elif f.kind == "path":
                parts.append(f"path {f.detail}{side} {f.value:.1f} m")
            elif f.kind == "stand":
                parts.append(f"stand (feet {f.width:.2f} m apart)")
            elif f.kind == "turn":
                parts.append(f"turn{side} {f.detail} {f.value:.0f} deg")
            elif f.kind == "raise":
                parts.append(f"raise{side} {f.detail} x{f.count} (wrist +{f.value:.2f} m, {f.rate:.1f} m/s, "
                             f"reach {f.reach:.2f})")
            elif f.kind == "wave":
                parts.append(f"wave{side} x{f.count} (swing {f.value:.2f} m)")
            else:
                detail = f" {f.detail}" if f.detail else ""
                parts.append(f"{f.kind}{side}{detail}" + (f" x{f.count}" if f.count > 1 else ""))
        lines.append(f"{seg.start / facts.fps:.1f}-{seg.end / facts.fps:.1f} s: " + "; ".join(parts))
    return "\n".join(f"    {line}" for line in lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, default=ROOT / "data" / "corpus_v1", help="the corpus before captions v2")
    ap.add_argument("--new", type=Path, default=ROOT / "data" / "corpus", help="the corpus with captions v2")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "captions_audit.md")
    args = ap.parse_args(argv)
    old, new = Corpus(args.old), Corpus(args.new)
    old_by_id = {c.id: c for c in old.clips}
    pool = [i for i, c in enumerate(new.clips) if not c.mirrored and c.id in old_by_id]
    picks = sorted(np.random.default_rng(SEED).choice(pool, COUNT, replace=False).tolist())
    notes_path = HERE / "notes.json"
    notes = json.loads(notes_path.read_text()) if notes_path.is_file() else {}
    out = ["# Captions v2 audit: 24 random clips", "",
           f"Written by `python docs/captions_audit/make_audit.py --old {args.old} --new {args.new}` "
           f"(numpy seed {SEED}, clips drawn from the new corpus's originals, mirrored copies left out). "
           "Each strip shows 8 evenly spaced frames, first to last (time under each frame). "
           "Old captions are the corpus before captions v2 (distinct texts); new ones are tagged with their "
           "`source` (`kinematic`: written from the facts). Notes come from looking at the strips.", ""]
    before, after = caption_stats(old.clips), caption_stats(new.clips)
    rows = [("vocabulary (distinct words)", "vocabulary"), ("distinct captions", "distinct_captions"),
            ("captions", "captions"), ("distinct captions per clip", "captions_per_clip"),
            ("clips with fewer than 10", "clips_under_10_captions"),
            ("captions with a held-out-half word", "heldout_word_captions")]
    out += ["| corpus | " + " | ".join(r[0] for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(str(st[k]) for _, k in rows) + " |"
            for name, st in ((f"before (`{args.old}`)", before), (f"after (`{args.new}`)", after))]
    out += ["", "Words are `server.data.paraphrase.words` tokens (digits left out); the old `summary.json` split on "
            "spaces and counted 355.", ""]
    agree = json.loads((args.new / "summary.json").read_text()).get("agreement")
    if agree:
        g, sources = agree["by_group"], ["CMU", "KIT-ML", "Bandai", "Li", "DeepMimic", "all"]
        cell = lambda row, x: f"{row[x][0]}/{row[x][1]}" if x in row else "-"  # noqa: E731
        order = [k for k in agree["aimed"] if k in g] + sorted(k for k in g if k not in agree["aimed"])
        out += ["Facts vs source labels (clips whose label names it; aims >= 90% for the first five rows):", "",
                "| label | " + " | ".join(sources) + " |", "|---" * (len(sources) + 1) + "|"]
        out += [f"| {k} | " + " | ".join(cell(g[k], x) for x in sources) + " |" for k in order]
        out += ["", agree["note"], ""]
    findings = notes.get("_findings", [])
    if findings:
        out += ["## What the strips showed", ""] + [f"- {f}" for f in findings] + [""]
    (HERE).mkdir(parents=True, exist_ok=True)
    for n, i in enumerate(picks, 1):
        clip = new.clips[i]
        motion = new.motion(i)
        facts = extract_facts(motion)
        name = clip.id.replace("/", "_") + ".png"
        render_strip(motion, HERE / name, frames=8, titles=[clip.id], cell_inches=1.8, dpi=72)
        labels = [f"{src} {chk}: {'yes' if agreement.agrees(chk, facts) else 'NO'}"
                  for src, chk in agreement.source_labels(clip)]
        out += [f"## {n}. `{clip.id}` ({clip.split}, {motion.num_frames / motion.fps:.1f} s)", "",
                f"![{clip.id}](captions_audit/{name})", "", "Facts:", "", describe_facts(facts), ""]
        if labels:
            out += ["Label check: " + "; ".join(labels), ""]
        olds = list(dict.fromkeys(c.text for c in old_by_id[clip.id].captions))
        out += [f"Old captions ({len(olds)}):", ""] + [f"- {t}" for t in olds] + [""]
        out += [f"New captions ({len(clip.captions)}):", ""] + [f"- [{c.source}] {t}" for c, t in
                                                               ((c, c.text) for c in clip.captions)] + [""]
        out += [f"**Notes:** {notes.get(clip.id, '(not yet looked at)')}", ""]
    args.out.write_text("\n".join(out))
    print(f"wrote {args.out} and {COUNT} strips in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
