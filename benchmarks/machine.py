"""What the benchmarks print about the machine they ran on (imported by the scripts beside it)."""
from __future__ import annotations

import os
import platform

import torch


def machine(device: str) -> str:
    """GPU name, or CPU model, core count and torch threads, with the torch version."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
