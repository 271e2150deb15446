"""Build the training corpus from every motion source we can read (the library behind prepare_data.py).

Sources: the team's shared data folder (CMU BVH in three skeleton families, the Li et al. 2018
exp-map set, CMU retargeted to DeepMimic's humanoid3d, Bandai Namco), a user's own BVH folder
with a captions CSV, and a user's AMASS + HumanML3D. Each take is retargeted onto SMPL-22 at
its true frame rate, checked, resampled to 20 fps, captioned (its source captions in the train
half's words plus captions of its kinematic facts), split by held-out subject/take, and (train
only) mirrored with every side word swapped. Clips that fail a check are dropped with a named
reason. The summary counts the caption vocabulary and how often the facts agree with each
source's labels (`server/data/label_agreement.py`).
"""
from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from server.data import captions as cap
from server.data import label_agreement as agreement
from server.data.bvh import parse_bvh, to_skeleton_motion
from server.data.corpus import Caption, Clip, write_corpus
from server.data.kinematics import extract_facts
from server.data.paraphrase import heldout_vocabulary, swap_sides, words
from server.data.retarget import JOINT_MAPS, RetargetError, detect_family, retarget
from server.data.skeleton_motion import SkeletonMotion, drop_first_frame
from server.data.sources import BVH_FAMILIES, iter_tar_texts, read_deepmimic_json, read_li2018_csv
from shared.motion import Motion, MotionError
from shared.skeleton import FPS

MIN_SECONDS = 1.0
MIN_BONE_COS = 0.97

# Held-out performers. CMU subjects (shared by the CMU BVH and the DeepMimic retargets of CMU).
TEST_SUBJECTS = {"02", "13", "85", "139"}
VAL_SUBJECTS = {"08", "16", "90"}
# Bandai Namco names no performer per file: its takes are held out instead (set 2; set 1 is train).
BANDAI_TEST_TAKE_MOD, BANDAI_VAL_TAKE_MOD, BANDAI_TAKE_PERIOD = 0, 5, 10

LICENCE_CMU = "CMU Graphics Lab (free for all uses; acknowledge mocap.cs.cmu.edu, NSF EIA-0196217)"
LICENCE_BANDAI = "CC BY-NC 4.0 (Bandai Namco Research Inc.; modified)"

LI2018_CAPTIONS = {
    "basketball": "a person plays basketball, dribbling and shooting",
    "basketball_signal": "a person makes basketball referee hand signals",
    "directing_traffic": "a person directs traffic with arm signals",
    "jumping": "a person jumps",
    "running": "a person runs forward",
    "soccer": "a person plays soccer, kicking a ball",
    "walking": "a person walks forward",
    "washwindow": "a person washes a window, moving the arms in circles",
}


@dataclass
class Take:
    """One source recording, not yet loaded."""

    id: str
    source: str
    skeleton: str
    subject: str
    split: str
    licence: str
    commercial_ok: bool
    captions: list[Caption]
    archive: Path | None  # a .tar.xz holding `member`, or None when `member` is a plain file
    member: str
    parse: Callable[[str], SkeletonMotion]  # file text -> the source's own motion
    notes: dict = field(default_factory=dict)


def _split_for_subject(subject: str) -> str:
    return "test" if subject in TEST_SUBJECTS else "val" if subject in VAL_SUBJECTS else "train"


def _with_paraphrases(main: list[Caption]) -> list[Caption]:
    out, seen = [], set()
    for c in main:
        for i, text in enumerate(cap.paraphrase(c.text)):
            if text.lower() not in seen:
                seen.add(text.lower())
                out.append(Caption(text, c.source if i == 0 else "paraphrase"))
    return out


def _cmu_text(shared: Path) -> dict[str, dict]:
    path = shared / "text" / "cmu_captions.jsonl"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        return {row["trial"]: row for row in map(json.loads, f)}


def _cmu_captions(trial: str, description: str | None, text: dict[str, dict]) -> list[Caption]:
    main = [Caption(k["text"].strip().rstrip("."), "kitml") for k in text.get(trial, {}).get("kitml", [])]
    main += [Caption(s, "cmu_description") for s in cap.describe(description or "")]
    return _with_paraphrases(main)


