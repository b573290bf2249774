"""
Rigid transforms and unit quaternions, in the conventions of geometry_msgs and tf2.

Quaternions are ``(x, y, z, w)`` arrays, as geometry_msgs/Quaternion. A transform named
``T_target_source`` (the variable ``target_from_source``) maps coordinates of a point in
``source`` to its coordinates in ``target``: ``T_target_source.apply(p_source) = p_target``.
This is what ``tf2 lookup_transform(target, source)`` returns (the pose of the source frame
in the target frame). Composition chains frames: ``T_a_b @ T_b_c = T_a_c``.
"""

import dataclasses
from typing import Sequence

import numpy as np

_ORTHONORMAL_TOLERANCE = 1e-5


def quat_normalize(q) -> np.ndarray:
    """Return ``q`` (x, y, z, w) scaled to unit length; ValueError if zero or not finite."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if q.shape != (4,):
        raise ValueError(f'a quaternion has 4 values (x, y, z, w), got {q.size}')
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f'quaternion {q.tolist()} cannot be normalized')
    return q / norm


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product ``a * b`` (the rotation b, then a), both (x, y, z, w)."""
    ax, ay, az, aw = np.asarray(a, dtype=np.float64)
    bx, by, bz, bw = np.asarray(b, dtype=np.float64)
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quat_conjugate(q) -> np.ndarray:
    """Conjugate (the inverse rotation of a unit quaternion)."""
    x, y, z, w = np.asarray(q, dtype=np.float64)
    return np.array([-x, -y, -z, w])


