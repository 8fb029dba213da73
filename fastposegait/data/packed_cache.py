"""Packed cache: every sequence of a split in one memory-mapped file, reused across runs.

Why: upstream's ``cache: true`` unpickles every file of the split in the main process at each
start (minutes for OU-MVLP's ~280k pickles) and keeps the arrays as Python objects, whose
pages the forked DataLoader workers end up copying. The packed cache reads the pickles once,
writes their arrays into one contiguous file, and later starts only check that the source
files are unchanged and map the file: the data stay in the page cache, shared read-only by the
main process and every worker.

**Selected by** ``data_cfg.cache`` (see :func:`resolve_cache_mode`): ``true`` or ``packed``
use it; ``memory`` is upstream's in-memory loading; ``false`` reads a pickle at each access.
Arrays are byte-identical to the pickle loader's (same dtype, byte order, shape and values)
and **read-only**: writing into one raises ``ValueError: assignment destination is read-only``
instead of silently changing what every later batch sees (the transforms never modify their
input, see :mod:`fastposegait.data.transforms`).

**Where it lives** (:func:`candidate_dirs`): ``data_cfg.cache_dir`` if set (one sub-folder
per dataset root, so one folder can serve several datasets), otherwise
``<dataset_root>/.fastposegait_cache/``; if the dataset root is read-only, the user cache
``$XDG_CACHE_HOME/fastposegait/`` (default ``~/.cache/fastposegait/``). A valid cache found in
any candidate folder is used even when that folder is read-only (a cache built once by whoever
owns the dataset). If no folder is writable, or writing the cache fails (a full disk, a quota),
:func:`open_packed_cache` removes what it wrote, returns ``None`` and the dataset falls back to
in-memory loading with a warning.

One file per split and selection: ``<TRAIN_SET|TEST_SET>-<key>.fpgpack``, ``key`` a digest of
the split's subject list (from the partition, in order) and ``data_in_use``. A different
partition therefore gets its own file; ``frame_threshold`` is applied when the cache is opened
(the frame counts are in the index), so changing it reuses the same file without reading any
pickle.

**Invalidation.** The cache is valid only if the ordered list of selected pickle paths, as the
uncached index walk would produce it (added or removed sequences, modalities, and files that
``data_in_use`` selects all change it), and every pickle's ``(size, mtime_ns, ctime_ns)`` equal
those recorded at build time. ``ctime`` cannot be set by users, so even a same-size rewrite
whose mtime was restored is caught. Listing ~300k folders is the slow part of a start (about
15 µs per ``listdir`` against 5 µs per ``stat`` here), so the walk records each folder's
``(mtime_ns, ctime_ns)`` just before listing it (:class:`DirSignature`, stored beside the cache
in ``<file>.dirs.npz``): a folder's time stamps move whenever an entry is added, removed or
renamed in it, so when no folder moved, the walk would give the same index and
:func:`reopen_packed_cache` takes the index from the cache with one ``stat`` per folder and
per pickle and no listing. Any difference sends the start through the full walk, which then
says what changed and rebuilds.

Time stamps have a granularity (a kernel clock tick, or seconds on some file systems), so a
file or folder changed within :data:`RACY_WINDOW_NS` before the scan could change again
without its time stamps moving. Such "racy" pickles get a BLAKE2b digest of their bytes at
build time, re-checked at each start; racy folders disable the walk-free start until a later
walk (which rewrites the signature) finds them settled. Normally nothing is racy: datasets are
written long before they are cached. Not detected: a change that keeps size, mtime and ctime
outside that window (impossible without resetting the clock), clock skew above the window
between this machine and a network file server, changes made on another machine that an NFS
client's attribute cache still hides (``actimeo``).

**Damage to the cache file itself** (bit rot, a tool writing into it): every array has a
CRC-32 of its bytes in the index, checked by :meth:`PackedCache.arrays` at each access (about
2 µs for a 30 x 18 x 3 float32 array here); a mismatch raises a
:class:`~fastposegait.data.io.PoseFileError` naming the sequence and marks the file for the
next start. A build also sets the file's mtime to a stamp recorded in its index; a start that
finds another mtime (the file was written into, or marked) verifies every checksum (about
0.3 s per GB here) and rebuilds the cache if one fails, or puts the stamp back if all match.

**File format** (version :data:`FORMAT_VERSION`)::

    [0, 4096)        header: magic, version, offset and length of the index JSON, file size
    [4096, D)        data: each array's bytes, C order, 64-byte aligned
    [D, J)           index arrays (offsets, shapes, dtypes, sizes, timestamps, digests,
                     CRC-32 of each array, record boundaries, frame counts, the NUL-joined
                     relative paths)
    [J, end)         index JSON: format, build id, mtime stamp, array directory, dtype table, ...

The index arrays are views into the mapping too, so opening costs a few page reads however
large the dataset. The file is written to a temp file in the same folder and renamed into place
(:func:`~fastposegait.data.io.atomic_write`), under an exclusive ``flock`` so that the ranks of
a multi-process run build it once while the others wait; a leftover temp file of a killed build
is never opened (and is removed by the next build). A file that does not parse (bad magic,
wrong size, a truncated index) is rebuilt with a log line, never a traceback.

**Workers.** Forked DataLoader workers inherit the mapping: the pages they read are the page
cache's, not copies. Pickling a :class:`PackedCache` (``spawn`` start method) sends only its
path and build id; the worker maps the same file again. A rebuild by another run replaces the
file by a rename, so processes that mapped the old file keep reading its (unlinked) inode
unchanged until they exit.
"""
from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import tempfile
import time
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import CacheConfigError, PoseFileError
from .io import atomic_write, default_file_mode, load_sequence_bytes

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_DIR_NAME",
    "DirSignature",
    "FORMAT_VERSION",
    "RACY_WINDOW_NS",
    "CacheConfigError",
    "FileStats",
    "PackedCache",
    "candidate_dirs",
    "check_same_length",
    "open_packed_cache",
    "reopen_packed_cache",
    "resolve_cache_mode",
    "stat_files",
]

