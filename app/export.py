"""Writing what the user found to disk: points as CSV and JSON, the dense flow as .npy.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``),
so an interrupted export never leaves a half-written file where a good one was.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile

import numpy as np

from rtn_core.images import LoadedImage
from rtn_core.result import CorrespondenceResult

from .points import PointList

CSV_COLUMNS = ["id", "source_x", "source_y", "target_x", "target_y", "confidence", "iteration",
               "source_path", "source_width", "source_height",
               "target_path", "target_width", "target_height"]


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **open_kwargs):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, mode, **open_kwargs) as file:
            yield file
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        raise


def write_bytes(path, data: bytes) -> None:
    with atomic_write(path, "wb") as file:
        file.write(data)


def _image_info(image: LoadedImage) -> dict:
    return {"path": image.path, "width": image.original_size[0], "height": image.original_size[1]}


def points_json(points: PointList, source: LoadedImage, target: LoadedImage, iteration: int) -> dict:
    """The export as a JSON-ready dict: images, iteration and every point with its match."""
    return {
        "source": _image_info(source),
        "target": _image_info(target),
        "iteration": iteration,
        "coordinates": "original image pixels, (x, y), pixel centres at integers, 0-based",
        "points": [{"id": p.id, "source": list(p.source),
                    "target": None if p.target is None else list(p.target),
                    "confidence": p.confidence} for p in points.points],
    }


def write_points_json(path, points, source, target, iteration) -> None:
    with atomic_write(path, "w", encoding="utf-8") as file:
        json.dump(points_json(points, source, target, iteration), file, indent=2)
        file.write("\n")


def write_points_csv(path, points, source, target, iteration) -> None:
    """One row per point; image paths and sizes repeat on each row so any tool can read it."""
    info = points_json(points, source, target, iteration)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    images = [info["source"][k] for k in ("path", "width", "height")] \
        + [info["target"][k] for k in ("path", "width", "height")]
    for point in info["points"]:
        target_xy = point["target"] or [None, None]
        writer.writerow([point["id"], *map(_number, point["source"]), *map(_number, target_xy),
                         _number(point["confidence"]), iteration, *images])
    with atomic_write(path, "w", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())


def _number(value) -> str:
    """Full float precision, empty for a missing value."""
    return "" if value is None else repr(float(value))


def write_dense_flow(path, result: CorrespondenceResult, iteration: int) -> None:
    """(H, W, 2) float32 displacement in original pixels from each source pixel to its match."""
    flow = result.dense_flow(iteration).astype(np.float32)
    with atomic_write(path, "wb") as file:
        np.save(file, flow)
