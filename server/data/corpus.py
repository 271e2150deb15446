"""The training corpus on disk: motions in the wire format plus per-clip metadata.

Layout of a corpus folder (written by `prepare_data.py`, read by training and evaluation):

    motions.npz   rotations (F, 22, 4) float32, translation (F, 3) float32, offsets (N + 1,) int64,
                  fps () float64 -- clip i is frames offsets[i]:offsets[i + 1]
    clips.jsonl   one JSON object per clip, in the same order (see `Clip`)
    splits.json   {"train": [clip ids], "val": [...], "test": [...]} and how the split was made
    report.json   retargeting quality per clip and the dropped clips with their reasons
    summary.json  counts per split and source, caption statistics ("captions") and facts-vs-label agreement
                  ("agreement")
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shared.motion import Motion
from shared.skeleton import FPS, NUM_JOINTS

SPLITS = ("train", "val", "test")


class CorpusError(ValueError):
    """A corpus folder is missing, incomplete or inconsistent."""


@dataclass
class Caption:
    text: str
    source: str  # "kitml", "cmu_description", "label_template", "label_style", "paraphrase" (subject swaps of those),
    # "humanml3d", "user": a source's own text; "kinematic": written from the clip's motion (server/data/captions.py)


@dataclass
class Clip:
    id: str  # unique, e.g. "cmu/01_01#0" ; mirrored copies end in "~m"
    source: str  # "cmu", "li2018", "deepmimic", "bandai", "amass", "user"
    skeleton: str  # source skeleton family, e.g. "cgspeed-mb-31"
    subject: str  # performer id used for the held-out split
    take: str  # source file / trial name
    split: str  # "train" | "val" | "test"
    licence: str  # e.g. "CMU", "CC BY-NC 4.0"
    commercial_ok: bool
    frames: int
    captions: list[Caption] = field(default_factory=list)
    mirrored: bool = False
    start_s: float = 0.0  # window in the source take, seconds
    quality: dict = field(default_factory=dict)  # retargeting metrics for this clip

    @staticmethod
    def from_json(obj: dict) -> "Clip":
        obj = dict(obj)
        obj["captions"] = [Caption(**c) for c in obj.get("captions", [])]
        return Clip(**obj)


def write_corpus(path: str | Path, clips: list[Clip], motions: list[Motion], splits_info: dict | None = None,
                 report: dict | None = None, summary: dict | None = None) -> Path:
    """Write clips and their motions (all at the corpus rate, 20 fps) to `path`."""
    path = Path(path)
    if len(clips) != len(motions):
        raise CorpusError(f"{len(clips)} clips but {len(motions)} motions")
    for clip, motion in zip(clips, motions):
        if abs(motion.fps - FPS) > 1e-6:
            raise CorpusError(f"clip {clip.id}: motion is at {motion.fps} fps, the corpus stores {FPS} fps")
        if clip.frames != motion.num_frames:
            raise CorpusError(f"clip {clip.id}: {clip.frames} frames in metadata, {motion.num_frames} in motion")
        if clip.split not in SPLITS:
            raise CorpusError(f"clip {clip.id}: unknown split {clip.split!r}")
    path.mkdir(parents=True, exist_ok=True)
    lengths = np.array([m.num_frames for m in motions], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rotations = np.concatenate([m.rotations for m in motions]) if motions else np.zeros((0, NUM_JOINTS, 4), np.float32)
    translation = np.concatenate([m.translation for m in motions]) if motions else np.zeros((0, 3), np.float32)
    np.savez(path / "motions.npz", rotations=rotations.astype(np.float32), translation=translation.astype(np.float32),
             offsets=offsets, fps=np.float64(FPS))
    with open(path / "clips.jsonl", "w", encoding="utf-8") as f:
        for clip in clips:
            f.write(json.dumps(asdict(clip), ensure_ascii=False) + "\n")
    split_ids = {s: [c.id for c in clips if c.split == s] for s in SPLITS}
    (path / "splits.json").write_text(json.dumps({**split_ids, "info": splits_info or {}}, indent=1))
    if report is not None:
        (path / "report.json").write_text(json.dumps(report, indent=1))
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary, indent=1))
    return path


class Corpus:
    """A loaded corpus: `clips`, `motion(i)`, `indices(split)`, `fingerprint`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        for name in ("motions.npz", "clips.jsonl"):
            if not (self.path / name).is_file():
                raise CorpusError(f"{self.path}: missing {name} (build it with server/prepare_data.py)")
        with np.load(self.path / "motions.npz", allow_pickle=False) as data:
            missing = {"rotations", "translation", "offsets"} - set(data.files)
            if missing:
                raise CorpusError(f"{self.path / 'motions.npz'}: missing arrays {sorted(missing)}")
            self.rotations = data["rotations"]
            self.translation = data["translation"]
            self.offsets = data["offsets"]
            self.fps = float(data["fps"]) if "fps" in data.files else FPS
        with open(self.path / "clips.jsonl", encoding="utf-8") as f:
            self.clips = [Clip.from_json(json.loads(line)) for line in f if line.strip()]
        if len(self.offsets) != len(self.clips) + 1 or self.offsets[-1] != len(self.rotations):
            raise CorpusError(f"{self.path}: {len(self.clips)} clips do not match the motion offsets")

    def __len__(self) -> int:
        return len(self.clips)

    def motion(self, i: int) -> Motion:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Motion(self.rotations[a:b], self.translation[a:b], self.fps)

    def indices(self, split: str) -> list[int]:
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; expected one of {SPLITS}")
        return [i for i, c in enumerate(self.clips) if c.split == split]

    @property
    def fingerprint(self) -> str:
        """sha256 of the motion arrays and clip metadata: identifies the training data in checkpoints."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.offsets).tobytes())
        h.update(np.ascontiguousarray(self.rotations[:: max(1, len(self.rotations) // 4096)]).tobytes())
        h.update((self.path / "clips.jsonl").read_bytes())
        return h.hexdigest()[:16]

    @property
    def licences(self) -> list[str]:
        return sorted({c.licence for c in self.clips})
