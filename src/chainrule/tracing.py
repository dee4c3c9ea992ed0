"""The hook through which ``cr.compile`` watches a training step while it records it.

While a step is recorded, ``tracing.recorder`` holds the recorder and the engine, Tensor,
Module, the optimizer and dropout report to it what they do; otherwise it is None and
each of them pays one check. It is kept per thread, like grad mode: a step recorded in
one thread never sees the operations of another. A bottom module, so that every layer
can read it without importing the layers above.
"""

from __future__ import annotations

import threading


class _Tracing(threading.local):
    recorder = None  # a chainrule.compiler.recorder.Recorder while a step is recorded


tracing = _Tracing()
