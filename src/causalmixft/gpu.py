"""Pin one local GPU per job: Snakemake caps how many GPU jobs run, not which GPU each gets.

Each job takes an exclusive ``flock`` on one lock file per GPU; the first free one is its GPU.
The workflow's profile lets at most as many GPU jobs run as there are GPUs, so a free lock
always exists, and a killed job's lock is released by the kernel with its process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def claim_gpu(n_gpus: int, lock_dir: str | Path, poll_s: float = 1.0, timeout_s: float = 3600) -> Iterator[int]:
    """Yield the index of a GPU no other job holds; release it on exit."""
    if n_gpus < 1:
        raise ValueError("claim_gpu needs at least one GPU")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for index in range(n_gpus):
            handle = open(lock_dir / f"gpu{index}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.seek(0), handle.truncate(), handle.write(f"{os.getpid()}\n"), handle.flush()
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {n_gpus} after {timeout_s:.0f} s (locks in {lock_dir})")
        time.sleep(poll_s)


@contextlib.contextmanager
def job_device(requested: str, lock_dir: str | Path = ".gpu-locks") -> Iterator[str]:
    """The torch device string for one job: ``cpu``, or ``cuda:<i>`` with GPU ``i`` claimed."""
    import torch

    wants_gpu = requested.startswith("cuda") or (requested == "auto" and torch.cuda.is_available())
    if not wants_gpu or ":" in requested:
        yield "cpu" if requested == "auto" and not wants_gpu else requested
        return
    visible = torch.cuda.device_count()
    if visible == 0:
        raise RuntimeError(f"device {requested!r} requested but no CUDA device is visible")
    with claim_gpu(visible, lock_dir) as index:
        yield f"cuda:{index}"
