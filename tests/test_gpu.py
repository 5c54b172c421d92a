"""Per-job GPU pinning (causalmixft.gpu): several processes, fake GPU counts, killed holders.

No GPU is needed: claim_gpu only takes file locks, and job_device is run with torch.cuda's
availability and device count patched.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from causalmixft import gpu

HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from causalmixft.gpu import claim_gpu

    n_gpus, lock_dir, hold_s, out = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    with claim_gpu(n_gpus, lock_dir, poll_s=0.02, timeout_s=60) as index:
        start = time.time()
        print("claimed", index, flush=True)
        time.sleep(hold_s)
        end = time.time()
    with open(out, "a") as handle:
        handle.write(json.dumps({"index": index, "start": start, "end": end}) + "\\n")
    """
)


def holder(n_gpus: int, lock_dir: Path, hold_s: float, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(gpu.__file__).parents[1])}
    command = [sys.executable, "-c", HOLDER, str(n_gpus), str(lock_dir), str(hold_s), str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def test_concurrent_jobs_never_share_a_gpu(tmp_path):
    out = tmp_path / "claims.jsonl"
    workers = [holder(3, tmp_path / "locks", 0.5, out) for _ in range(7)]
    assert all(worker.wait(timeout=60) == 0 for worker in workers)
    claims = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(claims) == 7 and {c["index"] for c in claims} == {0, 1, 2}
    for a in claims:
        for b in claims:
            if a is not b and a["index"] == b["index"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    # at no time more holders than GPUs
    events = sorted([(c["start"], 1) for c in claims] + [(c["end"], -1) for c in claims])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 3


def test_a_killed_holder_releases_its_gpu(tmp_path):
    locks = tmp_path / "locks"
    victim = holder(1, locks, 600, tmp_path / "never.jsonl")
    assert victim.stdout.readline().split() == ["claimed", "0"]
    with pytest.raises(TimeoutError, match="no free GPU among 1"):
        with gpu.claim_gpu(1, locks, poll_s=0.05, timeout_s=0.3):
            pass
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    started = time.monotonic()
    with gpu.claim_gpu(1, locks, poll_s=0.05, timeout_s=10) as index:
        assert index == 0
    assert time.monotonic() - started < 5


def test_claim_gpu_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one GPU"):
        with gpu.claim_gpu(0, tmp_path):
            pass
    with pytest.raises(ValueError, match="2 names for 3 GPUs"):
        with gpu.claim_gpu(3, tmp_path, names=["a", "b"]):
            pass


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda reporting ``count`` GPUs (set through the returned setter)."""
    import torch

    def set_count(count: int):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return set_count


def test_job_device_pins_each_concurrent_job_to_its_own_gpu(tmp_path, fake_cuda):
    fake_cuda(2)
    with gpu.job_device("auto", tmp_path) as first, gpu.job_device("cuda", tmp_path) as second:
        assert {first, second} == {"cuda:0", "cuda:1"}
        with pytest.raises(TimeoutError):
            with gpu.claim_gpu(2, tmp_path / socket.gethostname(), poll_s=0.05, timeout_s=0.2):
                pass
    with gpu.job_device("auto", tmp_path) as again:
        assert again == "cuda:0"  # released on exit
    assert sorted(p.name for p in (tmp_path / socket.gethostname()).iterdir()) == ["gpu0.lock", "gpu1.lock"]


def test_job_device_passes_explicit_devices_and_cpu_through(tmp_path, fake_cuda):
    fake_cuda(0)
    for requested, expected in (("cpu", "cpu"), ("auto", "cpu"), ("cuda:1", "cuda:1"), ("mps", "mps")):
        with gpu.job_device(requested, tmp_path) as device:
            assert device == expected
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        with gpu.job_device("cuda", tmp_path):
            pass
    assert not (tmp_path / socket.gethostname()).exists()


def test_jobs_a_scheduler_confines_to_different_gpus_do_not_wait_for_each_other(tmp_path, fake_cuda, monkeypatch):
    # Under SLURM each job step sees its own GPU as cuda:0; the locks name the physical GPU.
    fake_cuda(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with gpu.job_device("auto", tmp_path) as first:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-3f0e")
        with gpu.job_device("auto", tmp_path) as second:
            assert first == second == "cuda:0"
    assert sorted(p.name for p in (tmp_path / socket.gethostname()).iterdir()) == ["gpu2.lock", "gpuGPU-3f0e.lock"]
