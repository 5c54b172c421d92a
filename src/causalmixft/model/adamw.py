"""AdamW (decoupled weight decay) for fine-tuning, without ``torch.optim``.

Every ``torch.optim`` optimiser imports ``torch._dynamo`` on first use, about 1.5 s of CPU.
Pretraining pays that once; the workflow's fine-tuning jobs are short, one process each, and
would pay it in every job. The update is torch.optim.AdamW's (``tests/test_model_adamw.py``
checks the trajectories agree).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


class AdamW:
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        self.params = [p for p in params if p.requires_grad]
        # One group, shaped like torch's, so schedulers can set group["lr"].
        self.param_groups = [{"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}]
        self.state = {p: {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for p in self.params}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for p in self.params:
            if p.grad is None:
                continue  # as torch: a parameter without a gradient keeps its moments and step count
            state = self.state[p]
            state["step"] += 1
            t = state["step"]
            p.mul_(1 - lr * group["weight_decay"])
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (state["exp_avg_sq"].sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
            p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1**t))
