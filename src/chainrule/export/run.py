"""Export the model a training run saved: what ``chainrule export`` runs."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError

FORMATS = ("onnx", "safetensors")


def load_run_model(run):
    """(model in eval mode, scaler state, config) of a run's folder or checkpoint file,
    as ``cr.load_run`` loads it."""
    from ..run import load_run

    loaded = load_run(run)
    return loaded.model, loaded.scaler.state_dict(), loaded.config


def export_run(run, out, format="onnx") -> Path:
    """Write the model of the run in ``run`` to ``out`` as ``format``; returns the path.

    "onnx": a standalone model that takes the data set's features unscaled (the run's
    standardisation is its first step) and gives class scores. "safetensors": the weights by
    ``state_dict`` name, with the run's options and input scaling in the metadata as JSON.
    """
    if format not in FORMATS:
        raise CheckpointError(f"export: format must be one of {', '.join(FORMATS)}, "
                              f"not {format!r}")
    model, scaler, config = load_run_model(run)
    if format == "onnx":
        from .onnx import to_onnx

        if config.features is not None:
            names = ", ".join(config.features)
            raise CheckpointError(f"export: the run's input features ({names}) are "
                                  "computed outside the model, so an ONNX file of it "
                                  "would take the wrong inputs; export it as safetensors")

        return to_onnx(model, out, scaler=scaler)
    from .safetensors import save_safetensors

    metadata = {"chainrule.config": json.dumps(config.to_dict())}
    if scaler is not None:
        metadata["chainrule.scaler"] = json.dumps({k: v.tolist() for k, v in scaler.items()})
    return save_safetensors(model, out, metadata=metadata)
