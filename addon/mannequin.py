"""A body for each candidate: a capsule per bone, each rigidly skinned to its bone.

The segment from joint p to its child c moves with bone p (P_c = P_p + G_p (J_c - J_p)), so
its capsule is weighted 1.0 to bone p. The mesh is built once per rest skeleton and shared by
every candidate (vertex group names live on the Mesh, so they are shared too). Where the artist
has an SMPL model file (body.py reads it locally: vertices, faces, skinning weights for a body
shape), that mesh is used instead with its own weights, on an armature built from its joints.
"""
import hashlib

import bpy
import numpy as np

from .armature import REST_KEY, rest_heads
from .vendored import skeleton

RINGS = 4  # per hemisphere
SIDES = 10

# Capsule radius (metres, SMPL template scale) of the segment from each joint's parent to it.
SEGMENT_RADIUS = {
    "left_hip": 0.075, "right_hip": 0.075, "spine1": 0.10, "left_knee": 0.065, "right_knee": 0.065,
    "spine2": 0.11, "left_ankle": 0.05, "right_ankle": 0.05, "spine3": 0.115, "left_foot": 0.04,
    "right_foot": 0.04, "neck": 0.06, "left_collar": 0.05, "right_collar": 0.05, "head": 0.05,
    "left_shoulder": 0.05, "right_shoulder": 0.05, "left_elbow": 0.045, "right_elbow": 0.045,
    "left_wrist": 0.035, "right_wrist": 0.035,
}
# Extra capsules past the leaves: (bone, direction in the rest pose, length, radius).
END_CAPS = (
    ("head", (0.0, 1.0, 0.02), 0.12, 0.095),
    ("left_wrist", (1.0, 0.0, 0.0), 0.10, 0.04),
    ("right_wrist", (-1.0, 0.0, 0.0), 0.10, 0.04),
    ("left_foot", (0.0, -0.1, 1.0), 0.07, 0.035),
    ("right_foot", (0.0, -0.1, 1.0), 0.07, 0.035),
)


