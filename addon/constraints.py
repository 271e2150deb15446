"""Artist controls from the scene (no UI): a rig's pose and place at a frame, a curve as a root path, half bodies.

Everything is expressed in an armature's own motion space: what that armature would be keyed with.
For the add-on's SMPL-22 armatures (candidates) that is the armature's Y-up space, where the pelvis
bone's location is the motion's translation; for an artist's rig it is the exact inverse of "Apply to
rig" (`retarget.apply_to_rig`): the SMPL motion that, applied to the rig, puts it in the pose it is in.
So a motion generated from `start_pose(rig)` and applied to the same rig continues where the rig
stands. Without an armature, points are the scene's world in the motion's axes (Y-up: a Blender
point (x, y, z) is (x, z, -y)).

`motion_space(obj)` is where that space lies in the world, as the 4x4 matrix a candidate armature
needs to play a motion of that space in place: a candidate with it starts where `obj` stands.

request.py composes these into a `shared.constraints.Constraints` for the panel's generate request:
    start = start_pose(rig, scene.frame_current)               # continue from the current pose
    end = end_pose(rig, scene_frame=120, frames=motion_frames)  # end in the pose at frame 120
    path = root_path(curve, rig)                                 # follow this curve
    keep = keep_joints(candidate, "LOWER")                       # keep the legs of a picked candidate
"""
import bpy
import numpy as np
from mathutils import Matrix

from . import armature, bone_maps, candidates, keyframes, retarget, shaping
from .vendored import constraints as shared
from .vendored import rotations as rot
from .vendored import skeleton

HALVES = {'UPPER': shared.UPPER_BODY, 'LOWER': shared.LOWER_BODY}
PATH_SPACING = 0.05    # metres between the points a curve is resampled to


class ControlError(ValueError):
    """The scene cannot give this control (not an armature, no usable curve, ...); the message says why."""


# --- frames and spaces -----------------------------------------------------------------------

def motion_frame(scene: bpy.types.Scene, scene_frame: float, start=None) -> int:
    """The motion frame (20 fps, 0 at `start`, default the scene's start) shown at `scene_frame`."""
    start = scene.frame_start if start is None else start
    return int(round((scene_frame - start) * shared.WIRE_FPS / keyframes.scene_fps(scene)))


def is_smpl_armature(obj) -> bool:
    """An armature the add-on built (bones along +Y, the pelvis' location is the translation)."""
    return (obj is not None and obj.type == 'ARMATURE' and armature.REST_KEY in obj.data
            and all(name in obj.data.bones for name in skeleton.JOINT_NAMES))


class _RigSpace:
    """The numbers `retarget.apply_to_rig` uses for `rig` (from an SMPL armature turned Y-up -> Z-up)."""

    def __init__(self, rig, map_kind: str = 'AUTO', map_file: str = ""):
        bones = rig.data.bones
        try:
            self.mapping = bone_maps.resolve(map_kind, bones.keys(), map_file)
        except bone_maps.BoneMapError as exc:
            raise ControlError(f"{rig.name}: {exc}") from None
        source_rotation = np.array(Matrix.Rotation(armature.Y_UP_TO_Z_UP[0], 3, 'X'), dtype=np.float64)
        self.K = retarget._rotation(rig.matrix_world).T @ source_rotation
        self.rest = {b.name: np.array(b.matrix_local, dtype=np.float64) for b in bones}
        self.heads = {name: m[:3, 3] for name, m in self.rest.items()}
        src = armature.rest_heads()
        self.align = retarget._alignments(self.mapping, src, self.heads, self.K)
        src_points = {name: src[j] for j, name in enumerate(skeleton.JOINT_NAMES)}
        tgt_points = {joint: self.heads[bone] for joint, bone in self.mapping.items()}
        tgt_leg = retarget._leg_length(tgt_points, self.mapping)
        if tgt_leg is None:
            raise ControlError(f"{rig.name}: the bone map has no legs, so its root motion has no scale")
        self.scale = tgt_leg / retarget._leg_length(src_points, skeleton.JOINT_NAMES)
        self.standing = np.array([0.0, -skeleton.floor_height(src), 0.0])

    def translation(self, pelvis_armature: np.ndarray) -> np.ndarray:
        """(..., 3) pelvis positions in the rig's armature space -> the SMPL motion's translations."""
        head = self.heads[self.mapping[skeleton.JOINT_NAMES[0]]]
        return (np.asarray(pelvis_armature) - head) @ self.K / self.scale + self.standing


def _to_motion_space(points_world: np.ndarray, obj=None, space: "_RigSpace | None" = None) -> np.ndarray:
    """(N, 3) Blender world points -> (N, 3) in `obj`'s motion space (world Y-up without an armature)."""
    points_world = np.asarray(points_world, dtype=np.float64)
    if obj is None:
        return np.stack([points_world[:, 0], points_world[:, 2], -points_world[:, 1]], axis=-1)
    inverse = np.array(obj.matrix_world.inverted(), dtype=np.float64)
    local = points_world @ inverse[:3, :3].T + inverse[:3, 3]
    if is_smpl_armature(obj):
        return local
    space = space or _RigSpace(obj)
    return space.translation(local)


