"""Reading and writing pose pickles safely.

Dataset pickles come from strangers, and ``pickle.load`` runs whatever a file asks it to.
:func:`load_pickle` uses a restricted unpickler that can rebuild numpy arrays (numpy 1 and
numpy 2 module paths), plain containers and scalars, and nothing else: any other global a file
references is refused with an error naming the file. Writes are atomic (temp file, fsync,
rename) so an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import PoseFileError

# (module, name) pairs a pose pickle may reference. numpy 2 moved numpy.core to numpy._core.
_ALLOWED_GLOBALS = {
    (mod, name)
    for core in ("numpy.core", "numpy._core")
    for mod, name in (
        (f"{core}.multiarray", "_reconstruct"),
        (f"{core}.multiarray", "scalar"),
        (f"{core}.numeric", "_frombuffer"),
    )
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "bytearray"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "dict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # numpy-1 pickles written with protocol 2 encode bytes this way
}
# numpy dtype classes (numpy.dtypes.Float64DType, ...) appear in some numpy>=1.25 pickles.
_ALLOWED_MODULE_PREFIXES = ("numpy.dtypes",)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle references something other than numpy arrays and plain containers."""



class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS or module.startswith(_ALLOWED_MODULE_PREFIXES):
            return super().find_class(module, name)
        raise UnsafePickleError(f"refusing to load global {module}.{name}")


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays, numpy scalars and plain containers."""
    path = Path(path)
    with open(path, "rb") as f:
        return load_pickle_bytes(f.read(), path)


def load_pickle_bytes(data: bytes, path: str | Path) -> Any:
    """:func:`load_pickle` for the bytes of ``path`` already read (``path`` names it in errors).

    For callers that must parse exactly the bytes they also hash (the packed cache)."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise PoseFileError(
            f"{path}: {exc}. Pose pickles may only hold numpy arrays and plain lists/dicts; "
            "re-export the file with pickle.dump(numpy_array) (see docs/process_dataset.md)"
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        raise PoseFileError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); "
                            "the file is truncated or not a pickle — regenerate it") from None


def as_pose_array(obj: Any, path: str | Path) -> np.ndarray:
    """Turn an unpickled object into a pose array ``[T, V, C]`` and check it.

    Accepts an ndarray or a list of per-frame arrays. Rejects non-numeric dtypes, wrong
    ranks, an empty time axis and non-finite values, each with a message naming ``path``.
    """
    if isinstance(obj, list):
        try:
            obj = np.stack([np.asarray(f) for f in obj]) if obj else np.zeros((0,))
        except ValueError as exc:
            raise PoseFileError(f"{path}: frames of different shapes ({exc})") from None
    if not isinstance(obj, np.ndarray):
        raise PoseFileError(f"{path}: expected a numpy array [T, V, 3], got {type(obj).__name__}")
    if obj.dtype.kind not in "fiu":
        raise PoseFileError(f"{path}: expected a numeric array, got dtype {obj.dtype}")
    if obj.ndim != 3 or obj.shape[-1] not in (2, 3):
        raise PoseFileError(
            f"{path}: expected shape [T, V, 3] (frames, joints, x/y/confidence), got {list(obj.shape)}"
        )
    if obj.shape[0] == 0:
        raise PoseFileError(f"{path}: empty sequence (0 frames); delete it or re-run the preprocessing")
    if obj.dtype.kind == "f" and not np.isfinite(obj).all():
        bad = np.argwhere(~np.isfinite(obj))[0]
        raise PoseFileError(
            f"{path}: non-finite value (NaN/inf) at frame {bad[0]}, joint {bad[1]}; "
            "clean the file (missing joints are stored as 0, 0, 0)"
        )
    return obj


def load_pose(path: str | Path) -> np.ndarray:
    """Load and check one pose pickle ``[T, V, C]`` (dtype as stored)."""
    return as_pose_array(load_pickle(path), path)


def load_pose_bytes(data: bytes, path: str | Path) -> np.ndarray:
    """:func:`load_pose` for the bytes of ``path`` already read."""
    return as_pose_array(load_pickle_bytes(data, path), path)


def default_file_mode() -> int:
    """The permissions ``open()`` would give a new file (0o666 minus the process umask).

    ``tempfile.mkstemp`` creates files readable by their owner only; data meant to be shared
    (a converted dataset on a cluster) should get the usual permissions instead.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(
    path: str | Path, write: Callable[[Any], None], mode: int | None = None, fsync: bool = True
) -> None:
    """Write a file by calling ``write(fileobj)`` on a temp file, fsync, then rename.

    Either the old content or the complete new content is at ``path``, never a mix. ``mode``
    sets the file's permissions before the rename (default: what ``open()`` would give a new
    file, not the temp file's owner-only 0o600, so checkpoints and datasets can be shared).
    ``fsync=False`` skips the flush to disk: the rename still guarantees that a killed process
    leaves no partial file, but a machine crash may (for bulk writes of many small files, where
    one fsync each dominates the run time).
    """
    path = Path(path)
    mode = default_file_mode() if mode is None else mode
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_pickle(path: str | Path, obj: Any, mode: int | None = None, fsync: bool = True) -> None:
    """Atomically pickle ``obj`` to ``path`` (protocol 4, readable by every supported Python);
    ``mode`` and ``fsync`` as in :func:`atomic_write`."""
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=4), mode=mode, fsync=fsync)
