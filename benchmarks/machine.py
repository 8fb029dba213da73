"""What a benchmark ran on, recorded in every benchmark's JSON report.

One function so that every report describes the machine with the same keys: CPU model and
counts, memory, load average when the benchmark started (these machines are often shared),
library versions and, when present, the GPU; and one writer for the reports' common header
(benchmark, date, the command that reproduces it, machine).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence


def cpu_model() -> str:
    """The ``model name`` of ``/proc/cpuinfo`` (else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(with_torch: bool = True) -> Dict[str, Any]:
    """CPU, memory, load, versions (and torch threads / GPU when ``with_torch``)."""
    import numpy as np

    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    info: Dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": mem_gb,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if with_torch:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(), cuda=torch.cuda.is_available())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def gpu_info() -> Dict[str, Any]:
    """What a CUDA run depends on: the CUDA and cuDNN versions torch was built with, NCCL's,
    every visible GPU (name, memory, compute capability) and ``nvidia-smi``'s report (driver
    version, clocks, other processes on the GPU). Empty lists and None without CUDA."""
    import subprocess

    import torch

    info: Dict[str, Any] = {"torch_cuda": torch.version.cuda, "cudnn": None, "nccl": None, "gpus": [],
                            "nvidia_smi": None}
    if not torch.cuda.is_available():
        return info
    info["cudnn"] = torch.backends.cudnn.version()
    try:
        info["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
    except (AttributeError, RuntimeError, TypeError):
        pass
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        info["gpus"].append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                             "capability": f"{props.major}.{props.minor}",
                             "multiprocessors": props.multi_processor_count})
    try:
        proc = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = proc.stdout if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr[-500:]}"
    except (OSError, subprocess.TimeoutExpired) as err:
        info["nvidia_smi"] = f"not run: {err}"
    return info


def write_report(out: Path, benchmark: str, argv: Optional[Sequence[str]], **fields: Any) -> Dict[str, Any]:
    """Write ``benchmarks/<benchmark>.py``'s JSON report to ``out`` and return it: the common
    header, with the command line that reproduces the run (``argv``, or the process's own
    arguments when None), then ``fields``."""
    args = list(sys.argv[1:] if argv is None else argv)
    report = {"benchmark": benchmark, "date": time.strftime("%Y-%m-%d"),
              "command": " ".join(["python", f"benchmarks/{benchmark}.py", *args]), "machine": machine_info(),
              **fields}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report
