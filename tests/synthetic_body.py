"""A synthetic SMPL-family model file's arrays, in SMPL's .npz layout (the real files are MPI-licensed).

The arrays have the keys smplx's SMPL loader reads (v_template, shapedirs (V, 3, B),
posedirs (V, 3, 9 (J - 1)), J_regressor (J, V), weights (V, J), kintree_table (2, J) with
2**32 - 1 as the root's parent, f (F, 3) uint32). Four vertices sit around each joint and
J_regressor averages them, so the template's joints are shared.skeleton.REST_JOINTS; each joint's
four vertices are skinned to it alone, and six more vertices the regressor ignores to the pelvis.
Used by tests/test_body_model.py and the add-on's body tests.
"""
from __future__ import annotations

import numpy as np

from shared.skeleton import PARENTS, REST_JOINTS

TETRA = 0.02 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64)  # sums to 0


def smplh_parents() -> np.ndarray:
    """SMPL-H's 52 joints: SMPL's 22 body joints, then 5 three-joint fingers per hand."""
    parents = list(PARENTS)
    for wrist in (20, 21):
        for _finger in range(5):
            base = len(parents)
            parents += [wrist, base, base + 1]
    return np.array(parents)


def synthetic_model(num_joints: int = 24, num_betas: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    parents = PARENTS.tolist() + [20, 21] if num_joints == 24 else smplh_parents().tolist()
    joints = np.zeros((num_joints, 3))
    joints[:22] = REST_JOINTS
    for j in range(22, num_joints):  # hand joints: a little further out than their parent
        p = parents[j]
        joints[j] = joints[p] + np.sign(joints[p, 0]) * np.array([0.03, -0.005, 0.0])
    V = 4 * num_joints + 6  # plus a few vertices the regressor ignores
    v = np.concatenate([(joints[:, None] + TETRA).reshape(-1, 3), rng.normal(scale=0.3, size=(6, 3))])
    jreg = np.zeros((num_joints, V))
    weights = np.zeros((V, num_joints))
    for j in range(num_joints):
        jreg[j, 4 * j:4 * j + 4] = 0.25
        weights[4 * j:4 * j + 4, j] = 1.0
    weights[4 * num_joints:, 0] = 1.0
    faces = np.array([[4 * j + a, 4 * j + b, 4 * j + c] for j in range(num_joints)
                      for a, b, c in ((0, 1, 2), (0, 2, 3), (0, 3, 1), (1, 3, 2))], dtype=np.uint32)
    kintree = np.stack([parents, np.arange(num_joints)]).astype(np.int64)
    kintree[0, 0] = 2**32 - 1
    return {"v_template": v, "shapedirs": rng.normal(scale=0.01, size=(V, 3, num_betas)),
            "posedirs": rng.normal(scale=0.001, size=(V, 3, 9 * (num_joints - 1))),
            "J_regressor": jreg, "weights": weights, "kintree_table": kintree, "f": faces}


def expected_joints(model: dict, betas) -> np.ndarray:
    b = np.zeros(model["shapedirs"].shape[2])
    b[:len(betas)] = betas
    return (model["J_regressor"] @ (model["v_template"] + model["shapedirs"] @ b))[:22]
