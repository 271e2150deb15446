"""The artist's own SMPL body, read here from the model file named in the preferences.

The file is read locally (`shared/body_model.py`, numpy only), so the body works with a remote
server too; the server never sees it. Only .npz files are read: a .pkl is a Python pickle and is
never loaded inside Blender (`python -m server.data.body_model --to-npz` converts one).

A body shape changes the rest joints, so candidates built with a body use the body's own joints
for their armature (the mesh sits on the bones and follows them by linear blend skinning, exactly
as SMPL does). The motion itself is unchanged: joint rotations are shape-independent, and the
pelvis `translation` is the server's, made for the template skeleton, so a much taller or shorter
body may float or sink a little.

Nothing here raises: a missing or bad file (or bad betas) gives a problem text for a report and
the candidates fall back to the capsule mannequin.
"""
from __future__ import annotations

import os
import warnings

import bpy

from .vendored import body_model

GENDER_ITEMS = (
    ('NEUTRAL', "Neutral", "SMPL_NEUTRAL (or the neutral model in a folder)"),
    ('MALE', "Male", "SMPL_MALE (or the male model in a folder)"),
    ('FEMALE', "Female", "SMPL_FEMALE (or the female model in a folder)"),
)

# The last body read: (settings, key, body, problem). The key is the file's identity (path, mtime,
# size) plus the betas and gender, so a changed file or setting is read again and the rest is not.
_last: tuple = (None, None, None, None)


def settings(prefs) -> tuple[str, str, str]:
    """(model path with Blender's // made absolute, betas text, gender) from the preferences."""
    path = prefs.smpl_model_path.strip()
    return (bpy.path.abspath(path) if path else "", prefs.smpl_betas, prefs.smpl_gender.lower())


def load(path: str, betas_text: str = "", gender: str = "neutral") -> tuple[dict | None, str | None]:
    """(body, None), (None, problem) when it cannot be had, or (None, None) when no path is set.

    body: what `candidates.import_candidates` takes, from `shared.body_model.template`: vertices
    (V, 3), faces (F, 3), weights (V, 22) (hands folded into the wrists), joints (22, 3) (the
    body's rest joints), betas, source (the file's name), notes (warnings worth showing)."""
    global _last
    if not path:
        return None, None
    key = None
    try:
        file = body_model.find_model_file(path, gender, pickle_ok=False)
        stat = os.stat(file)
        key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size, betas_text.strip(), gender)
        if key == _last[1]:
            _last = ((path, betas_text, gender), *_last[1:])
            return _last[2], _last[3]
        betas = body_model.parse_betas(betas_text)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = body_model.template(file, betas, gender)
        body = {"vertices": t["vertices"], "faces": t["faces"], "weights": t["weights22"], "joints": t["joints"],
                "betas": t["betas"], "source": t["source"], "notes": [str(w.message) for w in caught]}
        result = (body, None)
    except body_model.BodyModelError as exc:
        result = (None, str(exc))
    except MemoryError:
        result = (None, f"{path}: not enough memory to read this SMPL model file")
    except Exception as exc:  # a damaged file can fail in many ways; a body is never worth a crash
        result = (None, f"{path}: could not read the SMPL model file ({type(exc).__name__}: {exc})")
    _last = ((path, betas_text, gender), key, *result)
    return result


def from_preferences(prefs) -> tuple[dict | None, str | None]:
    """`load` with the preferences' settings."""
    try:
        return load(*settings(prefs))
    except Exception as exc:  # e.g. preferences of an older version without these settings
        return None, f"SMPL body settings unusable ({type(exc).__name__}: {exc})"


def describe(prefs) -> tuple[str, str]:
    """(text, icon) for the preferences: the body last read for the current settings, its problem,
    or that it is read at the next Generate (nothing is read while drawing)."""
    current = settings(prefs)
    if not current[0]:
        return "No SMPL model file: candidates get the capsule mannequin", 'INFO'
    done, _, body, problem = _last
    if done != current:
        return "The SMPL body is read at the next Generate", 'INFO'
    if problem:
        return problem, 'ERROR'
    return f"{body['source']}: {len(body['vertices'])} vertices, {len(body['betas'])} betas", 'CHECKMARK'


def reload(prefs, context=None) -> None:
    """Property update callback: read the body for the new settings at once (problems show in the
    preferences; the next Generate reports them too)."""
    from_preferences(prefs)
