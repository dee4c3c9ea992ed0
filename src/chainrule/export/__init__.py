"""Models that leave chainrule: an MLP as an ONNX model, weights as safetensors.

- ``to_onnx(model, path, scaler=None)``: a ``Sequential``/``MLP`` of Linear layers and
  the seven activations as a standard ONNX model (needs the ``onnx`` extra).
- ``save_safetensors(model_or_state_dict, path)`` and ``load_safetensors(path)``: weights by
  ``state_dict`` name in the safetensors format (NumPy alone).
- ``export_run(run_folder, path, format="onnx" | "safetensors")``: the same for the model
  a training run saved; ``chainrule export`` on the command line.
"""

from .onnx import ExportError, to_onnx
from .run import FORMATS, export_run, load_run_model
from .safetensors import load_safetensors, load_safetensors_metadata, save_safetensors

__all__ = ["ExportError", "FORMATS", "export_run", "load_run_model", "load_safetensors",
           "load_safetensors_metadata", "save_safetensors", "to_onnx"]
