"""A user's own SMPL-family model file, read with numpy alone: rest joints and template mesh.

The SMPL model files are under the MPI licence and cannot ship with the product. Without one,
`skeleton.REST_JOINTS` (the SMPL male template) is the skeleton everywhere; with one, a user gets
the rest joints of any body shape (`betas`) and the template mesh with its skinning weights. Both
sides read it through this module: the Blender add-on (the artist's own file, read locally, so it
works with a remote server too) and `server/data/body_model.py` (which adds MPI's pickled .pkl files).

Accepted here: `.npz` files (read with allow_pickle=False, only the arrays named in REQUIRED_KEYS):
- SMPL (v_template, shapedirs, posedirs, J_regressor, weights, kintree_table, f), e.g.
  `SMPL_NEUTRAL.npz` as the `smplx` package names them;
- SMPL-H / SMPL-X `model.npz` (AMASS's body models): 52 / 55 joints whose first 22 are SMPL's
  body joints; hand (and jaw/eye) joints are folded into their body ancestors.
A `.pkl` is a Python pickle: it is read only where a caller passes `read_pkl` (the server does);
the add-on never unpickles anything, so an artist converts a .pkl once with
`python -m server.data.body_model --to-npz IN.pkl OUT.npz`.

At zero pose, SMPL's linear blend skinning reduces to the shaped template: every joint transform
is the identity and the pose blend shapes (functions of R - I) vanish, so
    vertices = v_template + shapedirs @ betas,   joints = J_regressor @ vertices,
which is exactly what `smplx.SMPL.forward` computes there (tests/test_body_model.py checks it).
SMPL's own frame is ours: Y-up, metres, facing +Z, the body's left on +x.
"""
from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .skeleton import NUM_JOINTS, PARENTS

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
GENDERS = ("neutral", "male", "female")
MAX_SHAPE_COMPONENTS = 300  # SMPL-X stores 300 shape + 100 expression columns in shapedirs
PKL_HINT = ("convert it once to .npz: `python -m server.data.body_model --to-npz IN.pkl OUT.npz` "
            "(or np.savez with the arrays " + ", ".join(REQUIRED_KEYS) + ")")


class BodyModelError(ValueError):
    """A body model file is unreadable, incomplete or inconsistent; the message names the problem."""


class BodyModelNotFound(BodyModelError, FileNotFoundError):
    """No body model file at the given path (or in the given folder)."""


# --- finding and reading the file ---------------------------------------------------------

def candidate_names(gender: str) -> list[str]:
    """The file names looked for in a folder, in order (SMPL's, MPI's and AMASS's layouts)."""
    g = gender.lower()
    short = {"neutral": "neutral", "male": "m", "female": "f"}[g]
    names = [f"SMPL_{g.upper()}.npz", f"SMPL_{g.upper()}.pkl",
             f"smpl/SMPL_{g.upper()}.npz", f"smpl/SMPL_{g.upper()}.pkl"]
    for version in ("v1.1.0", "v1.0.0"):  # MPI's own file names
        for stem in (f"basicmodel_{short}_lbs_10_207_0_{version}", f"basicModel_{short}_lbs_10_207_0_{version}"):
            names += [f"{stem}.npz", f"{stem}.pkl", f"smpl/{stem}.npz", f"smpl/{stem}.pkl"]
    names += [f"{g}/model.npz", f"smplh/{g}/model.npz"]  # AMASS's SMPL-H layout
    return names


