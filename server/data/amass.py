"""Corpus clips from a user's own AMASS + HumanML3D (neither can ship with the product).

`load_humanml3d(amass_dir, humanml3d_dir)` reads HumanML3D's `index.csv`, `texts/` and
splits, takes each segment's motion from the AMASS SMPL-H `.npz` it names, and returns
clips and motions in the corpus format (20 fps, SMPL-22, Y-up) plus the reasons for
everything it left out. `server/prepare_data.py --amass DIR --humanml3d DIR` calls it.

What we reproduce of HumanML3D (EricGuo5513/HumanML3D: raw_pose_processing.ipynb, and
text-to-motion's data/dataset.py for the captions), and where we differ:

1. Frame indices. HumanML3D downsamples AMASS by the integer stride
   `int(mocap_framerate / 20)` from frame 0, then cuts a leading part of some datasets
   (on that strided sequence): Eyes_Japan_Dataset and MPI_HDM05 3 s (60 frames),
   TotalCapture and MPI_Limits 1 s (20), Transitions_mocap 0.5 s (10); then it takes
   `[start_frame:end_frame]` with Python slice semantics (end exclusive, clipped at the
   end). HumanML3D frame k of a segment is therefore AMASS frame
   `(trim + start_frame + k) * stride`. We select exactly those AMASS frames and then
   resample to 20 fps with the TRUE `mocap_framerate`. Where the rate is a multiple of
   20 (CMU, KIT, ACCAD... 60/100/120/240 fps) this gives HumanML3D's frames one for one.
   Where it is not (e.g. SSM's 59.99 fps: stride 2, so HumanML3D's "20 fps" is really
   30 fps), we keep HumanML3D's window (the same stretch of the take) but sample it at a
   real 20 fps, so the frame count differs from HumanML3D's and the speed is right.
2. Captions. Each line of `texts/<id>.txt` is `sentence#tokens#start#end`; we keep the
   sentence (caption source "humanml3d") and drop the POS tokens. start = end = 0 (NaN
   counts as 0) means the whole segment. Any other (start, end) is, as in HumanML3D's
   loader, the sub-window `motion[int(start*20):int(end*20)]` (HumanML3D frames of the
   segment), which becomes its own clip `amass/<id>#<a>-<b>` (frames a..b-1 of the
   segment at 20 fps; captions with the same window share the clip) if it has at least
   40 and fewer than 200 HumanML3D frames (their loader's limits for t2m). A window that
   covers the whole segment is a whole-segment caption. The whole-segment clip
   `amass/<id>` exists only if it has a whole-segment caption (as in HumanML3D).
   Whole segments are not length-filtered (training crops them), except < 2 frames.
3. Splits from train.txt / val.txt / test.txt. `M<id>` entries are HumanML3D's mirrored
   copies; we skip them (the corpus makes its own mirrors for train). Windowed clips
   inherit the split of their segment.
4. HumanAct12 rows (source `./pose_data/humanact12/...`) are not AMASS motions: dropped.
5. Not reproduced: HumanML3D's skeleton retargeting and feature extraction (we keep
   SMPL rotations, which is our wire format), its random names for windowed clips, and
   its mirroring.

AMASS files are found at `<amass_dir>/<dataset>/<...>.npz` (the index's
`./pose_data/CMU/02/02_01_poses.npy` -> `CMU/02/02_01_poses.npz`); newer AMASS releases
renamed some dataset folders (BioMotionLab_NTroje -> BMLrub, MPI_HDM05 -> HDM05, ...) and
those names are tried too, as are `<dataset>/<dataset>/...` (an extra level left by
unpacking) and spaces written as underscores. The pose is SMPL-H's first 66 columns
(22 body joints); Z-up AMASS becomes Y-up in `Motion.from_amass`. The pelvis position
uses the given rest joints' pelvis (default: the template in shared/skeleton.py), not
the subject's own betas: the corpus has one skeleton.
"""
from __future__ import annotations

import csv
import math
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from server.data.corpus import Caption, Clip
from shared.motion import Motion, MotionError
from shared.skeleton import FPS, NUM_JOINTS

