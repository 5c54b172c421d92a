"""The GPU check (bench/gpu_check.sh): its CPU smoke run, and the precision switch it measures with.

The smoke run goes through every stage of the script on the CPU with tiny sizes, so the script a
GPU session runs once cannot rot between sessions that have one.
"""

from __future__ import annotations

import warnings

import torch

from causalmixft.model.backbone import autocast, cuda_precision


def test_cuda_precision_sets_the_autocast_dtype_of_cuda_passes_only():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # on a machine without CUDA torch warns that it disables autocast
        assert autocast(cuda).fast_dtype == torch.bfloat16
        with cuda_precision(torch.float32):
            assert autocast(cuda).fast_dtype == torch.float32 and not autocast(cuda)._enabled
            assert not autocast(cpu)._enabled
        assert autocast(cuda).fast_dtype == torch.bfloat16
    assert not autocast(cpu)._enabled
