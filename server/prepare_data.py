"""Build the training corpus: `python server/prepare_data.py --shared ../shared/data --out data/corpus`.

Other inputs: `--amass DIR --humanml3d DIR` (a user's AMASS + HumanML3D), `--bvh-dir DIR
--bvh-captions CSV` (a user's own BVH library with `file,text` captions). `--commercial-safe`
leaves out non-commercial data (Bandai Namco, AMASS). Prints the retargeting quality per
source skeleton, the dropped clips with their reasons, a summary, the captions' statistics
(vocabulary, distinct captions, captions per clip, captions with a held-out-half word: must be
0, else exit 1) and how often each clip's kinematic facts agree with what its source's label
names; writes them to `report.json` and `summary.json` in the corpus folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not server/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from server.data.corpus_build import build_corpus  # noqa: E402

PROG = "prepare_data.py"


def _table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, help="the team data folder (../shared/data)")
    ap.add_argument("--out", type=Path, default=Path("data/corpus"), help="corpus folder to write (default data/corpus)")
    ap.add_argument("--amass", type=Path, help="AMASS root (SMPL-H .npz files)")
    ap.add_argument("--humanml3d", type=Path, help="HumanML3D folder (index.csv, texts/, train.txt ...)")
    ap.add_argument("--bvh-dir", type=Path, help="a folder of your own BVH files")
    ap.add_argument("--bvh-captions", type=Path, help="CSV with columns file,text for --bvh-dir")
    ap.add_argument("--bvh-fps", type=float, help="true frame rate of --bvh-dir files when their headers are wrong")
    ap.add_argument("--commercial-safe", action="store_true", help="leave out non-commercial sources (Bandai Namco, AMASS)")
    ap.add_argument("--no-mirror", action="store_true", help="do not add left/right mirrored copies of training clips")
    ap.add_argument("--limit", type=int, help="process only the first N takes (quick tries)")
    args = ap.parse_args(argv)
    if args.shared is None and args.amass is None and args.bvh_dir is None:
        ap.error("give at least one source: --shared, --amass/--humanml3d or --bvh-dir/--bvh-captions")
    try:
        result = build_corpus(args.out, shared=args.shared, amass=args.amass, humanml3d=args.humanml3d,
                              bvh_dir=args.bvh_dir, bvh_captions=args.bvh_captions, bvh_fps=args.bvh_fps,
                              commercial_safe=args.commercial_safe, limit=args.limit, mirror=not args.no_mirror)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    print("\nRetargeting quality per source skeleton (kept clips):")
    q = result["quality"]
    print(_table([[k, v["clips"], v["bone_cos_min"], v["bone_cos_median"], v["skating_median_m_s"],
                   v["source_skating_median_m_s"], v["penetration_frac_max"]] for k, v in q.items()],
                 ["skeleton", "clips", "cos min", "cos median", "skating m/s", "source skating", "penetration max"]))
    dropped = result["dropped"]
    print(f"\nDropped {len(dropped)} takes:")
    for d in dropped:
        print(f"  {d['id']}: {d['reason']}")
    s = result["summary"]
    rows = []
    for split in ("train", "val", "test"):
        for source, st in s[split].items():
            if source in ("all", "mirrored"):
                continue
            rows.append([split, source, st["clips"], st["hours"], st["captions"], st["distinct_captions"], st["words"],
                         st["vocabulary"]])
        st = s[split]["mirrored"]
        if st["clips"]:
            rows.append([split, "(mirrored)", st["clips"], st["hours"], st["captions"], st["distinct_captions"],
                         st["words"], st["vocabulary"]])
    a = s["all"]
    rows.append(["all", "", a["clips"], a["hours"], a["captions"], a["distinct_captions"], a["words"], a["vocabulary"]])
    print("\nSummary:")
    print(_table(rows, ["split", "source", "clips", "hours", "captions", "distinct", "words", "vocabulary"]))
    leaks = _print_captions(s)
    print(f"\nWrote {args.out} in {result['seconds']:.1f} s (report.json, summary.json, splits.json)")
    command = sys.argv[1:] if argv is None else list(argv)
    (args.out / "build.json").write_text(json.dumps({"seconds": round(result["seconds"], 1), "argv": command}, indent=1))
    if leaks:
        print(f"{PROG}: {leaks} captions carry a held-out-half word (see summary.json captions.heldout_word_examples)",
              file=sys.stderr)
        return 1
    return 0


def _print_captions(s: dict) -> int:
    """Print the caption statistics and the facts-vs-label agreement table; returns the held-out-word captions."""
    c = s.get("captions")
    if not c:
        return 0
    src = c["source_captions"]
    print(f"\nCaptions: vocabulary {c['vocabulary']} words, {c['distinct_captions']} distinct captions, "
          f"{c['captions_per_clip']} per clip ({c['source_per_clip']} source + {c['kinematic_per_clip']} kinematic), "
          f"{c['clips_under_10_captions']} clips under 10; source captions kept {src.get('kept', 0)} "
          f"(rewritten to train-half words {src.get('rewritten', 0)}), dropped {src.get('dropped', 0)}; "
          f"captions with a held-out-half word: {c['heldout_word_captions']}")
    g = s["agreement"]["by_group"]
    sources = [x for x in ("CMU", "KIT-ML", "Bandai", "Li", "DeepMimic", "all") if any(x in row for row in g.values())]
    aimed = s["agreement"]["aimed"]

    def cell(row: dict, source: str) -> str:
        a, n = row.get(source, (0, 0))
        return f"{a}/{n} {100 * a / n:.0f}%" if n else "-"

    order = [k for k in aimed if k in g] + sorted(k for k in g if k not in aimed)
    rows = [[k + (" *" if k in aimed else "")] + [cell(g[k], x) for x in sources] for k in order]
    print("\nKinematic facts vs source labels (clips whose label names it; * aim >= 90%):")
    print(_table(rows, ["label"] + sources))
    print(s["agreement"]["note"])
    return int(c["heldout_word_captions"])


if __name__ == "__main__":
    sys.exit(main())
