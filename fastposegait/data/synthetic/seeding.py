"""Seeds. Every random draw comes from a ``numpy.random.Generator`` seeded by a
``SeedSequence`` built from ``(seed, layout tag, subject index, stream, ...)`` and from CRC32
hashes of type/view names, so the same seed writes byte-identical files whatever the number of
worker processes, and a sequence does not change when other subjects, types or views are
added. Changing any number here changes every generated dataset."""
from __future__ import annotations

import zlib

import numpy as np

# Layout tags, the second key of every seed.
LAYOUT_TAG = {"casia-b": 1, "oumvlp": 2, "grew": 3, "gait3d": 4, "ccpg": 5, "sustech1k": 6}
# Stream ids inside a subject's seed space.
STREAM_SUBJECT, STREAM_WALK, STREAM_SEQUENCE, STREAM_APPEARANCE = 0, 1, 2, 3
# Seed space of layout planning (split, video ids, cameras), outside any subject index.
PLAN_KEY = 0xFFFFFFFF


def crc(text: str) -> int:
    """CRC32 of a name, as a seed key that does not depend on the name's position in a list."""
    return zlib.crc32(text.encode("utf-8"))


def rng_from(*keys: int) -> np.random.Generator:
    """A generator seeded by the integer ``keys``."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))