SOURCE = "amass"
SKELETON = "smplh-amass"
LICENCE = "AMASS (non-commercial research)"
CAPTION_SOURCE = "humanml3d"
HML_FPS = 20  # HumanML3D's nominal rate (its `ex_fps`)
# raw_pose_processing.ipynb: leading HumanML3D (20 fps) frames cut before the window.
HML_LEADING_TRIM = (("Eyes_Japan_Dataset", 60), ("MPI_HDM05", 60), ("TotalCapture", 20),
                    ("MPI_Limits", 20), ("Transitions_mocap", 10))
HML_MIN_WINDOW, HML_MAX_WINDOW = 40, 200  # text-to-motion loader: keep 40 <= len < 200
MIN_SEGMENT_FRAMES = 2
# HumanML3D's (older AMASS) dataset folder names -> the names in current AMASS downloads.
DATASET_ALIASES = {
    "BioMotionLab_NTroje": ("BMLrub",), "DFaust_67": ("DFaust",), "Eyes_Japan_Dataset": ("EyesJapanDataset",),
    "MPI_HDM05": ("HDM05",), "MPI_Limits": ("PosePrior",), "MPI_mosh": ("MoSh",), "SSM_synced": ("SSM",),
    "Transitions_mocap": ("Transitions",), "TCD_handMocap": ("TCDHands",),
}
SPLIT_FILES = ("train", "val", "test")


class HumanML3DError(ValueError):
    """The HumanML3D folder lacks a file the loader cannot do without (index.csv, texts, splits)."""


# --- HumanML3D files -------------------------------------------------------------------

def _locate(root: Path, name: str) -> Path | None:
    """`name` in the folder, in its HumanML3D/ subfolder (the repo layout) or next to it."""
    for base in (root, root / "HumanML3D", root.parent):
        if (base / name).exists():
            return base / name
    return None


@dataclass
class IndexRow:
    row: int  # 0-based data row in index.csv
    source_path: str  # as written, e.g. ./pose_data/CMU/02/02_01_poses.npy
    start: int
    end: int
    name: str  # id without .npy, e.g. 000123

    @property
    def rel(self) -> PurePosixPath:
        """The path inside AMASS, e.g. CMU/02/02_01_poses.npz."""
        p = self.source_path.replace("\\", "/")
        while p.startswith("./"):
            p = p[2:]
        parts = PurePosixPath(p).parts
        if parts and parts[0] in ("pose_data", "amass_data"):
            parts = parts[1:]
        return PurePosixPath(*parts).with_suffix(".npz") if parts else PurePosixPath("")

    @property
    def trim(self) -> int:
        return sum(n for key, n in HML_LEADING_TRIM if key in self.source_path)


def read_index(path: Path) -> tuple[list[IndexRow], list[str]]:
    rows, bad = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"source_path", "start_frame", "end_frame", "new_name"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise HumanML3DError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
        for i, rec in enumerate(reader):
            name = (rec["new_name"] or "").strip()
            name = name[:-4] if name.endswith(".npy") else name
            try:
                rows.append(IndexRow(i, rec["source_path"].strip(), int(float(rec["start_frame"])),
                                     int(float(rec["end_frame"])), name))
            except (TypeError, ValueError):
                bad.append(f"{SOURCE}/{name or '?'}: index.csv row {i + 2} has bad frame numbers "
                           f"({rec['start_frame']!r}, {rec['end_frame']!r})")
    return rows, bad


def read_splits(root: Path) -> tuple[dict[str, str], list[str]]:
    """id -> split for the non-mirrored ids, and problems (ids in two splits)."""
    found = {s: _locate(root, f"{s}.txt") for s in SPLIT_FILES}
    if not any(found.values()):
        raise HumanML3DError(f"{root}: no train.txt / val.txt / test.txt (HumanML3D's split files)")
    split_of: dict[str, str] = {}
    problems = []
    for split, path in found.items():
        if path is None:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            sid = line.strip()
            if not sid or sid.startswith("M"):
                continue
            if sid in split_of and split_of[sid] != split:
                problems.append(f"{SOURCE}/{sid}: listed in both {split_of[sid]}.txt and {split}.txt")
                split_of[sid] = "?"
                continue
            split_of[sid] = split
    return split_of, problems


