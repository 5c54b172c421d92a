"""A damaged run (truncated weights, broken JSON) is found by the aggregate and removed whole."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from causalmixft.experiment.run_files import RUN_FILES, check_runs, run_file_names
from causalmixft.io import DamagedFile, write_json


def finished_run(folder):
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(32, 32)}, str(folder / "model.safetensors"))
    write_json(folder / "config.json", {"d_model": 8})
    write_json(folder / "metrics.json", {"method": "finetune"})
    return folder / "metrics.json"


def test_whole_runs_pass_and_an_unfinished_run_is_left_to_the_missing_table(tmp_path):
    good = finished_run(tmp_path / "a")
    check_runs([good, tmp_path / "never" / "metrics.json"])
    assert all((tmp_path / "a" / name).exists() for name in RUN_FILES)


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda run: run.joinpath("model.safetensors").write_bytes(run.joinpath("model.safetensors").read_bytes()[:500]),
         r"model\.safetensors is damaged \(500 bytes where its header says"),
        (lambda run: run.joinpath("model.safetensors").unlink(), r"model\.safetensors is missing"),
        (lambda run: run.joinpath("config.json").write_text('{"d_mo'), r"config\.json is not valid JSON"),
        (lambda run: run.joinpath("metrics.json").write_text("{"), r"metrics\.json is not valid JSON"),
    ],
)
def test_a_damaged_run_is_named_and_removed_whole_and_the_others_stay(tmp_path, damage, problem):
    good, bad = finished_run(tmp_path / "good"), finished_run(tmp_path / "bad")
    damage(bad.parent)
    with pytest.raises(DamagedFile, match=rf"1 fine-tuning run\(s\) damaged: .*bad/{problem}.*a plain rerun .* fine-tunes them again"):
        check_runs([good, bad])
    assert not any((bad.parent / name).exists() for name in RUN_FILES)
    assert all((good.parent / name).exists() for name in RUN_FILES)


def test_runs_without_kept_weights_are_whole_without_them_and_still_checked(tmp_path):
    assert run_file_names(keep_weights=False) == ("config.json", "metrics.json")
    assert run_file_names() == RUN_FILES and RUN_FILES[-1] == "metrics.json"  # written last
    good, bad = finished_run(tmp_path / "good"), finished_run(tmp_path / "bad")
    (good.parent / "model.safetensors").unlink()
    (bad.parent / "model.safetensors").unlink()
    bad.parent.joinpath("config.json").write_text('{"d_mo')
    with pytest.raises(DamagedFile, match=r"1 fine-tuning run\(s\) damaged: .*bad/config\.json is not valid JSON"):
        check_runs([good, bad], keep_weights=False)
    assert good.exists() and not bad.exists()
    with pytest.raises(DamagedFile, match=r"good/model\.safetensors is missing"):
        check_runs([good])  # where weights are kept, a run without them is damaged
