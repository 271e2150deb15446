"""Rest joints and the template mesh from a user's own SMPL model file, on the server side.

Everything numeric (finding the file, reading .npz without pickle, validation, the zero-pose
body for `betas`, folding the skinning weights to our 22 bones) is `shared/body_model.py`, which
the Blender add-on uses too (it reads the artist's file locally). This module adds what only the
server may do: read SMPL `.pkl` files as MPI distributes them
(`basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl`). A .pkl is a Python pickle: only load files you
trust. The v1.0 files store chumpy objects and need `pip install chumpy`. Convert a .pkl once to
an .npz the add-on can read:

    python -m server.data.body_model --to-npz basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl SMPL_NEUTRAL.npz

Why not `smplx.SMPL(model_path=...)` itself: its loader unpickles the file whatever the
extension (so it cannot read .npz), caps SMPL-H's 16 betas at 10, and its forward adds keypoints
at fixed vertex ids of the 6,890-vertex mesh. At zero pose its forward is the shaped template
(see shared/body_model.py); tests/test_body_model.py cross-checks against `smplx.SMPL`.

SMPL's own frame is ours: Y-up, metres, facing +Z, the body's left on +x.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

from shared import body_model as shared_body
from shared.body_model import (GENDERS, REQUIRED_KEYS, BodyModelError, BodyModelNotFound,  # noqa: F401 (re-exported)
                               find_model_file)

__all__ = ("BodyModelError", "BodyModelNotFound", "GENDERS", "REQUIRED_KEYS", "convert_to_npz",
           "find_model_file", "load_model_arrays", "read_pkl", "rest_joints_from_smpl", "smpl_template")


def read_pkl(path: Path) -> dict:
    """The REQUIRED_KEYS objects of an SMPL .pkl (scipy.sparse / chumpy are made dense later)."""
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except ModuleNotFoundError as exc:
        raise BodyModelError(
            f"{path}: this SMPL .pkl stores {exc.name} objects; `pip install {exc.name}` to read it, "
            "or convert it once to .npz (np.savez with the arrays v_template, shapedirs, posedirs, "
            "J_regressor, weights, kintree_table, f)") from None
    except Exception as exc:  # a broken pickle can raise almost anything
        raise BodyModelError(f"{path}: not a readable SMPL .pkl model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise BodyModelError(f"{path}: expected a dict of arrays, found {type(obj).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise BodyModelError(f"{path}: missing {', '.join(map(repr, missing))}; is this an SMPL model file?")
    return {k: obj[k] for k in REQUIRED_KEYS}


def load_model_arrays(model_path: str | Path, gender: str = "neutral") -> dict:
    """`shared.body_model.load_model_arrays`, .pkl files included."""
    return shared_body.load_model_arrays(model_path, gender, read_pkl=read_pkl)


def rest_joints_from_smpl(model_path: str | Path, betas=None, gender: str = "neutral") -> np.ndarray:
    """(22, 3) float64 rest joints (zero pose, Y-up, metres) of an SMPL model for `betas`.

    `model_path` is the model file or a folder holding e.g. SMPL_NEUTRAL.npz (`gender` picks the
    file in a folder). `betas` defaults to zeros (the template body); extra betas beyond the
    model's shape components are ignored with a warning."""
    return shared_body.rest_joints(model_path, betas, gender, read_pkl=read_pkl)


def smpl_template(model_path: str | Path, betas=None, gender: str = "neutral") -> dict:
    """The rest mesh for `betas` (`shared.body_model.template_from_arrays`): vertices, faces,
    weights (V, 24), weights22 (V, 22), joints (22, 3), parents, betas, source."""
    return shared_body.template(model_path, betas, gender, read_pkl=read_pkl)


def convert_to_npz(src: str | Path, dst: str | Path, gender: str = "neutral") -> Path:
    """Write the model at `src` (.pkl or .npz, file or folder) as a plain-array .npz the add-on reads
    (validated first; shape components past MAX_SHAPE_COMPONENTS, SMPL-X's expressions, are dropped)."""
    arrays = load_model_arrays(src, gender)
    kintree = np.stack([arrays["parents"], np.arange(len(arrays["parents"]))])
    kintree[0, 0] = 2**32 - 1  # SMPL's own marker for the root
    dst = Path(dst)
    if dst.suffix.lower() != ".npz":
        raise BodyModelError(f"{dst}: the converted file must end in .npz")
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, v_template=arrays["v_template"], shapedirs=arrays["shapedirs"], posedirs=arrays["posedirs"],
             J_regressor=arrays["J_regressor"], weights=arrays["weights"], kintree_table=kintree.astype(np.int64),
             f=arrays["faces"].astype(np.uint32))
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an SMPL model file (.pkl) to an .npz the add-on reads.")
    parser.add_argument("--to-npz", nargs=2, metavar=("SRC", "DST"), required=True,
                        help="model file (or folder) to read, .npz file to write")
    parser.add_argument("--gender", choices=GENDERS, default="neutral", help="which model in a folder")
    args = parser.parse_args(argv)
    try:
        out = convert_to_npz(*args.to_npz, gender=args.gender)
    except BodyModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
