"""The safe file format of galleries and embedding files: one ``.npz``, no pickle anywhere.

A file is an uncompressed NumPy archive (what ``np.savez`` writes) of exactly two members:

* ``embeddings.npy``: float32 ``[N, C, P]``;
* ``document.npy``: uint8 ``[L]``, the UTF-8 bytes of one JSON object holding ``format`` (what
  the file is: ``fastposegait-gallery`` or ``fastposegait-embeddings``), ``version`` (an int,
  :data:`FORMAT_VERSION`) and whatever the kind of file stores per entry (identities, names,
  metadata) and about the model that made the embeddings (``info``).

Reading never runs code from the file: the archive's member list, compression and each
member's ``.npy`` header (dtype, shape, size) are checked with :mod:`zipfile` and
``numpy.lib.format`` before any array is read, then the arrays come from
``np.load(allow_pickle=False)``. Members must be stored uncompressed, so an array can never
inflate beyond the file's own size. Every problem is one :class:`~fastposegait.errors.GalleryError`
line naming the file. Writes are atomic (temp file, fsync, rename).
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ..data.io import atomic_write
from ..errors import GalleryError, MissingFileError

#: version of the document layout written by this code; a file of a later version is refused
FORMAT_VERSION = 1
EMBEDDINGS = "embeddings"
DOCUMENT = "document"
_MEMBERS = {f"{EMBEDDINGS}.npy", f"{DOCUMENT}.npy"}
#: largest JSON document read (bytes): a few hundred bytes per entry for 1M entries
MAX_DOCUMENT_BYTES = 1 << 31


def write_embedding_file(path: str | Path, embeddings: np.ndarray, document: Mapping[str, Any]) -> None:
    """Atomically write ``embeddings`` (``[N, C, P]``, stored as float32) and ``document`` (a
    JSON-able mapping; ``format`` and ``version`` must be in it) to ``path``."""
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise GalleryError(f"{path}: the gallery's identities, metadata or info are not JSON-able ({exc}); "
                           "keep metadata to strings, numbers, lists and dicts") from None
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    try:
        atomic_write(path, lambda f: np.savez(f, **{EMBEDDINGS: embeddings, DOCUMENT: blob}))
    except OSError as exc:
        raise GalleryError(f"{path}: cannot write ({exc.strerror or exc}); choose a writable path") from None


def read_embedding_file(path: str | Path, kind: str) -> Tuple[np.ndarray, Dict[str, Any]]:
    """``(embeddings float32 [N, C, P], document)`` of the file at ``path``, whose ``format``
    must be ``kind``; the entries' lists in the document are checked by the caller."""
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise MissingFileError(f"{path} {what}; give a .npz file written by fastposegait (embed/enroll)")
    headers = _check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            embeddings = archive[EMBEDDINGS]
            blob = archive[DOCUMENT]
    except Exception as exc:  # a hostile archive can fail anywhere inside zipfile/numpy
        raise GalleryError(f"{path}: unreadable archive ({type(exc).__name__}: {str(exc)[:200]}); the file is "
                           "truncated or corrupt, write it again") from None
    for name, array in ((EMBEDDINGS, embeddings), (DOCUMENT, blob)):
        if array.shape != headers[name][0]:  # cannot happen unless the file changed under us
            raise GalleryError(f"{path}: {name} changed while it was read; read it again")
    document = _parse_document(path, blob, kind)
    embeddings = embeddings.astype(np.float32, copy=False)  # native byte order
    if not np.isfinite(embeddings).all():
        row = int(np.argwhere(~np.isfinite(embeddings))[0][0])
        raise GalleryError(f"{path}: embedding {row} holds NaN or infinite values; the file is corrupt, "
                           "write it again from the sequences")
    return embeddings, document


def _check_archive(path: Path) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """Shape and dtype of each member, from the archive's directory and the ``.npy`` headers
    alone; anything but the two expected, uncompressed, correctly sized members is refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = sorted(i.filename for i in infos)
            if len(infos) != len(_MEMBERS) or set(names) != _MEMBERS:
                raise GalleryError(f"{path}: holds {names[:5]}, expected exactly {sorted(_MEMBERS)}; not a "
                                   "fastposegait gallery or embeddings file")
            headers = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise GalleryError(f"{path}: member {info.filename} is compressed; the format stores arrays "
                                       "uncompressed (np.savez, not np.savez_compressed)")
                with archive.open(info) as member:
                    headers[info.filename[:-4]] = _npy_header(path, info, member)
    except GalleryError:
        raise
    except Exception as exc:  # BadZipFile, truncated, a pickle or any other file renamed .npz
        raise GalleryError(f"{path}: not a NumPy .npz archive ({type(exc).__name__}: {str(exc)[:200]}); "
                           "give a file written by fastposegait embed/enroll (or Gallery.save)") from None
    _check_member(path, EMBEDDINGS, *headers[EMBEDDINGS], ndim=3, kind="f", itemsize=4)
    _check_member(path, DOCUMENT, *headers[DOCUMENT], ndim=1, kind="u", itemsize=1)
    return headers


def _npy_header(path: Path, info: zipfile.ZipInfo, member: io.BufferedIOBase) -> Tuple[Tuple[int, ...], np.dtype]:
    """(shape, dtype) from one member's ``.npy`` header; its data must fill the member exactly."""
    fmt = np.lib.format
    version = fmt.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(member)
    else:
        raise GalleryError(f"{path}: {info.filename} has .npy format version {version}, expected 1.0 or 2.0")
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise GalleryError(f"{path}: {info.filename} holds dtype {dtype} (objects or records); the format holds "
                           "plain float32 and uint8 arrays only")
    data_bytes = math.prod(shape) * dtype.itemsize
    if info.file_size < data_bytes or info.file_size - data_bytes > 1 << 16:
        raise GalleryError(f"{path}: {info.filename} declares {list(shape)} {dtype} ({data_bytes} bytes) but the "
                           f"member holds {info.file_size} bytes; the file is truncated or corrupt")
    return tuple(shape), dtype


