"""The hook through which ``cr.compile`` watches a training step while it records it.

While a step is recorded, ``tracing.recorder`` holds the recorder and the engine, Tensor,
Module, the optimizer and dropout report to it what they do; otherwise it is None and
each of them pays one check. It is kept per thread, like grad mode: a step recorded in
one thread never sees the operations of another. A bottom module, so that every layer
can read it without importing the layers above.
"""

from __future__ import annotations

import threading

from ._thread_settings import ThreadSetting


class _Tracing(threading.local):
    # a chainrule.compiler.recorder.Recorder while a step is recorded, else None
    recorder = ThreadSetting(usual=None)

    def __init__(self):  # run in each thread that reads or sets the recorder
        ThreadSetting.start(self, "recorder")


tracing = _Tracing()

# The threads that record a step, process-wide: while it is empty, an operation knows it
# has no recorder to report to without reading its thread's (see _thread_settings).
RECORDING_THREADS = _Tracing.recorder.unusual_threads
