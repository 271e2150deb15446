"""Rest joints and the template mesh from a user's own SMPL model file, via `smplx`.

The SMPL model files are under the MPI licence and cannot ship with the product. Without
one, `shared.skeleton.REST_JOINTS` (the SMPL male template) is the skeleton everywhere;
with one, a user gets the rest joints of any body shape (`betas`) and the template mesh
with its skinning weights for the Blender add-on.

Accepted files (a file path, or a folder searched as `find_model_file` says):
- SMPL `.npz` (v_template, shapedirs, posedirs, J_regressor, weights, kintree_table, f),
  e.g. `SMPL_NEUTRAL.npz` as the `smplx` package names them. Read with allow_pickle=False.
- SMPL `.pkl` as MPI distributes it (`basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl`). This is
  a Python pickle: only load files you trust. The v1.0 files store chumpy objects and
  need `pip install chumpy` (or convert them to .npz once).
- SMPL-H / SMPL-X `model.npz` (AMASS's body models): 52 / 55 joints whose first 22 are
  SMPL's body joints; hand (and jaw/eye) joints are folded into their body ancestors.

Why not `smplx.SMPL(model_path=...)` itself: its loader unpickles the file whatever the
extension (so it cannot read .npz), caps SMPL-H's 16 betas at 10, and its forward adds
keypoints at fixed vertex ids of the 6,890-vertex mesh. We read the arrays ourselves
(validated, with errors that name the file and the problem) and evaluate the model with
`smplx.lbs.lbs` at zero pose, which is exactly what `smplx.SMPL.forward` computes.

SMPL's own frame is ours: Y-up, metres, facing +Z, the body's left on +x.
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np

from shared.skeleton import NUM_JOINTS, PARENTS

REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
GENDERS = ("neutral", "male", "female")
MAX_SHAPE_COMPONENTS = 300  # SMPL-X stores 300 shape + 100 expression columns in shapedirs


class BodyModelError(ValueError):
    """A body model file is unreadable, incomplete or inconsistent; the message names the problem."""


class BodyModelNotFound(BodyModelError, FileNotFoundError):
    """No body model file at the given path (or in the given folder)."""


# --- finding and reading the file ---------------------------------------------------------

def _candidate_names(gender: str) -> list[str]:
    g = gender.lower()
    short = {"neutral": "neutral", "male": "m", "female": "f"}[g]
    names = [f"SMPL_{g.upper()}.npz", f"SMPL_{g.upper()}.pkl",
             f"smpl/SMPL_{g.upper()}.npz", f"smpl/SMPL_{g.upper()}.pkl"]
    for version in ("v1.1.0", "v1.0.0"):  # MPI's own file names
        for stem in (f"basicmodel_{short}_lbs_10_207_0_{version}", f"basicModel_{short}_lbs_10_207_0_{version}"):
            names += [f"{stem}.npz", f"{stem}.pkl", f"smpl/{stem}.npz", f"smpl/{stem}.pkl"]
    names += [f"{g}/model.npz", f"smplh/{g}/model.npz"]  # AMASS's SMPL-H layout
    return names


def find_model_file(model_path: str | Path, gender: str = "neutral") -> Path:
    """The model file itself, or the first of the usual names inside a folder (see `_candidate_names`)."""
    if gender.lower() not in GENDERS:
        raise BodyModelError(f"gender must be one of {GENDERS}, got {gender!r}")
    path = Path(model_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        names = _candidate_names(gender)
        for name in names:
            if (path / name).is_file():
                return path / name
        raise BodyModelNotFound(
            f"{path}: no {gender} SMPL model file in this folder (looked for {', '.join(names[:4])}, "
            f"MPI's basicmodel_* names and {gender}/model.npz)")
    raise BodyModelNotFound(f"{path}: SMPL model file not found")


def _read_npz(path: Path) -> dict:
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


def _read_pkl(path: Path) -> dict:
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


def _dense(x, path: Path, key: str, dtype=np.float64) -> np.ndarray:
    if hasattr(x, "toarray"):  # scipy.sparse (SMPL's J_regressor)
        x = x.toarray()
    elif hasattr(x, "r") and not isinstance(x, np.ndarray):  # chumpy array
        x = x.r
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BodyModelError(f"{path}: {key!r} is not a numeric array ({exc})") from None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise BodyModelError(f"{path}: {key!r} has NaN or inf values")
    return arr


def load_model_arrays(model_path: str | Path, gender: str = "neutral") -> dict:
    """Validated float64/int64 arrays of an SMPL-family model file, plus 'path'.

    Shapes: v_template (V, 3), shapedirs (V, 3, B), posedirs (V, 3, 9 (J - 1)),
    J_regressor (J, V), weights (V, J), parents (J,) with parents[0] = -1, faces (F, 3).
    """
    path = find_model_file(model_path, gender)
    raw = _read_npz(path) if path.suffix.lower() == ".npz" else _read_pkl(path)
    v = _dense(raw["v_template"], path, "v_template")
    shapedirs = _dense(raw["shapedirs"], path, "shapedirs")
    posedirs = _dense(raw["posedirs"], path, "posedirs")
    jreg = _dense(raw["J_regressor"], path, "J_regressor")
    weights = _dense(raw["weights"], path, "weights")
    kintree = _dense(raw["kintree_table"], path, "kintree_table", dtype=np.float64)
    faces = _dense(raw["f"], path, "f", dtype=np.float64)

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
    if faces.min() < 0 or faces.max() >= V:
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


# --- evaluating the model ------------------------------------------------------------------

def _betas(betas, n_shape: int, path: Path) -> np.ndarray:
    if betas is None:
        return np.zeros(n_shape)
    b = np.asarray(betas, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(b)):
        raise BodyModelError("betas has NaN or inf values")
    if b.size > n_shape:
        if np.any(b[n_shape:] != 0):
            warnings.warn(f"{path.name} has {n_shape} shape components; ignoring betas[{n_shape}:] "
                          f"({b.size} given)", stacklevel=3)
        b = b[:n_shape]
    return np.concatenate([b, np.zeros(n_shape - b.size)])


def _rest_pose(arrays: dict, betas) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), joints (J, 3)) at zero pose for `betas`, via smplx.lbs.lbs."""
    import torch
    from smplx.lbs import lbs

    n_shape = arrays["shapedirs"].shape[2]
    b = _betas(betas, n_shape, arrays["path"])
    J = arrays["J_regressor"].shape[0]
    V = arrays["v_template"].shape[0]
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        vertices, joints = lbs(
            betas=t(b)[None], pose=torch.zeros(1, 3 * J, dtype=torch.float64),
            v_template=t(arrays["v_template"]), shapedirs=t(arrays["shapedirs"]),
            posedirs=t(arrays["posedirs"].reshape(V * 3, -1).T),  # (P, V*3) as smplx.SMPL stores it
            J_regressor=t(arrays["J_regressor"]), parents=torch.as_tensor(arrays["parents"]),
            lbs_weights=t(arrays["weights"]))
    return vertices[0].numpy().astype(np.float64), joints[0].numpy().astype(np.float64)