CACHE_DIR_NAME = ".fastposegait_cache"
FORMAT_VERSION = 2  # 2: a CRC-32 per array and the build's time stamp
SUFFIX = ".fpgpack"
RACY_WINDOW_NS = 3_000_000_000  # > a kernel tick, > the 1-2 s mtime granularity of some file systems
_MAGIC = b"FPGPACK\0"
_HEADER = struct.Struct("<8sIIQQQ")  # magic, version, reserved, json offset, json length, file size
_DATA_OFFSET = 4096  # the data section starts page-aligned
_ALIGN = 64
_DIGEST_SIZE = 16
_STAMP_STEP_NS = 2_000_000_000  # the stamp is a whole even second: exact on every file system (FAT: 2 s)

PathLike = Union[str, Path]


def resolve_cache_mode(value: Any) -> str:
    """Map a ``data_cfg.cache`` value to ``"packed"``, ``"memory"`` or ``"none"``.

    ``true`` means packed: upstream's promise (every sequence loaded once, before the workers
    start, values as in the pickles) is kept, start-up after the first run takes seconds, and
    memory is shared with the workers instead of copied.
    """
    if value is True or value == "packed":
        return "packed"
    if value == "memory":
        return "memory"
    if value is False or value is None or value == "none":
        return "none"
    raise CacheConfigError(
        f"data_cfg.cache: {value!r} is not a cache mode; use true or packed (memory-mapped packed "
        "cache, reused across runs), memory (upstream: unpickle everything into RAM at each start) "
        "or false (read each pickle when it is used)"
    )


def check_same_length(arrays: Sequence[np.ndarray], paths: Sequence[str]) -> None:
    """Every modality (pickle) of one sequence must have the same number of frames."""
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) > 1:
        raise PoseFileError(
            f"{os.path.dirname(paths[0])}: modalities have different frame counts "
            f"{lengths}; every pickle of a sequence must have the same length"
        )


# ------------------------------------------------------------------------------------------
# source-file signature


@dataclass
class FileStats:
    """``stat`` results of the selected pickles, in index order, and when they were taken."""

    size: np.ndarray  # int64 [F]
    mtime_ns: np.ndarray  # int64 [F]
    ctime_ns: np.ndarray  # int64 [F]
    scan_start_ns: int

    def racy(self) -> np.ndarray:
        """Files changed so close to the scan that a further change might not move their
        timestamps (see the module docstring)."""
        newest = np.maximum(self.mtime_ns, self.ctime_ns)
        return newest >= self.scan_start_ns - RACY_WINDOW_NS


def stat_files(paths: Sequence[str]) -> FileStats:
    """``os.stat`` every path (one system call each; the part of a cached start that grows
    with the dataset, together with listing the folders)."""
    start = time.time_ns()
    n = len(paths)
    size = np.empty(n, dtype=np.int64)
    mtime = np.empty(n, dtype=np.int64)
    ctime = np.empty(n, dtype=np.int64)
    stat = os.stat
    for i, p in enumerate(paths):
        try:
            st = stat(p)
        except OSError as exc:
            raise PoseFileError(f"{p}: cannot stat it ({exc.strerror}); was the dataset changed while the "
                                "index was being built? Start again once it is complete") from None
        size[i] = st.st_size
        mtime[i] = st.st_mtime_ns
        ctime[i] = st.st_ctime_ns
    return FileStats(size, mtime, ctime, start)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()


def _relpaths_blob(root: str, paths: Sequence[str]) -> bytes:
    cut = len(root.rstrip(os.sep)) + 1
    return "\0".join(p[cut:] for p in paths).encode("utf-8", "surrogateescape")


class DirSignature:
    """Time stamps of every folder the index walk lists, each taken just before the listing.

    A folder's mtime/ctime move whenever an entry is added, removed or renamed in it, so if
    none of these folders changed (and none was racy when recorded), listing them again would
    give the same index: a cached start then needs one ``stat`` per folder and per pickle and
    no listing at all. Pass :meth:`add` as ``build_index(..., on_dir=...)``.
    """

    def __init__(self) -> None:
        self.scan_start_ns = time.time_ns()
        self.paths: List[str] = []
        #: the walk's warnings, stored with the signature and repeated by the starts that skip it
        self.warnings: List[str] = []
        self._mtime: List[int] = []
        self._ctime: List[int] = []

    def add(self, path: str) -> None:
        st = os.stat(path)
        self.paths.append(path)
        self._mtime.append(st.st_mtime_ns)
        self._ctime.append(st.st_ctime_ns)

    def arrays(self) -> Tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._mtime, dtype=np.int64), np.asarray(self._ctime, dtype=np.int64)


