"""Losses; importing this package registers them in ``LOSSES``."""
from . import supcon, triplet  # noqa: F401
from . import softmax  # noqa: F401
from .aggregator import LossAggregator

__all__ = ["LossAggregator"]
