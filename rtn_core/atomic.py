"""Atomic file writing: readers see the old file or the new one, never half of either.

The text goes to a temporary file in the destination's own folder (so the final rename never
crosses file systems), is flushed to disk, then ``os.replace`` puts it in place in one step. A
crash or kill mid-write leaves the previous file intact and at worst a stray ``*.tmp`` file.
"""
from __future__ import annotations

import os
import tempfile


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically, creating its folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