def _blob(items: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\0".join(items).encode("utf-8", "surrogateescape"), dtype=np.uint8)


def _unblob(arr: np.ndarray) -> List[str]:
    text = arr.tobytes().decode("utf-8", "surrogateescape")
    return text.split("\0") if text else []


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".dirs.npz")


def _write_sidecar(path: Path, build_id: str, root: str, subjects: Sequence[str], signature: DirSignature) -> None:
    """Store the folder signature next to the cache file (small; rewritten whenever a full
    walk confirms the cache, so that later starts can skip the walk)."""
    cut = len(root.rstrip(os.sep)) + 1
    mtime, ctime = signature.arrays()
    arrays = {
        "build_id": _blob([build_id]), "subjects": _blob(subjects),
        "dirs": _blob([p[cut:] for p in signature.paths]), "mtime_ns": mtime, "ctime_ns": ctime,
        "scan_start_ns": np.array([signature.scan_start_ns], dtype=np.int64),
        "warnings": _blob(signature.warnings),
    }
    try:
        atomic_write(_sidecar(path), lambda f: np.savez(f, **arrays), mode=default_file_mode())
    except OSError as exc:
        logger.debug("packed cache: could not write the folder signature %s (%s)", _sidecar(path), exc)


def _folders_unchanged(path: Path, build_id: str, root: str,
                       subjects: Sequence[str]) -> Tuple[Optional[str], List[str]]:
    """Why the folder signature beside ``path`` cannot vouch for the index (None if it can),
    and the warnings of the walk that recorded it."""
    try:
        with np.load(_sidecar(path), allow_pickle=False) as z:
            side = {k: z[k] for k in z.files}
        if _unblob(side["build_id"]) != [build_id]:
            return "folder signature of another build", []
        if _unblob(side["subjects"]) != list(subjects):
            return "the split's subjects on disk changed", []
        dirs = _unblob(side["dirs"])
        mtime, ctime, start = side["mtime_ns"], side["ctime_ns"], int(side["scan_start_ns"][0])
        warnings = _unblob(side["warnings"])
        if not (len(dirs) == len(mtime) == len(ctime)):
            return "folder signature of inconsistent lengths", []
    except FileNotFoundError:
        return "no folder signature", []
    except (OSError, KeyError, ValueError, IndexError, UnicodeDecodeError) as exc:
        return f"unreadable folder signature ({type(exc).__name__})", []
    if (np.maximum(mtime, ctime) >= start - RACY_WINDOW_NS).any():
        return "folders changed just before the cache was checked", []
    stat = os.stat
    join = os.path.join
    for i, rel in enumerate(dirs):
        try:
            st = stat(join(root, rel))
        except OSError:
            return f"{join(root, rel)} is gone", []
        if st.st_mtime_ns != mtime[i] or st.st_ctime_ns != ctime[i]:
            return f"{join(root, rel)} changed", []
    return None, warnings


# ------------------------------------------------------------------------------------------
# reading


class _CorruptCache(Exception):
    """The file is not a complete packed cache of this format (rebuilt by the caller)."""


def _index_arrays(buf: mmap.mmap, meta: Dict[str, Any], json_off: int) -> Dict[str, np.ndarray]:
    """The index arrays named in ``meta``, as views of the mapping (each checked to lie
    between the data offset and the JSON section)."""
    arrays = {}
    for name, (dtype, shape, offset) in meta["arrays"].items():
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * np.dtype(dtype).itemsize
        if offset < _DATA_OFFSET or offset + nbytes > json_off:
            raise ValueError(f"array {name} lies outside the index section")
        arrays[name] = np.ndarray(tuple(shape), dtype=dtype, buffer=buf, offset=offset)
    return arrays