def rest_joints_from_smpl(model_path: str | Path, betas=None, gender: str = "neutral") -> np.ndarray:
    """(22, 3) float64 rest joints (zero pose, Y-up, metres) of an SMPL model for `betas`.

    `model_path` is the model file or a folder holding e.g. SMPL_NEUTRAL.npz (`gender`
    picks the file in a folder). `betas` defaults to zeros (the template body); extra
    betas beyond the model's shape components are ignored with a warning.
    """
    arrays = load_model_arrays(model_path, gender)
    _, joints = _rest_pose(arrays, betas)
    return np.ascontiguousarray(joints[:NUM_JOINTS])


def _fold_to(parents: np.ndarray, target: int) -> np.ndarray:
    """For each joint, the joint < target it belongs to (its nearest ancestor below target)."""
    out = np.arange(len(parents))
    for j in range(target, len(parents)):
        a = j
        while a >= target:
            a = int(parents[a])
        out[j] = a
    return out


def smpl_template(model_path: str | Path, betas=None, gender: str = "neutral") -> dict:
    """The rest mesh for the Blender add-on: a dict of
    vertices (V, 3) float64 (zero pose, Y-up, metres), faces (F, 3) int64,
    weights (V, 24) float64 (SMPL's 24 joints; columns 22/23 are the left/right hand, so
    for SMPL-H/-X files every finger joint is summed into them and jaw/eyes into the head),
    weights22 (V, 22) (the hands summed into the wrists: skin weights for our 22 bones),
    joints (22, 3) float64, parents (22,) int64, and source (the model file's name).
    Rows of both weight matrices sum to the file's row sums (1 for a proper model).
    """
    arrays = load_model_arrays(model_path, gender)
    vertices, joints = _rest_pose(arrays, betas)
    parents = arrays["parents"]
    w = arrays["weights"]
    J = w.shape[1]
    owner = _fold_to(parents, NUM_JOINTS)  # joint -> body joint (0..21)
    w24 = np.zeros((w.shape[0], 24))
    w24[:, :NUM_JOINTS] = w[:, :NUM_JOINTS]
    for j in range(NUM_JOINTS, J):
        col = {20: 22, 21: 23}.get(int(owner[j]), int(owner[j])) if J > 24 else j
        w24[:, col] += w[:, j]
    w22 = w24[:, :NUM_JOINTS].copy()
    w22[:, 20] += w24[:, 22]
    w22[:, 21] += w24[:, 23]
    return {
        "vertices": np.ascontiguousarray(vertices),
        "faces": arrays["faces"],
        "weights": w24,
        "weights22": w22,
        "joints": np.ascontiguousarray(joints[:NUM_JOINTS]),
        "parents": PARENTS.copy(),
        "source": arrays["path"].name,
    }