class _Texts:
    """texts/<id>.txt from a folder or from HumanML3D's texts.zip."""

    def __init__(self, root: Path):
        self.folder = _locate(root, "texts")
        self.zip = None
        if self.folder is None or not self.folder.is_dir():
            self.folder = None
            zpath = _locate(root, "texts.zip")
            if zpath is None:
                raise HumanML3DError(f"{root}: no texts/ folder (or texts.zip) with HumanML3D's captions")
            self.zip = zipfile.ZipFile(zpath)
            self.members = {PurePosixPath(n).name: n for n in self.zip.namelist() if n.endswith(".txt")}

    def read(self, sid: str) -> str | None:
        if self.folder is not None:
            p = self.folder / f"{sid}.txt"
            return p.read_text(encoding="utf-8") if p.is_file() else None
        member = self.members.get(f"{sid}.txt")
        return self.zip.read(member).decode("utf-8") if member else None

    def close(self):
        if self.zip is not None:
            self.zip.close()


def parse_captions(text: str) -> tuple[list[tuple[str, float, float]], list[str]]:
    """Lines `sentence#tokens#start#end` -> [(sentence, start_s, end_s)] (NaN -> 0), problems."""
    out, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("#")
        if len(parts) < 4:
            bad.append(f"line {n} is not sentence#tokens#start#end: {line[:60]!r}")
            continue
        sentence = "#".join(parts[:-3]).strip()
        try:
            start, end = float(parts[-2]), float(parts[-1])
        except ValueError:
            bad.append(f"line {n} has a bad start/end ({parts[-2]!r}, {parts[-1]!r})")
            continue
        start = 0.0 if math.isnan(start) else start
        end = 0.0 if math.isnan(end) else end
        if not sentence:
            bad.append(f"line {n} has an empty sentence")
            continue
        out.append((sentence, start, end))
    return out, bad


# --- AMASS files -------------------------------------------------------------------------

def find_amass_file(amass_dir: Path, rel: PurePosixPath) -> Path | None:
    parts = rel.parts
    if not parts:
        return None
    datasets = (parts[0],) + DATASET_ALIASES.get(parts[0], ())
    tails = [parts[1:]]
    if any(" " in p for p in parts[1:]):
        tails.append(tuple(p.replace(" ", "_") for p in parts[1:]))
    for ds in datasets:
        for tail in tails:
            for prefix in ((ds,), (ds, ds)):
                p = amass_dir.joinpath(*prefix, *tail)
                if p.is_file():
                    return p
    return None


@dataclass
class _Sequence:
    poses: np.ndarray  # (T, >= 66)
    trans: np.ndarray  # (T, 3)
    fps: float