def quat_to_matrix(q) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (normalized first)."""
    x, y, z, w = quat_normalize(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


quaternion_to_matrix = quat_to_matrix  # the spelled-out name some callers use


def check_rotation_matrix(rotation) -> np.ndarray:
    """Return ``rotation`` as a 3x3 array; ValueError unless orthonormal with det +1."""
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3):
        raise ValueError(f'a rotation matrix is 3x3, got shape {r.shape}')
    if (not np.all(np.isfinite(r))
            or np.abs(r @ r.T - np.eye(3)).max() > _ORTHONORMAL_TOLERANCE
            or np.linalg.det(r) < 0):
        raise ValueError(f'not a rotation matrix (orthonormal, det +1): {r.tolist()}')
    return r


def quat_from_matrix(rotation) -> np.ndarray:
    """Convert a 3x3 rotation matrix to a unit quaternion (x, y, z, w), w >= 0 (Shepperd)."""
    r = check_rotation_matrix(rotation)
    trace = np.trace(r)
    i = int(np.argmax([trace, r[0, 0], r[1, 1], r[2, 2]]))
    if i == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4]
    elif i == 1:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s, (r[2, 1] - r[1, 2]) / s]
    elif i == 2:
        s = 2.0 * np.sqrt(1.0 - r[0, 0] + r[1, 1] - r[2, 2])
        q = [(r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s, (r[0, 2] - r[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 - r[0, 0] - r[1, 1] + r[2, 2])
        q = [(r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4, (r[1, 0] - r[0, 1]) / s]
    q = quat_normalize(q)
    return -q if q[3] < 0 else q


def quat_between_vectors(a, b) -> np.ndarray:
    """
    Shortest rotation taking the direction of ``a`` to that of ``b``, as (x, y, z, w).

    For opposite vectors the rotation is 180 degrees about an axis perpendicular to ``a``;
    for nearly opposite ones, that half turn followed by the short rotation from ``-a`` to
    ``b`` (the direct formula loses precision as ``a + b`` vanishes).
    """
    a = np.asarray(a, dtype=np.float64).reshape(3)
    b = np.asarray(b, dtype=np.float64).reshape(3)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not (na > 1e-12 and nb > 1e-12 and np.isfinite(na) and np.isfinite(nb)):
        raise ValueError(f'cannot rotate between {a.tolist()} and {b.tolist()}: need non-zero '
                         'finite vectors')
    a, b = a / na, b / nb
    w = 1.0 + float(a @ b)
    if w >= 0.5:
        return quat_normalize(np.append(np.cross(a, b), w))
    helper = np.eye(3)[int(np.argmin(np.abs(a)))]
    axis = np.cross(a, helper)
    half_turn = np.append(axis / np.linalg.norm(axis), 0.0)
    short = quat_normalize(np.append(np.cross(-a, b), 1.0 - float(a @ b)))
    return quat_multiply(short, half_turn)


def _vectors(array, name: str) -> np.ndarray:
    out = np.asarray(array, dtype=np.float64)
    if out.shape == (3,):
        return out[None, :]
    if out.ndim != 2 or out.shape[1] != 3:
        raise ValueError(f'{name} must have shape (N, 3) or (3,), got {out.shape}')
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class RigidTransform:
    """
    ``T_target_source``: rotation (unit quaternion x, y, z, w) then translation (metres).

    ``apply(p) = R(rotation) p + translation`` maps source coordinates to target ones.
    """

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self):
        q = quat_normalize(self.rotation)
        t = np.array(self.translation, dtype=np.float64).reshape(-1)
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise ValueError(f'translation must be 3 finite values, got {self.translation}')
        matrix = quat_to_matrix(q)
        for array in (q, t, matrix):
            array.setflags(write=False)
        object.__setattr__(self, 'rotation', q)
        object.__setattr__(self, 'translation', t)
        object.__setattr__(self, '_matrix', matrix)

    @classmethod
    def identity(cls) -> 'RigidTransform':
        """Return the transform that changes nothing."""
        return cls(np.array([0.0, 0.0, 0.0, 1.0]), np.zeros(3))

    @classmethod
    def from_translation_quaternion(cls, translation: Sequence[float],
                                    quaternion: Sequence[float]) -> 'RigidTransform':
        """From geometry_msgs/Transform fields: translation (x, y, z), rotation (x, y, z, w)."""
        return cls(np.asarray(quaternion, dtype=np.float64),
                   np.asarray(translation, dtype=np.float64))

    def as_list(self) -> list:
        """Return [x, y, z, qx, qy, qz, qw] (a static_transform parameter's layout)."""
        return [float(v) for v in (*self.translation, *self.rotation)]

    @classmethod
    def from_rotation_matrix(cls, rotation, translation=(0.0, 0.0, 0.0)) -> 'RigidTransform':
        """From a 3x3 rotation matrix and a translation."""
        return cls(quat_from_matrix(rotation), np.asarray(translation, dtype=np.float64))

    @classmethod
    def from_matrix(cls, matrix) -> 'RigidTransform':
        """From a 4x4 homogeneous matrix ``[[R, t], [0, 0, 0, 1]]``."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]):
            raise ValueError(f'not a 4x4 homogeneous rigid transform: {m.tolist()}')
        return cls.from_rotation_matrix(m[:3, :3], m[:3, 3])

    @property
    def rotation_matrix(self) -> np.ndarray:
        """Return the 3x3 rotation matrix (read-only)."""
        return self._matrix

    def as_matrix(self) -> np.ndarray:
        """Return the 4x4 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3] = self._matrix
        m[:3, 3] = self.translation
        return m

    def __matmul__(self, other: 'RigidTransform') -> 'RigidTransform':
        """Compose: ``T_a_b @ T_b_c = T_a_c`` (apply ``other`` first)."""
        if not isinstance(other, RigidTransform):
            return NotImplemented
        return RigidTransform(quat_multiply(self.rotation, other.rotation),
                              self._matrix @ other.translation + self.translation)

    def inverse(self) -> 'RigidTransform':
        """``T_source_target`` from ``T_target_source``."""
        return RigidTransform(quat_conjugate(self.rotation), -(self._matrix.T @ self.translation))

    def apply(self, points) -> np.ndarray:
        """Map (N, 3) or (3,) points from the source frame to the target frame (same shape)."""
        points = np.asarray(points, dtype=np.float64)
        mapped = _vectors(points, 'points') @ self._matrix.T + self.translation
        return mapped[0] if points.shape == (3,) else mapped

    def rotate(self, vectors) -> np.ndarray:
        """Rotate free vectors such as normals (no translation); keeps the input's shape."""
        vectors = np.asarray(vectors, dtype=np.float64)
        rotated = _vectors(vectors, 'vectors') @ self._matrix.T
        return rotated[0] if vectors.shape == (3,) else rotated

    def almost_equal(self, other: 'RigidTransform', atol: float = 1e-9) -> bool:
        """Check for the same rigid motion within ``atol`` (q and -q are the same rotation)."""
        return bool(np.allclose(self.translation, other.translation, atol=atol)
                    and min(np.abs(self.rotation - other.rotation).max(),
                            np.abs(self.rotation + other.rotation).max()) <= atol)