def find_model_file(model_path: str | Path, gender: str = "neutral", pickle_ok: bool = True) -> Path:
    """The model file itself, or the first of `candidate_names` inside a folder.

    With pickle_ok=False a folder's .pkl files are skipped (a folder holding only a .pkl is an
    error that says how to convert it); a .pkl file given directly is returned either way and
    refused by `load_model_arrays`."""
    if not isinstance(gender, str) or gender.lower() not in GENDERS:
        raise BodyModelError(f"gender must be one of {GENDERS}, got {gender!r}")
    path = Path(model_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        names = candidate_names(gender)
        usable = [n for n in names if pickle_ok or not n.endswith(".pkl")]
        for name in usable:
            if (path / name).is_file():
                return path / name
        pickled = [n for n in names if n.endswith(".pkl") and (path / n).is_file()]
        if pickled:
            raise BodyModelError(f"{path}: only a pickled {gender} model ({pickled[0]}) here; {PKL_HINT}")
        raise BodyModelNotFound(
            f"{path}: no {gender} SMPL model file in this folder (looked for {', '.join(usable[:2])}, "
            f"MPI's basicmodel_* names and {gender}/model.npz)")
    raise BodyModelNotFound(f"{path}: SMPL model file not found")


def read_npz(path: Path) -> dict:
    """The REQUIRED_KEYS arrays of an .npz, never unpickling anything."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise BodyModelError(f"{path}: not a readable .npz SMPL model file ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BodyModelError(f"{path}: a plain .npy array, not an .npz SMPL model file")
    with archive:
        missing = [k for k in REQUIRED_KEYS if k not in archive.files]
        if missing:
            raise BodyModelError(f"{path}: missing {', '.join(map(repr, missing))} "
                                 f"(has {', '.join(sorted(archive.files))}); is this an SMPL model file?")
        data = {}
        for key in REQUIRED_KEYS:  # only these: others (e.g. SMPL-H's strings) may be pickled objects
            try:
                data[key] = archive[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise BodyModelError(f"{path}: array {key!r} is unreadable ({exc})") from None
    return data


def _dense(x, path: Path, key: str) -> np.ndarray:
    if hasattr(x, "toarray"):  # scipy.sparse (SMPL's J_regressor in MPI's .pkl)
        x = x.toarray()
    elif hasattr(x, "r") and not isinstance(x, np.ndarray):  # chumpy array (MPI's v1.0 .pkl)
        x = x.r
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BodyModelError(f"{path}: {key!r} is not a numeric array ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise BodyModelError(f"{path}: {key!r} has NaN or inf values")
    return arr


def validate_arrays(raw: dict, path: Path) -> dict:
    """Validated float64/int64 arrays from a file's raw REQUIRED_KEYS arrays, plus 'path'.

    Shapes: v_template (V, 3), shapedirs (V, 3, B) (B capped at MAX_SHAPE_COMPONENTS),
    posedirs (V, 3, 9 (J - 1)), J_regressor (J, V), weights (V, J), parents (J,) with
    parents[0] = -1, faces (F, 3)."""
    v = _dense(raw["v_template"], path, "v_template")
    shapedirs = _dense(raw["shapedirs"], path, "shapedirs")
    posedirs = _dense(raw["posedirs"], path, "posedirs")
    jreg = _dense(raw["J_regressor"], path, "J_regressor")
    weights = _dense(raw["weights"], path, "weights")
    kintree = _dense(raw["kintree_table"], path, "kintree_table")
    faces = _dense(raw["f"], path, "f")

    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        raise BodyModelError(f"{path}: v_template must be (V, 3), got {v.shape}")
    V = v.shape[0]
    if jreg.ndim != 2 or jreg.shape[1] != V:
        raise BodyModelError(f"{path}: J_regressor must be (J, {V}), got {jreg.shape}")
    J = jreg.shape[0]
    if J < 24:
        raise BodyModelError(f"{path}: {J} joints; SMPL has 24 (SMPL-H 52, SMPL-X 55)")
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (V, 3) or shapedirs.shape[2] == 0:
        raise BodyModelError(f"{path}: shapedirs must be ({V}, 3, num_betas), got {shapedirs.shape}")
    if posedirs.ndim != 3 or posedirs.shape != (V, 3, 9 * (J - 1)):
        raise BodyModelError(f"{path}: posedirs must be ({V}, 3, {9 * (J - 1)}) for {J} joints, got {posedirs.shape}")
    if weights.shape != (V, J):
        raise BodyModelError(f"{path}: weights must be ({V}, {J}), got {weights.shape}")
    if kintree.ndim != 2 or kintree.shape != (2, J):
        raise BodyModelError(f"{path}: kintree_table must be (2, {J}), got {kintree.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
        raise BodyModelError(f"{path}: f (faces) must be (F, 3), got {faces.shape}")
    if faces.min() < 0 or faces.max() >= V or np.any(faces != np.round(faces)):
        raise BodyModelError(f"{path}: f (faces) has vertex indices outside 0..{V - 1}")
    parents = kintree[0].astype(np.int64)
    parents[0] = -1  # SMPL stores 2**32 - 1 there
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, J)):
        raise BodyModelError(f"{path}: kintree_table parents are not a tree in joint order")
    if not np.array_equal(parents[:NUM_JOINTS], PARENTS):
        raise BodyModelError(f"{path}: the first {NUM_JOINTS} joints' parents {parents[:NUM_JOINTS].tolist()} "
                             f"are not SMPL's {PARENTS.tolist()}")
    n_shape = min(shapedirs.shape[2], MAX_SHAPE_COMPONENTS)
    return {"path": path, "v_template": v, "shapedirs": shapedirs[:, :, :n_shape], "posedirs": posedirs,
            "J_regressor": jreg, "weights": weights, "parents": parents, "faces": faces.astype(np.int64)}


def load_model_arrays(model_path: str | Path, gender: str = "neutral",
                      read_pkl: Callable[[Path], dict] | None = None) -> dict:
    """`validate_arrays` of the model file at `model_path` (a file, or a folder: `find_model_file`).

    read_pkl: how to read a pickled .pkl (path -> dict of the raw REQUIRED_KEYS arrays); without
    it (the add-on) a .pkl is refused with a BodyModelError that says how to convert it."""
    path = find_model_file(model_path, gender, pickle_ok=read_pkl is not None)
    if not _is_pickle(path):
        raw = read_npz(path)
    elif read_pkl is None:
        raise BodyModelError(f"{path}: a .pkl model file is a Python pickle, which is not loaded here; {PKL_HINT}")
    else:
        raw = read_pkl(path)
    return validate_arrays(raw, path)


def _is_pickle(path: Path) -> bool:
    """By the name (.pkl, .pickle), else by the first byte (pickle protocols 2+ start with 0x80);
    anything else is read as .npz, which says what is wrong with it."""
    suffix = path.suffix.lower()
    if suffix in (".npz", ".pkl", ".pickle"):
        return suffix != ".npz"
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x80"
    except OSError as exc:
        raise BodyModelError(f"{path}: cannot read the file ({exc})") from None


# --- evaluating the model at zero pose -------------------------------------------------------

def parse_betas(text: str) -> np.ndarray | None:
    """Betas typed as "0.5, -1.2, 0" (commas and/or spaces); None for an empty text (zeros)."""
    items = [s for s in re.split(r"[,\s;]+", (text or "").strip().strip("[]()")) if s]
    if not items:
        return None
    try:
        betas = np.array([float(s) for s in items])
    except ValueError:
        raise BodyModelError(f"betas must be numbers separated by commas, got {text!r}") from None
    if not np.all(np.isfinite(betas)):
        raise BodyModelError(f"betas must be finite numbers, got {text!r}")
    return betas


def betas_vector(betas, n_shape: int, path: Path | None = None) -> np.ndarray:
    """(n_shape,) float64: `betas` padded with zeros (None: all zeros); extra nonzero ones warn."""
    if betas is None:
        return np.zeros(n_shape)
    try:
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise BodyModelError(f"betas must be numbers, got {betas!r}") from None
    if not np.all(np.isfinite(b)):
        raise BodyModelError("betas has NaN or inf values")
    if b.size > n_shape:
        if np.any(b[n_shape:] != 0):
            name = path.name if path is not None else "the model"
            warnings.warn(f"{name} has {n_shape} shape components; ignoring betas[{n_shape}:] "
                          f"({b.size} given)", stacklevel=3)
        b = b[:n_shape]
    return np.concatenate([b, np.zeros(n_shape - b.size)])


def rest_pose(arrays: dict, betas=None) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), joints (J, 3)) float64 at zero pose for `betas` (all of the file's joints)."""
    b = betas_vector(betas, arrays["shapedirs"].shape[2], arrays.get("path"))
    vertices = arrays["v_template"] + arrays["shapedirs"] @ b
    return vertices, arrays["J_regressor"] @ vertices


def fold_weights(weights: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights24 (V, 24), weights22 (V, 22)) from a file's (V, J) skinning weights.

    weights24 keeps SMPL's 24 joints (columns 22/23: the left/right hand); for SMPL-H/-X every
    finger joint is summed into its hand column and jaw/eyes into the head. weights22 sums the
    hands into the wrists: skin weights for our 22 bones. Row sums are kept."""
    J = weights.shape[1]
    owner = np.arange(J)  # each joint's nearest ancestor among the 22 body joints
    for j in range(NUM_JOINTS, J):
        a = j
        while a >= NUM_JOINTS:
            a = int(parents[a])
        owner[j] = a
    w24 = np.zeros((weights.shape[0], 24))
    w24[:, :NUM_JOINTS] = weights[:, :NUM_JOINTS]
    for j in range(NUM_JOINTS, J):
        col = {20: 22, 21: 23}.get(int(owner[j]), int(owner[j])) if J > 24 else j
        w24[:, col] += weights[:, j]
    w22 = w24[:, :NUM_JOINTS].copy()
    w22[:, 20] += w24[:, 22]
    w22[:, 21] += w24[:, 23]
    return w24, w22


def template_from_arrays(arrays: dict, betas=None) -> dict:
    """The rest body of `load_model_arrays`'s arrays for `betas`: a dict of
    vertices (V, 3) float64 (zero pose, Y-up, metres), faces (F, 3) int64, weights (V, 24),
    weights22 (V, 22) (see `fold_weights`), joints (22, 3) float64 (the body's rest joints: its
    armature must be built from these so the mesh sits on the bones), parents (22,) int64,
    betas (the (B,) float64 betas used) and source (the model file's name)."""
    b = betas_vector(betas, arrays["shapedirs"].shape[2], arrays.get("path"))
    vertices, joints = rest_pose(arrays, b)
    w24, w22 = fold_weights(arrays["weights"], arrays["parents"])
    return {
        "vertices": np.ascontiguousarray(vertices),
        "faces": arrays["faces"],
        "weights": w24,
        "weights22": w22,
        "joints": np.ascontiguousarray(joints[:NUM_JOINTS]),
        "parents": PARENTS.copy(),
        "betas": b,
        "source": Path(arrays["path"]).name,
    }


def rest_joints(model_path: str | Path, betas=None, gender: str = "neutral",
                read_pkl: Callable[[Path], dict] | None = None) -> np.ndarray:
    """(22, 3) float64 rest joints (zero pose, Y-up, metres) of an SMPL model for `betas`.

    `model_path` is the model file or a folder holding e.g. SMPL_NEUTRAL.npz (`gender` picks the
    file in a folder). `betas` defaults to zeros (the template body); extra nonzero betas beyond
    the model's shape components are ignored with a warning."""
    _, joints = rest_pose(load_model_arrays(model_path, gender, read_pkl), betas)
    return np.ascontiguousarray(joints[:NUM_JOINTS])


def template(model_path: str | Path, betas=None, gender: str = "neutral",
             read_pkl: Callable[[Path], dict] | None = None) -> dict:
    """`template_from_arrays` of the model file at `model_path`."""
    return template_from_arrays(load_model_arrays(model_path, gender, read_pkl), betas)
