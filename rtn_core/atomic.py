"""Atomic file writing: readers see the old file or the new one, never half of either.

The data goes to a temporary file in the destination's own folder (so the final rename never
crosses file systems), is flushed to disk, then ``os.replace`` puts it in place in one step. A
crash or kill mid-write leaves the previous file intact and at worst a stray ``*.tmp`` file.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path`` for any writer that wants a file name
    (``torch.save``, ``np.save``, an image encoder); it replaces ``path`` when the block succeeds.

    ``suffix`` lets writers that choose their format by extension see the right one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=suffix)
    os.close(handle)
    try:
        yield temp
        os.chmod(temp, _new_file_mode())  # mkstemp makes 0600; give the mode a plain open() would
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically, creating its folder."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as temp, open(temp, "wb") as stream:
        stream.write(payload)
