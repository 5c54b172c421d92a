"""Pin one local GPU per job: Snakemake caps how many GPU jobs run, not which GPU each gets.

Each job takes an exclusive ``flock`` on one lock file per GPU; the first free one is its GPU.
The workflow's profile lets at most as many GPU jobs run as there are GPUs (``--resources
gpu=N``), so a free lock always exists, and a killed job's lock is released by the kernel with
its process.

Lock files are named after the physical GPU (its entry in ``CUDA_VISIBLE_DEVICES`` when that is
set, else its index) under a folder per host, so jobs that a scheduler confines to different GPUs
(SLURM sets ``CUDA_VISIBLE_DEVICES`` per job step: each job sees its GPU as ``cuda:0``) never
wait for each other, and a lock folder on a shared file system serves several machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Iterator, Sequence


@contextlib.contextmanager
def claim_gpu(
    n_gpus: int,
    lock_dir: str | Path,
    poll_s: float = 1.0,
    timeout_s: float = 3600,
    names: Sequence[str] | None = None,
) -> Iterator[int]:
    """Yield the index of a GPU no other job holds; release it on exit.

    ``names`` (one per index) name the lock files (``gpu<name>.lock``); default: the indices.
    """
    if n_gpus < 1:
        raise ValueError("claim_gpu needs at least one GPU")
    names = [str(i) for i in range(n_gpus)] if names is None else [str(name) for name in names]
    if len(names) != n_gpus:
        raise ValueError(f"claim_gpu: {len(names)} names for {n_gpus} GPUs")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for index, name in enumerate(names):
            handle = open(lock_dir / f"gpu{name}.lock", "a+")
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


def visible_gpu_names(n_visible: int) -> list[str]:
    """The physical names of the ``n_visible`` CUDA devices: ``CUDA_VISIBLE_DEVICES`` entries or indices."""
    listed = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if len(listed) >= n_visible:
        return [entry.replace("/", "_") for entry in listed[:n_visible]]
    return [str(i) for i in range(n_visible)]


@contextlib.contextmanager
def job_device(requested: str, lock_dir: str | Path = ".gpu-locks") -> Iterator[str]:
    """The torch device string for one job: ``cpu``, or ``cuda:<i>`` with GPU ``i`` claimed.

    ``auto`` and ``cuda`` claim a free visible GPU; ``cuda:<i>`` and ``mps`` are used as given.
    """
    import torch

    wants_gpu = requested.startswith("cuda") or (requested == "auto" and torch.cuda.is_available())
    if not wants_gpu or ":" in requested:
        yield "cpu" if requested == "auto" and not wants_gpu else requested
        return
    visible = torch.cuda.device_count()
    if visible == 0:
        raise RuntimeError(f"device {requested!r} requested but no CUDA device is visible")
    host_dir = Path(lock_dir) / socket.gethostname()
    with claim_gpu(visible, host_dir, names=visible_gpu_names(visible)) as index:
        yield f"cuda:{index}"
