"""A run's weights are written like every other output: atomically, with the usual mode (0666
less the umask; safetensors alone left model.safetensors at 0600)."""

from __future__ import annotations

import os
import stat

from model_helpers import tiny_model

from causalmixft.io import write_json
from causalmixft.model.interface import BuiltinBackbone, load_backbone


def test_weights_and_config_get_the_mode_of_every_other_output(tmp_path):
    BuiltinBackbone(tiny_model()).save(tmp_path / "run", extra={"run": {"method": "finetune"}})
    write_json(tmp_path / "run" / "metrics.json", {})
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "run").iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    assert modes == dict.fromkeys(["model.safetensors", "config.json", "metrics.json"], 0o666 & ~umask)
    assert load_backbone(tmp_path / "run", "cpu").max_classes == tiny_model().cfg.max_classes
