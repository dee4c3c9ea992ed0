"""Writing files so that a crash never leaves a half-written one behind.

A checkpoint, ``summary.json`` or a plot is first written to a temporary file next to its
final name, flushed to disk, and only then renamed over the final name with ``os.replace``.
The rename is atomic on POSIX and Windows, so a reader sees either the old file or the new
one, never a truncated mixture; if writing fails the old file is left untouched.
"""

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]

_ALLOWED_MODES = {"w": "w", "wt": "w", "wb": "wb"}


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
    fd, temp = _create_temp(target)
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
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_directory(target.parent)


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
