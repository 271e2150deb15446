"""Build the training corpus: `python server/prepare_data.py --shared ../shared/data --out data/corpus`.

Other inputs: `--amass DIR --humanml3d DIR` (a user's AMASS + HumanML3D), `--bvh-dir DIR
--bvh-captions CSV` (a user's own BVH library with `file,text` captions). `--commercial-safe`
leaves out non-commercial data (Bandai Namco, AMASS). Prints the retargeting quality per
source skeleton, the dropped clips with their reasons and a summary; writes them to
`report.json` and `summary.json` in the corpus folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from server.data.corpus_build import build_corpus


def _table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
            rows.append([split, source, st["clips"], st["hours"], st["captions"], st["distinct_captions"], st["words"]])
        st = s[split]["mirrored"]
        if st["clips"]:
            rows.append([split, "(mirrored)", st["clips"], st["hours"], st["captions"], st["distinct_captions"], st["words"]])
    a = s["all"]
    rows.append(["all", "", a["clips"], a["hours"], a["captions"], a["distinct_captions"], a["words"]])
    print("\nSummary:")
    print(_table(rows, ["split", "source", "clips", "hours", "captions", "distinct", "words"]))
    print(f"\nWrote {args.out} in {result['seconds']:.1f} s (report.json, summary.json, splits.json)")
    (args.out / "build.json").write_text(json.dumps({"seconds": round(result["seconds"], 1), "argv": sys.argv[1:]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
