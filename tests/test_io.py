"""Artifacts read back as written or healed: a damaged file (parquet, JSON, a pickle that this
installation did not sign) is removed with a message naming it, so a plain rerun rebuilds it."""

from __future__ import annotations

import json
import os
import pickle
import stat

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from causalmixft import signing
from causalmixft.io import (
    DamagedFile,
    read_json,
    read_parquet,
    read_pickle,
    safetensors_problem,
    write_json,
    write_manifest,
    write_parquet,
    write_pickle,
)

RERUN = r"Removed .*: a plain rerun of the workflow \(the same command\) rebuilds (it|them)"


@pytest.fixture(autouse=True)
def own_key(tmp_path, monkeypatch):
    """Each test signs with a fresh key of its own (never the user's)."""
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "keys" / "pickle.key"))


def test_a_pickle_reads_back_while_it_matches_its_signature(tmp_path):
    write_pickle(tmp_path / "x.pkl", {"a": [1, 2]})
    sidecar = (tmp_path / "x.pkl.sha256").read_text()
    assert sidecar.startswith("hmac-sha256:") and sidecar.endswith("  x.pkl\n")
    assert read_pickle(tmp_path / "x.pkl") == {"a": [1, 2]}


def test_the_key_is_created_once_outside_results_readable_by_its_owner_only(tmp_path):
    write_pickle(tmp_path / "x.pkl", 1)
    key = signing.key_path()
    assert key == tmp_path / "keys" / "pickle.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_text()
    write_pickle(tmp_path / "y.pkl", 2)
    assert key.read_text() == first


def test_the_default_key_lives_in_the_user_config_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(signing.KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert signing.key_path() == tmp_path / "cfg" / "causalmixft" / "pickle.key"


def test_a_changed_pickle_is_removed_with_its_sidecar_and_the_message_says_a_rerun_rebuilds_it(tmp_path):
    path = tmp_path / "x.pkl"
    write_pickle(path, {"a": 1})
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DamagedFile, match=rf"refusing to unpickle .*x\.pkl: .*signature does not match x\.pkl\.sha256.*{RERUN}"):
        read_pickle(path)
    assert not path.exists() and not (tmp_path / "x.pkl.sha256").exists()
    assert issubclass(DamagedFile, ValueError)  # the stages turn ValueErrors into StageErrors


class Payload:
    """Unpickling runs os.system: what a forged results folder could hide in scm.pkl."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f"touch {self.flag}",))


def test_a_forged_pickle_with_a_matching_plain_checksum_is_removed_unread(tmp_path):
    import hashlib

    path, flag = tmp_path / "scm.pkl", tmp_path / "executed"
    path.write_bytes(pickle.dumps(Payload(flag)))
    (tmp_path / "scm.pkl.sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  scm.pkl\n")
    with pytest.raises(DamagedFile, match=rf"holds no hmac-sha256 signature.*{RERUN}"):
        read_pickle(path)
    assert not flag.exists()
    assert not path.exists() and not (tmp_path / "scm.pkl.sha256").exists()


def test_a_pickle_signed_by_another_installation_is_removed_unread(tmp_path, monkeypatch):
    path, flag = tmp_path / "scm.pkl", tmp_path / "executed"
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "elsewhere.key"))
    write_pickle(path, Payload(flag))
    assert not flag.exists()
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "here.key"))
    with pytest.raises(DamagedFile, match="another installation"):
        read_pickle(path)
    assert not flag.exists() and not path.exists()


def test_a_pickle_without_its_sidecar_is_removed(tmp_path):
    path = tmp_path / "x.pkl"
    write_pickle(path, 1)
    (tmp_path / "x.pkl.sha256").unlink()
    with pytest.raises(DamagedFile, match=rf"signature file x\.pkl\.sha256 is missing.*{RERUN}"):
        read_pickle(path)
    assert not path.exists()


def test_a_truncated_parquet_is_removed_and_named(tmp_path):
    path = tmp_path / "train.parquet"
    write_parquet(path, pd.DataFrame({"x": range(1000), "y": ["a"] * 1000}))
    assert read_parquet(path).shape == (1000, 2)
    os.truncate(path, 500)
    with pytest.raises(DamagedFile, match=rf"{path} is not a readable parquet table.*{RERUN}"):
        read_parquet(path)
    assert not path.exists()


def test_a_missing_file_is_not_damage(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_parquet(tmp_path / "absent.parquet")
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError):
        read_pickle(tmp_path / "absent.pkl")


@pytest.mark.parametrize("content", [b"", b'{"a": 1', b"\xff\xfe"])
def test_a_truncated_json_is_removed_and_named(tmp_path, content):
    path = tmp_path / "meta.json"
    path.write_bytes(content)
    with pytest.raises(DamagedFile, match=rf"meta\.json is not valid JSON.*{RERUN}"):
        read_json(path)
    assert not path.exists()


def test_json_is_written_without_bare_nan_or_infinity(tmp_path):
    import numpy as np

    path = tmp_path / "metrics.json"
    write_json(path, {"loss": float("nan"), "x": [float("inf"), 1.5], "y": np.float32("nan"), "z": np.array([np.nan])})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == {
        "loss": None, "x": [None, 1.5], "y": None, "z": [None]
    }


def test_safetensors_problem_finds_a_truncated_or_padded_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(64, 64), "b": torch.ones(3)}, str(path))
    assert safetensors_problem(path) is None
    whole = path.read_bytes()
    path.write_bytes(whole[:500])
    assert "where its header says" in safetensors_problem(path)
    path.write_bytes(whole[:5])
    assert "shorter than a safetensors header" in safetensors_problem(path)
    path.write_bytes(whole + b"\0")
    assert "where its header says" in safetensors_problem(path)


def test_a_manifest_lists_each_file_with_its_sha256(tmp_path):
    import hashlib

    (tmp_path / "a.csv").write_text("x\n1\n")
    write_manifest(tmp_path / "manifest.json", {"a": tmp_path / "a.csv"})
    assert read_json(tmp_path / "manifest.json") == {
        "a": {"path": str(tmp_path / "a.csv"), "sha256": hashlib.sha256(b"x\n1\n").hexdigest()}
    }
