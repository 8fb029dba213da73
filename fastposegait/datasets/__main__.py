"""``python -m fastposegait.datasets`` = ``python -m fastposegait.converters``."""
import runpy

runpy.run_module("fastposegait.converters", run_name="__main__", alter_sys=True)