def read_amass(path: Path) -> _Sequence:
    """poses, trans and mocap_framerate of an AMASS .npz; ValueError names what is wrong."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"unreadable AMASS file {path.name} ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path.name} is a plain .npy array, not an AMASS .npz")
    with archive:
        keys = set(archive.files)
        rate_key = "mocap_frame_rate" if "mocap_frame_rate" in keys else "mocap_framerate"
        missing = [k for k in ("poses", "trans", rate_key) if k not in keys]
        if missing:
            raise ValueError(f"{path.name} has no {', '.join(missing)} (keys: {', '.join(sorted(keys))})")
        try:
            poses = np.asarray(archive["poses"], dtype=np.float64)
            trans = np.asarray(archive["trans"], dtype=np.float64)
            fps = float(np.asarray(archive[rate_key]).reshape(-1)[0])
        except (ValueError, TypeError, IndexError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path.name}: unreadable arrays ({exc})") from None
    if poses.ndim != 2 or poses.shape[1] < 3 * NUM_JOINTS:
        raise ValueError(f"{path.name}: poses has shape {poses.shape}, expected (T, >= {3 * NUM_JOINTS})")
    if trans.shape != (poses.shape[0], 3):
        raise ValueError(f"{path.name}: trans has shape {trans.shape}, expected ({poses.shape[0]}, 3)")
    if not math.isfinite(fps) or fps < HML_FPS:
        raise ValueError(f"{path.name}: mocap_framerate {fps} is below {HML_FPS} fps")
    return _Sequence(poses, trans, fps)


# --- the loader ------------------------------------------------------------------------

def _subject(rel: PurePosixPath) -> str:
    parts = rel.parts
    return "/".join(parts[:2]) if len(parts) > 2 else (parts[0] if parts else "")


def _segment(row: IndexRow, seq: _Sequence, rest_joints) -> tuple[Motion, range, int, float]:
    """(20 fps motion of the segment, its HumanML3D frames, stride, start in s); ValueError if empty."""
    stride = int(seq.fps / HML_FPS)
    n_strided = len(range(0, seq.poses.shape[0], stride))
    hml = range(row.trim, n_strided)[row.start:row.end]  # HumanML3D frames, as strided indices
    if len(hml) < MIN_SEGMENT_FRAMES:
        raise ValueError(f"window [{row.start}:{row.end}] (+{row.trim} trimmed) has {len(hml)} frames; "
                         f"{seq.poses.shape[0]} AMASS frames at {seq.fps:g} fps give {n_strided - row.trim}")
    a, last = hml[0] * stride, hml[-1] * stride
    motion = Motion.from_amass(seq.poses[a:last + 1], seq.trans[a:last + 1], seq.fps, rest_joints=rest_joints)
    return motion.resample(FPS), hml, stride, a / seq.fps


def _to_ours(k: int, stride: int, fps: float) -> int:
    """A segment's HumanML3D frame index -> our 20 fps frame index (identity when fps = 20 * stride)."""
    return int(round(k * stride * FPS / fps))


def load_humanml3d(amass_dir, humanml3d_dir, rest_joints=None,
                   progress=True) -> tuple[list[Clip], list[Motion], list[str]]:
    """Clips, their 20 fps motions, and the reasons for every segment, caption or row left out.

    amass_dir: the AMASS root holding <dataset>/... .npz files (SMPL-H: poses, trans,
    mocap_framerate). humanml3d_dir: HumanML3D's folder with index.csv, texts/ (or
    texts.zip) and train/val/test.txt (the HumanML3D repo root works too).
    rest_joints: (22, 3) Y-up rest joints for the pelvis position (default: the template).
    Raises HumanML3DError / FileNotFoundError if a folder or index.csv/texts/splits is missing.
    """
    amass_dir, hml_dir = Path(amass_dir).expanduser(), Path(humanml3d_dir).expanduser()
    if not amass_dir.is_dir():
        raise FileNotFoundError(f"AMASS folder not found: {amass_dir}")
    if not hml_dir.is_dir():
        raise FileNotFoundError(f"HumanML3D folder not found: {hml_dir}")
    index_path = _locate(hml_dir, "index.csv")
    if index_path is None:
        raise HumanML3DError(f"{hml_dir}: no index.csv (HumanML3D's source_path,start_frame,end_frame,new_name)")
    rows, dropped = read_index(index_path)
    split_of, split_problems = read_splits(hml_dir)
    dropped += split_problems
    texts = _Texts(hml_dir)

    results: dict[int, list[tuple[Clip, Motion]]] = {}
    cache: tuple[Path | None, _Sequence | str | None] = (None, None)
    order = sorted(rows, key=lambda r: (r.source_path, r.row))  # each AMASS file is read once
    bar = _progress(len(order), progress)
    try:
        for row in order:
            bar.update(1)
            cid = f"{SOURCE}/{row.name}"
            if row.name.startswith("M"):
                dropped.append(f"{cid}: mirrored HumanML3D copy (the corpus makes its own mirrors)")
                continue
            if "humanact12" in row.source_path.lower():
                dropped.append(f"{cid}: HumanAct12 motion ({row.source_path}), not part of AMASS")
                continue
            split = split_of.get(row.name)
            if split is None or split == "?":
                if split is None:
                    dropped.append(f"{cid}: not in train.txt, val.txt or test.txt")
                continue
            raw = texts.read(row.name)
            if raw is None:
                dropped.append(f"{cid}: no caption file texts/{row.name}.txt")
                continue
            captions, bad = parse_captions(raw)
            dropped += [f"{cid}: texts/{row.name}.txt {b}" for b in bad]
            if not captions:
                dropped.append(f"{cid}: texts/{row.name}.txt has no captions")
                continue
            rel = row.rel
            path = find_amass_file(amass_dir, rel)
            if path is None:
                dropped.append(f"{cid}: AMASS file not found: {rel} (under {amass_dir})")
                continue
            if cache[0] != path:
                try:
                    cache = (path, read_amass(path))
                except ValueError as exc:
                    cache = (path, str(exc))
            seq = cache[1]
            if isinstance(seq, str):
                dropped.append(f"{cid}: {seq}")
                continue
            try:
                motion, hml, stride, start_s = _segment(row, seq, rest_joints)
            except (ValueError, MotionError) as exc:
                dropped.append(f"{cid}: {rel}: {exc}")
                continue
            results[row.row] = _clips_for(row, rel, split, captions, motion, hml, stride, seq.fps, start_s, dropped)
    finally:
        bar.close()
        texts.close()

    clips, motions = [], []
    for r in sorted(results):
        for clip, motion in results[r]:
            clips.append(clip)
            motions.append(motion)
    return clips, motions, dropped


