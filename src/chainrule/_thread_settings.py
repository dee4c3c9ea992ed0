"""Settings kept per thread, with one cheap process-wide check of whether any thread changed them.

Grad mode (``no_grad``) and the recorder of ``cr.compile`` belong to a thread: ``no_grad``
in one thread leaves the others recording. Every operation must honour both, but reading
an attribute of a ``threading.local`` costs about 30 ns, as much as a tenth of an
operation's bookkeeping on small arrays, and almost always finds the usual value (grad on,
no recorder). So each setting also keeps the set of threads where it is *not* at its
usual value: an operation reads that set, a plain module-level object, and reads its own
thread's value only when the set is not empty.

The set holds one entry per thread that changed the setting, as long as it has. The
entry belongs to a marker object kept among that thread's local values: setting the
usual value back drops the marker, and so does the end of the thread (its local values
go with it). Either way the marker's finalizer takes the entry out. A set that is not
empty only sends operations to read their own thread's value, which is always right.
"""

from __future__ import annotations


class ThreadSetting:
    """A per-thread attribute of a ``threading.local`` subclass, with ``unusual_threads``:
    the threads where it is set to something other than ``usual`` (compared by identity:
    True, None).

    Declare it on the class and give it its usual value in the class's ``__init__``
    (which ``threading.local`` runs in each thread)::

        class _GradMode(threading.local):
            enabled = ThreadSetting(usual=True)

            def __init__(self):
                ThreadSetting.start(self, "enabled")

    Reads are plain attribute reads: a descriptor with ``__set__`` and no ``__get__``
    leaves reading to the instance's (this thread's) ``__dict__``. Only writes come here.
    """

    def __init__(self, usual):
        self.usual = usual
        self.unusual_threads: set[int] = set()  # ids of the markers of those threads
        self.name = self.marker_key = None

    def __set_name__(self, owner, name):
        self.name, self.marker_key = name, f"{name} differs from usual"

    @staticmethod
    def start(state, name):
        """Give ``state``'s thread the usual value of setting ``name``."""
        setting = type(state).__dict__[name]
        vars(state)[name] = setting.usual

    def __set__(self, state, value):
        values = vars(state)  # this thread's values
        # The thread is in the set before its value is unusual and leaves it only once
        # the value is usual again, so no moment goes unseen.
        if value is self.usual:
            values[self.name] = value
            values.pop(self.marker_key, None)  # the marker's finalizer takes the thread off
        else:
            if self.marker_key not in values:
                values[self.marker_key] = _Marker(self.unusual_threads)
            values[self.name] = value


class _Marker:
    """In a thread's local values while one of its settings is unusual; keeps the thread in
    the setting's ``unusual_threads`` for exactly as long as it is alive."""

    __slots__ = ("threads",)

    def __init__(self, threads: set[int]):
        self.threads = threads
        threads.add(id(self))  # one C call: atomic for other threads

    def __del__(self):
        self.threads.discard(id(self))
