"""Code inputs: the package modules a workflow script runs (causalmixft.workflow_code), and what a
dry run reruns after one module is edited.

The unit tests read small packages written to tmp_path; the workflow test edits modules of a
copy of the repository whose outputs all exist (empty files marked up to date by --touch), so
each dry run shows exactly the jobs an edit invalidates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, job_counts, repo_copy, run_snakemake, tiny_config, write_config

from causalmixft.workflow_code import package_modules, script_modules

SRC = REPO / "src"
SCRIPTS = REPO / "workflow" / "scripts"


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def names(files: list[Path], root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in files}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return write_package(
        tmp_path / "src",
        {
            "pkg/__init__.py": "",
            "pkg/top.py": """
                from pkg.helper import helper
                from pkg.registry import REGISTRY

                def used():
                    from pkg.lazy import lazy
                    return lazy() + helper()

                def unused():
                    from pkg.never import never
                    return never()
            """,
            "pkg/helper.py": "def helper():\n    return 1\n",
            "pkg/lazy.py": "def lazy():\n    return 2\n",
            "pkg/never.py": "def never():\n    return 3\n",
            "pkg/registry.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from pkg.typing_only import Hint

                def _maker():
                    from pkg.made import made
                    return made

                REGISTRY = {"made": _maker}
            """,
            "pkg/typing_only.py": "class Hint: ...\n",
            "pkg/made.py": "def made():\n    return 4\n",
            "pkg/sub/__init__.py": "from .inner import inner\n",
            "pkg/sub/inner.py": "from ..helper import helper\n\ndef inner():\n    return helper()\n",
            "pkg/sub/other.py": "def other():\n    return 5\n",
            "pkg/dynamic.py": "def dynamic():\n    return 6\n",
        },
    )


def test_follows_functions_the_script_refers_to_and_their_lazy_imports(package, tmp_path):
    script = write_package(tmp_path, {"script.py": "from pkg.top import used\nused()\n"}) / "script.py"
    found = names(package_modules(script, package, package="pkg"), package)
    # top's import-time code imports helper and registry; the registry's maker may run (made)
    assert found == {"pkg/__init__.py", "pkg/top.py", "pkg/helper.py", "pkg/lazy.py", "pkg/registry.py", "pkg/made.py"}
    assert "pkg/never.py" not in found  # imported only inside a function the script never reaches
    assert "pkg/typing_only.py" not in found  # under `if TYPE_CHECKING:`


def test_module_attributes_relative_imports_and_extra_modules(package, tmp_path):
    script = write_package(tmp_path, {"script.py": "import pkg.sub\npkg.sub.inner()\n"}) / "script.py"
    found = names(package_modules(script, package, package="pkg"), package)
    # importing pkg.sub runs its __init__, which imports .inner, which imports ..helper
    assert found == {"pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/inner.py", "pkg/helper.py"}
    with_extra = names(package_modules(script, package, ["pkg.dynamic"], package="pkg"), package)
    assert with_extra == found | {"pkg/dynamic.py"}
    with pytest.raises(ValueError, match="pkg.missing is not a module"):
        package_modules(script, package, ["pkg.missing"], package="pkg")


def test_an_edited_file_is_read_again(package, tmp_path):
    script = write_package(tmp_path, {"script.py": "from pkg.helper import helper\n"}) / "script.py"
    assert "pkg/sub/other.py" not in names(package_modules(script, package, package="pkg"), package)
    (package / "pkg/helper.py").write_text("from pkg.sub.other import other\n\ndef helper():\n    return other()\n")
    assert "pkg/sub/other.py" in names(package_modules(script, package, package="pkg"), package)


def rule_code(script: str, *extra: str) -> set[str]:
    return {Path(p).relative_to(SRC / "causalmixft").as_posix() for p in script_modules(SCRIPTS / script, SRC, extra)}


def test_the_modules_fine_tuning_runs_are_its_code_inputs():
    # the modules the hand-written list missed (issue 16)
    code = rule_code("finetune.py")
    assert {"model/adamw.py", "model/interface.py", "gpu.py", "io.py", "data/schema.py", "seeding.py"} <= code
    assert not any(name.startswith(("causal/", "baselines/")) for name in code)


def test_discovery_does_not_depend_on_the_scm_and_a_generator_on_its_own_module():
    assert "causal/discover.py" in rule_code("discover_dag.py")
    assert "causal/scm.py" not in rule_code("discover_dag.py")
    causalmixft = rule_code("fit_generator.py", "causalmixft.generators.causalmixft")
    assert {"generators/causalmixft.py", "causal/scm.py"} <= causalmixft
    assert "causal/scm.py" not in rule_code("fit_generator.py", "causalmixft.baselines.smote")
    smote = rule_code("sample_generator.py", "causalmixft.baselines.smote")
    assert "baselines/smote.py" in smote and "baselines/tabebm.py" not in smote


