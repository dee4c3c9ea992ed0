"""Export the model a training run saved: what ``chainrule export`` runs."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError
from ..experiment import MODEL, RunConfig, build_model
from ..serialization import load
from ..train import CHECKPOINT

FORMATS = ("onnx", "safetensors")


def load_run_model(run):
    """(model, scaler state, config) of a run folder (or its ``model.crk`` file).

    The model is rebuilt from the run's saved options and given its trained weights,
    from ``model.crk`` or, for a run that did not finish, its last ``checkpoint.crk``.
    """
    run = Path(run)
    folder = run.parent if run.is_file() else run
    candidates = [run] if run.is_file() else [folder / MODEL, folder / CHECKPOINT]
    for path in candidates:
        if path.exists():
            state = load(path)
            break
    else:
        raise CheckpointError(f"no {MODEL} or {CHECKPOINT} in {folder}: give the --out "
                              "folder of a training run")
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path} is a chainrule checkpoint but not one of a training run "
                              "(it has no config and model)")
    config = RunConfig.from_dict(state["config"])
    weights = state["model"]
    # the sizes the data set gave: the first layer's inputs and the last layer's outputs
    matrices = [weights[k] for k in weights if k.endswith("weight")]
    if not matrices:
        raise CheckpointError(f"{path} holds no weights")
    model = build_model(config, matrices[0].shape[1], matrices[-1].shape[0])
    model.load_state_dict(weights)
    model.eval()
    return model, state.get("scaler"), config


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

        return to_onnx(model, out, scaler=scaler)
    from .safetensors import save_safetensors

    metadata = {"chainrule.config": json.dumps(config.to_dict())}
    if scaler is not None:
        metadata["chainrule.scaler"] = json.dumps({k: v.tolist() for k, v in scaler.items()})
    return save_safetensors(model, out, metadata=metadata)
