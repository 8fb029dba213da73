"""Evaluation: distances, ranking metrics and the benchmark protocols.

Importing this package registers the protocols in :data:`fastposegait.registry.EVALUATORS`
(``evaluate_indoor_dataset``, ``evaluate_real_scene``, ``GREW_submission``, ``evaluate_Gait3D``).
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
from .protocols import (
    INDOOR_CROSS_VIEW,
    INDOOR_SINGLE_VIEW,
    GREW_submission,
    evaluate_Gait3D,
    evaluate_indoor_dataset,
    evaluate_real_scene,
)

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
]
