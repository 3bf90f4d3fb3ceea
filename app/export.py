"""Writing what the user found to disk: points as CSV and JSON, the dense flow as .npy.

Coordinates are written to COORDINATE_DECIMALS places (a thousandth of a pixel is finer than
anything the model resolves) and confidences to CONFIDENCE_DECIMALS.

Every file is written atomically by ``rtn_core.atomic`` (a temporary file in the same folder,
then ``os.replace``), so an interrupted export never leaves a half-written file where a good one
was.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from rtn_core.atomic import atomic_path, write_atomic
from rtn_core.images import LoadedImage
from rtn_core.result import CorrespondenceResult

from .points import PointList

COORDINATE_DECIMALS = 3
CONFIDENCE_DECIMALS = 4
CSV_COLUMNS = ["id", "name", "source_x", "source_y", "target_x", "target_y", "confidence", "by_hand", "iteration",
               "source_path", "source_width", "source_height",
               "target_path", "target_width", "target_height"]


def _image_info(image: LoadedImage) -> dict:
    return {"path": image.path, "width": image.original_size[0], "height": image.original_size[1]}


def points_json(points: PointList, source: LoadedImage, target: LoadedImage, iteration: int) -> dict:
    """The export as a JSON-ready dict: images, iteration and every point with its match."""
    return {
        "source": _image_info(source),
        "target": _image_info(target),
        "iteration": iteration,
        "coordinates": "original image pixels, (x, y), pixel centres at integers, 0-based",
        "points": [{"id": p.id, "name": p.name, "source": _rounded(p.source),
                    "target": None if p.target is None else _rounded(p.target),
                    # a match placed by hand has no model score
                    "confidence": None if p.confidence is None or p.fixed is not None
                    else round(p.confidence, CONFIDENCE_DECIMALS),
                    "by_hand": p.fixed is not None}
                   for p in points.points],
    }


def _rounded(xy) -> list[float]:
    return [round(float(value), COORDINATE_DECIMALS) for value in xy]


def write_points_json(path, points, source, target, iteration) -> None:
    write_atomic(path, json.dumps(points_json(points, source, target, iteration), indent=2) + "\n")


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
        writer.writerow([point["id"], point["name"], *map(_number, point["source"]), *map(_number, target_xy),
                         _number(point["confidence"]), int(point["by_hand"]), iteration, *images])
    write_atomic(path, buffer.getvalue())


def _number(value) -> str:
    """The (already rounded) value without float noise, empty for a missing value."""
    return "" if value is None else repr(float(value))


def write_dense_flow(path, result: CorrespondenceResult, iteration: int) -> None:
    """(H, W, 2) float32 displacement in original pixels from each source pixel to its match."""
    flow = result.dense_flow(iteration).astype(np.float32)
    with atomic_path(path) as temp, open(temp, "wb") as file:
        np.save(file, flow)
