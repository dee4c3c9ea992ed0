"""Grad mode: whether operations are recorded for backpropagation, per thread.

The bottom of the package: ``Tensor`` (in-place updates) and the engine (recording) read
it, and users switch it with ``no_grad()``, ``enable_grad()`` and ``set_grad_enabled()``.
"""

from __future__ import annotations

import functools
import inspect
import threading

from ._thread_settings import ThreadSetting


class _GradMode(threading.local):
    """Whether operations are recorded, kept per thread (as in PyTorch): ``no_grad()`` in
    one thread, or a backward pass running in it, leaves every other thread recording."""

    enabled = ThreadSetting(usual=True)

    def __init__(self):  # run in each thread that reads or sets grad mode
        ThreadSetting.start(self, "enabled")


_grad_mode = _GradMode()

# The threads where grad mode is off, process-wide: while it is empty, an operation knows
# grad mode is on without reading its thread's value (see _thread_settings).
GRAD_OFF_THREADS = _GradMode.enabled.unusual_threads


def is_grad_enabled() -> bool:
    """Whether operations are being recorded for backpropagation right now, in this thread."""
    return _grad_mode.enabled


class set_grad_enabled:
    """Turn recording on or off in this thread: at once when called (as
    ``torch.set_grad_enabled``), and back to the previous mode at the end of a ``with``
    block or a decorated function."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous, _grad_mode.enabled = _grad_mode.enabled, self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous
        return False

    def __call__(self, fn):
        mode = self.mode
        if inspect.isgeneratorfunction(fn):  # the mode holds while the generator runs

            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen, sent = fn(*args, **kwargs), None
                while True:
                    with set_grad_enabled(mode):
                        try:
                            item = gen.send(sent)
                        except StopIteration as stop:
                            return stop.value
                    sent = yield item

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Record nothing inside: no graph is built and no intermediate array is kept alive.

    Use it for evaluation and for updating parameters by hand::

        with cr.no_grad():
            scores = model(X_val)
    """

    mode = False

    def __init__(self):  # unlike set_grad_enabled, nothing changes before the block starts
        pass

    def __enter__(self):
        self._previous, _grad_mode.enabled = _grad_mode.enabled, self.mode
        return self


class enable_grad(no_grad):
    """Record operations again inside a ``no_grad`` block."""

    mode = True