class PackedCache:
    """A memory-mapped packed cache file: per-sequence read-only arrays and the index.

    Args:
        path: the ``.fpgpack`` file.
    Raises:
        _CorruptCache: the file is not a complete cache of :data:`FORMAT_VERSION` (internal;
            :func:`open_packed_cache` turns it into a rebuild).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.timings: Dict[str, float] = {}  # filled by open_packed_cache (seconds per phase)
        self._open()

    def _open(self) -> None:
        """Map the file and check it completely, so reading a record can never fail later:
        header, index arrays, and every array's place inside the data section."""
        buf, size = self._map()
        json_off, json_len = self._check_header(buf, size)
        try:
            meta = json.loads(bytes(buf[json_off:json_off + json_len]).decode("utf-8"))
            arrays = _index_arrays(buf, meta, json_off)
            self._set_index(meta, arrays)
            self._check_index(arrays, meta, json_off)
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise _CorruptCache(f"unreadable index ({type(exc).__name__}: {exc})") from None
        self._mmap = buf

    def _map(self) -> Tuple[mmap.mmap, int]:
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                self._identity = (st.st_dev, st.st_ino)
                self._disk_mtime_ns = st.st_mtime_ns
                if st.st_size < _DATA_OFFSET:
                    raise _CorruptCache(f"{st.st_size} bytes, shorter than the header")
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), st.st_size
        except OSError as exc:
            raise _CorruptCache(f"cannot map it ({exc})") from None

    @staticmethod
    def _check_header(buf: mmap.mmap, size: int) -> Tuple[int, int]:
        """The index section's offset and length, after checking magic, version and size."""
        magic, version, _reserved, json_off, json_len, file_size = _HEADER.unpack_from(buf, 0)
        if magic != _MAGIC:
            raise _CorruptCache("not a packed cache file (bad magic)")
        if version != FORMAT_VERSION:
            raise _CorruptCache(f"format version {version}, this code reads {FORMAT_VERSION}")
        if file_size != size or json_off + json_len != size or json_off < _DATA_OFFSET:
            raise _CorruptCache(f"{size} bytes on disk, the header says {file_size} (truncated?)")
        return json_off, json_len

    def _set_index(self, meta: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> None:
        self.meta: Dict[str, Any] = meta
        self.build_id: str = meta["build_id"]
        self._dtypes = [np.dtype(d) for d in meta["dtypes"]]
        self._file_offset = arrays["file_offset"]
        self._file_dtype = arrays["file_dtype"]
        self._file_ndim = arrays["file_ndim"]
        self._file_shape = arrays["file_shape"]
        self.file_size = arrays["file_size"]
        self.file_mtime_ns = arrays["file_mtime_ns"]
        self.file_ctime_ns = arrays["file_ctime_ns"]
        self.file_racy = arrays["file_racy"]
        self.file_digest = arrays["file_digest"]
        self._file_crc = arrays["file_crc32"]
        self._stamp_ns = int(meta["stamp_ns"])
        self.record_first_file = arrays["record_first_file"]
        self.lengths: np.ndarray = arrays["record_length"]
        self.relpaths_blob: bytes = arrays["relpaths"].tobytes()

    def _check_index(self, arrays: Dict[str, np.ndarray], meta: Dict[str, Any], json_off: int) -> None:
        """Consistent lengths, numeric dtypes, and every array inside the data section."""
        num_files = len(self._file_offset)
        if (len(self.record_first_file) != len(self.lengths) + 1
                or int(self.record_first_file[-1]) != num_files
                or any(len(arrays[k]) != num_files for k in
                       ("file_dtype", "file_ndim", "file_shape", "file_size", "file_mtime_ns",
                        "file_ctime_ns", "file_racy", "file_digest", "file_crc32"))):
            raise ValueError("index arrays of inconsistent lengths")
        if any(d.kind not in "fiub" for d in self._dtypes):
            raise ValueError("non-numeric dtype in the table")
        self._file_nbytes = np.zeros(num_files, dtype=np.int64)
        if not num_files:
            return
        ndim = self._file_ndim.astype(np.int64)
        width = self._file_shape.shape[1]
        if ndim.min() < 0 or ndim.max() > width or self._file_dtype.min() < 0 \
                or self._file_dtype.max() >= len(self._dtypes) or self._file_shape.min() < 0:
            raise ValueError("shape or dtype entries out of range")
        dims = np.where(np.arange(width)[None, :] < ndim[:, None], self._file_shape, 1)
        itemsize = np.array([d.itemsize for d in self._dtypes], dtype=np.int64)[self._file_dtype]
        self._file_nbytes = dims.prod(axis=1) * itemsize
        end = self._file_offset + self._file_nbytes
        data_end = _DATA_OFFSET + int(meta["data_nbytes"])
        if self._file_offset.min() < _DATA_OFFSET or end.max() > data_end or data_end > json_off:
            raise ValueError("an array lies outside the data section")

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def num_files(self) -> int:
        return len(self._file_offset)

    @property
    def data_nbytes(self) -> int:
        return int(self.meta["data_nbytes"])

    def arrays(self, index: int) -> List[np.ndarray]:
        """The arrays (one per modality) of cached record ``index``: read-only views of the
        mapping, so nothing is copied until a transform makes its own output.

        Each array's bytes are checked against the CRC-32 recorded when the cache was built
        (about 2 us for a 30 x 18 x 3 float32 array, measured here); a mismatch raises a
        :class:`PoseFileError` naming the sequence, and marks the file so that the next start
        checks it and rebuilds it."""
        first, last = int(self.record_first_file[index]), int(self.record_first_file[index + 1])
        out = []
        for j in range(first, last):
            ndim = int(self._file_ndim[j])
            array = np.ndarray(
                tuple(int(s) for s in self._file_shape[j, :ndim]),
                dtype=self._dtypes[int(self._file_dtype[j])],
                buffer=self._mmap,
                offset=int(self._file_offset[j]),
            )
            if zlib.crc32(array) != self._file_crc[j]:
                raise self._damaged_error(j)
            out.append(array)
        return out

    def first_damaged(self) -> Optional[int]:
        """The first array (file index) whose bytes do not match their checksum, None when
        every array matches (reads the whole data section: about 0.3 s per GB here)."""
        crc32 = zlib.crc32
        with memoryview(self._mmap) as view:
            for j, (offset, nbytes) in enumerate(zip(self._file_offset.tolist(), self._file_nbytes.tolist())):
                if crc32(view[offset:offset + nbytes]) != self._file_crc[j]:
                    return j
        return None

    def damage(self) -> Optional[str]:
        """Why the cached data cannot be trusted; None when it can.

        A build sets the file's mtime to the stamp in its index; anything that writes into the
        file later moves it (and :meth:`arrays` moves it on a mismatch). Then every checksum is
        verified: a mismatch is reported (the caller rebuilds), otherwise the stamp is put back
        so that later starts skip the check (a file merely touched or copied)."""
        if self._disk_mtime_ns == self._stamp_ns:
            return None
        bad = self.first_damaged()
        if bad is not None:
            return (f"damaged: the cached bytes of {self.relpaths()[bad]} do not match their checksum "
                    "(the cache file was changed after it was built)")
        if self._is_still_at_path():
            try:
                os.utime(self.path, ns=(self._stamp_ns, self._stamp_ns))
                self._disk_mtime_ns = self._stamp_ns
            except OSError:
                pass
        return None

    def _is_still_at_path(self) -> bool:
        """Whether :attr:`path` still names the file this object mapped (not a rebuild)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def _damaged_error(self, j: int) -> PoseFileError:
        """The error for a checksum mismatch of array ``j`` at access time; the file's mtime is
        moved off its stamp so that the next start verifies it and rebuilds it."""
        marked = False
        if self._is_still_at_path():
            try:
                os.utime(self.path, ns=(self._stamp_ns, 0))
                marked = True
            except OSError:
                pass
        folder = self.path.parent
        fix = (f"it is marked for a rebuild: run again: it is rebuilt from the pickles (or delete {folder})" if marked
               else f"delete {folder} (or point data_cfg.cache_dir at a writable folder) and run again: it is rebuilt "
                    "from the pickles")
        return PoseFileError(
            f"{self.path}: packed cache damaged: the cached bytes of {self.relpaths()[j]} do not match the checksum "
            "recorded when the cache was built (the file was changed, or the disk returned corrupted data); " + fix
        )

    def record_file_shapes(self, rows: np.ndarray, position: int = 0, width: int = 3) -> np.ndarray:
        """``[len(rows), width]``: the first ``width`` axes of modality ``position`` of the
        cached records ``rows``, from the index (no array is read): ``[T, V, C]`` for pose
        arrays (3-D), ``[T, C, H, W]`` for map arrays (4-D, ``width=4``); an axis an array does
        not have is 0, and a record with fewer modalities gets ``-1`` entries."""
        rows = np.asarray(rows, dtype=np.int64)
        first = self.record_first_file[rows].astype(np.int64) + position
        present = first < self.record_first_file[rows + 1]
        out = np.full((len(rows), width), -1, dtype=np.int64)
        stored = min(width, self._file_shape.shape[1])
        files = first[present]
        shapes = np.zeros((len(files), width), dtype=np.int64)
        axes = np.arange(stored)[None, :] < self._file_ndim[files].astype(np.int64)[:, None]
        shapes[:, :stored] = np.where(axes, self._file_shape[files, :stored], 0)
        out[present] = shapes
        return out

    def relpaths(self) -> List[str]:
        """The pickles' paths relative to the dataset root, in index order."""
        return _unblob(np.frombuffer(self.relpaths_blob, dtype=np.uint8))

    def record_keys(self, root: str) -> List[Tuple[str, str, str, Tuple[str, ...]]]:
        """``(subject, type, view, absolute pickle paths)`` of every cached record, as the
        index walk would produce them."""
        rel = self.relpaths()
        join = os.path.join
        full = [join(root, r) for r in rel]
        bounds = self.record_first_file.tolist()
        keys = []
        for r in range(len(bounds) - 1):
            first, last = bounds[r], bounds[r + 1]
            subject, type_, view = rel[first].split(os.sep, 3)[:3]
            keys.append((subject, type_, view, tuple(full[first:last])))
        return keys

    def mismatch(self, root: str, paths: Sequence[str], stats: FileStats) -> Optional[str]:
        """Why this cache does not describe the pickles ``paths`` (with ``stats``) under
        ``root`` now; ``None`` when it does."""
        blob = _relpaths_blob(root, paths)
        if blob != self.relpaths_blob:
            old = set(self.relpaths_blob.decode("utf-8", "surrogateescape").split("\0"))
            new = set(blob.decode("utf-8", "surrogateescape").split("\0"))
            added, removed = sorted(new - old), sorted(old - new)
            parts = []
            if added:
                parts.append(f"{len(added)} pickle(s) added, e.g. {added[0]}")
            if removed:
                parts.append(f"{len(removed)} removed, e.g. {removed[0]}")
            return ", ".join(parts) or "the pickles are listed in a different order"
        changed = ((stats.size != self.file_size) | (stats.mtime_ns != self.file_mtime_ns)
                   | (stats.ctime_ns != self.file_ctime_ns))
        if changed.any():
            where = np.flatnonzero(changed)
            return f"{len(where)} pickle(s) changed (size or time stamps), e.g. {paths[int(where[0])]}"
        for j in np.flatnonzero(self.file_racy):
            try:
                with open(paths[j], "rb") as f:
                    digest = _digest(f.read())
            except OSError as exc:
                return f"cannot read {paths[j]} ({exc})"
            if digest != self.file_digest[j].tobytes():
                return f"{paths[j]} changed (same size and time stamps, different content)"
        return None

    def close(self) -> None:
        """Release the mapping (views handed out keep it alive until they are gone)."""
        self._mmap = None  # type: ignore[assignment]

    # spawn-started workers: send the path, map the file again on arrival
    def __getstate__(self) -> Dict[str, Any]:
        return {"path": str(self.path), "build_id": self.build_id}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.timings = {}
        try:
            self._open()
        except _CorruptCache as exc:
            raise PoseFileError(f"{self.path}: packed cache became unreadable in a worker ({exc})") from None
        if self.build_id != state["build_id"]:
            raise PoseFileError(
                f"{self.path}: the packed cache was rebuilt by another run while this one was starting its "
                "workers; restart the run (or give concurrent runs different data_cfg.cache_dir)"
            )


# ------------------------------------------------------------------------------------------
# building


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _pad(f: BinaryIO, pos: int) -> int:
    aligned = _align(pos)
    if aligned > pos:
        f.write(b"\0" * (aligned - pos))
    return aligned


def build_packed_cache(
    path: PathLike,
    root: str,
    record_paths: Sequence[Sequence[str]],
    stats: FileStats,
    info: Dict[str, Any],
) -> None:
    """Read every pickle of ``record_paths`` (restricted unpickler, the same checks as the pkl
    loader) and write the packed cache file ``path`` atomically.

    Streams: only the index is held in memory, whatever the dataset size. A bad pickle raises
    :class:`~fastposegait.data.io.PoseFileError` naming it, and leaves no file behind.
    """
    flat = [p for paths in record_paths for p in paths]
    num_files = len(flat)
    racy = stats.racy()
    dtype_table: List[str] = []
    dtype_index: Dict[str, int] = {}
    file_offset = np.zeros(num_files, dtype=np.int64)
    file_dtype = np.zeros(num_files, dtype=np.int16)
    file_ndim = np.zeros(num_files, dtype=np.int8)
    shapes: List[Tuple[int, ...]] = []
    digests = np.zeros((num_files, _DIGEST_SIZE), dtype=np.uint8)
    checksums = np.zeros(num_files, dtype=np.uint32)
    stamp_ns = time.time_ns() // _STAMP_STEP_NS * _STAMP_STEP_NS
    lengths = np.zeros(len(record_paths), dtype=np.int64)
    first_file = np.zeros(len(record_paths) + 1, dtype=np.int64)

    def write(f: BinaryIO) -> None:
        f.write(b"\0" * _DATA_OFFSET)
        pos = _DATA_OFFSET
        j = 0
        for r, paths in enumerate(_progress(record_paths, "Packing sequences")):
            first_file[r] = j
            arrays = []
            for p in paths:
                with open(p, "rb") as src:
                    data = src.read()
                if racy[j]:
                    digests[j] = np.frombuffer(_digest(data), dtype=np.uint8)
                arr = load_sequence_bytes(data, p)
                arrays.append(arr)
                key = arr.dtype.str
                if key not in dtype_index:
                    dtype_index[key] = len(dtype_table)
                    dtype_table.append(key)
                pos = _pad(f, pos)
                file_offset[j] = pos
                file_dtype[j] = dtype_index[key]
                file_ndim[j] = arr.ndim
                shapes.append(arr.shape)
                raw = np.ascontiguousarray(arr).tobytes()
                checksums[j] = zlib.crc32(raw)
                f.write(raw)
                pos += len(raw)
                j += 1
            check_same_length(arrays, paths)
            lengths[r] = arrays[0].shape[0]
        first_file[-1] = j
        data_end = pos
        max_ndim = max((len(s) for s in shapes), default=1)
        file_shape = np.zeros((num_files, max_ndim), dtype=np.int64)
        for j, s in enumerate(shapes):
            file_shape[j, :len(s)] = s
        sections = {
            "file_offset": file_offset, "file_dtype": file_dtype, "file_ndim": file_ndim,
            "file_shape": file_shape, "file_size": stats.size, "file_mtime_ns": stats.mtime_ns,
            "file_ctime_ns": stats.ctime_ns, "file_racy": racy.astype(np.bool_), "file_digest": digests,
            "file_crc32": checksums,
            "record_first_file": first_file, "record_length": lengths,
            "relpaths": np.frombuffer(_relpaths_blob(root, flat), dtype=np.uint8),
        }
        directory = {}
        for name, arr in sections.items():
            pos = _pad(f, pos)
            arr = np.ascontiguousarray(arr)
            directory[name] = [arr.dtype.str, list(arr.shape), pos]
            f.write(arr.tobytes())
            pos += arr.nbytes
        meta = dict(info, format=FORMAT_VERSION, build_id=uuid.uuid4().hex, dtypes=dtype_table,
                    arrays=directory, data_nbytes=data_end - _DATA_OFFSET, num_records=len(record_paths),
                    num_files=num_files, scan_start_ns=stats.scan_start_ns, racy_files=int(racy.sum()),
                    stamp_ns=stamp_ns)
        payload = json.dumps(meta).encode("utf-8")
        json_off = pos
        f.write(payload)
        size = json_off + len(payload)
        f.seek(0)
        f.write(_HEADER.pack(_MAGIC, FORMAT_VERSION, 0, json_off, len(payload), size))
        f.flush()
        # the last write: from now on a change of the mtime means the file was written into
        # (PackedCache.damage); where it cannot be set, each start verifies the checksums
        if os.utime in os.supports_fd:
            try:
                os.utime(f.fileno(), ns=(stamp_ns, stamp_ns))
            except OSError:
                pass

    atomic_write(path, write, mode=default_file_mode())


# ------------------------------------------------------------------------------------------
# location, locking, orchestration


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastposegait"


def _root_tag(root: Path) -> str:
    real = os.path.realpath(root)
    digest = hashlib.blake2b(real.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
    return f"{root.name or 'root'}-{digest}"


def candidate_dirs(root: PathLike, cache_dir: Optional[PathLike] = None) -> List[Path]:
    """Folders that may hold the caches of ``root``, in order of preference."""
    root = Path(root)
    if cache_dir is not None:
        return [Path(cache_dir) / _root_tag(root)]
    return [root / CACHE_DIR_NAME, _user_cache_dir() / _root_tag(root)]


def _is_writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (created if missing). Tried for real: the
    permission bits say nothing on a read-only mount, nor for root."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a unique name: threads of one process (same pid) probe the same folder at once
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path`` (True), or nothing where the platform or
    file system has no flock (False: concurrent builders then each write a complete file and
    the last rename wins, which is still correct)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield False
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, default_file_mode())
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is building the packed cache %s; waiting for it", lock_path.with_suffix(""))
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _remove_leftover_temps(path: Path) -> None:
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            leftover.unlink()
            logger.info("removed the temp file of an interrupted packed-cache build: %s", leftover)
        except OSError:
            pass


def _try_open(
    path: Path, root: str, paths: Sequence[str], stats: FileStats, quiet: bool = False
) -> Tuple[Optional[PackedCache], str]:
    """The cache at ``path`` if it is valid for the current files, else ``(None, why not)``."""
    if not path.is_file():
        return None, "not built yet"
    try:
        cache = PackedCache(path)
    except _CorruptCache as exc:
        if not quiet:
            logger.warning("packed cache %s is unreadable (%s); it will be rebuilt", path, exc)
        return None, f"unreadable ({exc})"
    why = cache.mismatch(root, paths, stats)
    if why is not None:
        cache.close()
        return None, f"out of date: {why}"
    why = cache.damage()
    if why is not None:
        cache.close()
        return None, why
    return cache, ""


def cache_file_name(split: str, split_subjects: Sequence[str], data_in_use: Optional[Sequence[bool]]) -> str:
    """``<split>-<key>.fpgpack``: one file per split, subject list and modality selection."""
    key = json.dumps({"subjects": list(split_subjects),
                      "data_in_use": None if data_in_use is None else [bool(b) for b in data_in_use],
                      "format": FORMAT_VERSION})
    return f"{split}-{hashlib.blake2b(key.encode('utf-8'), digest_size=8).hexdigest()}{SUFFIX}"


def open_packed_cache(
    root: PathLike,
    split: str,
    split_subjects: Sequence[str],
    data_in_use: Optional[Sequence[bool]],
    record_paths: Sequence[Sequence[str]],
    cache_dir: Optional[PathLike] = None,
    subjects_on_disk: Optional[Sequence[str]] = None,
    signature: Optional[DirSignature] = None,
) -> Optional[PackedCache]:
    """The packed cache of the records ``record_paths`` (the current index from a full walk,
    in order), reused when valid, (re)built otherwise. ``None`` when no candidate folder is
    writable and none holds a valid cache (the caller falls back to in-memory loading).

    ``split_subjects`` is the partition's list (it names the file); ``subjects_on_disk`` and
    the walk's folder ``signature``, when given, are stored beside the cache so that the next
    start can use :func:`reopen_packed_cache` instead of walking.

    Raises:
        CacheConfigError: ``cache_dir`` is set but cannot be written and holds no valid cache.
        PoseFileError: a pickle is unreadable or malformed (while building).
    """
    t0 = time.perf_counter()
    root_str = str(root)
    flat = [p for paths in record_paths for p in paths]
    stats = stat_files(flat)
    t_stat = time.perf_counter()
    name = cache_file_name(split, split_subjects, data_in_use)
    folders = candidate_dirs(root, cache_dir)
    reasons = []
    cache: Optional[PackedCache] = None
    built = 0.0
    for folder in folders:
        cache, why = _try_open(folder / name, root_str, flat, stats)
        if cache is not None:
            logger.info("packed cache %s: %d sequences, up to date", cache.path, len(cache))
            break
        reasons.append(why)
    t_valid = time.perf_counter()
    if cache is None:
        for folder in folders:
            if _is_writable(folder):
                break
            logger.info("packed cache: %s is not writable", folder)
        else:
            if cache_dir is not None:
                raise CacheConfigError(
                    f"data_cfg.cache_dir: cannot create files in {folders[0]}; point cache_dir at a writable "
                    "folder or remove it (the cache then goes to <dataset_root>/.fastposegait_cache or "
                    "~/.cache/fastposegait)"
                )
            logger.warning(
                "packed cache: neither %s nor %s is writable; loading the split into memory instead "
                "(set data_cfg.cache_dir to a writable folder to get the packed cache)", *folders)
            return None
        try:
            cache, built = _build_locked(folder / name, reasons[folders.index(folder)], root_str, split,
                                         record_paths, flat, stats)
        except OSError as exc:
            if exc.filename is not None and str(exc.filename) in set(flat):
                raise  # a pickle that cannot be read: not a problem of the cache folder
            _remove_leftover_temps(folder / name)
            logger.warning("packed cache: cannot write it in %s (%s); loading the split into memory instead "
                           "(free space there or set data_cfg.cache_dir to another folder)",
                           folder, exc.strerror or exc)
            return None
    if signature is not None and subjects_on_disk is not None:
        _write_sidecar(cache.path, cache.build_id, root_str, subjects_on_disk, signature)
    cache.timings = {"fast_path": 0.0, "folders_s": 0.0, "stat_s": t_stat - t0, "validate_s": t_valid - t_stat,
                     "records_s": 0.0, "build_s": built}
    return cache


def _build_locked(
    path: Path, why: str, root: str, split: str, record_paths: Sequence[Sequence[str]],
    flat: Sequence[str], stats: FileStats,
) -> Tuple[PackedCache, float]:
    """Build ``path`` under its lock, unless another process built it while we waited."""
    with _exclusive(path.with_name(path.name + ".lock")) as locked:
        if locked:
            cache, why = _try_open(path, root, flat, stat_files(flat), quiet=True)
            if cache is not None:
                return cache, 0.0
            _remove_leftover_temps(path)
        logger.info("packed cache %s: %s; building it from %d sequences (once: later starts reuse it)",
                    path, why, len(record_paths))
        start = time.perf_counter()
        build_packed_cache(path, root, record_paths, stats, {
            "root": os.path.realpath(root), "split": split, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        built = time.perf_counter() - start
        try:
            cache = PackedCache(path)
        except _CorruptCache as exc:  # pragma: no cover - only if the disk lies
            raise PoseFileError(f"{path}: the packed cache just written cannot be read back ({exc}); "
                                "check the disk or set data_cfg.cache: memory") from None
        logger.info("packed cache %s written: %.1f MB in %.1f s", path, cache.data_nbytes / 2**20, built)
        _remove_other_versions(path.parent)
        return cache, built


def _remove_other_versions(folder: Path) -> None:
    """Delete the caches of another format version in ``folder`` (and their folder
    signatures): their names differ from the current ones, so nothing would ever read or
    replace them, and each holds a copy of the dataset."""
    for other in folder.glob(f"*{SUFFIX}"):
        try:
            with open(other, "rb") as f:
                magic, version = _HEADER.unpack_from(f.read(_HEADER.size), 0)[:2]
        except (OSError, struct.error):
            continue
        if magic == _MAGIC and version != FORMAT_VERSION:
            for leftover in (other, _sidecar(other)):
                try:
                    leftover.unlink()
                except OSError:
                    pass
            logger.info("removed the packed cache %s of format version %d (this code writes %d)", other, version,
                        FORMAT_VERSION)


def reopen_packed_cache(
    root: PathLike,
    split: str,
    split_subjects: Sequence[str],
    subjects_on_disk: Sequence[str],
    data_in_use: Optional[Sequence[bool]],
    cache_dir: Optional[PathLike] = None,
) -> Optional[Tuple[PackedCache, List[Tuple[str, str, str, Tuple[str, ...]]], List[str]]]:
    """A cached start without walking the tree: when no folder of the last walk changed and
    every pickle still has its recorded size and time stamps, the index is the cache's.

    Returns the cache, the records ``(subject, type, view, paths)`` and the warnings of the
    walk that recorded the folders (the caller repeats them), or ``None`` when
    anything may have changed (the caller then walks the tree and calls
    :func:`open_packed_cache`, which says what changed and rebuilds if needed).
    """
    t0 = time.perf_counter()
    root_str = str(root)
    name = cache_file_name(split, split_subjects, data_in_use)
    for folder in candidate_dirs(root, cache_dir):
        path = folder / name
        if not path.is_file():
            continue
        try:
            cache = PackedCache(path)
        except _CorruptCache:
            return None  # open_packed_cache reports and rebuilds it
        why, warnings = _folders_unchanged(path, cache.build_id, root_str, subjects_on_disk)
        if why is not None:
            logger.debug("packed cache %s: walking the folders (%s)", path, why)
            return None
        t_dirs = time.perf_counter()
        keys = cache.record_keys(root_str)
        t_keys = time.perf_counter()
        paths = [p for key in keys for p in key[3]]
        try:
            why = cache.mismatch(root_str, paths, stat_files(paths)) or cache.damage()
        except PoseFileError as exc:
            why = str(exc)
        if why is not None:
            logger.debug("packed cache %s: %s", path, why)
            return None
        t_stat = time.perf_counter()
        cache.timings = {"fast_path": 1.0, "folders_s": t_dirs - t0, "stat_s": t_stat - t_keys, "validate_s": 0.0,
                         "records_s": t_keys - t_dirs, "build_s": 0.0}
        logger.info("packed cache %s: %d sequences, folders and files unchanged", path, len(cache))
        return cache, keys, warnings
    return None


def _progress(items: Sequence[Any], desc: str) -> Any:
    if len(items) < 2000:
        return items
    from ..distributed import is_main_process  # imports torch: only for splits worth a progress bar

    if not is_main_process():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="seq", leave=False)
