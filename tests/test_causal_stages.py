"""CausalMixFT file to file (the generator kit's steps: discover a DAG, fit and sample the generator), the thin
Snakemake scripts, and checksummed pickles."""

import json
import os
import runpy
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import pandas as pd
import pytest

from causalmixft.causal import simulate
from causalmixft.generators.job import Job, SplitFiles, stage_seed
from causalmixft.generators.sampling import SampleTarget, SamplingSettings
from causalmixft.generators.steps import load_fitted_generator, run_discover, run_fit_generator, run_sample
from causalmixft.errors import StageError
from causalmixft.io import read_pickle, write_json, write_parquet

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
SIZES = [64, 256]
SETTINGS = {"options": {}, "seed": 0, "quality": "fast"}  # fit_generator's params for causalmixft


def meta_of(schema) -> dict:
    return {
        "dataset": schema.dataset,
        "classes": list(schema.classes),
        "features": [f.to_dict() for f in schema.features],
    }


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    """A prepared-looking split of the mixed SCM: train, val and the dataset meta."""
    root = tmp_path_factory.mktemp("causal_stage")
    table = simulate.mixed(260, seed=3)
    paths = {name: root / f"{name}.parquet" for name in ("train", "val")}
    write_parquet(paths["train"], table.frame.iloc[:200])
    write_parquet(paths["val"], table.frame.iloc[200:])
    paths["meta"] = root / "mixed.meta.json"
    write_json(paths["meta"], meta_of(table.schema))
    return root, paths, table


JOB = Job("mixed", 0, 0)


def target_in(folder: Path, size: int) -> SampleTarget:
    return SampleTarget(size, folder / f"n{size}.parquet", folder / f"n{size}.fidelity.json")


def files(paths: dict, val: bool = False) -> SplitFiles:
    return SplitFiles(paths["train"], paths["meta"], paths["val"] if val else None)


@pytest.fixture(scope="module")
def stage_outputs(split_files):
    root, paths, _ = split_files
    out = root / "causal"
    run_discover(JOB, files(paths), out / "dag.pkl", out / "dag.json", out / "dag.png", {})
    fitted = out / "generator.pkl"
    run_fit_generator("causalmixft", JOB, files(paths), fitted, out / "report.json", SETTINGS, dag=out / "dag.pkl")
    synth = root / "synth"
    sampling = SamplingSettings(fidelity_rows=512)
    for size in SIZES:  # one job per size, as the workflow runs them
        generator = load_fitted_generator(fitted, "mixed", "causalmixft")
        run_sample(JOB, files(paths, val=True), generator, target_in(synth, size), sampling, out / "report.json")
    return out, synth


def test_stages_write_every_output(stage_outputs, split_files):
    out, synth = stage_outputs
    *_, table = split_files
    for name in ("dag.pkl", "dag.pkl.sha256", "dag.json", "dag.png", "generator.pkl", "generator.pkl.sha256", "report.json"):
        assert (out / name).stat().st_size > 0, name
    dag = read_pickle(out / "dag.pkl")
    assert isinstance(dag, nx.DiGraph) and set(dag.nodes) == set(table.frame.columns)
    record = json.loads((out / "dag.json").read_text())
    assert (record["dataset"], record["fold"]) == ("mixed", 0)
    assert record["seed"] == stage_seed(0, "mixed", 0, "discover")
    report = json.loads((out / "report.json").read_text())
    assert (report["generator"], report["dataset"], report["fold"]) == ("causalmixft", "mixed", 0)
    scm = report["report"]["scm"]
    assert scm["quality"] == "fast" and {n["node"] for n in scm["nodes"]} == set(table.frame.columns)
    # the SCM is fitted on the discovered DAG with the fit stage's seed (as before the generic track)
    assert scm["seed"] == stage_seed(0, "mixed", 0, "fit") and report["report"]["discovery"] is None
    assert scm["n_edges"] + len(scm["edges_dropped_for_constant_nodes"]) == dag.number_of_edges()
    small, large = (pd.read_parquet(synth / f"n{n}.parquet") for n in SIZES)
    pd.testing.assert_frame_equal(small, large.iloc[:64])
    fidelity = json.loads((synth / "n64.fidelity.json").read_text())
    assert (fidelity["size"], fidelity["generator"], fidelity["rows"]["synthetic"]) == (64, "causalmixft", 64)
    assert fidelity["fit_time_s"] == report["fit_time_s"] and fidelity["sample_time_s"] >= 0
    assert {
        "two_sample_auc",
        "tstr",
        "marginal_distance",
        "correlation_distance",
        "label_distribution",
        "sampling",
    } <= set(fidelity)
    assert fidelity["sampling"]["dropped"]["total"] == 0


def test_a_changed_pickle_is_refused_with_a_stage_error(stage_outputs, split_files, tmp_path):
    out, _ = stage_outputs
    _, paths, _ = split_files
    tampered = tmp_path / "generator.pkl"
    tampered.write_bytes((out / "generator.pkl").read_bytes() + b"\0")
    (tmp_path / "generator.pkl.sha256").write_text((out / "generator.pkl.sha256").read_text())
    with pytest.raises(StageError, match=r"\[sample\] mixed: refusing to unpickle .*signature does not match"):
        load_fitted_generator(tampered, "mixed", "causalmixft")
    (tmp_path / "dag.pkl").write_bytes((out / "dag.pkl").read_bytes())  # no sidecar
    with pytest.raises(StageError, match=r"\[fit\] mixed: .*signature file dag.pkl.sha256 is missing"):
        run_fit_generator("causalmixft", JOB, files(paths), tmp_path / "g.pkl", tmp_path / "r.json", SETTINGS, tmp_path / "dag.pkl")
    assert not (tmp_path / "g.pkl").exists()


