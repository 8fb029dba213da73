"""Evaluation: distances, ranking metrics and the benchmark protocols.

Importing this package registers the protocols in :data:`fastposegait.registry.EVALUATORS`
(``evaluate_indoor_dataset`` — CASIA-B, OUMVLP, SUSTech1K —, ``evaluate_real_scene``,
``GREW_submission``, ``evaluate_Gait3D``, ``evaluate_CCPG``).
"""
from .distance import compute_distance, iter_distance_chunks
from .ranking import (
    GalleryIndex,
    ProbeRanking,
    nearest_in_slices,
    rank_features,
    rank_indexed,
    smallest_k_stable,
)
from .ccpg import CCPG_GROUPS, evaluate_CCPG
from .protocols import (
    INDOOR_CROSS_VIEW,
    INDOOR_SINGLE_VIEW,
    GREW_submission,
    evaluate_Gait3D,
    evaluate_indoor_dataset,
    evaluate_real_scene,
)
from .sustech1k import SUSTECH1K_CONDITIONS

__all__ = [
    "compute_distance",
    "iter_distance_chunks",
    "GalleryIndex",
    "ProbeRanking",
    "rank_indexed",
    "rank_features",
    "nearest_in_slices",
    "smallest_k_stable",
    "INDOOR_SINGLE_VIEW",
    "INDOOR_CROSS_VIEW",
    "evaluate_indoor_dataset",
    "evaluate_real_scene",
    "GREW_submission",
    "evaluate_Gait3D",
    "evaluate_CCPG",
    "CCPG_GROUPS",
    "SUSTECH1K_CONDITIONS",
]
