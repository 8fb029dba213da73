"""Procedural gait generator that writes pose datasets in the upstream on-disk layouts.

Real gait datasets need an application to their owners, so the demo, the tests and anyone
without data use this generator instead. It builds a recognition problem worth solving, in
stages, one module each:

1. **Who walks** (:mod:`.body`, :func:`sample_subject`): each subject gets a 3-D body
   (stature, segment proportions, shoulder and hip width) and a gait style (cadence, stride,
   hip/knee/arm kinematics, pelvis rotation and obliquity, torso lean, lateral sway, left/right
   asymmetry, phase offsets), all drawn from adult ranges reported in the gait and
   anthropometry literature (the docstring of :func:`sample_subject` says where each range
   comes from).
2. **How they walk this time** (:func:`sample_variation`; :mod:`.conditions`,
   :func:`sample_condition`): each walk has its own speed, start phase and walking-line
   offset; a bag damps one arm's swing and leans the torso; a coat widens the shoulders and
   hips and blurs their detections.
3. **The 3-D walk** (:mod:`.kinematics`, :func:`walk_3d`): forward kinematics of periodic joint
   angles gives the joints in metres, in a world frame where the walker moves along +X, +Y is
   the walker's left and +Z is up.
4. **The camera** (:mod:`.camera`, :class:`Camera`; :mod:`.visibility`, :func:`observe`): a
   pinhole projection from a fixed camera, so the body translates across the image and
   changes scale with depth, plus a view-dependent self-occlusion score per joint.
5. **The detector** (:mod:`.detector`, :func:`apply_detector`): temporally correlated pixel
   noise scaled by the body's size in the image, keypoint biases (one shared by the sequences
   of a person in the same clothes seen by the same camera, one per walk), confidences that
   fall with occlusion and error, missing joints stored as ``(0, 0, 0)``, occasional left/right
   swaps.
6. **The layout writers** (:mod:`.layouts`: :func:`generate_casia_b`, :func:`generate_oumvlp`,
   :func:`generate_grew`, :func:`generate_gait3d`, :func:`generate_ccpg`,
   :func:`generate_sustech1k`, dispatched by :func:`generate_dataset`):
   ``<root>/<subject>/<type>/<view>/<view>.pkl`` holding ``pickle.dump(ndarray [T, V, 3]
   float32)`` (x, y in pixels, confidence in [0, 1]), plus a partition JSON. The steps they
   share are in :mod:`.generation`; each subject is written by :mod:`.worker`.

Steps 3-5 are separate functions so that other writers (raw OpenPose JSON, GREW/Gait3D text
files, multi-person frames) can reuse the 3-D walk and the projection without the file layout.
:func:`simulate_walk` chains steps 3-5 for one sequence.

Determinism (:mod:`.seeding`): every random draw comes from a ``numpy.random.Generator``
seeded by a ``SeedSequence`` built from ``(seed, layout, subject index, ...)`` and from CRC32
hashes of the type/view names, so the same seed writes byte-identical files whatever the number
of worker processes, and a sequence does not change when other subjects, types or views are
added.

Command line (:mod:`.cli`)::

    python -m fastposegait.data.synthetic casia-b --root data/synthetic-casia-b --subjects 124
"""
from __future__ import annotations

from .body import SequenceVariation, SubjectParams, sample_subject, sample_variation
from .camera import CASIA_B_RIG, OUMVLP_RIG, Camera, CameraRig, camera_at_azimuth
from .cli import main
from .conditions import Condition, condition_of_type, sample_condition
from .detector import DetectorParams, apply_detector, sample_appearance_bias
from .generation import GenerationSummary
from .joints import INTERNAL_JOINTS, select_joints
from .kinematics import walk_3d
from .layouts import (CASIA_B_TYPES, CASIA_B_VIEWS, CCPG_TYPES, CCPG_VIEWS, LAYOUTS, OUMVLP_TYPES, OUMVLP_VIEWS,
                      SUSTECH1K_TYPES, SUSTECH1K_VIEWS, generate_casia_b, generate_ccpg, generate_dataset,
                      generate_gait3d, generate_grew, generate_oumvlp, generate_sustech1k, oumvlp_partition)
from .simulate import DEFAULT_FPS, simulate_walk
from .visibility import ProjectedWalk, observe

__all__ = [
    "LAYOUTS",
    "INTERNAL_JOINTS",
    "SubjectParams",
    "SequenceVariation",
    "Condition",
    "Camera",
    "ProjectedWalk",
    "DetectorParams",
    "GenerationSummary",
    "sample_subject",
    "sample_variation",
    "sample_condition",
    "condition_of_type",
    "camera_at_azimuth",
    "walk_3d",
    "observe",
    "apply_detector",
    "sample_appearance_bias",
    "select_joints",
    "simulate_walk",
    "generate_casia_b",
    "generate_oumvlp",
    "oumvlp_partition",
    "generate_grew",
    "generate_gait3d",
    "generate_ccpg",
    "generate_sustech1k",
    "generate_dataset",
    "main",
    # lab camera rigs and layout constants
    "CameraRig",
    "CASIA_B_RIG",
    "OUMVLP_RIG",
    "CASIA_B_VIEWS",
    "CASIA_B_TYPES",
    "OUMVLP_VIEWS",
    "OUMVLP_TYPES",
    "CCPG_VIEWS",
    "CCPG_TYPES",
    "SUSTECH1K_VIEWS",
    "SUSTECH1K_TYPES",
    "DEFAULT_FPS",
]
