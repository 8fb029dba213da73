"""The sequence index of one split: which sequences exist, their labels, how to load them.

Layout ``<dataset_root>/<subject>/<type>/<view>/*.pkl`` plus a partition JSON
``{"TRAIN_SET": [...], "TEST_SET": [...]}``. The index order is upstream's (partition order
of subjects, then sorted types, then sorted views) because the evaluators and the published
numbers depend on it. Every problem with the tree is reported with the path and the fix.
"""
from __future__ import annotations

import logging
import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..config.checker import Checker
from ..config.sections import DataSection
from ..errors import DatasetError, PoseFileError
from .io import load_sequence
from .partitions import read_partition, shared_subjects
from .packed_cache import (
    DirSignature,
    PackedCache,
    check_same_length,
    open_packed_cache,
    reopen_packed_cache,
    resolve_cache_mode,
)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class SequenceRecord:
    """One sequence: its three folder names and its pickle files (one per modality)."""

    subject: str
    type: str
    view: str
    paths: Tuple[str, ...]


def sorted_dirs(path: str) -> List[str]:
    """The type or view folders under ``path``, sorted; hidden ones (``.ipynb_checkpoints``,
    editors' and the loader's own folders) are not sequences."""
    with os.scandir(path) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and _is_folder(e))


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether a listed entry is a folder (links followed). An entry that cannot be followed
    (a symbolic link loop, a link into a folder this user cannot search) is no folder: it is
    skipped with a warning naming it rather than ending the run with a traceback."""
    try:
        return entry.is_dir()
    except OSError as exc:
        logger.warning("%s: %s; skipped (fix or remove the link)", entry.path, exc.strerror or exc)
        return False


def _list_view(view_dir: str) -> Tuple[List[str], frozenset]:
    """All entry names of a sequence folder, sorted (what ``data_in_use`` is zipped with), and
    the ``.pkl`` names among them that are regular files (symbolic links followed). A folder,
    FIFO, socket or dangling link named ``*.pkl`` is never opened: reading a FIFO blocks."""
    names: List[str] = []
    regular = set()
    with os.scandir(view_dir) as it:
        for entry in it:
            names.append(entry.name)
            if entry.name.endswith(".pkl"):
                try:
                    if entry.is_file():
                        regular.add(entry.name)
                except OSError:  # e.g. a link into a folder this user cannot search
                    pass
    names.sort()
    return names, frozenset(regular)


def _sequence_files(view_dir: str, entries: Sequence[str], regular: frozenset,
                    data_in_use: Optional[Sequence[bool]]) -> Tuple[List[str], List[str]]:
    """The selected pickles of one folder, and the selected ``.pkl`` names that are not
    regular files (hidden ones left out: they are skipped without a word).

    ``entries`` are all the folder's names, sorted: upstream zips the flags with them, so a
    non-pickle entry (a text file, a folder) takes a flag too. Hidden files (``._000.pkl``,
    the resource forks a copy from macOS leaves) are never pickles of the sequence."""
    if data_in_use is not None:
        entries = [e for e, use in zip(entries, data_in_use) if use]
    pickles = [e for e in entries if e.endswith(".pkl") and not e.startswith(".")]
    odd = [e for e in pickles if e not in regular]
    return [os.path.join(view_dir, e) for e in pickles if e in regular], odd


def _what_is(path: str) -> str:
    """``"a folder"``, ``"a FIFO"``, ... : what a ``*.pkl`` entry that is not a regular file is."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a dangling link" if os.path.islink(path) else "unreadable"
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _names(paths: Sequence[str], limit: int = 4) -> str:
    """``a.pkl, b.pkl`` (the file names of ``paths``, at most ``limit`` of them)."""
    names = [os.path.basename(p) for p in paths]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_modality_counts(records: Sequence[SequenceRecord], data_in_use: Optional[Sequence[bool]] = None) -> None:
    """Every sequence of a split must hold the same number of selected pickles (one per
    modality): a stray extra pickle would otherwise become a second modality of one sequence,
    which fails in the collator much later, or is silently dropped at test time.

    Raises:
        DatasetError: naming a folder that differs, what it holds, and the fix.
    """
    counts = Counter(len(r.paths) for r in records)
    if len(counts) < 2:
        return
    usual, n_usual = counts.most_common(1)[0]
    odd = next(r for r in records if len(r.paths) != usual)
    example = next(r for r in records if len(r.paths) == usual)
    n_odd = len(records) - n_usual
    selected = " selected by data_cfg.data_in_use" if data_in_use is not None else ""
    have = len(odd.paths)
    if have > usual:
        fix = (f"remove the extra file (e.g. a backup copy) from such folders, or select the {usual} "
               "modalit" + ("y" if usual == 1 else "ies") + " with data_cfg.data_in_use (flags matched with "
               "each folder's sorted entries)")
    else:
        fix = ("add the missing pickle to such folders, or select the modalities every folder has with "
               "data_cfg.data_in_use (flags matched with each folder's sorted entries)")
    raise DatasetError(
        f"{os.path.dirname(odd.paths[0])}: {have} pickle{'' if have == 1 else 's'} ({_names(odd.paths)}){selected} "
        f"where {n_usual} of the split's {len(records)} sequences hold {usual} (e.g. "
        f"{os.path.dirname(example.paths[0])}: {_names(example.paths)}); {n_odd} sequence folder"
        f"{' differs' if n_odd == 1 else 's differ'}. Every sequence needs the same pickles, one per modality: {fix}"
    )


