"""Exceptions raised for user errors.

Every error a user can cause derives from ``ChainruleError`` so that the command line can
report it in one line. Each also derives from the built-in exception a Python user would
expect (``ValueError`` for bad shapes or values, ``FileNotFoundError`` for missing data).
"""


class ChainruleError(Exception):
    """Base class of every error caused by how the library was called."""


class ShapeError(ChainruleError, ValueError):
    """Operands whose shapes do not fit the operation; the message names both shapes."""


class GraphError(ChainruleError, RuntimeError):
    """A backward pass that cannot run: released graph, missing gradient, no_grad output."""


class DataError(ChainruleError, ValueError):
    """A data file that is corrupt, truncated or not of the expected format."""


class DatasetNotFoundError(ChainruleError, FileNotFoundError):
    """A data set that is not on this machine; the message says where it was looked for."""


class CheckpointError(ChainruleError, ValueError):
    """A checkpoint file that cannot be read: truncated, foreign or of another model."""


class DTypeError(ChainruleError, TypeError):
    """A dtype the operation cannot take, such as integers that would require gradients."""


class GradcheckError(ChainruleError, AssertionError):
    """An analytical gradient that disagrees with the numerical one."""


class ArgumentError(ChainruleError, ValueError):
    """An argument outside the values a function accepts (an unknown option, p > 1, ...).
    The same check raises this same class wherever it is made (a layer or its function)."""


class OptimizerError(ArgumentError):
    """An invalid hyperparameter or parameter group given to an optimizer or scheduler."""


class ExportError(ChainruleError):
    """A model, or one of its layers, that the exporter cannot express."""


class FolderBusyError(ChainruleError):
    """Another run holds the lock on a run's folder; the message names the holder."""


class SpaceError(ChainruleError):
    """A search space that cannot be searched; the message names the option and the fix."""


class TrainingDiverged(ChainruleError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


class CompileCheckError(ChainruleError):
    """``cr.compile(..., check=True)`` found a replay whose numbers differ from eager code's."""


class ConfigError(ArgumentError):
    """A playground setting out of range; the message names it and the range."""


class UploadError(ConfigError):
    """A CSV file the playground does not accept; the message says where and why."""


class UsageError(ChainruleError):
    """A command line the ``chainrule`` command cannot run; reported in one line, exit 2."""
