"""`SkeletonMotion`: any source skeleton's motion, in its own kinematics (metres, Y-up).

Every source reader (`server/data/sources.py`, `server/data/bvh.py`) returns one of these; the
retargeter turns it into the SMPL-22 `Motion`. Nothing here knows about SMPL.

Forward kinematics (column vectors, BVH convention):
    G_root = R_root,  P_root = root_positions
    G_i = G_parent @ R_i,  P_i = P_parent + G_parent @ t_i
where t_i is the joint's rest offset, or its animated translation where the source has one
(`translations`, e.g. Bandai's `Hips` position channels below `joint_Root`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class SkeletonMotion:
    """A source skeleton's motion: tree, rest offsets and per-frame local rotations."""

    names: list[str]  # (J,) joint names, parents before children
    parents: np.ndarray  # (J,) int64, -1 for the root (exactly one root, index 0)
    offsets: np.ndarray  # (J, 3) rest offset from the parent, metres, in the skeleton's rest pose
    local_rotations: np.ndarray  # (T, J, 3, 3) rotation relative to the parent frame
    root_positions: np.ndarray  # (T, 3) world position of the root joint, metres
    fps: float
    translations: np.ndarray | None = None  # (T, J, 3) animated local translations, or None (= offsets)

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        self.local_rotations = np.asarray(self.local_rotations, dtype=np.float64)
        self.root_positions = np.asarray(self.root_positions, dtype=np.float64)
        J = len(self.names)
        if len(set(self.names)) != J:
            raise ValueError("joint names must be unique")
        if self.parents.shape != (J,):
            raise ValueError(f"parents: expected shape ({J},), got {self.parents.shape}")
        if J == 0 or self.parents[0] != -1 or np.any(self.parents[1:] < 0):
            raise ValueError("joint 0 must be the only root (parent -1)")
        if np.any(self.parents[1:] >= np.arange(1, J)):
            raise ValueError("every joint's parent must come before it")
        if self.offsets.shape != (J, 3):
            raise ValueError(f"offsets: expected shape ({J}, 3), got {self.offsets.shape}")
        R = self.local_rotations
        if R.ndim != 4 or R.shape[1:] != (J, 3, 3):
            raise ValueError(f"local_rotations: expected shape (T, {J}, 3, 3), got {R.shape}")
        T = R.shape[0]
        if self.root_positions.shape != (T, 3):
            raise ValueError(f"root_positions: expected shape ({T}, 3), got {self.root_positions.shape}")
        if self.translations is not None:
            self.translations = np.asarray(self.translations, dtype=np.float64)
            if self.translations.shape != (T, J, 3):
                raise ValueError(
                    f"translations: expected shape ({T}, {J}, 3), got {self.translations.shape}"
                )
        self.fps = float(self.fps)
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be finite and > 0, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.local_rotations.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the joint called `name` (KeyError names the missing joint)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r}; joints are {self.names}") from None

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (T, J, 3, 3) and world positions (T, J, 3)."""
        R = self.local_rotations
        T, J = R.shape[:2]
        G = np.empty_like(R)
        P = np.empty((T, J, 3))
        G[:, 0] = R[:, 0]
        P[:, 0] = self.root_positions
        for j in range(1, J):
            p = self.parents[j]
            if self.translations is None:
                P[:, j] = P[:, p] + G[:, p] @ self.offsets[j]
            else:
                P[:, j] = P[:, p] + np.einsum("tab,tb->ta", G[:, p], self.translations[:, j])
            G[:, j] = G[:, p] @ R[:, j]
        return G, P

    def positions(self) -> np.ndarray:
        """(T, J, 3) world joint positions."""
        return self.global_transforms()[1]

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions with identity local rotations and the root at the origin."""
        P = np.zeros((self.num_joints, 3))
        for j in range(1, self.num_joints):
            P[j] = P[self.parents[j]] + self.offsets[j]
        return P

    def subset(self, start: int | None = None, stop: int | None = None) -> "SkeletonMotion":
        """Frames [start, stop) with Python slice semantics (copies the arrays)."""
        window = slice(start, stop)
        return SkeletonMotion(
            names=list(self.names),
            parents=self.parents.copy(),
            offsets=self.offsets.copy(),
            local_rotations=self.local_rotations[window].copy(),
            root_positions=self.root_positions[window].copy(),
            fps=self.fps,
            translations=None if self.translations is None else self.translations[window].copy(),
        )


def drop_first_frame(motion: SkeletonMotion) -> SkeletonMotion:
    """The motion without frame 0 (the added T-pose / rest frame of the CMU BVH conversions)."""
    if motion.num_frames < 2:
        raise ValueError("drop_first_frame: the motion has fewer than 2 frames")
    return motion.subset(1, None)
