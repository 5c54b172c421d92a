"""The prepared GPU check (docs/gpu.md): one script that spends a short GPU lease on measurements.

Stages, each a subprocess with its own time limit (a stage that fails or runs out of time is
recorded and the next one still runs):

1. ``workflow``: the tiny workflow (config/backbone-smoke.yaml) in a temporary copy of the
   repository with ``finetune.device: cuda``. Every run's metrics.json (found by glob) must record
   a CUDA device and its peak GPU memory, and every fine-tuning job must have asked for the
   ``gpu`` resource.
2. ``speed``: bench/bench_speed.py on the CPU (one thread: the setting of the CPU table in
   docs/backbone.md, on this machine's CPU) and on CUDA in fp32 and bf16.
3. ``pretrain``: bench/pretrain_sprint.py trains a larger built-in backbone (``LARGE_MODEL``, 2.7M
   parameters) on the synthetic prior for the minutes left, checkpointing every minute, its
   learning-rate decay timed to end at the deadline.
4. ``zeroshot``: bench/bench_zeroshot.py on the shipped TabArena tables (resources/tabarena), the
   new weights first, then the shipped default backbone on the same machine if time is left.

Writes ``gpu_check.json`` (also printed) and ``gpu_check.log`` under ``--out``, the new weights
under ``--out``/pretrained, and everything else (workflow results, stage outputs, the pretraining
run with its checkpoints) under ``--work`` (default ``--out``/work). Exits 0 when every stage
passed, 1 when one failed, 2 before doing anything when CUDA is absent (without ``--smoke``) or
the output folder is not empty.

``--smoke``: the same stages on the CPU with tiny sizes (about a minute): the workflow subset
of one fine-tuning run with ``device: auto`` (which asks for the gpu resource and falls back to
the CPU), one CPU speed measurement, a tiny pretraining for seconds, zero-shot of its weights on
one table. tests/test_gpu_check.py runs it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TABARENA = REPO / "resources" / "tabarena"
SHIPPED_WEIGHTS = REPO / "src" / "causalmixft" / "model" / "weights" / "tfm-small-v2"
# The sprint's backbone: about 13x tfm-small-v2 (209k), in the range of the small public
# speed-run models; its training options are the pretraining CLI's defaults otherwise.
LARGE_MODEL = {"d_model": 192, "n_heads": 6, "n_layers": 6, "d_ff": 384}
TINY_MODEL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "n_thinking_rows": 1}


@dataclass(frozen=True)
class Plan:
    """Sizes of one check: the GPU's, or the smoke run's on the CPU."""

    device: str  # finetune.device of the workflow run and the device of the other stages
    expect_device: str  # what metrics.json must record (its prefix)
    methods: tuple[str, ...]
    sizes: tuple[int, ...]
    speed_runs: tuple[tuple[str, str], ...]  # (device, precision)
    speed_args: tuple[str, ...]
    cpu_speed_args: tuple[str, ...]
    pretrain: dict
    calibration_share: float  # of the pretraining minutes, spent measuring steps per second (pretrain_sprint.py)
    zeroshot_args: tuple[str, ...]
    stage_shares: dict = field(default_factory=dict)  # stage -> share of the whole limit it may take


GPU_PLAN = Plan(
    device="cuda", expect_device="cuda", methods=("zeroshot", "finetune", "causalmixft"), sizes=(0, 64),
    speed_runs=(("cuda", "bf16"), ("cuda", "fp32"), ("cpu", "fp32")),  # the scarce measurements first
    speed_args=(), cpu_speed_args=("--skip-wide", "--repeats", "1"),
    pretrain={"model": LARGE_MODEL, "batch_size": 32, "eval_every": 100, "checkpoint_every": 10**9,
              "checkpoint_every_min": 1.0, "real_datasets": [], "device": "cuda"},
    calibration_share=0.15,
    zeroshot_args=("--folds", "5", "--n-estimators", "16", "--no-baselines"),
    stage_shares={"workflow": 0.25, "speed": 0.2, "zeroshot": 0.3},
)
SMOKE_PLAN = Plan(
    device="auto", expect_device="cpu", methods=("finetune",), sizes=(0,),
    speed_runs=(("cpu", "fp32"),),
    speed_args=("--steps", "2", "--repeats", "1", "--skip-wide", "--ensemble-sizes", "2"),
    cpu_speed_args=(),
    pretrain={"model": TINY_MODEL, "batch_size": 2, "eval_every": 5, "warmup": 2, "checkpoint_every": 10**9,
              "checkpoint_every_min": 0.02, "real_datasets": [], "device": "cpu",
              "prior": {"min_rows": 24, "max_rows": 40, "max_features": 4}},
    calibration_share=0.2,
    zeroshot_args=("--datasets", "diabetes", "--folds", "2", "--n-estimators", "2", "--no-baselines"),
    stage_shares={"workflow": 0.5, "speed": 0.25, "zeroshot": 0.2},
)
# The smoke's pretraining minutes, whatever the limit: enough for the resumed part to reach the
# decay phase after about 6 s of set-up and evaluation per part on a loaded 2-core machine.
SMOKE_PRETRAIN_MIN = 0.35


class Check:
    """The deadline, the log and the subprocesses of one run of the check."""

    def __init__(self, out: Path, work: Path, minutes: float, smoke: bool):
        self.out, self.work, self.smoke = out, work, smoke
        self.plan = SMOKE_PLAN if smoke else GPU_PLAN
        self.start = time.monotonic()
        self.limit_s = minutes * 60
        self.deadline = self.start + self.limit_s
        self.log_path = out / "gpu_check.log"
        self.python = sys.executable

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, message: str) -> None:
        line = f"[{datetime.datetime.now(datetime.timezone.utc):%H:%M:%S}] {message}"
        print(line, file=sys.stderr, flush=True)
        with open(self.log_path, "a") as handle:
            handle.write(line + "\n")

    def run(self, name: str, command: list[str], timeout_s: float, cwd: Path | None = None,
            pythonpath: Path = REPO / "src") -> dict:
        """Run ``command``; its stdout goes to work/<name>.out, both streams into the log."""
        stdout_path = self.work / f"{name}.out"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath),
                                                                          os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1"}
        if self.smoke:  # the 2-core development machines: one thread per process
            env.setdefault("OMP_NUM_THREADS", "1")
        timeout_s = max(1.0, timeout_s)
        self.log(f"{name}: {' '.join(command)} (limit {timeout_s:.0f} s)")
        started = time.monotonic()
        with open(stdout_path, "w") as stdout, open(self.log_path, "a") as log:
            # Its own process group: at the time limit its children (Snakemake's jobs) go with it.
            process = subprocess.Popen(command, stdout=stdout, stderr=log, cwd=cwd, env=env, start_new_session=True)
            try:
                code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None
        wall = round(time.monotonic() - started, 1)
        with open(self.log_path, "a") as log:
            log.write(f"--- {name} stdout ---\n{stdout_path.read_text()[-20000:]}\n")
        status = "ok" if code == 0 else ("timed out" if code is None else f"exit code {code}")
        self.log(f"{name}: {status} after {wall} s")
        return {"returncode": code, "timed_out": code is None, "wall_s": wall, "stdout": str(stdout_path)}

    def json_stdout(self, result: dict):
        """The JSON a bench script printed last (its whole stdout), or None."""
        text = Path(result["stdout"]).read_text()
        start = text.rfind("\n{")
        try:
            return json.loads(text[start + 1:] if start >= 0 else text)
        except json.JSONDecodeError:
            return None

    def budget(self, stage: str) -> float:
        return min(self.left(), self.plan.stage_shares[stage] * self.limit_s)


# --- stage 1: the workflow ------------------------------------------------------------------


def workflow_config(plan: Plan) -> dict:
    config = yaml.safe_load((REPO / "config" / "backbone-smoke.yaml").read_text())
    for spec in config["datasets"].values():  # the run folder is elsewhere: absolute data paths
        spec["source"] = f"file:{REPO / spec['source'].removeprefix('file:')}"
        spec["manifest"] = str(REPO / spec["manifest"])
    config["backbone"] = {"name": SHIPPED_WEIGHTS.name, "weights": str(SHIPPED_WEIGHTS)}
    config["finetune"]["methods"] = list(plan.methods)
    config["synthetic"]["sizes"] = list(plan.sizes)
    config["finetune"]["device"] = plan.device
    return config


def finetune_jobs_with_gpu(snakemake_log: str) -> tuple[int, int]:
    """(fine-tuning jobs, those whose resources include gpu=1) in Snakemake's job listing."""
    jobs = re.findall(r"^(?:local)?rule finetune:\n(?:    .*\n)*?    resources: (.*)$", snakemake_log, re.M)
    return len(jobs), sum(bool(re.search(r"\bgpu=1\b", resources)) for resources in jobs)


