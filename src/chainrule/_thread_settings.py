"""Settings kept per thread, with one cheap process-wide check of whether any thread changed them.

Grad mode (``no_grad``) and the recorder of ``cr.compile`` belong to a thread: ``no_grad``
in one thread leaves the others recording. Every operation must honour both, but reading
an attribute of a ``threading.local`` costs about 30 ns, as much as a tenth of an
operation's bookkeeping on small arrays, and almost always finds the usual value (grad on,
no recorder). So each setting also keeps the set of threads where it is *not* at its
usual value: an operation reads that set, a plain module-level object, and reads its own
thread's value only when the set is not empty.

The set holds the threads that changed the setting, for as long as they have: setting
the usual value back takes a thread out, and so does its end (a marker object among the
thread's local values, which go when it ends, takes it out in its finalizer). A set that
is not empty only sends operations to read their own thread's value, which is always
right.
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
        self.unusual_threads: set[int] = set()  # the keys of those threads' markers
        self.name = self.marker_key = None

    def __set_name__(self, owner, name):
        self.name, self.marker_key = name, f"marker of this thread for {name}"

    @staticmethod
    def start(state, name):
        """Give ``state``'s thread the usual value of setting ``name``, and its marker."""
        setting = type(state).__dict__[name]
        values = vars(state)  # this thread's values, which go when the thread ends
        values[name] = setting.usual
        values[setting.marker_key] = _ThreadMarker(setting.unusual_threads)

    def __set__(self, state, value):
        values = vars(state)  # this thread's values
        # The thread is in the set before its value is unusual and leaves it only once
        # the value is usual again, so no moment goes unseen. (set.add and discard are
        # single C calls: atomic for the other threads.)
        if value is self.usual:
            values[self.name] = value
            self.unusual_threads.discard(values[self.marker_key].key)
        else:
            self.unusual_threads.add(values[self.marker_key].key)
            values[self.name] = value


class _ThreadMarker:
    """A thread's entry in a setting's ``unusual_threads``: made when the thread first
    uses the setting and kept among its local values, which go when the thread ends; it
    then takes the thread out of the set, in case it ended with the setting unusual. Its
    key is its ``id()``, which no other object has while it lives."""

    __slots__ = ("threads", "key")

    def __init__(self, threads: set[int]):
        self.threads, self.key = threads, id(self)

    def __del__(self):
        self.threads.discard(self.key)
