"""Writing files so that a crash never leaves a half-written one behind.

A checkpoint, ``summary.json`` or a plot is first written to a temporary file next to its
final name, flushed to disk, and only then renamed over the final name with ``os.replace``.
The rename is atomic on POSIX and Windows, so a reader sees either the old file or the new
one, never a truncated mixture; if writing fails the old file is left untouched.
"""

import json
import os
import re
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import FolderBusyError

__all__ = ["FolderBusyError", "atomic_write", "atomic_write_bytes", "atomic_write_text",
           "folder_lock", "json_default", "remove_temporary_files"]

# What _create_temp names its files: ".<final name>.<12 hex digits>.tmp"
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")

_ALLOWED_MODES = {"w": "w", "wt": "w", "wb": "wb"}


def json_default(value):
    """For ``json.dumps(..., default=json_default)``: NumPy scalars as Python numbers and
    arrays (or anything with ``__array__``, such as a Tensor) as nested lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return np.asarray(value).tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _create_temp(target):
    """Create and open an empty temporary file beside ``target``; return (fd, temp_path)."""
    # os.open with mode 0o666 lets the process umask decide the permissions, exactly as a
    # plain open() would; mkstemp would make every checkpoint private (0o600) instead.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {target}")


def _copy_permissions(source, temp):
    """Give the new file the permission bits of the file it replaces, if there is one."""
    try:
        os.chmod(temp, os.stat(source).st_mode & 0o7777)
    except OSError:
        pass


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory):
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path, mode="wb", *, encoding="utf-8", newline=None):
    """Open ``path`` for writing so that it appears complete or not at all.

    Yields a file object for a temporary file in the same directory. When the ``with`` block
    ends normally the data is flushed and fsynced and the file is renamed to ``path``,
    replacing any existing file (whose permission bits it keeps). When the block raises,
    the temporary file is removed, ``path`` is left exactly as it was, and the exception
    propagates. ``mode`` is ``"wb"`` (bytes) or ``"w"``/``"wt"`` (text, with ``encoding``
    and ``newline`` as for ``open``; use ``newline=""`` for the ``csv`` module). The parent
    directory must exist. A symbolic link at ``path`` is followed, so its target is replaced.

        >>> with atomic_write("summary.json", "w") as f:   # doctest: +SKIP
        ...     json.dump(summary, f)
    """
    if mode not in _ALLOWED_MODES:
        raise ValueError(f"atomic_write mode must be 'wb', 'w' or 'wt', got {mode!r}")
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write a file over the directory {target}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {target.parent} does not exist")
    try:
        fd, temp = _create_temp(target)
    except OSError as e:  # name the user's file, not the temporary one
        raise _about(e, target) from None
    try:
        if mode == "wb":
            file = os.fdopen(fd, "wb")
        else:
            file = os.fdopen(fd, "w", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        _remove_quietly(temp)
        raise
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if target.exists():
            _copy_permissions(target, temp)
        os.replace(temp, target)
    except OSError as e:
        _remove_quietly(temp)
        raise _about(e, target) from None
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(target.parent)


def _about(error: OSError, target: Path) -> OSError:
    """The same error (same class and errno), naming ``target`` instead of a temporary
    file, or naming it at all (a full disk reports no file)."""
    renamed = type(error)(error.errno, error.strerror or str(error), str(target))
    return renamed if error.errno is not None else OSError(f"cannot write {target}: {error}")


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; return ``path`` as a ``Path``."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path, text, encoding="utf-8"):
    """Write the string ``text`` to ``path`` atomically; return ``path`` as a ``Path``."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def remove_temporary_files(folder) -> list[Path]:
    """Remove the temporary files that writes killed midway left in ``folder``; returns
    them. Call it only while no other process writes there (see ``folder_lock``)."""
    removed = []
    folder = Path(folder)
    if folder.is_dir():
        for leftover in folder.iterdir():
            if _TEMPORARY.match(leftover.name) and leftover.is_file():
                _remove_quietly(leftover)
                removed.append(leftover)
    return removed


LOCK_NAME = ".chainrule.lock"
_held = threading.local()  # the folders this thread has locked, so that locks nest


@contextmanager
def folder_lock(folder):
    """Hold the lock on ``folder`` (created if missing) for the ``with`` block.

    A second process (or thread) that asks for it fails at once with
    ``FolderBusyError`` naming the holder's process id, host and start time. The lock is
    an advisory lock (``flock``) on ``.chainrule.lock`` in the folder, which the system
    drops when its holder dies, so a lock left by a killed run is simply taken over. The
    same thread may take the same lock again inside the block.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    held = _held.__dict__.setdefault("folders", set())
    if key in held:
        yield
        return
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            raise FolderBusyError(f"{folder} is in use by another run ({_describe_holder(fd)}); "
                                  "wait for it to finish, or give another --out")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            _unlock(fd)
    finally:
        os.close(fd)


def _try_lock(fd) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _unlock(fd):
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _describe_holder(fd) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"process {holder['pid']} on {holder['host']}, started "
                f"{holder['started']}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "a process that has not yet said who it is"
