"""A gallery of enrolled identities: embeddings, exact top-k search, open-set decisions.

A :class:`Gallery` holds entries (one embedding ``[C, P]`` each, float32) with an identity
string and an optional JSON-able metadata dict per entry, plus the ``info`` of the model that
made the embeddings (:attr:`fastposegait.recognition.recognizer.GaitRecognizer.info`: model,
checkpoint, metric, embedding shape), so that another model's embeddings are never mixed in.

**Search.** Distances are the evaluators' (:mod:`fastposegait.evaluation.distance`: the mean
over parts of the per-part Euclidean distance, or 1 − the mean per-part cosine similarity,
in float32). An identity is ranked by its **nearest entry**; ties between equal distances go to
the lower entry index (the order of a stable sort of all entries by distance, keeping each
identity's first appearance). The open-set answer is the best identity when its distance is
below the threshold, else :data:`UNKNOWN` (a distance equal to the threshold is rejected).

How it scales: the gallery is laid out once per metric, grouped by identity, in the per-part
transposed form the distance kernel wants (about as many bytes again as the embeddings).
Probes are processed in chunks and the gallery in blocks of at most :data:`PAIRS_PER_BLOCK`
probe-entry pairs; each block's distances are packed with the entry index into sortable int64
keys, reduced to the nearest entry of every identity (``np.minimum.reduceat`` over the
identity groups) and folded into a ``[chunk, identities]`` buffer, from which the top k are
taken by ``argpartition``. Extra memory is therefore bounded by the block size (about
``16 · PAIRS_PER_BLOCK`` bytes) plus the layout, whatever the number of entries.

**Storage.** :meth:`Gallery.save` / :meth:`Gallery.load` use the safe ``.npz`` format of
:mod:`fastposegait.recognition.embedding_file` (no pickle).

Example::

    gallery = Gallery(info=rec.info)
    gallery.enroll(rec.embed(walks), ["alice", "alice", "bob"])
    gallery.save("gallery.npz")
    result = Gallery.load("gallery.npz").search(rec.embed([probe]), k=3, threshold=0.4)[0]
    result.decision          # "alice", "bob" or "unknown"
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import GalleryError
from ..evaluation.distance import METRICS, distance_block, prepare_features, PreparedFeatures
from .embedding_file import FORMAT_VERSION, read_embedding_file, string_list, write_embedding_file

#: the ``format`` of a gallery file
GALLERY_FORMAT = "fastposegait-gallery"
#: the open-set answer for a probe whose best identity is not close enough
UNKNOWN = "unknown"
#: probe-entry pairs per distance block (the work buffers hold about 16 bytes per pair)
PAIRS_PER_BLOCK = 1 << 22
#: most probes per chunk (small galleries: one chunk of this many probes against all entries)
MAX_PROBES_PER_CHUNK = 1024
#: fewest probes per chunk for a large gallery (searched in blocks of entries)
MIN_PROBES_PER_CHUNK = 64
_NO_KEY = np.iinfo(np.int64).max

#: model facts compared before embeddings of two sources are mixed (when both hold a weights
#: fingerprint, it replaces the checkpoint name and iteration)
_SAME_MODEL_KEYS = ("model", "metric", "embedding_shape")
_SAME_WEIGHTS_KEYS = ("dataset_name", "iteration", "checkpoint_name")


@dataclass(frozen=True)
class Candidate:
    """One identity in a probe's ranking.

    Attributes:
        identity: the enrolled identity.
        distance: the distance of its nearest entry to the probe.
        entry: the index of that entry in the gallery.
        metadata: that entry's metadata (empty dict when none was given).
    """

    identity: str
    distance: float
    entry: int
    metadata: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    """The answer for one probe: up to ``k`` identities, nearest first, and the decision."""

    candidates: List[Candidate]
    decision: str
    threshold: Optional[float] = None

    @property
    def best(self) -> Candidate:
        """The nearest identity (whatever the threshold says)."""
        return self.candidates[0]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-able dict."""
        return {"decision": self.decision, "threshold": _json_float(self.threshold),
                "candidates": [asdict(c) for c in self.candidates]}