def _clips_for(row: IndexRow, rel: PurePosixPath, split: str, captions, motion: Motion, hml: range,
               stride: int, fps: float, start_s: float, dropped: list[str]) -> list[tuple[Clip, Motion]]:
    cid = f"{SOURCE}/{row.name}"
    n = len(hml)
    whole: list[Caption] = []
    windows: dict[tuple[int, int], list[Caption]] = {}
    for sentence, t0, t1 in captions:
        if t0 == 0.0 and t1 == 0.0:
            whole.append(Caption(sentence, CAPTION_SOURCE))
            continue
        w = range(n)[int(t0 * HML_FPS):int(t1 * HML_FPS)]
        if len(w) == n:
            whole.append(Caption(sentence, CAPTION_SOURCE))
            continue
        if not HML_MIN_WINDOW <= len(w) < HML_MAX_WINDOW:
            dropped.append(f"{cid}: caption {sentence[:50]!r} window {t0:g}-{t1:g} s has {len(w)} frames "
                           f"(HumanML3D keeps {HML_MIN_WINDOW} to {HML_MAX_WINDOW - 1})")
            continue
        a = _to_ours(w.start, stride, fps)
        b = min(_to_ours(w[-1], stride, fps) + 1, motion.num_frames)
        windows.setdefault((a, b), []).append(Caption(sentence, CAPTION_SOURCE))

    def clip(clip_id: str, caps: list[Caption], frames: int, offset_s: float) -> Clip:
        return Clip(id=clip_id, source=SOURCE, skeleton=SKELETON, subject=_subject(rel),
                    take=str(rel.with_suffix("")), split=split, licence=LICENCE, commercial_ok=False,
                    frames=frames, captions=caps, mirrored=False, start_s=round(start_s + offset_s, 6))

    out = []
    if whole:
        out.append((clip(cid, whole, motion.num_frames, 0.0), motion))
    elif windows:
        dropped.append(f"{cid}: whole segment not kept: every caption describes a sub-window "
                       f"(kept as {len(windows)} windowed clip(s), as HumanML3D does)")
    for (a, b), caps in sorted(windows.items()):
        out.append((clip(f"{cid}#{a}-{b}", caps, b - a, a / FPS), motion.slice(a, b)))
    if not out:
        dropped.append(f"{cid}: no caption left (all {len(captions)} describe windows HumanML3D drops)")
    return out


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is a dependency, but progress must never break loading
        return _NoBar()
    return tqdm(total=total, desc="AMASS + HumanML3D", unit="seg", file=sys.stderr)
