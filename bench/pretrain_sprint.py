"""Pretrain the built-in backbone for a wall-clock budget, its learning-rate decay ending at the deadline.

The pretraining schedule (causalmixft.model.pretrain) is set in steps, and how many steps fit in
some minutes depends on the machine. This runs it twice, in one process, into one folder: a
calibration part at a constant learning rate measures steps per second, then the run is resumed
with the step count that fills the minutes left at that rate (95%; its time limit stops it at
the deadline if the rate was optimistic), so the decay phase and its weight averaging happen.
Checkpoints as ``options`` say (``checkpoint_every_min``). Prints the run's summary as JSON, with
the calibration added. Usage::

    python bench/pretrain_sprint.py --out DIR --minutes 5 \\
        --options '{"model": {"d_model": 192, "n_heads": 6, "n_layers": 6, "d_ff": 384}, "batch_size": 32,
                    "checkpoint_every_min": 1, "real_datasets": [], "device": "cuda"}'
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from causalmixft.model.pretrain import pretrain_from_options

CONSTANT_LR_STEPS = 10**9  # a step count the calibration never reaches: no decay in it


def sprint(out: Path, minutes: float, options: dict, calibration_share: float = 0.15) -> dict:
    if (out / "checkpoint").exists():
        raise SystemExit(f"pretrain_sprint: {out} already holds a run; give a new folder")
    start = time.monotonic()
    deadline = start + minutes * 60
    pretrain_from_options(out, {**options, "steps": CONSTANT_LR_STEPS, "time_limit_min": minutes * calibration_share})
    state = json.loads((out / "checkpoint" / "state.json").read_text())["extra"]
    rate = state["step"] / max(state["elapsed_s"], 1e-9)
    # Set-up before the loop and evaluation and saving after it, as the calibration run took them.
    overhead_s = time.monotonic() - start - state["elapsed_s"]
    loop_s = max(deadline - time.monotonic() - overhead_s, 0.0)
    steps = state["step"] + max(1, int(rate * loop_s * 0.95))
    summary = pretrain_from_options(out, {**options, "steps": steps,
                                          "time_limit_min": (state["elapsed_s"] + loop_s) / 60})
    return {**summary, "sprint": {"minutes": minutes, "calibration_steps": state["step"],
                                  "calibration_steps_per_second": round(rate, 3), "overhead_s": round(overhead_s, 1),
                                  "steps_planned": steps, "wall_s": round(time.monotonic() - start, 1)}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--options", default="{}", help="JSON: pretraining options (model, prior, batch_size, ...)")
    parser.add_argument("--calibration-share", type=float, default=0.15)
    args = parser.parse_args(argv)
    summary = sprint(args.out, args.minutes, json.loads(args.options), args.calibration_share)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