def motion_space(obj=None, map_kind: str = 'AUTO', map_file: str = "") -> np.ndarray:
    """(4, 4) world matrix of `obj`'s motion space (the world in the motion's axes without an object).

    An add-on armature with this `matrix_world` plays a motion of that space where `obj` would: for an
    SMPL-22 armature that is its own matrix; for an artist's rig, the place, facing and size "Apply to rig"
    maps motions to (uniformly scaled by the rig's leg length over SMPL's, so the candidates are the rig's
    size), so a candidate that starts in the rig's pose stands where the rig stands."""
    if obj is None:
        return np.array(Matrix.Rotation(armature.Y_UP_TO_Z_UP[0], 4, 'X'), dtype=np.float64)
    if is_smpl_armature(obj):
        return np.array(obj.matrix_world, dtype=np.float64)
    space = _RigSpace(obj, map_kind, map_file)
    head = space.heads[space.mapping[skeleton.JOINT_NAMES[0]]]
    local = np.eye(4)
    local[:3, :3] = space.scale * space.K                    # translation() inverted: p = head + s K (t - standing)
    local[:3, 3] = head - space.scale * space.K @ space.standing
    return np.array(obj.matrix_world, dtype=np.float64) @ local


# --- poses -------------------------------------------------------------------------------------

def _evaluated_at(scene, obj, scene_frame):
    if scene_frame is not None:
        whole = int(np.floor(scene_frame))
        scene.frame_set(whole, subframe=float(scene_frame - whole))
    return obj.evaluated_get(bpy.context.evaluated_depsgraph_get())


def read_pose(obj, scene_frame=None, map_kind: str = 'AUTO', map_file: str = "",
              scene: bpy.types.Scene | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rotations (22, 4) local wxyz, translation (3,)) of `obj`'s pose at `scene_frame` (default: the current
    frame; the scene's current frame is restored), in its motion space (see the module docstring).

    An SMPL-22 armature is read as it is; any other armature through its bone map (as "Apply to rig"):
    unmapped joints keep their parent's orientation. (Apply's Feet on floor leaves the frames a request pinned
    from a rig as they are: retarget.py fades its corrections in and out around them.)"""
    if obj is None or obj.type != 'ARMATURE':
        raise ControlError(f"{getattr(obj, 'name', 'nothing')} is not an armature: select the rig to start from")
    scene = scene or bpy.context.scene
    current = (scene.frame_current, scene.frame_subframe)
    try:
        evaluated = _evaluated_at(scene, obj, scene_frame)
        if is_smpl_armature(obj):
            world = {name: np.array(evaluated.pose.bones[name].matrix, dtype=np.float64)[:3, :3]
                     for name in skeleton.JOINT_NAMES}
            G = np.stack([world[name] for name in skeleton.JOINT_NAMES])
            translation = np.array(evaluated.pose.bones[skeleton.JOINT_NAMES[0]].head, dtype=np.float64)
        else:
            space = _RigSpace(obj, map_kind, map_file)
            G = np.empty((skeleton.NUM_JOINTS, 3, 3))
            for j, joint in enumerate(skeleton.JOINT_NAMES):
                bone = space.mapping.get(joint)
                if bone is None:
                    G[j] = G[skeleton.PARENTS[j]] if j else np.eye(3)
                    continue
                W = np.array(evaluated.pose.bones[bone].matrix, dtype=np.float64)[:3, :3]
                G[j] = space.K.T @ W @ space.rest[bone][:3, :3].T @ space.align[joint].T @ space.K
            pelvis = np.array(evaluated.pose.bones[space.mapping[skeleton.JOINT_NAMES[0]]].head, dtype=np.float64)
            translation = space.translation(pelvis)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    local = G.copy()
    local[1:] = np.swapaxes(G[skeleton.PARENTS[1:]], -1, -2) @ G[1:]
    u, _, vt = np.linalg.svd(local)                     # clean up float drift: exact rotations
    return rot.matrix_to_quat(u @ vt), translation


def start_pose(obj, scene_frame=None, map_kind: str = 'AUTO', map_file: str = "", joints=None):
    """"Start from the current pose": the motion starts in `obj`'s pose and place at `scene_frame`."""
    q, t = read_pose(obj, scene_frame, map_kind, map_file)
    return shared.PoseKey(q, t, 0, None if joints is None else tuple(joints), True)


def end_pose(obj, scene_frame, frames: int, map_kind: str = 'AUTO', map_file: str = "", root: bool = True,
             frame: int | None = None):
    """"End at the pose at frame N": `obj`'s pose (and place, with `root`) at `scene_frame`, pinned at motion
    frame `frame` (default the last of a `frames`-frame motion)."""
    q, t = read_pose(obj, scene_frame, map_kind, map_file)
    return shared.PoseKey(q, t, frames - 1 if frame is None else int(frame), None, bool(root))


