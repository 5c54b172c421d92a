"""The shipped TabArena tables: every file is in the manifest with its sha256, and LICENSES.md is the
rendering of the manifest's licence fields.

LICENSES.md is generated from MANIFEST.json; after changing the manifest, rewrite it with
``python tests/test_tabarena_resources.py`` (the test below fails until the two agree).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

TABARENA = Path(__file__).resolve().parents[1] / "resources" / "tabarena"
MANIFEST = TABARENA / "MANIFEST.json"

INTRO = """\
# Licences and attribution of the TabArena data in this folder

The {count} `*.csv.gz` files are real public datasets, rebuilt from the sources named below as described
in `MANIFEST.json` (field `differences`); the licences are those TabArena states for each dataset
(`license`):
{licences}.
If you use a dataset, cite its original source (the UCI Machine Learning Repository, Kaggle or the
named collection) and TabArena.

Where the source below is a third-party copy whose repository has no licence file (`source repository:
no licence file ...`), the file was taken from that copy and checked against TabArena's shape
(`matches_tabarena_shape`); the licence that applies is the one TabArena states for the original data,
not the copy's. TabArena states `Public` (without more) for Bank_Customer_Churn.

This file is generated from `MANIFEST.json` (`python tests/test_tabarena_resources.py`; the test
`test_licences_are_the_manifest_rendered` checks the two agree).

`tabarena_v0.1_classification.csv` is TabArena's task metadata (dataset names, OpenML task ids,
shapes, licences, original URLs), taken from `{metadata}`;
its own `licence` and `original_data_url` columns give the licence and origin of all 38 tasks.
Datasets fetched with `openml:<task_id>` come from OpenML under the licence OpenML lists for them.
"""


def licence_section(entry: dict) -> str:
    """One dataset's section: licence, source, OpenML ids, sha256 and the differences from TabArena."""
    return (
        f"## {entry['tabarena_name']} (`{entry['file']}`)\n\n"
        f"- Licence: {entry['license']}\n"
        f"- Source: `{entry['source']['ref']}` (source repository: {entry['source_repo_license']})\n"
        f"- OpenML: task {entry['openml_task_id']}, dataset {entry['openml_dataset_id']}\n"
        f"- sha256 of the file: `{entry['sha256']}`\n"
        f"- Differences from TabArena's version: {entry['differences']}\n"
    )


def licences_text(manifest: dict) -> str:
    entries = manifest["datasets"]
    licences = ", ".join(sorted({e["license"] for e in entries}))
    intro = INTRO.format(count=len(entries), licences=licences, metadata=manifest["tabarena_metadata_source"])
    return "\n".join([intro, *(licence_section(e) for e in entries)])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def test_every_shipped_table_is_in_the_manifest_with_its_sha256_and_size():
    entries = {e["file"]: e for e in manifest()["datasets"]}
    shipped = sorted(p.name for p in TABARENA.glob("*.csv.gz"))
    assert shipped == sorted(entries) and len(shipped) == 19
    for name in shipped:
        path = TABARENA / name
        assert sha256(path) == entries[name]["sha256"], name
        assert path.stat().st_size == entries[name]["bytes"], name


def test_manifest_shapes_match_the_files():
    for entry in manifest()["datasets"]:
        # the manifest's reading recipe; the label read as text ("false"/"true" would become booleans)
        table = pd.read_csv(TABARENA / entry["file"], keep_default_na=False, na_values=[""],
                            dtype={entry["target_column"]: str})
        assert list(table.columns) == [*entry["feature_columns"], entry["target_column"]], entry["file"]
        assert table.shape == (entry["rows"], entry["n_features"] + 1), entry["file"]
        counts = table[entry["target_column"]].value_counts().to_dict()
        assert counts == entry["class_counts"], entry["file"]


def test_the_task_list_names_every_shipped_table():
    tasks = pd.read_csv(TABARENA / "tabarena_v0.1_classification.csv")
    ids = dict(zip(tasks["dataset_name"], tasks["task_id"]))
    for entry in manifest()["datasets"]:
        assert ids[entry["tabarena_name"]] == entry["openml_task_id"], entry["tabarena_name"]


def test_licences_are_the_manifest_rendered():
    assert (TABARENA / "LICENSES.md").read_text() == licences_text(manifest()), (
        "LICENSES.md is out of date: run python tests/test_tabarena_resources.py"
    )


if __name__ == "__main__":
    (TABARENA / "LICENSES.md").write_text(licences_text(manifest()))
    sys.exit(0)