IMPORTED_AT_RUN_TIME = """
import ast, json, sys
from pathlib import Path
tree = ast.parse(Path(sys.argv[1]).read_text())
exec(compile(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []), "imports", "exec"))
print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items() if n.startswith("causalmixft") and m.__file__)))
"""


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.py")))
def test_every_module_a_script_imports_when_it_starts_is_a_code_input(script):
    """Checked against Python itself: the modules in sys.modules after the script's imports."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_AT_RUN_TIME, str(SCRIPTS / script)],
        env=env, capture_output=True, text=True, check=True,
    )
    imported = {Path(p).resolve() for p in json.loads(result.stdout)}
    computed = {Path(p).resolve() for p in script_modules(SCRIPTS / script, SRC)}
    assert imported <= computed, sorted(imported - computed)


# --- what a dry run reruns after an edit ----------------------------------------------------

ALL_RULES = {
    "pretrain_backbone", "prepare_dataset", "split", "discover_dag", "fit_generator", "sample_generator",
    "finetune", "aggregate",
}
UPSTREAM_OF_FINETUNE = ALL_RULES - {"finetune", "aggregate"}

# module edited -> (rules that must rerun, rules that must not); `all` reruns whenever anything does
EDITS = {
    # modules fine-tuning runs that the hand-written list missed
    "model/adamw.py": ({"finetune", "aggregate"}, UPSTREAM_OF_FINETUNE),
    "gpu.py": ({"finetune", "aggregate"}, UPSTREAM_OF_FINETUNE),
    "model/interface.py": ({"pretrain_backbone", "finetune", "aggregate"}, {"prepare_dataset", "discover_dag"}),
    "seeding.py": ({"split", "discover_dag", "fit_generator", "finetune"}, {"prepare_dataset", "pretrain_backbone"}),
    "data/schema.py": ({"prepare_dataset", "finetune"}, {"pretrain_backbone"}),
    "io.py": (ALL_RULES, set()),
    # the causal stage: the SCM's module reruns the SCM generators' fits and samples, not discovery
    "causal/scm.py": (
        {"fit_generator", "sample_generator"}, {"prepare_dataset", "split", "discover_dag", "pretrain_backbone"}
    ),
    "causal/discover.py": ({"discover_dag", "fit_generator"}, {"prepare_dataset", "split", "pretrain_backbone"}),
    # the aggregation's own modules rerun the aggregation only
    "analysis/plots.py": ({"aggregate"}, ALL_RULES - {"aggregate"}),
    # the generator kit's sampling step reruns every sample and what uses it, not discovery or fits
    "generators/sampling.py": (
        {"sample_generator", "finetune", "aggregate"},
        {"prepare_dataset", "split", "discover_dag", "fit_generator", "pretrain_backbone"},
    ),
    # modules no job runs: the workflow's own parse-time helpers
    "workflow_code.py": (set(), ALL_RULES),
    "workflow_config.py": (set(), ALL_RULES),
    "preflight.py": (set(), ALL_RULES),
}


def dry_run(work: Path, repo: Path) -> dict[str, int] | str:
    result = run_snakemake(work, "--dry-run", snakefile=repo / "Snakefile")
    counts = job_counts(result.stdout)
    return counts or ("nothing" if "Nothing to be done" in result.stdout + result.stderr else result.stdout)


@pytest.mark.slow  # 14 dry runs, about a minute
def test_editing_a_module_reruns_the_rules_whose_code_runs_it_and_no_other(tmp_path, monkeypatch):
    repo = repo_copy(tmp_path)
    monkeypatch.setenv("CAUSALMIXFT_TABMWP_TABLES", str(REPO / "resources" / "tabmwp"))  # the copy has no resources/
    work = tmp_path / "work"
    work.mkdir()
    config = tiny_config()
    config["datasets"] = {"iris": {"source": "sklearn:iris"}, "money": {"source": "tabmwp:probe-enough-money"}}
    config["protocol"].update(folds=[0])
    config["synthetic"].update(generators=["causalmixft", "smote", "tabebm"], sizes=[0, 16])
    config["finetune"]["methods"] = ["zeroshot", "finetune", "causalmixft", "smote", "tabebm"]
    config["backbone"]["pretrain"] = {"steps": 1}
    write_config(work, config)
    # every output as an empty file, marked up to date: nothing to be done until a module changes
    summary = run_snakemake(work, "--summary", snakefile=repo / "Snakefile").stdout.splitlines()
    for line in summary[summary.index(next(s for s in summary if s.startswith("output_file"))) + 1 :]:
        output = work / line.split("\t")[0]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.touch()
    run_snakemake(work, "--touch", snakefile=repo / "Snakefile")
    assert dry_run(work, repo) == "nothing"

    for module, (rerun, kept) in EDITS.items():
        path = repo / "src" / "causalmixft" / module
        original, stat = path.read_text(), path.stat()
        path.write_text(original + "\n# an edit\n")
        jobs = dry_run(work, repo)
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert jobs == "nothing" or isinstance(jobs, dict), (module, jobs)
        rules = set() if jobs == "nothing" else set(jobs) - {"all"}
        assert rules >= rerun, (module, jobs)
        assert not rules & kept, (module, sorted(rules & kept))

    # a generator's module reruns that generator's jobs and what uses its samples, not another's
    path = repo / "src" / "causalmixft" / "baselines" / "smote.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    jobs = dry_run(work, repo)
    assert jobs == {"fit_generator": 2, "sample_generator": 2, "finetune": 2, "aggregate": 1, "all": 1}
