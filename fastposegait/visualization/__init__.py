"""Pictures for people: test-result figures (CMC curves, rank-1 heatmaps) and pose renderings.

* :mod:`.results_data` finds the curve and matrix data in a results dict (no drawing);
* :mod:`.curves` draws them (matplotlib, Agg canvas) and writes PNGs;
* :mod:`.skeleton` draws pose sequences as animated GIFs or frame grids.

:mod:`.curves` imports matplotlib; import it only where pictures are drawn.
"""
from .results_data import CMCCurve, PerViewAccuracy, ResultFigures, ViewMatrix, find_figures

__all__ = ["CMCCurve", "PerViewAccuracy", "ResultFigures", "ViewMatrix", "find_figures"]
