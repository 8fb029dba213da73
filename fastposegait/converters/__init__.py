"""From raw pose annotations to training data: converters, partitions and a dataset checker.

One command line for all of it, ``python -m fastposegait.converters <command>`` (see
:mod:`fastposegait.converters.cli` and ``docs/process_dataset.md``). Modules:

* :mod:`.tasks` — tasks, parallel/resumable execution, atomic writes, the summary;
* :mod:`.parsing` — raw-file readers with one clear error per malformed file;
* :mod:`.selection` — choosing the walker among several detected people;
* :mod:`.oumvlp`, :mod:`.grew`, :mod:`.gait3d`, :mod:`.casiab`, :mod:`.custom` — one per source;
* :mod:`.partitions` — the benchmark partition rules; :mod:`.validate` — the dataset checker.

The errors (:class:`ConversionError`, :class:`RawFileError`) live in :mod:`fastposegait.errors`
and are re-exported here.
"""
from ..errors import ConversionError, ConversionInterrupted, RawFileError
from .tasks import ConversionSummary, SequenceResult, run_tasks
from .validate import ValidationReport, validate_root

__all__ = [
    "ConversionError",
    "ConversionInterrupted",
    "ConversionSummary",
    "RawFileError",
    "SequenceResult",
    "ValidationReport",
    "run_tasks",
    "validate_root",
]