def capsule(p0, p1, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and faces (F, 4) of a capsule p0 -> p1; a triangle repeats its last index."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    # Latitude rings from the p0 pole to the p1 pole: the lower hemisphere sits on p0, the upper on p1.
    lat = np.concatenate([np.linspace(-np.pi / 2, 0.0, RINGS + 1)[1:], np.linspace(0.0, np.pi / 2, RINGS + 1)[:-1]])
    centre = np.where(lat[:, None] <= 0.0, p0, p1)  # (rings, 3)
    angles = np.linspace(0.0, 2 * np.pi, SIDES, endpoint=False)
    ring_dirs = np.cos(angles)[:, None] * x + np.sin(angles)[:, None] * y  # (SIDES, 3)
    rings = (centre[:, None, :]
             + radius * np.cos(lat)[:, None, None] * ring_dirs[None]
             + radius * np.sin(lat)[:, None, None] * z)
    verts = np.concatenate([[p0 - radius * z], rings.reshape(-1, 3), [p1 + radius * z]])
    n_rings = rings.shape[0]
    faces = []
    ring = lambda r, s: 1 + r * SIDES + (s % SIDES)  # noqa: E731
    for s in range(SIDES):
        faces.append((0, ring(0, s + 1), ring(0, s), ring(0, s)))  # degenerate quad = triangle
    for r in range(n_rings - 1):
        for s in range(SIDES):
            faces.append((ring(r, s), ring(r, s + 1), ring(r + 1, s + 1), ring(r + 1, s)))
    top = len(verts) - 1
    for s in range(SIDES):
        faces.append((top, ring(n_rings - 1, s), ring(n_rings - 1, s + 1), ring(n_rings - 1, s + 1)))
    return verts, np.array(faces, dtype=np.int64)


def mannequin_parts(rest_joints=None):
    """[(bone name, vertices, faces)] of the capsule mannequin in armature space (Y-up, pelvis at 0)."""
    heads = rest_heads(rest_joints)
    parts = []
    for j in range(1, skeleton.NUM_JOINTS):
        name = skeleton.JOINT_NAMES[j]
        parent = skeleton.JOINT_NAMES[skeleton.PARENTS[j]]
        verts, faces = capsule(heads[skeleton.PARENTS[j]], heads[j], SEGMENT_RADIUS[name])
        parts.append((parent, verts, faces))
    for name, direction, length, radius in END_CAPS:
        start = heads[skeleton.JOINT_INDEX[name]]
        d = np.asarray(direction, dtype=np.float64)
        verts, faces = capsule(start, start + length * d / np.linalg.norm(d), radius)
        parts.append((name, verts, faces))
    return parts


def _polygons(faces: np.ndarray) -> list[tuple[int, ...]]:
    """Quads, with the degenerate ones (last index repeated) turned into triangles."""
    return [tuple(f[:3]) if f[2] == f[3] else tuple(f) for f in faces.tolist()]


def _mesh_with_groups(name: str, key: str, verts: np.ndarray, polygons, groups: dict) -> bpy.types.Mesh:
    """A smooth-shaded mesh whose vertex groups are {bone: (vertex indices, weights)}."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], polygons)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.update()
    mesh[REST_KEY] = key
    # Vertex group names and weights live on the Mesh; an object is only needed to write them.
    writer = bpy.data.objects.new("weights writer", mesh)
    try:
        for bone, (indices, weights) in groups.items():
            group = writer.vertex_groups.new(name=bone)
            weights = np.asarray(weights, dtype=np.float64)
            if np.all(weights == 1.0):
                group.add([int(i) for i in indices], 1.0, 'REPLACE')
            else:
                for i, w in zip(indices, weights):
                    group.add([int(i)], float(w), 'REPLACE')
    finally:
        bpy.data.objects.remove(writer)
    return mesh


def ensure_mannequin_mesh(armature: bpy.types.Armature) -> bpy.types.Mesh:
    """The capsule mannequin for `armature`'s rest skeleton, built once and shared."""
    key = armature[REST_KEY]
    for mesh in bpy.data.meshes:
        if mesh.get(REST_KEY) == key and mesh.get("sopo_body") == "mannequin":
            return mesh
    heads = np.array([armature.bones[name].head_local for name in skeleton.JOINT_NAMES])
    verts, polygons, groups = [], [], {}
    offset = 0
    for bone, v, f in mannequin_parts(heads):
        verts.append(v)
        polygons.extend(tuple(i + offset for i in p) for p in _polygons(f))
        indices = groups.setdefault(bone, ([], []))
        indices[0].extend(range(offset, offset + len(v)))
        indices[1].extend([1.0] * len(v))
        offset += len(v)
    mesh = _mesh_with_groups("SoPo mannequin", key, np.concatenate(verts), polygons, groups)
    mesh["sopo_body"] = "mannequin"
    return mesh


def body_mesh(armature: bpy.types.Armature, vertices, faces, weights, rest_joints) -> bpy.types.Mesh:
    """An SMPL body (body.py reads it from the artist's model file): vertices (V, 3) Y-up in the
    SMPL rest frame, faces (F, 3), skinning weights (V, 22); moved so the rest pelvis
    (rest_joints[0], the joints `armature` was built from) is at the armature origin. Built once per
    body and armature, shared by every candidate and later requests with the same body."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"body vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("body faces must be (F, 3) indices into the vertices")
    if weights.shape != (len(vertices), skeleton.NUM_JOINTS):
        raise ValueError(f"body weights must be (V, 22), got {weights.shape}")
    joints = np.asarray(rest_joints, dtype=np.float64)
    vertices = vertices - joints[0]
    digest = hashlib.sha1()
    for array in (vertices, faces, weights):
        digest.update(np.ascontiguousarray(array).tobytes())
    body_key = digest.hexdigest()[:16]
    for mesh in bpy.data.meshes:  # the same body again (the next request): reuse it
        if mesh.get("sopo_body") == "smpl" and mesh.get("sopo_body_key") == body_key \
                and mesh.get(REST_KEY) == armature[REST_KEY]:
            return mesh
    groups = {}
    for j, name in enumerate(skeleton.JOINT_NAMES):
        indices = np.nonzero(weights[:, j] > 1e-4)[0]
        if len(indices):
            groups[name] = (indices, weights[indices, j])
    mesh = _mesh_with_groups("SMPL body", armature[REST_KEY], vertices, [tuple(f) for f in faces.tolist()], groups)
    mesh["sopo_body"] = "smpl"
    mesh["sopo_body_key"] = body_key
    return mesh


def attach_body(armature_obj: bpy.types.Object, mesh: bpy.types.Mesh, collection) -> bpy.types.Object:
    """A mesh object for `armature_obj`: child of it (same space), deformed by an Armature modifier."""
    obj = bpy.data.objects.new(f"{armature_obj.name} body", mesh)
    collection.objects.link(obj)
    obj.parent = armature_obj
    modifier = obj.modifiers.new("Armature", 'ARMATURE')
    modifier.object = armature_obj
    modifier.use_vertex_groups = True
    obj.color = armature_obj.color
    return obj
