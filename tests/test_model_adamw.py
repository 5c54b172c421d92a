"""The fine-tuning AdamW follows torch.optim.AdamW step for step."""

import torch

from causalmixft.model.adamw import AdamW


def trajectory(make_optimizer, steps=25):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    frozen = torch.nn.Parameter(torch.ones(2))  # never receives a gradient
    optimizer = make_optimizer([*model.parameters(), frozen])
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 1e-2 * min(1.0, (step + 1) / 5)  # a warm-up, as fine-tuning sets it
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()] + [frozen.detach().clone()]


def test_matches_torch_adamw():
    ours = trajectory(lambda params: AdamW(params, lr=1e-2, weight_decay=0.05))
    reference = trajectory(lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.05, foreach=False))
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(ours[-1], torch.ones(2))


def test_parameters_move_and_zero_grad_clears():
    p = torch.nn.Parameter(torch.zeros(3))
    optimizer = AdamW([p], lr=0.1)
    (p - 1).pow(2).sum().backward()
    optimizer.step()
    assert torch.all(p > 0)
    optimizer.zero_grad()
    assert p.grad is None
