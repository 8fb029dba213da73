"""Skeleton maps: 2-D pose sequences rendered as two-channel Gaussian images (limbs, joints).

SkeletonGait feeds these maps to a silhouette-style CNN (DeepGaitV2). Two renderers share one
definition (docs/models.md, "SkeletonGait"):

* :mod:`.exact` renders one sequence with NumPy exactly like the original offline generator
  (grey levels included), to convert pose datasets into map datasets in the original layout;
* :mod:`.batched` renders many frames at once with torch, inside the training and test
  pipeline (the ``SkeletonMap`` transform of :mod:`.transform`), so no map is stored on disk.
"""