def build_index(
    root: str | Path,
    subjects: Sequence[str],
    data_in_use: Optional[Sequence[bool]] = None,
    on_dir: Optional[Callable[[str], None]] = None,
    on_warning: Optional[Callable[[str], None]] = None,
) -> List[SequenceRecord]:
    """Enumerate the sequences of ``subjects`` (in the given order) under ``root``.

    Only regular files named ``*.pkl`` are pickles (a folder, FIFO or socket so named is
    skipped with one warning for the whole walk); every sequence must hold the same number of
    selected pickles (:func:`check_modality_counts`).

    ``on_dir(path)`` is called for every folder just before it is listed (the packed cache
    records the folders' time stamps this way, see :mod:`fastposegait.data.packed_cache`);
    ``on_warning(message)`` receives each warning instead of the log (the packed cache stores
    them to repeat them on the starts that skip the walk).
    """
    records: List[SequenceRecord] = []
    root = str(root)
    odd: List[str] = []  # selected *.pkl entries that are not regular files
    short_count = 0  # folders with fewer entries than data_in_use has flags
    short_example: Optional[Tuple[str, List[str]]] = None
    for subject in subjects:
        subject_dir = os.path.join(root, subject)
        if on_dir is not None:
            on_dir(subject_dir)
        for type_ in sorted_dirs(subject_dir):
            type_dir = os.path.join(subject_dir, type_)
            if on_dir is not None:
                on_dir(type_dir)
            for view in sorted_dirs(type_dir):
                view_dir = os.path.join(type_dir, view)
                if on_dir is not None:
                    on_dir(view_dir)
                entries, regular = _list_view(view_dir)
                if not entries:
                    logger.debug("empty sequence folder skipped: %s", view_dir)
                    continue
                if data_in_use is not None and len(data_in_use) > len(entries):
                    short_count += 1
                    short_example = short_example or (view_dir, entries)
                paths, not_files = _sequence_files(view_dir, entries, regular, data_in_use)
                odd.extend(os.path.join(view_dir, e) for e in not_files)
                if not paths:
                    hint = f" ({not_files[0]} is {_what_is(os.path.join(view_dir, not_files[0]))})" if not_files else ""
                    raise DatasetError(
                        f"{view_dir}: sequence folder holds no .pkl file"
                        + (" selected by data_cfg.data_in_use" if data_in_use is not None else "")
                        + hint + "; remove the folder or add the sequence's pickle"
                    )
                records.append(SequenceRecord(subject, type_, view, tuple(paths)))
    warn = on_warning if on_warning is not None else logger.warning
    if odd:
        warn(f"{len(odd)} entr{'y' if len(odd) == 1 else 'ies'} named *.pkl in the sequence folders "
             f"{'is not a regular file' if len(odd) == 1 else 'are not regular files'} and not read as "
             f"pickles: {odd[0]} is "
             f"{_what_is(odd[0])}" + (f" (and {len(odd) - 1} more)" if len(odd) > 1 else "")
             + "; rename or remove such entries")
    if short_example is not None:
        folder, names = short_example
        count = len(names)
        warn(f"data_cfg.data_in_use has {len(data_in_use or ())} flags but {short_count} sequence folder"
             f"{'' if short_count == 1 else 's'} hold{'s' if short_count == 1 else ''} fewer entries (e.g. {folder} "
             f"holds {count} entr{'y' if count == 1 else 'ies'}: {', '.join(names[:4])}"
             f"{', ...' if count > 4 else ''}); the flags are matched with each folder's sorted entries, so the "
             "extra flags select nothing there")
    check_modality_counts(records, data_in_use)
    return records