def check_workflow(check: Check) -> dict:
    plan, folder = check.plan, check.work / "workflow"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(workflow_config(plan), sort_keys=False))
    with tempfile.TemporaryDirectory(prefix="gpu_check_repo_") as copy:
        # A copy of the code: edits in the checkout during the run cannot trigger reruns.
        copy = Path(copy)
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        for name in ("workflow", "src", "envs"):
            shutil.copytree(REPO / name, copy / name, ignore=ignore)
        shutil.copy(REPO / "Snakefile", copy / "Snakefile")
        cores = str(min(8, os.cpu_count() or 1))
        command = [check.python, "-m", "snakemake", "--snakefile", str(copy / "Snakefile"),
                   "--directory", str(folder), "--workflow-profile", str(copy / "workflow/profiles/default"),
                   "--cores", cores, "--resources", "gpu=1", "--until", "finetune"]
        result = check.run("workflow", command, check.budget("workflow"), cwd=folder, pythonpath=copy / "src")
    snakemake_log = "\n".join(path.read_text() for path in sorted((folder / ".snakemake/log").glob("*.log")))
    jobs, with_gpu = finetune_jobs_with_gpu(snakemake_log)
    runs = []
    for path in sorted((folder / "results").glob("runs/**/metrics.json")):
        metrics = json.loads(path.read_text())
        replicates = metrics.get("replicates", [])
        rates = [r["steps_per_second"] for r in replicates if r.get("steps_per_second")]
        runs.append({"run": str(path.parent.relative_to(folder / "results")), "device": metrics.get("device"),
                     "peak_gpu_memory_mb": metrics.get("peak_gpu_memory_mb", "missing"),
                     "steps_run": metrics.get("steps_run"), "wall_time_s": metrics.get("wall_time_s"),
                     "steps_per_second": round(sum(rates) / len(rates), 2) if rates else None,
                     "test_roc_auc": metrics.get("selected", {}).get("test", {}).get("roc_auc")})
    on_device = all(str(r["device"]).startswith(plan.expect_device) for r in runs)
    if plan.expect_device == "cuda":
        memory = all(isinstance(r["peak_gpu_memory_mb"], (int, float)) and r["peak_gpu_memory_mb"] > 0 for r in runs)
    else:
        memory = all(r["peak_gpu_memory_mb"] is None for r in runs)  # recorded, and null off CUDA
    problems = [text for failed, text in [
        (result["returncode"] != 0, "snakemake did not finish (see the log)"),
        (not runs or len(runs) != jobs, f"{len(runs)} metrics.json files for {jobs} fine-tuning jobs"),
        (not on_device, f"a run's device is not {plan.expect_device}"),
        (not memory, "peak GPU memory not recorded as expected"),
        (with_gpu != jobs, f"{jobs - with_gpu} fine-tuning job(s) without the gpu resource"),
    ] if failed]
    return {"ok": not problems, "problems": problems, "finetune_device": plan.device,
            "finetune_jobs": jobs, "finetune_jobs_with_gpu_resource": with_gpu, "runs": runs,
            "snakemake": {k: result[k] for k in ("returncode", "timed_out", "wall_s")}}


