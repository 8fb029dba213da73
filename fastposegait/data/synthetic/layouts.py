"""The layout writers (CASIA-B, OU-MVLP, GREW, Gait3D, CCPG, SUSTech1K) and :func:`generate_dataset`.

Every writer produces ``<root>/<subject>/<type>/<view>/<view>.pkl`` files, each holding
``pickle.dump(ndarray [T, V, 3] float32)`` (x, y in pixels, confidence in [0, 1]), plus a
partition JSON; they differ in names, cameras and how subjects are split.
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fastposegait.data.partitions import oumvlp_official_partition

from .camera import CASIA_B_RIG, Camera, GAIT3D_NUM_CAMERAS, GREW_CAMERA, OUMVLP_RIG, gait3d_cameras, views_as_azimuths
from .conditions import condition_of_type, covariates_kind, outfit_kind
from .detector import DetectorParams
from .generation import GenerationSummary, LayoutRun, PathLike, resolve_num_train, start_run
from .worker import SeqSpec, SubjectTask

LAYOUTS: Tuple[str, ...] = ("casia-b", "oumvlp", "grew", "gait3d", "ccpg", "sustech1k")

CASIA_B_VIEWS: Tuple[str, ...] = tuple(f"{a:03d}" for a in range(0, 181, 18))
CASIA_B_TYPES: Tuple[str, ...] = tuple(f"nm-{i:02d}" for i in range(1, 7)) + ("bg-01", "bg-02", "cl-01", "cl-02")
OUMVLP_VIEWS: Tuple[str, ...] = ("000", "015", "030", "045", "060", "075", "090",
                                 "180", "195", "210", "225", "240", "255", "270")
OUMVLP_TYPES: Tuple[str, ...] = ("00", "01")
CCPG_TYPES: Tuple[str, ...] = ("U0_D0", "U0_D0_BG", "U0_D3", "U1_D0", "U1_D1", "U2_D2", "U3_D3")
#: CCPG-like cameras (chosen: five azimuths of a lab rig) and their azimuths in degrees.
CCPG_CAMERAS: Dict[str, float] = {"01": 0.0, "02": 45.0, "03": 90.0, "04": 135.0, "05": 180.0}
#: ``<camera>_<walk>``: every camera sees two walks of each type.
CCPG_VIEWS: Tuple[str, ...] = tuple(f"{c}_{w}" for c in CCPG_CAMERAS for w in (1, 2))
#: One type per SUSTech1K condition pattern (``00-nm`` the gallery; ``01``-``04`` Overall).
SUSTECH1K_TYPES: Tuple[str, ...] = ("00-nm", "01-bg", "01-nm", "02-cl", "02-cr", "03-ub", "03-uf", "04-nt", "04-oc")
SUSTECH1K_VIEWS: Tuple[str, ...] = tuple(f"{a:03d}" for a in range(0, 360, 45))


def _check_types(types: Sequence[str]) -> None:
    if len(set(types)) != len(types) or not types:
        raise ValueError(f"types must be a non-empty list without duplicates, got {list(types)}")


def _one_walk_per_type_tasks(run: LayoutRun, names: Sequence[str], types: Sequence[str], kinds: Sequence[str],
                             views: Sequence[str], cameras: Sequence[Camera]) -> List[SubjectTask]:
    """One task per subject of ``names`` in which each type is one walk seen at once by every
    view's camera (each view its own appearance bias): the CASIA-B and SUSTech1K rigs."""
    return [
        run.task(i, [SeqSpec(name, t, v, kind, walk_key=t, appearance_key=v, camera=cam)
                     for t, kind in zip(types, kinds)
                     for v, cam in zip(views, cameras)])
        for i, name in enumerate(names)
    ]