def keyframe(obj, scene_frame, frame: int, joints=None, root: bool = False, map_kind: str = 'AUTO',
             map_file: str = ""):
    """A keyframe: `obj`'s pose at `scene_frame` pinned at motion frame `frame` (only `joints`, default all)."""
    q, t = read_pose(obj, scene_frame, map_kind, map_file)
    return shared.PoseKey(q, t, int(frame), None if joints is None else tuple(joints), bool(root))


# --- path ---------------------------------------------------------------------------------------

def curve_points_world(curve) -> np.ndarray:
    """(N, 3) points along a curve object's one spline, in the world (the evaluated curve, at its resolution)."""
    if curve is None or curve.type != 'CURVE':
        raise ControlError(f"{getattr(curve, 'name', 'nothing')} is not a curve: pick a curve object to follow")
    splines = curve.data.splines
    if len(splines) != 1:
        raise ControlError(f"{curve.name} has {len(splines)} splines; a path needs exactly one")
    evaluated = curve.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        local = np.array([v.co for v in mesh.vertices], dtype=np.float64).reshape(-1, 3)
    finally:
        evaluated.to_mesh_clear()
    if len(local) < 2:
        raise ControlError(f"{curve.name} has fewer than two points")
    if splines[0].use_cyclic_u:
        local = np.concatenate([local, local[:1]])
    matrix = np.array(curve.matrix_world, dtype=np.float64)
    return local @ matrix[:3, :3].T + matrix[:3, 3]


def resample(points: np.ndarray, spacing: float = PATH_SPACING, limit: int = shared.MAX_PATH_POINTS) -> np.ndarray:
    """(N, 2) polyline -> points evenly spaced along it (at most `limit`, both ends kept)."""
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=-1))])
    count = int(np.clip(np.ceil(arc[-1] / spacing) + 1, 2, limit))
    s = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], axis=-1)


def root_path(curve, obj=None, speed: float | None = None, map_kind: str = 'AUTO', map_file: str = ""):
    """"Follow path": the curve's ground points in `obj`'s motion space (the scene's world without one),
    from its first point to its last; `speed` m/s, or None for the motion's own pace."""
    space = None if obj is None or is_smpl_armature(obj) else _RigSpace(obj, map_kind, map_file)
    points = _to_motion_space(curve_points_world(curve), obj, space)[:, [0, 2]]
    return shared.RootPath(resample(points), None, speed)


# --- keep joints ----------------------------------------------------------------------------------

def half_joints(half: str) -> tuple:
    """'UPPER' | 'LOWER' -> SMPL-22 joint indices (the lower half carries the pelvis and the root's path)."""
    try:
        return HALVES[half.upper()]
    except KeyError:
        raise ControlError(f"unknown half {half!r}; choose UPPER or LOWER") from None


def candidate_motion(candidate):
    """(rotations (T, 22, 4), translation (T, 3)) of a candidate's whole motion as the server made it, at the
    wire's 20 fps (whatever its keys' timing, trim or "in place")."""
    if candidate is None or candidates.CANDIDATE_KEY not in candidate:
        raise ControlError("pick a generated candidate to keep joints from")
    source = candidates.source_motion(candidate)
    if source is None:
        raise ControlError(f"{candidate.name} has lost its motion (made by an older add-on): generate it again")
    q, t, fps = source
    q, t = np.asarray(q, dtype=np.float64), np.asarray(t, dtype=np.float64)
    if abs(fps - shared.WIRE_FPS) > 1e-6:
        count = max(shared.MIN_FRAMES, int(round((len(q) - 1) * shared.WIRE_FPS / fps)) + 1)
        q, t = shaping.sample(q, t, fps, np.arange(count) / shared.WIRE_FPS)
    return rot.quat_fix_continuity(rot.quat_normalize(q), axis=0), t


def keep_joints(candidate, half_or_joints):
    """"Keep upper / lower body": those joints of a picked candidate's motion, kept exactly; the request's
    length must be the candidate's (`candidate_seconds`)."""
    joints = half_joints(half_or_joints) if isinstance(half_or_joints, str) else tuple(half_or_joints)
    q, t = candidate_motion(candidate)
    return shared.KeepJoints(joints, q, t)


def candidate_seconds(candidate) -> float:
    """The length of a candidate's motion in seconds as a request asks for it (frames / 20 fps)."""
    return len(candidate_motion(candidate)[0]) / shared.WIRE_FPS


def validate(constraints, seconds: float):
    """The constraints checked against a request of `seconds` (ControlError with the server's words)."""
    try:
        return constraints.check(shared.clip_frames(seconds))
    except shared.ConstraintError as exc:
        raise ControlError(str(exc)) from None

