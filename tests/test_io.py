"""Checksummed pickles: a changed file is refused, and removed with its sidecar so a rerun rebuilds it."""

from __future__ import annotations

import pytest

from causalmixft.io import DamagedFile, read_pickle, write_pickle


def test_a_pickle_reads_back_while_it_matches_its_sidecar(tmp_path):
    write_pickle(tmp_path / "x.pkl", {"a": [1, 2]})
    assert (tmp_path / "x.pkl.sha256").read_text().endswith("  x.pkl\n")
    assert read_pickle(tmp_path / "x.pkl") == {"a": [1, 2]}


def test_a_changed_pickle_is_removed_with_its_sidecar_and_the_message_says_a_rerun_rebuilds_it(tmp_path):
    path = tmp_path / "x.pkl"
    write_pickle(path, {"a": 1})
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(DamagedFile, match=r"does not match x\.pkl\.sha256.*a plain rerun of the workflow .*rebuilds them"):
        read_pickle(path)
    assert not path.exists() and not (tmp_path / "x.pkl.sha256").exists()
    assert issubclass(DamagedFile, ValueError)  # the stages turn ValueErrors into StageErrors


def test_a_pickle_without_its_sidecar_is_refused_and_kept(tmp_path):
    path = tmp_path / "x.pkl"
    write_pickle(path, 1)
    (tmp_path / "x.pkl.sha256").unlink()
    with pytest.raises(ValueError, match="checksum file x.pkl.sha256 is missing"):
        read_pickle(path)
    assert path.exists()