# --- stage 2: speed -------------------------------------------------------------------------


def check_speed(check: Check) -> dict:
    plan, measured, problems = check.plan, {}, []
    stage_end = time.monotonic() + check.budget("speed")
    for index, (device, precision) in enumerate(plan.speed_runs):
        name = f"speed_{device}_{precision}"
        share = (stage_end - time.monotonic()) / (len(plan.speed_runs) - index)
        extra = plan.cpu_speed_args if device == "cpu" else ()
        command = [check.python, str(REPO / "bench/bench_speed.py"), "--device", device, "--precision", precision,
                   "--threads", "1", *plan.speed_args, *extra]
        result = check.run(name, command, share)
        report = check.json_stdout(result) if result["returncode"] == 0 else None
        if report is None:
            problems.append(f"{name}: {'timed out' if result['timed_out'] else 'failed'}")
            continue
        measured[name] = {"finetune_steps_per_second_wall": report["finetune_step"]["steps_per_second_wall"],
                          "prediction_wall_s": {k: v["wall_s"] for k, v in report["prediction"].items()
                                                if isinstance(v, dict)},
                          "wide_multiclass_fold_wall_s": {k: v["wall_s"] for k, v in
                                                          report.get("wide_multiclass_fold", {}).items()
                                                          if isinstance(v, dict)} or None,
                          "device": report["device"], "precision": report["precision"],
                          "hardware": report["hardware"]}
    return {"ok": not problems, "problems": problems, "runs": measured,
            "cpu_reference": "docs/backbone.md, 'Speed of the built-in backbone on the CPU' (bench_speed.py "
                             "--threads 1 on the 2-core development machine); speed_cpu_fp32 is this machine's CPU"}