def _bvh_parser(scale: float, fps: float | None, drop_first: bool, end_sites: bool) -> Callable[[str], SkeletonMotion]:
    def parse(text: str) -> SkeletonMotion:
        sm = to_skeleton_motion(parse_bvh(text), scale=scale, fps=fps, include_end_sites=end_sites)
        return drop_first_frame(sm) if drop_first else sm
    return parse




def cmu_takes(shared: Path) -> Iterator[Take]:
    text = _cmu_text(shared)
    with open(shared / "cmu" / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        trial, family = row["trial"], row["skeleton"]
        subject = row["subject"].zfill(2)
        member = f"{subject}/{trial}.bvh"
        yield Take(
            id=f"cmu/{trial}", source="cmu", skeleton=family, subject=subject, split=_split_for_subject(subject),
            licence=LICENCE_CMU, commercial_ok=True, captions=_cmu_captions(trial, row["description"], text),
            archive=shared / "cmu" / row["archive"], member=member,
            parse=_bvh_parser(BVH_FAMILIES[family].scale, 1.0 / float(row["true_kept_frame_time"]),
                              drop_first=BVH_FAMILIES[family].first_frame_is_added, end_sites=True),
            notes={"capture_fps": row["capture_fps"]},
        )


def more_takes(shared: Path, cmu_trials: set[str]) -> Iterator[Take]:
    folder = shared / "more"
    text = _cmu_text(shared)
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    skeleton_json = folder / "cmu_li2018_skeleton.json"
    for row in rows:
        archive, member = folder / row["archive"], row["member"]
        if row["set"] == "cmu_li2018_expmap":
            label = row["label"]
            name = Path(member).stem
            yield Take(
                id=f"li2018/{row['split']}/{name}", source="li2018", skeleton="li2018-38",
                subject=f"li2018-{name}", split="test" if row["split"] == "test" else "train",
                licence=LICENCE_CMU, commercial_ok=True,
                captions=_with_paraphrases([Caption(LI2018_CAPTIONS[label], "label_template")]),
                # row 0 of every file is the converter's T-pose (it matches the cgspeed BVH's frame 0)
                archive=archive, member=member, parse=lambda text: drop_first_frame(read_li2018_csv(text, skeleton_json)),
                notes={"possible_duplicate_of_cmu": True},
            )
        else:
            trial = row["cmu_trial"]
            subject = trial.split("_")[0]
            yield Take(
                id=f"deepmimic/{trial}", source="deepmimic", skeleton="deepmimic-humanoid3d", subject=subject,
                split=_split_for_subject(subject), licence=LICENCE_CMU + "; retarget by arpspoof/Jump (MIT)",
                commercial_ok=True, captions=_cmu_captions(trial, row["label"], text),
                archive=archive, member=member, parse=read_deepmimic_json,
                notes={"duplicate_of": f"cmu/{trial}" if trial in cmu_trials else None},
            )


def bandai_takes(shared: Path) -> Iterator[Take]:
    folder = shared / "extra"
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        take = int(row["take"])
        split = "train"
        if row["dataset"] == "bandai_namco_2":
            mod = take % BANDAI_TAKE_PERIOD
            split = "test" if mod == BANDAI_TEST_TAKE_MOD else "val" if mod == BANDAI_VAL_TAKE_MOD else "train"
        texts = cap.bandai_captions(row["content"], row["style"], row["text"])
        captions = _with_paraphrases([Caption(texts[0], "label_template")] + [Caption(t, "label_style") for t in texts[1:]])
        archive = folder / f"{row['dataset']}.tar.xz"
        yield Take(
            id=f"bandai/{Path(row['file']).stem}", source="bandai", skeleton="bandai-namco-22",
            subject=f"{row['dataset']}-take{row['take']}", split=split, licence=LICENCE_BANDAI, commercial_ok=False,
            captions=captions, archive=archive, member=row["file"],
            parse=_bvh_parser(BVH_FAMILIES["bandai-namco-22"].scale, float(row["fps"]), drop_first=False, end_sites=True),
        )


def user_bvh_takes(folder: Path, captions_csv: Path, fps: float | None = None, licence: str = "user") -> Iterator[Take]:
    """A user's BVH folder with a CSV of `file,text` rows (several rows per file give several captions)."""
    texts: dict[str, list[str]] = defaultdict(list)
    with open(captions_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "text"} <= set(reader.fieldnames):
            raise ValueError(f"{captions_csv}: expected a CSV with columns file,text; got {reader.fieldnames}")
        for row in reader:
            texts[row["file"]].append(row["text"])
    for name, lines in sorted(texts.items()):
        yield Take(
            id=f"user/{Path(name).with_suffix('')}", source="user", skeleton="auto", subject=Path(name).parent.name or "user",
            split="train", licence=licence, commercial_ok=True,
            captions=_with_paraphrases([Caption(t, "user") for t in lines]), archive=None, member=str(folder / name),
            parse=_bvh_parser(1.0, fps, drop_first=False, end_sites=True),
        )


# ----------------------------------------------------------------------------------------------

def iter_texts(takes: list[Take]) -> Iterator[tuple[Take, str | None]]:
    """Each take with its file's text, reading every archive once, in order (None: file missing)."""
    by_archive: dict[Path | None, dict[str, Take]] = defaultdict(dict)
    for take in takes:
        by_archive[take.archive][take.member] = take
    for archive, members in by_archive.items():
        if archive is None:
            for member, take in members.items():
                path = Path(member)
                yield take, path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
            continue
        wanted = dict(members)
        for name, text in iter_tar_texts(archive, tuple({Path(m).suffix for m in wanted})):
            take = wanted.pop(name, None)
            if take is not None:
                yield take, text
        for take in wanted.values():
            yield take, None


def process_take(take: Take, text: str | None) -> tuple[Motion | None, dict]:
    """Parse, retarget, check and resample one take; returns (motion or None, report entry)."""
    entry: dict = {"id": take.id, "source": take.source, "skeleton": take.skeleton, "split": take.split}
    if not take.captions:
        return None, {**entry, "dropped": "no usable caption (the source description is not a description)"}
    if take.notes.get("duplicate_of"):
        return None, {**entry, "dropped": f"duplicate of {take.notes['duplicate_of']} (same CMU trial, other skeleton)"}
    if text is None:
        return None, {**entry, "dropped": f"file {take.member} not found" + (f" in {take.archive.name}" if take.archive else "")}
    try:
        source = take.parse(text)
        joint_map = detect_family(source.names) if take.skeleton == "auto" else JOINT_MAPS[take.skeleton]
        entry["skeleton"] = joint_map.family
        motion, quality = retarget(source, joint_map)
    except (RetargetError, MotionError, ValueError, KeyError) as exc:
        return None, {**entry, "dropped": f"cannot read or retarget: {exc}"}
    entry.update(quality.as_dict(), source_fps=float(source.fps), seconds=round(motion.duration, 3))
    if quality.bone_cos_mean < MIN_BONE_COS:
        return None, {**entry, "dropped": f"bone-direction cosine {quality.bone_cos_mean:.3f} < {MIN_BONE_COS}"}
    motion = motion.resample(FPS)
    if motion.duration < MIN_SECONDS:
        return None, {**entry, "dropped": f"too short ({motion.duration:.2f} s < {MIN_SECONDS} s)"}
    return motion, entry


def _clip(take: Take, motion: Motion, entry: dict) -> Clip:
    return Clip(
        id=take.id, source=take.source, skeleton=entry["skeleton"], subject=take.subject,
        take=take.id, split=take.split, licence=take.licence, commercial_ok=take.commercial_ok,
        frames=motion.num_frames, captions=list(take.captions),
        quality={k: entry[k] for k in ("bone_cos_mean", "skating", "penetration_frac") if k in entry},
    )


def _mirrored(clip: Clip) -> Clip:
    """The left/right mirrored copy's metadata: id + "~m", every side word swapped in every caption
    (left/right, leftward, clockwise/counterclockwise ...: the mirrored motion's facts are the mirrored facts)."""
    return replace(clip, id=clip.id + "~m", mirrored=True,
                   captions=[Caption(swap_sides(c.text), c.source) for c in clip.captions])


def _style(clip: Clip) -> str | None:
    label = agreement.bandai_label(clip.take) if clip.source == "bandai" else None
    return label[1] if label else None


def with_kinematic_captions(clip: Clip, motion: Motion, counts: dict) -> tuple[Clip, object]:
    """The clip with its source captions cleaned for the train half plus its kinematic captions, and its facts."""
    facts = extract_facts(motion)
    captions, c = cap.clip_captions(clip.captions, facts, clip.id, style=_style(clip))
    for key in ("kept", "rewritten", "dropped", "kinematic"):
        counts[key] = counts.get(key, 0) + getattr(c, key)
    return replace(clip, captions=captions), facts


def caption_stats(clips: list[Clip]) -> dict:
    """Vocabulary (distinct word tokens, numbers written as digits left out), distinct captions, captions per
    clip (source and kinematic) and the captions that carry a held-out-half word (must be 0)."""
    held = heldout_vocabulary()
    texts = [c.text for clip in clips for c in clip.captions]
    vocab = {w for t in set(texts) for w in words(t) if not w.isdigit()}
    per_clip = [len({c.text for c in clip.captions}) for clip in clips]
    kin = [sum(c.source == cap.KINEMATIC for c in clip.captions) for clip in clips]
    leaks = sorted({t for t in texts if held & set(words(t))})
    n = max(len(clips), 1)
    return {"vocabulary": len(vocab), "distinct_captions": len(set(texts)), "captions": len(texts),
            "captions_per_clip": round(sum(per_clip) / n, 2), "kinematic_per_clip": round(sum(kin) / n, 2),
            "source_per_clip": round((sum(per_clip) - sum(kin)) / n, 2),
            "clips_under_10_captions": sum(p < 10 for p in per_clip),
            "heldout_word_captions": len(leaks), "heldout_word_examples": leaks[:5]}


def summarize(clips: list[Clip]) -> dict:
    """Counts per split and per source: clips, hours, captions, words (mirrored copies counted apart); the
    vocabulary counts distinct word tokens (`paraphrase.words`, digits left out)."""
    def stats(group: list[Clip]) -> dict:
        texts = [c.text for clip in group for c in clip.captions]
        distinct = set(texts)
        return {"clips": len(group), "hours": round(sum(c.frames for c in group) / FPS / 3600, 3),
                "captions": len(texts), "distinct_captions": len(distinct), "words": sum(len(t.split()) for t in texts),
                "vocabulary": len({w for t in distinct for w in words(t) if not w.isdigit()})}
    out: dict = {"all": stats(clips)}
    for split in ("train", "val", "test"):
        group = [c for c in clips if c.split == split]
        out[split] = {"all": stats(group), "mirrored": stats([c for c in group if c.mirrored])}
        for source in sorted({c.source for c in group}):
            out[split][source] = stats([c for c in group if c.source == source and not c.mirrored])
    return out


def quality_by_skeleton(entries: list[dict]) -> dict:
    """Min/median bone cosine, skating and penetration per source skeleton, over kept clips."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in entries:
        if "dropped" not in e:
            groups[e["skeleton"]].append(e)
    out = {}
    for family, es in sorted(groups.items()):
        cos = np.array([e["bone_cos_mean"] for e in es])
        out[family] = {
            "clips": len(es), "bone_cos_min": round(float(cos.min()), 4), "bone_cos_median": round(float(np.median(cos)), 4),
            "skating_median_m_s": round(float(np.median([e["skating"] for e in es])), 4),
            "source_skating_median_m_s": round(float(np.median([e["source_skating"] for e in es])), 4),
            "penetration_frac_max": round(float(max(e["penetration_frac"] for e in es)), 4),
        }
    return out


def build_corpus(out: Path, shared: Path | None = None, amass: Path | None = None, humanml3d: Path | None = None,
                 bvh_dir: Path | None = None, bvh_captions: Path | None = None, bvh_fps: float | None = None,
                 commercial_safe: bool = False, limit: int | None = None, mirror: bool = True,
                 progress: bool = True) -> dict:
    """Build the corpus into `out`; returns {"summary", "quality", "dropped", "seconds"}."""
    start = time.perf_counter()
    takes: list[Take] = []
    if shared is not None:
        if not (shared / "cmu" / "manifest.csv").is_file():
            raise FileNotFoundError(f"{shared} does not look like the team data folder (no cmu/manifest.csv)")
        cmu = list(cmu_takes(shared))
        takes += cmu
        if (shared / "more" / "manifest.csv").is_file():
            takes += list(more_takes(shared, {t.id.split("/", 1)[1] for t in cmu}))
        if not commercial_safe and (shared / "extra" / "labels.csv").is_file():
            takes += list(bandai_takes(shared))
    if bvh_dir is not None:
        if bvh_captions is None:
            raise ValueError("--bvh-dir needs --bvh-captions (a CSV with columns file,text)")
        takes += list(user_bvh_takes(bvh_dir, bvh_captions, fps=bvh_fps))
    if commercial_safe:
        takes = [t for t in takes if t.commercial_ok]
    if limit is not None:
        takes = takes[:limit]

    clips: list[Clip] = []
    motions: list[Motion] = []
    entries: list[dict] = []
    pairs: list[tuple[Clip, object]] = []  # (clip, its facts) of every original clip, for the agreement table
    counts: dict = {}

    def add(clip: Clip, motion: Motion) -> None:
        clip, facts = with_kinematic_captions(clip, motion, counts)
        pairs.append((clip, facts))
        clips.append(clip)
        motions.append(motion)
        if mirror and clip.split == "train":
            clips.append(_mirrored(clip))
            motions.append(motion.mirror())

    for take, text in tqdm(iter_texts(takes), total=len(takes), desc="retargeting", unit="take", disable=not progress):
        motion, entry = process_take(take, text)
        entries.append(entry)
        if motion is None:
            continue
        add(_clip(take, motion, entry), motion)

    if amass is not None or humanml3d is not None:
        if amass is None or humanml3d is None:
            raise ValueError("the AMASS path needs both --amass and --humanml3d")
        from server.data.amass import load_humanml3d
        a_clips, a_motions, a_dropped = load_humanml3d(amass, humanml3d, progress=progress)
        if not commercial_safe:
            for clip, motion in zip(a_clips, a_motions):
                add(clip, motion)
        entries += [{"id": "amass", "source": "amass", "skeleton": "smpl", "dropped": r} for r in a_dropped]

    if not clips:
        raise ValueError("no clip survived: nothing to write (see the dropped reasons in the report)")
    summary = summarize(clips)
    table = agreement.agreement_table(pairs)
    summary["captions"] = {**caption_stats(clips), "source_captions": counts,
                           "kinematic_per_clip_target": cap.KINEMATIC_PER_CLIP}
    summary["agreement"] = {"by_label": table, "by_group": agreement.grouped(table), "checks": agreement.CHECKS,
                            "aimed": list(agreement.AIMED), "note": agreement.NOTE}
    report = {
        "quality_by_skeleton": quality_by_skeleton(entries),
        "dropped": [{"id": e["id"], "reason": e["dropped"]} for e in entries if "dropped" in e],
        "clips": entries,
        "labels": [{"id": clip.id, "checks": [[src, chk, agreement.agrees(chk, facts)]
                                             for src, chk in agreement.source_labels(clip)]}
                   for clip, facts in pairs if agreement.source_labels(clip)],
        "thresholds": {"min_bone_cos": MIN_BONE_COS, "min_seconds": MIN_SECONDS},
    }
    splits_info = {"test_subjects": sorted(TEST_SUBJECTS), "val_subjects": sorted(VAL_SUBJECTS),
                   "bandai": f"set 2 takes with take % {BANDAI_TAKE_PERIOD} == {BANDAI_TEST_TAKE_MOD} -> test, "
                             f"== {BANDAI_VAL_TAKE_MOD} -> val; set 1 -> train",
                   "li2018": "its own train/test folders", "commercial_safe": commercial_safe}
    write_corpus(out, clips, motions, splits_info=splits_info, report=report, summary=summary)
    seconds = time.perf_counter() - start
    return {"summary": summary, "quality": report["quality_by_skeleton"], "dropped": report["dropped"], "seconds": seconds}
