"""The one SMPL-22 skeleton definition (DESIGN.md section 3).

SMPL body without hands: 22 joints, Y-up, metres, facing +Z with the body's left on +x.
Everything in the project (retargeting, features, the add-on's armatures, metrics) reads
the skeleton from here; nothing else spells out joint names, parents or rest offsets.
"""
from __future__ import annotations

import numpy as np

NUM_JOINTS = 22
FPS = 20.0  # HumanML3D's rate; the corpus, the model and the wire all use it

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

PARENTS: np.ndarray = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19], dtype=np.int64
)

# SMPL male template rest joints (Y-up, metres), from DESIGN.md.
REST_JOINTS: np.ndarray = np.array(
    [
        [-0.0018, -0.2233, 0.0282], [0.0677, -0.3147, 0.0214], [-0.0695, -0.3139, 0.0239],
        [-0.0043, -0.1144, 0.0015], [0.1020, -0.6899, 0.0169], [-0.1078, -0.6964, 0.0150],
        [0.0012, 0.0208, 0.0026], [0.0884, -1.0879, -0.0268], [-0.0920, -1.0948, -0.0273],
        [0.0026, 0.0737, 0.0280], [0.1148, -1.1437, 0.0925], [-0.1174, -1.1430, 0.0961],
        [-0.0002, 0.2876, -0.0148], [0.0815, 0.1955, -0.0061], [-0.0791, 0.1926, -0.0106],
        [0.0050, 0.3526, 0.0365], [0.1724, 0.2259, -0.0149], [-0.1752, 0.2251, -0.0197],
        [0.4320, 0.2132, -0.0424], [-0.4289, 0.2118, -0.0411], [0.6813, 0.2222, -0.0435],
        [-0.6842, 0.2196, -0.0467],
    ],
    dtype=np.float64,
)

# Left/right pairs, for mirroring motions and swapping words in captions.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21),
)
MIRROR_PERMUTATION: np.ndarray = np.arange(NUM_JOINTS)
for _l, _r in LEFT_RIGHT_PAIRS:
    MIRROR_PERMUTATION[_l], MIRROR_PERMUTATION[_r] = _r, _l
del _l, _r

FOOT_JOINTS: tuple[int, ...] = (7, 8, 10, 11)  # ankles and feet: contacts, skating, ground
CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(int(c) for c in np.nonzero(PARENTS == j)[0]) for j in range(NUM_JOINTS)
)


def rest_offsets(rest_joints: np.ndarray | None = None) -> np.ndarray:
    """(22, 3) offset of each joint from its parent in the rest pose (the root's is its position)."""
    joints = REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    if joints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"rest joints must have shape (22, 3), got {joints.shape}")
    offsets = joints.copy()
    offsets[1:] -= joints[PARENTS[1:]]
    return offsets


def leg_length(rest_joints: np.ndarray | None = None) -> float:
    """Hip-to-ankle length (mean of both legs), the scale for root translations in retargeting."""
    joints = REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    total = 0.0
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        total += np.linalg.norm(joints[knee] - joints[hip]) + np.linalg.norm(joints[ankle] - joints[knee])
    return total / 2.0


def floor_height(rest_joints: np.ndarray | None = None) -> float:
    """Height of the lowest foot joint in the rest pose relative to the pelvis-origin frame."""
    joints = REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    return float(joints[list(FOOT_JOINTS), 1].min())