@dataclass
class ThresholdChoice:
    """The threshold chosen for a target false-accept rate on a labelled probe set.

    A probe is accepted iff its distance is below ``threshold``. Its impostor score is its
    smallest distance to an entry of another identity (probes whose identity is not enrolled
    are impostor attempts only); its genuine score, when its identity is enrolled, is the
    distance of its own identity's nearest entry.

    Attributes:
        threshold: the largest threshold whose false-accept rate is at most the target
            (``inf`` when the target allows every impostor).
        target_far: the target asked for.
        far: the false-accept rate measured at ``threshold`` (below the target when impostor
            scores tie at the threshold: ties are all rejected).
        true_accept_rate: genuine probes whose genuine score is below the threshold.
        rank1_rate: genuine probes whose nearest identity is their own *and* is accepted (the
            open-set identification rate at this threshold).
        num_impostor_attempts, num_false_accepts, num_genuine, num_true_accepts, num_rank1: the
            counts behind the rates.
    """

    threshold: float
    target_far: float
    far: float
    true_accept_rate: float
    rank1_rate: float
    num_impostor_attempts: int
    num_false_accepts: int
    num_genuine: int
    num_true_accepts: int
    num_rank1: int

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-able dict (an infinite threshold is ``null``)."""
        out = asdict(self)
        out["threshold"] = _json_float(self.threshold)
        return out


@dataclass
class _Layout:
    """The gallery laid out for search: entries grouped by identity (stable), per part and
    transposed (``gallery_t [P, C, N]``, unit-normalised for ``cos``), with the squared norms
    for ``euc``; ``entries[j]`` is the gallery index at position ``j``; identity ``g`` holds
    positions ``starts[g]:starts[g + 1]``."""

    gallery_t: torch.Tensor
    squared: Optional[torch.Tensor]
    entries: np.ndarray
    starts: np.ndarray


class Gallery:
    """Enrolled embeddings with identities; exact top-k search with the model's metric.

    Args:
        info: what made the embeddings (a recogniser's ``info``); its ``metric`` and
            ``embedding_shape`` are used when present.
        metric: ``euc`` or ``cos``; needed when ``info`` has no metric.
    """

    def __init__(self, info: Optional[Mapping[str, Any]] = None, metric: Optional[str] = None) -> None:
        self.info: Dict[str, Any] = dict(info or {})
        _check_json(self.info, "info")
        given = self.info.get("metric")
        if metric is not None and given is not None and metric != given:
            raise GalleryError(f"metric {metric!r} differs from the info's metric {given!r}; give one of them")
        metric = metric if metric is not None else given
        if metric not in METRICS:
            raise GalleryError(f"gallery metric {metric!r}: expected one of {', '.join(METRICS)} "
                               "(pass metric=, or the info of a recogniser)")
        self.metric: str = metric
        self.info["metric"] = metric
        shape = self.info.get("embedding_shape")
        self._shape: Optional[Tuple[int, int]] = _shape_of(shape) if shape is not None else None
        self._chunks: List[np.ndarray] = []
        self._identities: List[str] = []
        self._metadata: List[Dict[str, Any]] = []
        self._codes: List[int] = []
        self._code_of: Dict[str, int] = {}
        self._names: List[str] = []
        self._layout: Optional[_Layout] = None

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._identities)

    def __repr__(self) -> str:
        return (f"Gallery({len(self)} entries, {len(self._names)} identities, metric={self.metric}, "
                f"embedding_shape={list(self._shape) if self._shape else None})")

    @property
    def embedding_shape(self) -> Optional[Tuple[int, int]]:
        """``(C, P)`` of every entry (None while empty and not given by the info)."""
        return self._shape

    @property
    def embeddings(self) -> np.ndarray:
        """All entries' embeddings, float32 ``[N, C, P]`` in enrolment order."""
        if len(self._chunks) != 1:
            c, p = self._shape or (0, 0)
            self._chunks = [np.concatenate(self._chunks) if self._chunks else np.zeros((0, c, p), np.float32)]
        return self._chunks[0]

    @property
    def identities(self) -> List[str]:
        """The identity of every entry."""
        return list(self._identities)

    @property
    def metadata(self) -> List[Dict[str, Any]]:
        """The metadata of every entry."""
        return [dict(m) for m in self._metadata]

    @property
    def identity_names(self) -> List[str]:
        """The distinct identities, in the order they were first enrolled."""
        return list(self._names)

    # ------------------------------------------------------------------ enrolment
    def enroll(self, embeddings: Any, identities: Union[str, Sequence[str]],
               metadata: Union[None, Mapping[str, Any], Sequence[Optional[Mapping[str, Any]]]] = None) -> range:
        """Add entries; returns their indices.

        Args:
            embeddings: ``[n, C, P]`` (or one ``[C, P]``), finite; ``C, P`` must be the gallery's.
            identities: one identity per entry, or one string for all of them.
            metadata: one JSON-able dict per entry (or one dict for all, or None).
        """
        array = _as_embeddings(embeddings, "embeddings")
        n = array.shape[0]
        names = [identities] * n if isinstance(identities, str) else list(identities)
        if len(names) != n:
            raise GalleryError(f"identities: {len(names)} given for {n} embeddings; give one per embedding")
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise GalleryError(f"identities[{i}] is {name!r}; identities are non-empty strings")
            if name == UNKNOWN:
                raise GalleryError(f"identities[{i}] is {UNKNOWN!r}, the open-set answer; choose another name")
        if metadata is None or isinstance(metadata, Mapping):
            metas = [dict(metadata or {}) for _ in range(n)]
        else:
            metas = [dict(m or {}) for m in metadata]
            if len(metas) != n:
                raise GalleryError(f"metadata: {len(metas)} dicts for {n} embeddings; give one per embedding")
        _check_json(metas, "metadata")
        self._check_shape(array)
        start = len(self)
        if n:
            self._chunks.append(array)
            for name in names:
                code = self._code_of.get(name)
                if code is None:
                    code = self._code_of[name] = len(self._names)
                    self._names.append(name)
                self._codes.append(code)
            self._identities.extend(names)
            self._metadata.extend(metas)
            self._layout = None
        return range(start, start + n)

    def _check_shape(self, array: np.ndarray) -> None:
        shape = (int(array.shape[1]), int(array.shape[2]))
        if self._shape is None:
            self._shape = shape
            self.info["embedding_shape"] = list(shape)
        elif shape != self._shape:
            raise GalleryError(f"embeddings of shape [C, P] = {list(shape)}, but the gallery holds {list(self._shape)} "
                               "(another model's embeddings?); enroll embeddings of the gallery's model")

    def check_compatible(self, info: Mapping[str, Any], source: str = "the model") -> None:
        """Refuse to mix embeddings: raise :class:`GalleryError` naming the facts (model,
        metric, embedding shape, weights) on which ``info`` differs from the gallery's."""
        differ = info_differences(self.info, info)
        if differ:
            text = "; ".join(f"{k}: gallery {_short(a)!r} vs {_short(b)!r}" for k, a, b in differ)
            raise GalleryError(f"{source} is not the model that made this gallery ({text}); enroll into a new "
                               "gallery, or use the gallery's model")

    # ------------------------------------------------------------------ storage
    def save(self, path: Union[str, Path]) -> None:
        """Write the gallery to ``path`` (safe ``.npz``, atomic)."""
        document = {"format": GALLERY_FORMAT, "version": FORMAT_VERSION, "info": self.info,
                    "identities": self._identities, "metadata": self._metadata}
        write_embedding_file(path, self.embeddings, document)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Gallery":
        """Read a gallery written by :meth:`save`; anything malformed is one
        :class:`GalleryError` naming the file."""
        embeddings, document = read_embedding_file(path, GALLERY_FORMAT)
        n = embeddings.shape[0]
        info = document.get("info")
        if not isinstance(info, dict):
            raise GalleryError(f"{path}: info must be an object (the model that made the gallery)")
        identities = string_list(path, document, "identities", n)
        metadata = document.get("metadata")
        if not isinstance(metadata, list) or len(metadata) != n or not all(isinstance(m, dict) for m in metadata):
            raise GalleryError(f"{path}: metadata must be a list of {n} objects (one per embedding)")
        try:
            gallery = cls(info=info)
            gallery.enroll(embeddings, identities, metadata)
        except GalleryError as exc:
            raise GalleryError(f"{path}: {exc}") from None
        return gallery

    # ------------------------------------------------------------------ search
    def search(self, probes: Any, k: int = 5, threshold: Optional[float] = None) -> List[SearchResult]:
        """For each probe ``[M, C, P]`` (or one ``[C, P]``): the ``k`` nearest identities (fewer
        when fewer are enrolled) and the decision (``UNKNOWN`` when the best distance is
        ``>= threshold``; without a threshold, always the best identity)."""
        codes, distances, entries = self.nearest_identities(probes, k)
        if threshold is not None and not (isinstance(threshold, (int, float)) and not math.isnan(threshold)):
            raise GalleryError(f"threshold {threshold!r} is not a number")
        results = []
        for row_codes, row_dist, row_entries in zip(codes.tolist(), distances.tolist(), entries.tolist()):
            candidates = [Candidate(self._names[c], d, e, dict(self._metadata[e]))
                          for c, d, e in zip(row_codes, row_dist, row_entries)]
            accept = threshold is None or candidates[0].distance < threshold
            results.append(SearchResult(candidates, candidates[0].identity if accept else UNKNOWN,
                                        None if threshold is None else float(threshold)))
        return results

    def nearest_identities(self, probes: Any, k: int = 5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The vectorised core of :meth:`search`: ``(identity codes, distances, entries)``,
        each ``[M, min(k, identities)]``, nearest first; codes index :attr:`identity_names`."""
        x = self._probe_array(probes)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise GalleryError(f"k = {k!r}: ask for at least 1 identity")
        k = min(int(k), len(self._names))
        out_codes, out_keys = [], []
        for keys in self._identity_keys(x):
            if k < keys.shape[1]:
                top = np.argpartition(keys, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(keys.shape[1]), keys.shape)
            top_keys = np.take_along_axis(keys, top, axis=1)
            order = np.argsort(top_keys, axis=1)  # keys are all different: the order is unique
            out_codes.append(np.take_along_axis(top, order, axis=1))
            out_keys.append(np.take_along_axis(top_keys, order, axis=1))
        keys = np.concatenate(out_keys) if out_keys else np.zeros((0, k), np.int64)
        codes = np.concatenate(out_codes) if out_codes else np.zeros((0, k), np.int64)
        return codes, _unpack_distances(keys), keys & 0xFFFFFFFF

    def identity_distances(self, probes: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``(distances [M, I], entries [M, I])``: every probe's distance to the nearest entry of
        every identity (columns in :attr:`identity_names` order) and that entry's index. Memory
        is ``M x I``: for a probe set against a large gallery use :meth:`nearest_identities`."""
        keys = self._all_identity_keys(probes)
        return _unpack_distances(keys), keys & 0xFFFFFFFF

    def _all_identity_keys(self, probes: Any) -> np.ndarray:
        x = self._probe_array(probes)
        return np.concatenate(list(self._identity_keys(x))) if len(x) else np.zeros((0, len(self._names)), np.int64)

    def _probe_array(self, probes: Any) -> torch.Tensor:
        if not len(self):
            raise GalleryError("the gallery is empty; enroll identities before searching it")
        array = _as_embeddings(probes, "probe embeddings")
        if (array.shape[1], array.shape[2]) != self._shape:
            raise GalleryError(f"probe embeddings of shape [C, P] = {list(array.shape[1:])}, the gallery holds "
                               f"{list(self._shape or ())}; embed the probes with the gallery's model")
        return torch.from_numpy(array)

    def _identity_keys(self, probes: torch.Tensor, pairs_per_block: Optional[int] = None):
        """Yield, per probe chunk, ``[c, I]`` int64 keys packing (distance, entry) of each
        identity's nearest entry (ties: the lower entry)."""
        layout = self._search_layout()
        budget = pairs_per_block or PAIRS_PER_BLOCK
        n, num_ids = len(self), len(self._names)
        # Probes per chunk: the whole gallery in one block when it is small; for a large gallery
        # at least MIN_PROBES_PER_CHUNK (the layout is read once per chunk, so a chunk of one
        # probe would be memory-bound), as long as the [chunk, identities] keys stay within
        # 4 blocks' worth.
        least = min(MIN_PROBES_PER_CHUNK, max(1, 4 * budget // num_ids))
        chunk = max(least, min(MAX_PROBES_PER_CHUNK, budget // n))
        block = max(1, budget // chunk)
        for start in range(0, probes.shape[0], chunk):
            prepared = prepare_features(probes[start:start + chunk], self.metric)
            c = prepared.parts.shape[1]
            best = np.full((c, num_ids), _NO_KEY, dtype=np.int64)
            for lo in range(0, n, block):
                hi = min(n, lo + block)
                squared = None if layout.squared is None else layout.squared[:, lo:hi]
                gallery_t = layout.gallery_t[:, :, lo:hi]
                distances = distance_block(prepared, gallery_t, PreparedFeatures(gallery_t, squared), self.metric)
                keys = _pack(distances.numpy(), layout.entries[lo:hi])
                first = int(np.searchsorted(layout.starts, lo, side="right")) - 1
                last = int(np.searchsorted(layout.starts, hi, side="left"))  # groups first..last-1
                bounds = np.maximum(layout.starts[first:last], lo) - lo
                group_min = np.minimum.reduceat(keys, bounds, axis=1)
                np.minimum(best[:, first:last], group_min, out=best[:, first:last])
            yield best

    def _search_layout(self) -> _Layout:
        if self._layout is None:
            embeddings = self.embeddings
            n, c, p = embeddings.shape
            entries = np.argsort(np.asarray(self._codes, dtype=np.int64), kind="stable")
            counts = np.bincount(np.asarray(self._codes, dtype=np.int64), minlength=len(self._names))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            gallery_t = torch.empty(p, c, n, dtype=torch.float32)
            squared = torch.empty(p, n, dtype=torch.float32) if self.metric == "euc" else None
            step = max(1, PAIRS_PER_BLOCK // max(1, c * p))
            for lo in range(0, n, step):
                hi = min(n, lo + step)
                part = prepare_features(torch.from_numpy(embeddings[entries[lo:hi]]), self.metric)
                gallery_t[:, :, lo:hi] = part.parts.transpose(1, 2)
                if squared is not None:
                    squared[:, lo:hi] = part.squared
            self._layout = _Layout(gallery_t, squared, entries.astype(np.int64), starts)
        return self._layout

    # ------------------------------------------------------------------ thresholds
    def threshold_for_far(self, probe_embeddings: Any, probe_identities: Sequence[str],
                          target_far: float) -> ThresholdChoice:
        """The largest threshold whose false-accept rate on a labelled probe set is at most
        ``target_far`` (see :class:`ThresholdChoice` for the scores and counts).

        With impostor scores sorted ``s_1 <= ... <= s_n`` and ``a`` the most false accepts the
        target allows (``a / n <= target_far``), the threshold is ``s_{a+1}``: every score
        strictly below it is a false accept (at most ``a``; fewer when scores tie at
        ``s_{a+1}``, as all tied scores are rejected), and any larger threshold would accept
        ``a + 1``. A target that allows every impostor gives ``inf``.
        """
        if isinstance(target_far, bool) or not isinstance(target_far, (int, float)) or not 0 <= target_far <= 1:
            raise GalleryError(f"target false-accept rate {target_far!r}: give a number between 0 and 1 (e.g. 0.01)")
        labels = list(probe_identities)
        keys = self._all_identity_keys(probe_embeddings)
        distances = _unpack_distances(keys)
        if len(labels) != distances.shape[0]:
            raise GalleryError(f"{len(labels)} probe identities for {distances.shape[0]} probe embeddings")
        codes = np.array([self._code_of.get(str(name), -1) for name in labels], dtype=np.int64)
        rows = np.arange(len(codes))
        enrolled = codes >= 0
        others = distances.astype(np.float64)
        others[rows[enrolled], codes[enrolled]] = np.inf
        impostor = others.min(axis=1)  # inf: the probe's identity is the only one enrolled
        scores = np.sort(impostor[np.isfinite(impostor)])
        n = len(scores)
        if n == 0:
            raise GalleryError("no impostor attempt: every probe's identity is the only one enrolled; calibrate "
                               "with a gallery of several identities or probes of unenrolled people")
        allowed = _allowed_errors(target_far, n)
        threshold = float(scores[allowed]) if allowed < n else math.inf
        false_accepts = int(np.count_nonzero(scores < threshold))
        genuine = distances[rows[enrolled], codes[enrolled]]
        nearest = keys.argmin(axis=1)  # ties: the identity of the lower entry, as in search
        best = distances[rows, nearest]
        true_accepts = int(np.count_nonzero(genuine < threshold))
        rank1 = int(np.count_nonzero((nearest[enrolled] == codes[enrolled]) & (best[enrolled] < threshold)))
        num_genuine = int(enrolled.sum())
        return ThresholdChoice(threshold, float(target_far), false_accepts / n,
                               true_accepts / num_genuine if num_genuine else 0.0,
                               rank1 / num_genuine if num_genuine else 0.0,
                               n, false_accepts, num_genuine, true_accepts, rank1)


def info_differences(gallery_info: Mapping[str, Any], info: Mapping[str, Any]) -> List[Tuple[str, Any, Any]]:
    """``(key, gallery's value, other value)`` for the model facts that differ: model, metric,
    embedding shape, and the weights. Two infos holding the same ``weights_sha256`` have the
    same weights (the checkpoint's name and iteration do not matter); otherwise the dataset,
    iteration and checkpoint file name (and differing fingerprints) are compared. A fact missing
    on either side is not compared."""
    def facts(d: Mapping[str, Any]) -> Dict[str, Any]:
        out = dict(d)
        if d.get("checkpoint") is not None:
            out["checkpoint_name"] = Path(str(d["checkpoint"])).name
        if out.get("embedding_shape") is not None:
            out["embedding_shape"] = list(out["embedding_shape"])
        return out

    a, b = facts(gallery_info), facts(info)
    fingerprints = bool(a.get("weights_sha256") and b.get("weights_sha256"))
    if fingerprints and a["weights_sha256"] == b["weights_sha256"]:
        keys = _SAME_MODEL_KEYS  # the same weights, wherever and under whatever name the file lives
    else:
        keys = _SAME_MODEL_KEYS + _SAME_WEIGHTS_KEYS + (("weights_sha256",) if fingerprints else ())
    return [(k, a.get(k), b.get(k)) for k in keys if k in a and k in b and a[k] != b[k]]


def _short(value: Any) -> Any:
    """A fingerprint's first 12 characters (enough to tell two apart in a message)."""
    return value[:12] + "..." if isinstance(value, str) and len(value) == 64 else value


def _allowed_errors(target: float, n: int) -> int:
    """The largest ``a`` in ``0..n`` with ``a / n <= target`` (computed without trusting the
    rounding of ``target * n``)."""
    a = min(n, int(math.floor(target * n)))
    while a < n and (a + 1) / n <= target:
        a += 1
    while a > 0 and a / n > target:
        a -= 1
    return a


def _pack(distances: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """int64 keys ordered as ``(distance, entry)``: the float32 bits made monotone (negative
    values flipped; -0.0 becomes 0.0) in the high half, the entry index in the low half."""
    bits = (distances.astype(np.float32, copy=False) + np.float32(0)).view(np.int32).astype(np.int64)
    negative = bits < 0
    if negative.any():
        bits[negative] ^= 0x7FFFFFFF
    bits <<= 32
    bits |= entries[None, :]
    return bits


def _unpack_distances(keys: np.ndarray) -> np.ndarray:
    """The float32 distances of :func:`_pack`'s keys."""
    bits = keys >> 32
    negative = bits < 0
    if negative.any():
        bits[negative] ^= 0x7FFFFFFF
    return bits.astype(np.int32).view(np.float32)


def _as_embeddings(value: Any, what: str) -> np.ndarray:
    """``value`` as finite float32 ``[n, C, P]`` (a single ``[C, P]`` becomes ``n = 1``)."""
    if torch.is_tensor(value):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.dtype.kind not in "fiu" or min(array.shape[1:], default=0) < 1:
        raise GalleryError(f"{what}: expected real numbers of shape [N, C, P], got {array.dtype} {list(array.shape)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        row = int(np.argwhere(~np.isfinite(array))[0][0])
        raise GalleryError(f"{what}: embedding {row} holds NaN or infinite values")
    return array


def _shape_of(value: Any) -> Tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(type(v) is int and v >= 1 for v in value)):
        raise GalleryError(f"info.embedding_shape {value!r}: expected [C, P] of positive integers")
    return int(value[0]), int(value[1])


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GalleryError(f"{what} must be JSON-able (strings, numbers, lists, dicts): {exc}") from None


def _json_float(value: Optional[float]) -> Optional[float]:
    return None if value is None or not math.isfinite(value) else float(value)