class PoseDataset:
    """The sequences of one split (``TRAIN_SET`` for training, ``TEST_SET`` for testing).

    Args:
        dataset_root: folder with ``<subject>/<type>/<view>/*.pkl``.
        dataset_partition: partition JSON path.
        training: which split to index.
        cache: ``True``/``"packed"``: memory-mapped packed cache, built on the first run and
            reused while the pickles are unchanged (:mod:`fastposegait.data.packed_cache`);
            ``"memory"``: upstream's loading of every pickle into memory at each start;
            ``False``: read the pickles at each access.
        frame_threshold: drop sequences whose first pickle has ``T <= frame_threshold``.
        data_in_use: modality flags zipped with each sequence folder's sorted entries (all of
            them, not only the pickles, as upstream); every sequence must end up with the same
            number of pickles.
        cache_dir: where the packed cache goes (default ``<dataset_root>/.fastposegait_cache``,
            or the user cache folder when the root is read-only).

    ``cache_mode`` tells which cache is in use (``"packed"``, ``"memory"`` or ``"none"``).
    """

    def __init__(
        self,
        dataset_root: str | Path,
        dataset_partition: str | Path,
        training: bool,
        cache: Union[bool, str] = True,
        frame_threshold: int = 0,
        data_in_use: Optional[Sequence[bool]] = None,
        cache_dir: Optional[str | Path] = None,
    ) -> None:
        mode = resolve_cache_mode(cache)
        self.root = _require_root(dataset_root)
        self.partition_path = Path(dataset_partition)
        self.partition = read_partition(self.partition_path)
        self.training = training
        split_key = "TRAIN_SET" if training else "TEST_SET"
        self.split_key = split_key
        self._warn_shared_subjects()
        wanted = self.partition[split_key]
        subjects = self._subjects_on_disk(wanted, split_key)
        self._cache: Optional[List[List[np.ndarray]]] = None
        self._packed: Optional[PackedCache] = None
        self._packed_rows: Optional[np.ndarray] = None  # dataset index -> packed-cache record
        records, mode = self._index(split_key, wanted, subjects, data_in_use, cache_dir, mode)
        if mode == "memory":
            self._cache = [self._read(r) for r in _progress(records, "Loading sequences")]
        self.cache_mode = mode
        records = self._drop_short(records, frame_threshold, split_key)
        self._check_lengths(records)
        self._set_records(records)
        #: ``(V, C)`` per modality that every sequence must have, set by
        #: :func:`fastposegait.data.layout.check_pose_layout` (None: not checked); without a
        #: cache :meth:`load` compares each sequence with it
        self.layout: Optional[Tuple[Tuple[int, int], ...]] = None
        logger.info("%s split: %d subjects, %d sequences%s", "train" if training else "test",
                    len(self.label_set), len(records), "" if mode == "none" else f" ({mode} cache)")
        if training and len(self.label_set) < 2:
            logger.warning(
                "%s: the TRAIN_SET holds %d subject (%s) under %s: triplet and contrastive losses have no "
                "negatives (the loss stays 0 and nothing is learned) and a softmax over one class is constant; "
                "list at least 2 training subjects", self.partition_path, len(self.label_set),
                ", ".join(self.label_set), self.root,
            )

    def _warn_shared_subjects(self) -> None:
        """Subjects in both TRAIN_SET and TEST_SET: a warning, not an error (evaluating on the
        training subjects can be deliberate, e.g. to check that a model fits them)."""
        shared = shared_subjects(self.partition)
        if shared:
            logger.warning(
                "%s: %d subject(s) are in both TRAIN_SET and TEST_SET: %s%s; the test then measures "
                "subjects the model was trained on. Fix the partition unless that is intended",
                self.partition_path, len(shared), ", ".join(shared[:10]), " ..." if len(shared) > 10 else "",
            )

    def _subjects_on_disk(self, wanted: List[str], split_key: str) -> List[str]:
        """The split's subjects that have a folder, in partition order; the others are
        skipped with a warning (none at all is an error)."""
        with os.scandir(self.root) as it:
            on_disk = {e.name for e in it if _is_folder(e)}
        subjects = [s for s in wanted if s in on_disk]
        missing = [s for s in wanted if s not in on_disk]
        if not subjects:
            raise DatasetError(
                f"{self.partition_path}: none of the {len(wanted)} {split_key} subjects exist under {self.root} "
                f"(e.g. {wanted[:3]}); check data_cfg.dataset_root and data_cfg.dataset_partition"
            )
        if missing:
            logger.warning(
                "%s: %d %s subject(s) are not in %s and are skipped: %s%s",
                self.partition_path, len(missing), split_key, self.root,
                ", ".join(missing[:10]), " ..." if len(missing) > 10 else "",
            )
        return subjects

    def _index(self, split_key: str, wanted: List[str], subjects: List[str],
               data_in_use: Optional[Sequence[bool]], cache_dir: Optional[str | Path],
               mode: str) -> Tuple[List[SequenceRecord], str]:
        """The split's records, and the cache mode that could be honoured.

        With the packed cache, an unchanged tree is reopened without listing any folder;
        otherwise the folders are walked (recording their time stamps for the cache) and the
        cache is built, or, with nowhere to write it, the mode falls back to ``memory``.
        """
        if mode == "packed":
            reopened = reopen_packed_cache(self.root, split_key, wanted, subjects, data_in_use, cache_dir)
            if reopened is not None:
                self._packed, keys, warnings = reopened
                for message in warnings:  # what the last walk of these unchanged folders said
                    logger.warning("%s", message)
                return [SequenceRecord(*key) for key in keys], mode
        signature = DirSignature() if mode == "packed" else None

        def warn(message: str) -> None:
            logger.warning("%s", message)
            if signature is not None:
                signature.warnings.append(message)

        records = build_index(self.root, subjects, data_in_use, on_dir=signature.add if signature else None,
                              on_warning=warn)
        if not records:
            raise DatasetError(f"{self.root}: the {split_key} subjects hold no sequences")
        if mode == "packed":
            self._packed = open_packed_cache(self.root, split_key, wanted, data_in_use, [r.paths for r in records],
                                             cache_dir, subjects_on_disk=subjects, signature=signature)
            if self._packed is None:
                mode = "memory"  # nowhere to write it; logged by open_packed_cache
        return records, mode

    def _drop_short(self, records: List[SequenceRecord], frame_threshold: int,
                    split_key: str) -> List[SequenceRecord]:
        """Keep the sequences with more than ``frame_threshold`` frames (all when it is 0).
        With the packed cache the frame counts come from its index: no pickle is read."""
        if self._packed is not None:
            lengths = self._packed.lengths
            rows = np.arange(len(records), dtype=np.int64)
            if frame_threshold > 0:
                rows = np.flatnonzero(lengths > frame_threshold)
                records = [records[i] for i in rows]
            self._packed_rows = rows
        elif frame_threshold > 0:
            keep = [i for i, r in enumerate(records) if self._length(i, r) > frame_threshold]
            records = [records[i] for i in keep]
            if self._cache is not None:
                self._cache = [self._cache[i] for i in keep]
        if frame_threshold > 0 and not records:
            raise DatasetError(f"{self.root}: every {split_key} sequence has <= {frame_threshold} frames "
                               "(data_cfg.frame_threshold); lower the threshold")
        return records

    def _check_lengths(self, records: List[SequenceRecord]) -> None:
        """One-frame sequences are an error up front when the frame counts are known
        (packed or memory cache); without a cache each is checked when it is loaded."""
        if self._packed is not None:
            short = np.flatnonzero(self._packed.lengths[self._packed_rows] < 2)
            if short.size:
                raise self._one_frame_error(records[int(short[0])])
        if self._cache is not None:
            for arrays, record in zip(self._cache, records):
                self._check_length(arrays, record)

    def _set_records(self, records: List[SequenceRecord]) -> None:
        """The index and the labels: subjects sorted, label = position in that list."""
        self.records: List[SequenceRecord] = records
        self.label_set: List[str] = sorted({r.subject for r in records})
        label_of = {s: i for i, s in enumerate(self.label_set)}
        self.labels = np.array([label_of[r.subject] for r in records], dtype=np.int64)
        # one stable sort instead of a pass over all labels per subject (OU-MVLP: 5k x 144k)
        order = np.argsort(self.labels, kind="stable")
        counts = np.bincount(self.labels, minlength=len(self.label_set))
        self.indices_by_label: List[np.ndarray] = np.split(order, np.cumsum(counts)[:-1])

    def __len__(self) -> int:
        return len(self.records)

    @property
    def subjects(self) -> List[str]:
        return [r.subject for r in self.records]

    @property
    def types(self) -> List[str]:
        return [r.type for r in self.records]

    @property
    def views(self) -> List[str]:
        return [r.view for r in self.records]

    def load(self, index: int) -> List[np.ndarray]:
        """The arrays (one per modality) of sequence ``index`` (read-only with the packed cache).

        Without a cache, a sequence whose joints or channels differ from :attr:`layout` (once
        the layout check set it) raises a :class:`PoseFileError` naming the file; with a
        cache every sequence was checked at start."""
        if self._packed is not None:
            return self._packed.arrays(int(self._packed_rows[index]))  # type: ignore[index]
        if self._cache is not None:
            return self._cache[index]
        record = self.records[index]
        arrays = self._read(record)
        self._check_length(arrays, record)
        if self.layout is not None:
            self._check_layout(arrays, record)
        return arrays

    def _check_layout(self, arrays: List[np.ndarray], record: SequenceRecord) -> None:
        for path, array, expected in zip(record.paths, arrays, self.layout or ()):
            if tuple(array.shape[1:]) != tuple(expected):
                if len(expected) != 2 or array.ndim != 3:  # a map sequence [T, C, H, W] on either side
                    raise PoseFileError(
                        f"{path}: shape {list(array.shape)}, but the other sequences of this dataset are "
                        f"{_describe_frame(expected)} per frame (checked at start); re-export this file in the "
                        "dataset's layout or remove it"
                    )
                raise PoseFileError(
                    f"{path}: {array.shape[1]} joints and {array.shape[2]} channels (shape {list(array.shape)}), "
                    f"but the other sequences of this dataset have {expected[0]} joints and {expected[1]} "
                    "channels (checked at start); re-export this file in the dataset's layout or remove it"
                )

    @property
    def num_modalities(self) -> int:
        """Pickles per sequence (the most any sequence has)."""
        return max((len(r.paths) for r in self.records), default=0)

    def cached_shapes(self, position: int = 0, width: int = 3) -> Optional[np.ndarray]:
        """``[len(self), width]``: the shape of modality ``position`` of every sequence
        (``[T, V, C]`` for poses; ``width=4`` also gives the W of map sequences
        ``[T, C, H, W]``, 0 in that column for poses) when it is known without reading a pickle
        (packed cache: from its index; memory cache: from the arrays), ``-1`` where a sequence
        lacks that modality; None without a cache."""
        if self._packed is not None:
            return self._packed.record_file_shapes(self._packed_rows, position, width)  # type: ignore[arg-type]
        if self._cache is not None:
            return np.array([_padded_shape(a[position].shape, width) if len(a) > position else (-1,) * width
                             for a in self._cache], dtype=np.int64).reshape(-1, width)
        return None

    def read_shapes(self, indices: Sequence[int], position: int = 0, width: int = 3) -> np.ndarray:
        """``[len(indices), width]``: the shapes of modality ``position`` of some sequences,
        read from their pickles (for a dataset without a cache), as :meth:`cached_shapes`."""
        out = np.full((len(indices), width), -1, dtype=np.int64)
        for row, i in enumerate(indices):
            paths = self.records[i].paths
            if len(paths) > position:
                out[row] = _padded_shape(load_sequence(paths[position]).shape, width)
        return out

    def _read(self, record: SequenceRecord) -> List[np.ndarray]:
        arrays = [load_sequence(p) for p in record.paths]
        check_same_length(arrays, record.paths)
        return arrays

    def _length(self, index: int, record: SequenceRecord) -> int:
        if self._cache is not None:
            return self._cache[index][0].shape[0]
        return load_sequence(record.paths[0]).shape[0]

    @staticmethod
    def _check_length(arrays: List[np.ndarray], record: SequenceRecord) -> None:
        if arrays[0].shape[0] < 2:
            raise PoseDataset._one_frame_error(record)

    @staticmethod
    def _one_frame_error(record: SequenceRecord) -> PoseFileError:
        return PoseFileError(
            f"{record.paths[0]}: one-frame sequence; gait needs motion — remove it or set "
            "data_cfg.frame_threshold: 1 to drop such sequences"
        )