def _check_member(path: Path, name: str, shape: Tuple[int, ...], dtype: np.dtype, ndim: int, kind: str,
                  itemsize: int) -> None:
    if dtype.kind != kind or dtype.itemsize != itemsize or len(shape) != ndim:
        want = "float32 [N, C, P]" if name == EMBEDDINGS else "uint8 [bytes] (UTF-8 JSON)"
        raise GalleryError(f"{path}: {name} is {dtype} of shape {list(shape)}, expected {want}")
    if name == EMBEDDINGS and (shape[1] < 1 or shape[2] < 1):
        raise GalleryError(f"{path}: embeddings of shape {list(shape)}; C and P must be at least 1")
    if name == DOCUMENT and shape[0] > MAX_DOCUMENT_BYTES:
        raise GalleryError(f"{path}: a {shape[0]:,}-byte document; more than {MAX_DOCUMENT_BYTES:,} is no gallery")


def _parse_document(path: Path, blob: np.ndarray, kind: str) -> Dict[str, Any]:
    try:
        document = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise GalleryError(f"{path}: its document is not UTF-8 JSON ({type(exc).__name__}); the file is corrupt, "
                           "write it again") from None
    if not isinstance(document, dict):
        raise GalleryError(f"{path}: its document is a JSON {type(document).__name__}, expected an object")
    found = document.get("format")
    if found != kind:
        hint = {"fastposegait-gallery": " (a gallery: use it with --gallery)",
                "fastposegait-embeddings": " (an embeddings file: enroll it with --from-embeddings)"}.get(found, "")
        raise GalleryError(f"{path}: format {str(found)[:60]!r}{hint}, expected {kind!r}")
    version = document.get("version")
    if type(version) is not int or version < 1:
        raise GalleryError(f"{path}: version {str(version)[:40]!r} is not a positive integer; the file is corrupt")
    if version > FORMAT_VERSION:
        raise GalleryError(f"{path}: format version {version} was written by a newer fastposegait (this one reads "
                           f"up to {FORMAT_VERSION}); upgrade fastposegait")
    return document


def string_list(path: str | Path, document: Mapping[str, Any], key: str, length: int,
                optional: bool = False) -> list:
    """``document[key]``: a list of ``length`` strings (None entries allowed when ``optional``)."""
    value = document.get(key)
    if value is None and optional:
        return [None] * length
    ok = isinstance(value, list) and len(value) == length and all(
        isinstance(v, str) or (optional and v is None) for v in value)
    if not ok:
        size = len(value) if isinstance(value, list) else type(value).__name__
        raise GalleryError(f"{path}: {key} must be a list of {length} strings (one per embedding), got {size}")
    return value


#: the ``format`` of an embeddings file (``fastposegait embed``)
EMBEDDINGS_FORMAT = "fastposegait-embeddings"
#: what an embeddings file records per sequence (None where unknown)
ENTRY_KEYS = ("name", "subject", "type", "view", "source", "frames")


def save_embeddings(path: str | Path, embeddings: np.ndarray, entries: list, info: Mapping[str, Any]) -> None:
    """Write an embeddings file: ``embeddings [N, C, P]``, one dict per sequence (``name`` and
    optionally ``subject``, ``type``, ``view``, ``source``, ``frames``) and the model's info."""
    if len(entries) != len(embeddings):
        raise GalleryError(f"{path}: {len(entries)} entries for {len(embeddings)} embeddings")
    rows = [{k: e.get(k) for k in ENTRY_KEYS} for e in entries]
    write_embedding_file(path, embeddings, {"format": EMBEDDINGS_FORMAT, "version": FORMAT_VERSION,
                                            "info": dict(info), "entries": rows})


def load_embeddings(path: str | Path) -> Tuple[np.ndarray, list, Dict[str, Any]]:
    """``(embeddings, entries, info)`` of an embeddings file, checked (see :func:`save_embeddings`)."""
    embeddings, document = read_embedding_file(path, EMBEDDINGS_FORMAT)
    entries, info = document.get("entries"), document.get("info")
    if not isinstance(info, dict):
        raise GalleryError(f"{path}: info must be an object (the model that made the embeddings)")
    if not isinstance(entries, list) or len(entries) != len(embeddings) or not all(isinstance(e, dict) for e in entries):
        raise GalleryError(f"{path}: entries must be a list of {len(embeddings)} objects (one per embedding)")
    for i, e in enumerate(entries):
        for key in ("name", "subject", "type", "view", "source"):
            if e.get(key) is not None and not isinstance(e[key], str):
                raise GalleryError(f"{path}: entries[{i}].{key} must be a string or null")
        if not isinstance(e.get("name"), str):
            raise GalleryError(f"{path}: entries[{i}] has no name")
    return embeddings, [{k: e.get(k) for k in ENTRY_KEYS} for e in entries], info