# --- stage 3: pretraining -------------------------------------------------------------------


def checkpoint_state(directory: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(directory / "checkpoint" / "state.safetensors"), "np") as state:
        parameters = sum(math.prod(state.get_slice(k).get_shape()) for k in state.keys() if k.startswith("model."))
    return {"parameters": parameters, **json.loads((directory / "checkpoint" / "state.json").read_text())["extra"]}


def weights_from_checkpoint(run_dir: Path, model: dict, target: Path) -> dict:
    """The newest checkpoint's model as a weights folder (not averaged): a sprint killed at its
    time limit still leaves weights to score. Returns the checkpoint's step record."""
    sys.path.insert(0, str(REPO / "src"))  # as the stages' PYTHONPATH, for a checkout not pip-installed
    from safetensors.torch import load_file

    from causalmixft.model.backbone import save_model
    from causalmixft.model.transformer import ModelConfig, TabularTransformer

    tensors = load_file(str(run_dir / "checkpoint" / "state.safetensors"))
    module = TabularTransformer(ModelConfig(**model))
    module.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    extra = json.loads((run_dir / "checkpoint" / "state.json").read_text())["extra"]
    save_model(module, target, extra={"pretraining": {"from_checkpoint": extra}})
    return extra


def check_pretrain(check: Check) -> dict:
    plan, run_dir = check.plan, check.work / "pretrain"
    startup_s = 30  # the interpreter's and torch's start before the sprint's own clock
    minutes = SMOKE_PRETRAIN_MIN if check.smoke else (check.left() - startup_s
                                                       - plan.stage_shares["zeroshot"] * check.limit_s) / 60
    if minutes * 60 < 30 and not check.smoke:
        return {"ok": False, "problems": [f"only {minutes * 60:.0f} s left for pretraining"]}
    command = [check.python, str(REPO / "bench/pretrain_sprint.py"), "--out", str(run_dir),
               "--minutes", f"{minutes:.3f}", "--options", json.dumps(plan.pretrain),
               "--calibration-share", str(plan.calibration_share)]
    result = check.run("pretrain", command, minutes * 60 + startup_s)
    summary = check.json_stdout(result) if result["returncode"] == 0 else None
    written_path = run_dir / "checkpoints.jsonl"
    written = [json.loads(line) for line in written_path.read_text().splitlines()] if written_path.exists() else []
    report = {"model": plan.pretrain["model"], "options": {k: v for k, v in plan.pretrain.items() if k != "model"},
              "minutes": round(minutes, 2), "checkpoints_written": written, "run_dir": str(run_dir),
              "sprint": {k: result[k] for k in ("returncode", "timed_out", "wall_s")}}
    if summary is None:
        problems = ["the pretraining sprint did not finish (see the log)"]
        if (run_dir / "checkpoint" / "state.safetensors").exists():
            extra = weights_from_checkpoint(run_dir, plan.pretrain["model"], check.out / "pretrained")
            report |= {"weights": str(check.out / "pretrained"), "parameters": checkpoint_state(run_dir)["parameters"],
                       "weights_from": f"the checkpoint of step {extra['step']} (not averaged)"}
        return {"ok": False, "problems": problems, **report}
    state = checkpoint_state(run_dir)
    final = run_dir / "final"
    from safetensors.numpy import load_file

    final_parameters = int(sum(v.size for v in load_file(str(final / "model.safetensors")).values()))
    shutil.copytree(final, check.out / "pretrained")
    minimum = 1 if check.smoke else 2_000_000
    problems = [text for failed, text in [
        (state["parameters"] < minimum, f"{state['parameters']} parameters, fewer than {minimum}"),
        (final_parameters != state["parameters"], "final weights and checkpoint differ in size"),
        (len(written) < 2, f"{len(written)} checkpoint(s) written; expected one a minute and one at the end"),
    ] if failed]
    return {"ok": not problems, "problems": problems, **report, "parameters": state["parameters"],
            "steps": summary["steps"], "steps_per_second": round(summary["steps"] / max(summary["wall_time_s"], 1e-9), 3),
            "datasets_seen": summary["datasets_seen"], "final_train_loss": summary["final_train_loss"],
            "decay_reached": summary["weights_averaged_over_last_steps"] > 0,
            "prior_loss": summary["prior_loss"], "prior_roc_auc": summary["prior_roc_auc"],
            "calibration": summary["sprint"], "hardware": summary["hardware"], "weights": str(check.out / "pretrained")}