def generate_casia_b(
    root: PathLike,
    num_subjects: int = 124,
    num_train: Optional[int] = None,
    views: Sequence[str] = CASIA_B_VIEWS,
    types: Sequence[str] = CASIA_B_TYPES,
    frames: Tuple[int, int] = (50, 110),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a CASIA-B-like dataset: ``<root>/<sss>/<type>/<view>/<view>.pkl``.

    Subjects ``001``, ``002``, … (3 digits); the first ``num_train`` are TRAIN_SET, the rest
    TEST_SET (default: 74/124 of the subjects, rounded — the benchmark's 74/50 split, scaled).
    Each type is one walk seen simultaneously by all views (a camera at each azimuth, 0 =
    walking towards it); types must start with ``nm-``, ``bg-`` or ``cl-``. The partition is
    written to ``partition_path`` (default ``<root>/partition.json``).
    """
    run = start_run("casia-b", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    num_train = resolve_num_train(num_subjects, num_train, 74.0 / 124.0)
    azimuths = views_as_azimuths(views)
    kinds = [condition_of_type(t) for t in types]
    _check_types(types)
    cameras = [CASIA_B_RIG.camera(a) for a in azimuths]
    names = [f"{i + 1:03d}" for i in range(num_subjects)]
    run.prepare(names)
    tasks = _one_walk_per_type_tasks(run, names, types, kinds, views, cameras)
    partition = {"TRAIN_SET": names[:num_train], "TEST_SET": names[num_train:]}
    return run.finish(tasks, partition, num_train, num_subjects - num_train)


def generate_oumvlp(
    root: PathLike,
    num_subjects: int = 10307,
    views: Sequence[str] = OUMVLP_VIEWS,
    types: Sequence[str] = OUMVLP_TYPES,
    frames: Tuple[int, int] = (20, 40),
    joint_format: str = "openpose",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write an OU-MVLP-Pose-like dataset: ``<root>/<sssss>/<type>/<view>/<view>.pkl``.

    Subjects ``00001``… (5 digits); odd ids TRAIN_SET, even ids TEST_SET, except that with the
    full 10,307 subjects id ``10307`` goes to TEST_SET as in the official partition. Types
    ``00``/``01`` are two normal walks; views ``000``-``090`` see one walking direction and
    ``180``-``270`` the return walk. Default 18 OpenPose joints (the OUMVLP-Pose release).
    Partition default ``<root>/partition.json``.
    """
    run = start_run("oumvlp", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    azimuths = views_as_azimuths(views)
    _check_types(types)
    cameras = [OUMVLP_RIG.camera(a) for a in azimuths]
    names = [f"{i + 1:05d}" for i in range(num_subjects)]
    run.prepare(names)
    tasks = [
        run.task(i, [SeqSpec(name, t, v, "nm", walk_key=f"{t}/{'out' if a % 360 < 180 else 'back'}",
                             appearance_key=v, camera=cam)
                     for t in types
                     for v, a, cam in zip(views, azimuths, cameras)])
        for i, name in enumerate(names)
    ]
    partition = oumvlp_partition(num_subjects)
    return run.finish(tasks, partition, len(partition["TRAIN_SET"]), len(partition["TEST_SET"]))


def oumvlp_partition(num_subjects: int) -> Dict[str, List[str]]:
    """OU-MVLP's partition rule applied to ``num_subjects`` synthetic subjects."""
    return oumvlp_official_partition(num_subjects)


_VIDEO_ID_ALPHABET = string.ascii_letters + string.digits


def _video_ids(rng: np.random.Generator, count: int) -> List[str]:
    """``count`` distinct random 8-character video ids (letters and digits), like GREW's."""
    ids: List[str] = []
    seen = set()
    alphabet = np.array(list(_VIDEO_ID_ALPHABET))
    while len(ids) < count:
        for row in rng.integers(0, len(alphabet), size=(count - len(ids), 8)):
            vid = "".join(alphabet[row])
            if vid not in seen:
                seen.add(vid)
                ids.append(vid)
    return ids


def _grew_spec(subject_dir: str, type_name: str, video_id: str) -> SeqSpec:
    """A GREW walk: its own video id, walk, appearance and street camera."""
    return SeqSpec(subject_dir, type_name, video_id, "wild", video_id, video_id, wild_camera=GREW_CAMERA)


def generate_grew(
    root: PathLike,
    num_subjects: int = 26000,
    num_train: Optional[int] = None,
    train_sequences: Tuple[int, int] = (2, 6),
    probes_per_subject: int = 2,
    frames: Tuple[int, int] = (20, 70),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    probe_truth_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a GREW-like (in-the-wild) dataset.

    * training identities ``<id>train`` (``00001train``…), type ``00``, a random number of
      sequences in ``train_sequences`` each under its 8-character video id:
      ``<root>/00001train/00/<vid>/<vid>.pkl``;
    * test identities ``<id>`` (5 digits, numbered after nothing else: ``00001``…, a different
      person from ``00001train``), two gallery walks typed ``01`` and ``02`` in sorted video-id
      order: ``<root>/00001/01/<vid>/<vid>.pkl``;
    * ``probes_per_subject`` further walks of each test identity under the pseudo-subject
      ``probe``: ``<root>/probe/03/<vid>/<vid>.pkl`` — the identity is not in the layout; it is
      returned in ``summary.probe_truth`` ({video id: test subject}) and written to
      ``probe_truth_path`` (default ``<root>/grew_probe_truth.json``).

    TRAIN_SET = the training names, TEST_SET = the test ids followed by ``probe`` (default
    ``<root>/partition.json``). Default split 20,000 / 6,000 of 26,000, scaled. Every sequence has
    its own camera (azimuth, height, distance, focal length), its own condition (60% normal,
    30% bag, 10% coat) and a noisier detector.
    """
    run = start_run("grew", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    num_train = resolve_num_train(num_subjects, num_train, 20000.0 / 26000.0)
    num_test = num_subjects - num_train
    lo, hi = train_sequences
    if not 1 <= lo <= hi:
        raise ValueError(f"train_sequences must be (min, max) with 1 <= min <= max, got {train_sequences!r}")
    if probes_per_subject < 0:
        raise ValueError(f"probes_per_subject must be >= 0, got {probes_per_subject}")
    plan_rng = run.plan_rng(0)
    counts = plan_rng.integers(lo, hi + 1, size=num_train)
    vids = iter(_video_ids(plan_rng, int(counts.sum()) + num_test * (2 + probes_per_subject)))
    train_names = [f"{i + 1:05d}train" for i in range(num_train)]
    test_names = [f"{i + 1:05d}" for i in range(num_test)]
    truth_path = Path(probe_truth_path) if probe_truth_path is not None else run.root / "grew_probe_truth.json"
    run.prepare(train_names + test_names + ["probe"], extra_files=[truth_path])

    tasks: List[SubjectTask] = []
    truth: Dict[str, str] = {}
    for i, name in enumerate(train_names):
        tasks.append(run.task(i, [_grew_spec(name, "00", next(vids)) for _ in range(int(counts[i]))]))
    for j, name in enumerate(test_names):
        gallery = sorted(next(vids) for _ in range(2))
        probes = [next(vids) for _ in range(probes_per_subject)]
        specs = [_grew_spec(name, f"{k + 1:02d}", v) for k, v in enumerate(gallery)]
        specs += [_grew_spec("probe", "03", v) for v in probes]
        truth.update({v: name for v in probes})
        tasks.append(run.task(num_train + j, specs))
    partition = {"TRAIN_SET": train_names, "TEST_SET": test_names + ["probe"]}
    return run.finish(tasks, partition, num_train, num_test,
                      probe_truth=dict(sorted(truth.items())), probe_truth_path=truth_path)


# Gait3D PROBE_SET composition: 872 / 110 / 13 / 5 probes are seq0 / seq1 / seq2 / seq3.
_GAIT3D_PROBE_SEQ_WEIGHTS = np.array([872.0, 110.0, 13.0, 5.0])
# Tracks per (camera, video): P(1, 2, 3, 4 sequences) — most tracks are unbroken (chosen).
_GAIT3D_SEQS_PER_VIDEO = np.array([0.6, 0.25, 0.1, 0.05])
# Videos (cameras) per subject: 1-3, at least two sequences overall (~6 per subject on average
# in Gait3D: 25,309 sequences of 4,000 people).
_GAIT3D_VIDEOS = (1, 3)
_GAIT3D_VIDEO_IDS = 20  # video ids per camera to draw from (chosen)


def generate_gait3d(
    root: PathLike,
    num_subjects: int = 4000,
    num_train: Optional[int] = None,
    num_cameras: int = GAIT3D_NUM_CAMERAS,
    frames: Tuple[int, int] = (20, 90),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a Gait3D-like (in-the-wild, multi-camera) dataset.

    Subjects ``0000``… (4 digits, contiguous); types ``camid<c>_videoid<v>`` (each subject is
    seen by 1-3 different cameras), views ``seq<k>`` (a track split into 1-4 sequences,
    ``seq0`` first). The split is a seeded random choice of ``num_train`` subjects (default
    3/4, the benchmark's 3,000/1,000), and like Gait3D's official lists the TRAIN_SET and
    TEST_SET are not sorted. PROBE_SET holds exactly one ``<subject>-<type>-<view>`` per test
    subject, ``seq<k>`` drawn with the benchmark's 872:110:13:5 weights over k = 0..3; every
    other test sequence is gallery. Cameras (39 by default) have fixed mounting heights and focal
    lengths; each walk has a random direction. Partition default ``<root>/partition.json``.
    """
    run = start_run("gait3d", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    num_train = resolve_num_train(num_subjects, num_train, 0.75)
    if not isinstance(num_cameras, (int, np.integer)) or num_cameras < _GAIT3D_VIDEOS[1]:
        raise ValueError(f"num_cameras must be an integer >= {_GAIT3D_VIDEOS[1]}, got {num_cameras!r}")
    plan_rng = run.plan_rng(0)
    cams = gait3d_cameras(plan_rng, num_cameras)
    names = [f"{i:04d}" for i in range(num_subjects)]
    order = plan_rng.permutation(num_subjects)
    train = [names[i] for i in order[:num_train]]
    test = [names[i] for i in order[num_train:]]
    test_set = set(test)
    run.prepare(names)

    tasks: List[SubjectTask] = []
    probe_of: Dict[str, str] = {}
    for i, name in enumerate(names):
        srng = run.plan_rng(1, i)
        tracks = _gait3d_tracks(srng, num_cameras)
        specs = [
            # one track: the same clothes and camera, so one appearance bias
            SeqSpec(name, type_name, f"seq{k}", "wild", f"{type_name}/seq{k}", type_name, wild_camera=cams[camid])
            for type_name, camid, n in tracks
            for k in range(n)
        ]
        if name in test_set:
            probe_of[name] = _gait3d_probe(srng, name, tracks)
        tasks.append(run.task(i, specs))
    partition = {"TRAIN_SET": train, "TEST_SET": test, "PROBE_SET": [probe_of[n] for n in test]}
    return run.finish(tasks, partition, num_train, num_subjects - num_train)


def _gait3d_tracks(rng: np.random.Generator, num_cameras: int) -> List[Tuple[str, int, int]]:
    """One subject's tracks: ``(type name, camera id, number of sequences)`` for 1-3 distinct
    cameras, with at least two sequences in all."""
    while True:
        n_videos = int(rng.integers(_GAIT3D_VIDEOS[0], _GAIT3D_VIDEOS[1] + 1))
        camids = rng.choice(num_cameras, size=n_videos, replace=False)
        n_seqs = rng.choice(len(_GAIT3D_SEQS_PER_VIDEO), size=n_videos, p=_GAIT3D_SEQS_PER_VIDEO) + 1
        if n_seqs.sum() >= 2:
            break
    return [(f"camid{int(c)}_videoid{int(rng.integers(0, _GAIT3D_VIDEO_IDS))}", int(c), int(n))
            for c, n in zip(camids, n_seqs)]


def _gait3d_probe(rng: np.random.Generator, name: str, tracks: List[Tuple[str, int, int]]) -> str:
    """The PROBE_SET entry ``<subject>-<type>-seq<k>`` of a test subject: ``k`` drawn with the
    benchmark's weights among the sequence numbers the subject has, then one of its tracks
    that long."""
    max_k = min(max(n for _, _, n in tracks), len(_GAIT3D_PROBE_SEQ_WEIGHTS))
    w = _GAIT3D_PROBE_SEQ_WEIGHTS[:max_k] / _GAIT3D_PROBE_SEQ_WEIGHTS[:max_k].sum()
    k = int(rng.choice(max_k, p=w))
    candidates = [t for t, _, n in tracks if n > k]
    return f"{name}-{candidates[int(rng.integers(len(candidates)))]}-seq{k}"


def _ccpg_cameras(views: Sequence[str]) -> List[Tuple[str, str]]:
    """``(camera, walk)`` of each CCPG view name ``<camera>_<walk>``; cameras must be known."""
    out = []
    for v in views:
        camera, sep, walk = str(v).partition("_")
        if not sep or not walk or camera not in CCPG_CAMERAS:
            raise ValueError(f"CCPG view {v!r} is not '<camera>_<walk>' with a camera among "
                             f"{', '.join(CCPG_CAMERAS)} (e.g. '01_1')")
        out.append((camera, walk))
    if len(set(views)) != len(views):
        raise ValueError(f"views contain duplicates: {list(views)}")
    return out


def generate_ccpg(
    root: PathLike,
    num_subjects: int = 200,
    num_train: Optional[int] = None,
    views: Sequence[str] = CCPG_VIEWS,
    types: Sequence[str] = CCPG_TYPES,
    frames: Tuple[int, int] = (50, 110),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a CCPG-like (cloth-changing) dataset: ``<root>/<sss>/<type>/<camera>_<walk>/…pkl``.

    Subjects ``000``, ``001``, … (3 digits); the first ``num_train`` are TRAIN_SET (default half,
    CCPG's 100/200). Types are CCPG's clothing statuses ``U<u>_D<d>[_BG]``: garment level u and
    d of 3 on the upper and lower body (``U0_D0`` the reference clothes; U3/D3 the subject's coat
    on that half), ``_BG`` with a bag. A view ``<camera>_<walk>`` is camera ``01``-``05``
    (azimuths 0, 45, 90, 135, 180 of a lab rig) watching walk ``<walk>`` of the type; views with
    the same walk are one walk seen by several cameras. Each outfit has its own detector bias per
    camera. Partition default ``<root>/partition.json``.
    """
    run = start_run("ccpg", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    num_train = resolve_num_train(num_subjects, num_train, 0.5)
    _check_types(types)
    kinds = [outfit_kind(t) for t in types]
    cams = _ccpg_cameras(views)
    cameras = {c: CASIA_B_RIG.camera(CCPG_CAMERAS[c]) for c, _ in cams}
    names = [f"{i:03d}" for i in range(num_subjects)]
    run.prepare(names)
    tasks = [
        run.task(i, [SeqSpec(name, t, v, kind, walk_key=f"{t}/{walk}",
                             appearance_key=f"{t.replace('_BG', '')}/{camera}", camera=cameras[camera])
                     for t, kind in zip(types, kinds)
                     for v, (camera, walk) in zip(views, cams)])
        for i, name in enumerate(names)
    ]
    partition = {"TRAIN_SET": names[:num_train], "TEST_SET": names[num_train:]}
    return run.finish(tasks, partition, num_train, num_subjects - num_train)


def generate_sustech1k(
    root: PathLike,
    num_subjects: int = 1050,
    num_train: Optional[int] = None,
    views: Sequence[str] = SUSTECH1K_VIEWS,
    types: Sequence[str] = SUSTECH1K_TYPES,
    frames: Tuple[int, int] = (40, 90),
    joint_format: str = "coco",
    seed: int = 0,
    partition_path: Optional[PathLike] = None,
    workers: int = 1,
    overwrite: bool = False,
    detector: Optional[DetectorParams] = None,
) -> GenerationSummary:
    """Write a SUSTech1K-like dataset: ``<root>/<ssss>/<nn>-<codes>/<view>/<view>.pkl``.

    Subjects ``0000``… (4 digits); a seeded random ``num_train`` of them (default 250/1050 of
    the subjects, SUSTech1K's split) are TRAIN_SET, the rest TEST_SET, both sorted. Types are
    ``<nn>-<covariate codes>``: ``nm`` normal, ``bg`` bag and ``cr`` carrying (a load on one
    side), ``ub`` umbrella (one arm held still), ``cl`` coat, ``uf`` uniform (half a coat),
    ``oc`` occlusion and ``nt`` night (noisier, less confident detections); codes joined by
    ``-`` combine. The default types hold one of each pattern the protocol searches for, with
    ``00-nm`` the gallery. Each type is one walk seen by all views (azimuths in degrees, default
    every 45°). Partition default ``<root>/partition.json``.
    """
    run = start_run("sustech1k", root, num_subjects, frames=frames, joint_format=joint_format, seed=seed,
                    partition_path=partition_path, workers=workers, overwrite=overwrite, detector=detector)
    num_train = resolve_num_train(num_subjects, num_train, 250.0 / 1050.0)
    azimuths = views_as_azimuths(views)
    _check_types(types)
    kinds = [covariates_kind(t) for t in types]
    cameras = [CASIA_B_RIG.camera(a) for a in azimuths]
    names = [f"{i:04d}" for i in range(num_subjects)]
    order = run.plan_rng(0).permutation(num_subjects)
    train = sorted(names[i] for i in order[:num_train])
    test = sorted(names[i] for i in order[num_train:])
    run.prepare(names)
    tasks = _one_walk_per_type_tasks(run, names, types, kinds, views, cameras)
    return run.finish(tasks, {"TRAIN_SET": train, "TEST_SET": test}, num_train, num_subjects - num_train)


_GENERATORS = {
    "casia-b": generate_casia_b,
    "oumvlp": generate_oumvlp,
    "grew": generate_grew,
    "gait3d": generate_gait3d,
    "ccpg": generate_ccpg,
    "sustech1k": generate_sustech1k,
}


def generate_dataset(layout: str, root: PathLike, **kwargs) -> GenerationSummary:
    """Generate a synthetic dataset in one of the benchmark layouts (``casia-b``, ``oumvlp``,
    ``grew``, ``gait3d``, ``ccpg``, ``sustech1k``); keyword arguments go to the layout's
    ``generate_*`` function."""
    try:
        fn = _GENERATORS[layout]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}") from None
    return fn(root, **kwargs)