def test_a_sample_needs_a_size_above_zero_and_the_pickle_of_its_generator(stage_outputs, split_files, tmp_path):
    out, _ = stage_outputs
    _, paths, _ = split_files
    generator = load_fitted_generator(out / "generator.pkl", "mixed", "causalmixft")
    with pytest.raises(StageError, match=r"\[sample\] mixed: a sample needs a size above 0, got 0"):
        run_sample(JOB, files(paths, val=True), generator, target_in(tmp_path, 0), SamplingSettings())
    with pytest.raises(StageError, match=r"\[sample\] mixed: .*dag.pkl holds 'DiGraph', not a fitted causalmixft"):
        load_fitted_generator(out / "dag.pkl", "mixed", "causalmixft")
    with pytest.raises(StageError, match=r"\[sample\] mixed: .*generator.pkl holds 'causalmixft', not a fitted smote"):
        load_fitted_generator(out / "generator.pkl", "mixed", "smote")


def test_a_split_without_the_schemas_columns_is_a_stage_error(split_files, tmp_path):
    _, paths, table = split_files
    write_parquet(tmp_path / "train.parquet", table.frame.drop(columns="weight"))
    with pytest.raises(StageError, match=r"\[discover\] mixed: .*lacks the schema's columns \['weight'\]"):
        split = SplitFiles(tmp_path / "train.parquet", paths["meta"])
        run_discover(JOB, split, tmp_path / "d.pkl", tmp_path / "d.json", None, {})


def _run_script(name: str, tmp_path: Path, **fields):
    log = tmp_path / f"{name}.log"
    snakemake = SimpleNamespace(
        log=[str(log)], threads=1, **{k: SimpleNamespace(**v) if isinstance(v, dict) else v for k, v in fields.items()}
    )
    snakemake.input = _Files(**vars(snakemake.input))
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a failure marker goes to results/failed/ under the working directory
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": snakemake}, run_name="__main__")
    finally:
        os.chdir(cwd)
    return log.read_text()


class _Files(SimpleNamespace):
    """Named input files that also iterate, as Snakemake's do (the failure marker lists them)."""

    def __iter__(self):
        return iter(vars(self).values())


def test_the_snakemake_scripts_call_the_stages_and_log_to_their_log_file(split_files, tmp_path):
    _, paths, _ = split_files
    wildcards = {"dataset": "mixed", "fold": "1"}
    common = {"train": str(paths["train"]), "meta": str(paths["meta"])}
    out = tmp_path / "causal"
    log = _run_script(
        "discover_dag",
        tmp_path,
        input=common,
        output={"dag": str(out / "dag.pkl"), "json": str(out / "dag.json"), "png": str(out / "dag.png")},
        params={"discovery": {"algorithms": ["pc", "fci"], "alpha": 0.05}, "seed": 0},
        wildcards=wildcards,
    )
    assert "pc on mixed" in log and "fci on mixed" in log
    wildcards = {**wildcards, "generator": "causalmixft", "budget": "200"}
    fitted = {"fitted": str(out / "generator.pkl"), "report": str(out / "report.json")}
    _run_script(
        "fit_generator",
        tmp_path,
        input={**common, "dag": str(out / "dag.pkl")},
        output=fitted,
        params={"settings": SETTINGS, "marker": str(tmp_path / "fit.marker.json")},
        wildcards=wildcards,
    )
    synth = tmp_path / "n256.parquet"
    fidelity = tmp_path / "n256.fidelity.json"
    log = _run_script(
        "sample_generator",
        tmp_path,
        input={**common, **fitted, "val": str(paths["val"])},
        output={"synth": str(synth), "fidelity": str(fidelity)},
        params={"settings": {"sampling": {"fidelity_rows": 256}, "seed": 0}, "marker": str(tmp_path / "m.json")},
        wildcards={**wildcards, "size": "256"},
    )
    assert "n=256: two-sample AUC" in log
    assert len(pd.read_parquet(synth)) == 256
    assert json.loads(fidelity.read_text())["fold"] == 1


def test_a_failing_script_writes_the_stage_error_to_its_log(split_files, tmp_path):
    _, paths, _ = split_files
    marker = tmp_path / "fit.marker.json"
    with pytest.raises(StageError):
        _run_script(
            "fit_generator",
            tmp_path,
            input={"train": str(paths["train"]), "meta": str(paths["meta"]), "dag": str(tmp_path / "absent.pkl")},
            output={"fitted": str(tmp_path / "generator.pkl"), "report": str(tmp_path / "r.json")},
            params={"settings": SETTINGS, "marker": str(marker)},
            wildcards={"generator": "causalmixft", "dataset": "mixed", "fold": "0", "budget": "200"},
        )
    assert "[fit] mixed: refusing to unpickle" in (tmp_path / "fit_generator.log").read_text()
    assert json.loads(marker.read_text())["generator"] == "causalmixft"  # reported like any generator's
