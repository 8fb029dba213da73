"""The former name of :mod:`fastposegait.converters`, kept so that
``python -m fastposegait.datasets <command>`` still runs the dataset tools."""
