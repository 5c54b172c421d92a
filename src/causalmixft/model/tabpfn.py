"""Adapter for TabPFN (the ``tabpfn`` package, Prior Labs) behind the :class:`Backbone` interface.

Install with ``make venv-tabpfn`` (docs/backbones.md). A checkpoint is a LOCAL directory holding
``model.safetensors`` in TabPFN's own format (tensors plus ``config``/``architecture_name``/
``inference_config`` in the header, as the published ``tabpfn-v3.5-*.safetensors`` files are) and a
``config.json`` naming the adapter; :meth:`TabPFNBackbone.load` also takes a bare TabPFN safetensors
file. Make such a directory from a published checkpoint once with

    python -m causalmixft.model.tabpfn convert tabpfn-v2-classifier.ckpt weights/tabpfn-v2

which copies a ``.safetensors`` file byte for byte and reads a pickled ``.ckpt`` with
``torch.load(weights_only=True)`` (tensors and plain values only). The network is built by the
package's own loader (``tabpfn.model_loading.load_model``) for whichever architecture the checkpoint
names; nothing is downloaded.

Preprocessing: infinities become missing values and features constant in the context are dropped;
the network's own encoder normalises the features on the context rows and handles missing values,
and categorical features are passed to it as such (``categorical_inds``). TabPFNClassifier's ensemble
of preprocessing pipelines (quantile/power transforms, SVD features, feature and class shuffles) is
not applied: one forward pass on the table as it is, in training and at prediction alike.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from causalmixft.io import atomic_path, write_json
from causalmixft.io import sha256_file
from causalmixft.model.adapters import AdapterBackbone, convert_command, import_package, missing_checkpoint
from causalmixft.model.backbone import autocast, resolve_device

EXPECTED = ("a TabPFN .safetensors checkpoint file, or a directory with model.safetensors and config.json "
            "(convert a published .ckpt with `python -m causalmixft.model.tabpfn convert`)")


def _checkpoint_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            raise FileNotFoundError(f"TabPFN checkpoint {path} lacks model.safetensors; expected {EXPECTED}")
        return path / "model.safetensors"
    raise missing_checkpoint("TabPFN", path, EXPECTED)


class TabPFNBackbone(AdapterBackbone):
    """A TabPFN network (any architecture the installed package knows) with the backbone interface."""

    name = "tabpfn"

    def __init__(self, module: torch.nn.Module, header: dict, checkpoint: str | Path | None = None,
                 checkpoint_sha256: str | None = None):
        max_classes = int(header["config"].get("max_num_classes", -1))
        if max_classes < 2:
            raise ValueError("only TabPFN checkpoints with a classification head are supported "
                             "(config max_num_classes >= 2)")
        super().__init__(module, max_classes, None, checkpoint, checkpoint_sha256)
        self.header = header  # the checkpoint's non-tensor fields, written back by save()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> "TabPFNBackbone":
        weights = _checkpoint_file(Path(path))
        if weights.suffix != ".safetensors":
            raise ValueError(f"{weights} is not a safetensors file; expected {EXPECTED}")
        header = {k: v for k, v in import_package("tabpfn", "tabpfn.checkpoint").Checkpoint(weights).load().items()
                  if k != "state_dict"}
        loading = import_package("tabpfn", "tabpfn.model_loading")
        module, _, _, _ = loading.load_model(path=weights, estimator_type="classifier")
        return cls(module.to(resolve_device(str(device))).eval(), header, path, sha256_file(weights))

    @classmethod
    def random(cls, architecture: str = "tabpfn_v2", seed: int = 0, device: str | torch.device = "cpu",
               **config) -> "TabPFNBackbone":
        """Randomly initialised weights of a TabPFN architecture (``tabpfn.architectures.ARCHITECTURES``)."""
        module_of = import_package("tabpfn", "tabpfn.architectures").ARCHITECTURES[architecture]
        parsed, unused = module_of.parse_config(config)
        if unused:
            raise ValueError(f"{architecture} does not know the config keys {sorted(unused)}")
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the global RNG
            torch.manual_seed(seed)
            module = module_of.get_architecture(parsed)
        header = {"config": json.loads(json.dumps(asdict(parsed), default=str)), "architecture_name": architecture}
        return cls(module.to(resolve_device(str(device))).eval(), header)

    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        """``model.safetensors`` in TabPFN's own format (the package loads it too) + ``config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.module.state_dict().items()}
        save_as_safetensors = import_package("tabpfn", "tabpfn.checkpoint").save_as_safetensors
        with atomic_path(directory / "model.safetensors") as tmp:
            save_as_safetensors({**self.header, "state_dict": state}, tmp)
        self.write_config(directory, extra)

    def write_config(self, directory: Path, extra: dict | None = None) -> None:
        """``config.json``: tells the loader (and the workflow) that the directory holds a TabPFN checkpoint."""
        # max_classes: the class limit the workflow's preflight check reads (causalmixft.preflight).
        config = {"backbone": "tabpfn", "architecture_name": self.header.get("architecture_name", "tabpfn_v2"),
                  "max_classes": self.max_classes}
        if extra:
            config["metadata"] = extra
        write_json(directory / "config.json", config)

    def logits(self, x_context, y_context, x_query, n_classes, categorical=None):
        x = torch.cat([x_context, x_query]).float()
        x = torch.where(torch.isinf(x), torch.nan, x)
        context = x[: len(x_context)]
        observed = ~torch.isnan(context)
        # A feature is constant in the context when its observed values (if any) are all equal.
        low = torch.where(observed, context, torch.inf).amin(0)
        high = torch.where(observed, context, -torch.inf).amax(0)
        varying = high > low
        if varying.any():
            x = x[:, varying]
        categorical_inds = None
        if categorical is not None:
            kept = categorical[varying] if varying.any() else categorical
            categorical_inds = [torch.nonzero(kept).flatten().tolist()]
        with autocast(x.device):
            out = self.module(x[:, None, :], y_context.float(), categorical_inds=categorical_inds,
                              task_type="multiclass")
        return out[:, 0, :n_classes].float()


def convert(source: str | Path, directory: str | Path) -> Path:
    """A published checkpoint -> a checkpoint directory the workflow reads (model.safetensors + config.json).

    A ``.safetensors`` file is copied byte for byte; a pickled ``.ckpt`` is read with
    ``torch.load(weights_only=True)`` (tensors and plain values only) and written as safetensors.
    """
    source, directory = Path(source), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "model.safetensors") as tmp:
        if source.suffix == ".safetensors":
            shutil.copyfile(source, tmp)
        else:
            checkpoint = torch.load(str(source), map_location="cpu", weights_only=True)
            if not {"config", "state_dict"} <= set(checkpoint):
                raise ValueError(f"{source} is not a TabPFN checkpoint: it lacks 'config' or 'state_dict'")
            import_package("tabpfn", "tabpfn.checkpoint").save_as_safetensors(checkpoint, tmp)
    backbone = TabPFNBackbone.load(directory / "model.safetensors", "cpu")  # the package builds and loads it
    backbone.write_config(directory, {"converted_from": source.name, "source_sha256": sha256_file(source)})
    return directory


def main(argv: list[str] | None = None) -> None:
    convert_command("TabPFN", convert, argv)


if __name__ == "__main__":
    main()