def _padded_shape(shape: Tuple[int, ...], width: int) -> Tuple[int, ...]:
    """The first ``width`` axes of ``shape``, 0 for the axes it does not have (a sequence's
    axes are never 0: the loader refuses empty ones)."""
    return tuple(shape[:width]) + (0,) * max(0, width - len(shape))


def _describe_frame(expected: Sequence[int]) -> str:
    """``"17 joints x 3 channels"`` or ``"2 x 64 x 64 (C x H x W)"`` for a per-frame layout."""
    if len(expected) == 2:
        return f"{expected[0]} joints x {expected[1]} channels"
    return " x ".join(str(v) for v in expected) + " (C x H x W)"


def _require_root(dataset_root: str | Path) -> Path:
    root = Path(dataset_root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset_root {str(root)!r} does not exist or is not a folder; set data_cfg.dataset_root "
            "to the folder holding <subject>/<type>/<view>/*.pkl (or generate one: "
            "python -m fastposegait.data.synthetic casia-b --root DIR)"
        )
    return root


def dataset_from_section(data: DataSection, training: bool) -> PoseDataset:
    """Build the split's :class:`PoseDataset` from the typed ``data_cfg`` section."""
    return PoseDataset(
        dataset_root=data.dataset_root,
        dataset_partition=data.dataset_partition,
        training=training,
        cache=data.cache,
        frame_threshold=data.frame_threshold,
        data_in_use=data.data_in_use,
        cache_dir=data.cache_dir,
    )


def dataset_from_cfg(data_cfg: Mapping[str, Any], training: bool) -> PoseDataset:
    """:func:`dataset_from_section` for a resolved ``data_cfg`` mapping (validated first)."""
    return dataset_from_section(DataSection.from_mapping(data_cfg, "data_cfg", Checker(report=False)), training)


def _progress(items: Sequence[Any], desc: str):
    if len(items) < 2000:
        return items
    from ..distributed import is_main_process  # imports torch: only for splits worth a progress bar

    if not is_main_process():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="seq", leave=False)