# --- stage 4: zero-shot ---------------------------------------------------------------------


def check_zeroshot(check: Check, pretrained: Path | None) -> dict:
    plan, scored, problems = check.plan, {}, []
    device = plan.pretrain["device"]  # where the sprint ran
    # The shipped backbone on the same machine for comparison; the smoke leaves it out (same code path).
    candidates = {"pretrained": pretrained} if check.smoke else {"pretrained": pretrained, "shipped": SHIPPED_WEIGHTS}
    for name, weights in candidates.items():
        if weights is None:
            problems.append(f"{name}: no weights to score")
            continue
        time_left = check.left()
        if name == "shipped" and time_left < 30:
            scored[name] = {"skipped": f"{time_left:.0f} s left"}
            continue
        command = [check.python, str(REPO / "bench/bench_zeroshot.py"), str(weights), "--data-dir", str(TABARENA),
                   "--device", device, "--threads", "1", *plan.zeroshot_args]
        result = check.run(f"zeroshot_{name}", command, time_left)
        report = check.json_stdout(result) if result["returncode"] == 0 else None
        if report is None:
            problems.append(f"zeroshot_{name}: {'timed out' if result['timed_out'] else 'failed'}")
            continue
        method = next(iter(report["mean_over_datasets"]))  # --no-baselines: the backbone only
        scored[name] = {"weights": str(weights), "mean_test_roc_auc": report["mean_over_datasets"][method],
                        "tables": len(report["per_dataset"]), "wall_s": report["wall_time_s"],
                        "per_dataset": {d: row[method] for d, row in report["per_dataset"].items()},
                        "protocol": report["protocol"]}
    return {"ok": not problems, "problems": problems, "scores": scored, "data_dir": str(TABARENA)}


# --- the whole check ------------------------------------------------------------------------


def finite(value):
    """``value`` with NaN and infinities as None: the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def machine(smoke: bool) -> dict:
    import torch

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"host": socket.gethostname(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "git_commit": commit.stdout.strip() or None, "smoke": smoke}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="wall limit of the whole check")
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="output folder, empty or new (default: $OUT)")
    parser.add_argument("--work", type=Path, default=None, help="bulky outputs (default: OUT/work)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (about a minute)")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("no output folder: pass --out DIR (or set OUT)")
    if args.out.exists() and any(args.out.iterdir()):
        print(f"gpu_check: {args.out} is not empty; give a new or empty folder", file=sys.stderr)
        return 2
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine (torch.cuda.is_available() is False); "
              "run it on a GPU node, or pass --smoke for the CPU smoke run", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, work, args.minutes, args.smoke)
    report = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "limit_min": args.minutes, "machine": machine(args.smoke), "stages": {}}
    check.log(f"gpu_check: {'smoke run on the CPU' if args.smoke else 'CUDA'}, limit {args.minutes} min, out {args.out}")
    stages = report["stages"]
    for name, function in (("workflow", check_workflow), ("speed", check_speed), ("pretrain", check_pretrain)):
        try:
            stages[name] = function(check)
        except Exception as error:  # a broken stage must not cost the others their lease time
            check.log(f"{name}: {type(error).__name__}: {error}")
            stages[name] = {"ok": False, "problems": [f"{type(error).__name__}: {error}"]}
    pretrained = args.out / "pretrained" if (args.out / "pretrained" / "model.safetensors").exists() else None
    try:
        stages["zeroshot"] = check_zeroshot(check, pretrained)
    except Exception as error:
        check.log(f"zeroshot: {type(error).__name__}: {error}")
        stages["zeroshot"] = {"ok": False, "problems": [f"{type(error).__name__}: {error}"]}
    report["ok"] = all(stage["ok"] for stage in stages.values())
    report["wall_s"] = round(time.monotonic() - check.start, 1)
    text = json.dumps(finite(report), indent=2, allow_nan=False)
    (args.out / "gpu_check.json").write_text(text + "\n")
    print(text)
    check.log(f"gpu_check: {'all stages passed' if report['ok'] else 'a stage failed'} in {report['wall_s']} s")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
