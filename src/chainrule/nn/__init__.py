"""Neural networks on top of the engine: modules, activations, losses, initialisation."""

from . import functional, init
from .layers import (
    ACTIVATIONS,
    ELU,
    GELU,
    MLP,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    HingeLoss,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .module import Module, Parameter
from .normalization import BatchNorm1d

__all__ = [
    "ACTIVATIONS", "BatchNorm1d", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "ELU",
    "Flatten", "GELU", "HingeLoss", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "MLP",
    "MSELoss", "Module", "Parameter", "ReLU", "Sequential", "SiLU", "Sigmoid", "Softmax",
    "Softplus", "Tanh", "functional", "init",
]
