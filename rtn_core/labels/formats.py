"""Keypoint label files: one registry of readers and writers for COCO, labelme, Label Studio, CVAT and CSV.

Every writer takes the canonical export form (:meth:`LabelSet.for_export`), names each image
the way its tool finds it (:class:`ExportOptions`, :func:`image_reference`), rounds coordinates
to 1/1000 px, and records the model, the weights' hash and the settings (``LabelSet.info``),
plus each image's path relative to the export, so our own files read back exactly. Output is
deterministic: sorted JSON keys, no timestamps. Every reader returns a LabelSet with absolute
image paths that has passed :func:`untrusted.check_labels`. Each writer's docstring states its
pixel convention; ours is 0-based pixel centres at integers (see docs/export-formats.md).
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Callable

from ..atomic import atomic_path, write_atomic
from .keypoints import ABSENT, DONE, OCCLUDED, VISIBLE, ImageLabels, LabelSet, Point, check_inside, new_project
from .untrusted import (MAX_IMAGES, MAX_NAMES, MAX_POINTS, check_labels, count_check, load_json, parse_json, parse_xml,
                        read_text)

TOOL_KEY = "rtn_studio"  # where our own extras live inside each format
LABEL_STUDIO_LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local-storage URL
COCO_IN_FOLDER = os.path.join("annotations", "person_keypoints_default.json")  # where datumaro looks


class LabelFileError(ValueError):
    """A label file that cannot be read or written, with one line naming the file and the problem."""


@dataclass(frozen=True)
class ExportOptions:
    """How exports name images (see :func:`image_reference`).

    ``image_root``: the folder the labelling tool serves or imports images from; names are
    written relative to it. ``image_url``: a URL prefix for Label Studio (e.g. an HTTP server
    or a cloud bucket), the relative name appended.
    """

    image_root: str | None = None
    image_url: str | None = None


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    read: Callable[[str], LabelSet]
    write: Callable[[LabelSet, str, ExportOptions], None]  # the path is a file, or a folder for labelme
    writes_folder: bool = False


def read_labels(path, format_name: str | None = None) -> LabelSet:
    """Read a label file (or a folder of labelme files, or a COCO dataset folder); the format is
    guessed when not given.

    Raises LabelFileError (a ValueError) naming the file and the problem, in one line.
    """
    path = os.fspath(path)
    name = os.path.basename(os.path.normpath(path)) or path
    if not os.path.exists(path):
        raise LabelFileError(f"{name}: no such file")
    try:
        format_name = format_name or guess_format(path)
        labels = FORMATS[format_name].read(path)
    except OSError as exc:
        raise LabelFileError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, csv.Error) as exc:
        raise LabelFileError(f"{name}: not a valid {format_name or 'label'} file ({_detail(exc)})") from None
    if not labels.images:
        raise LabelFileError(f"{name}: holds no images")
    try:
        return check_labels(labels)
    except (ValueError, TypeError) as exc:
        raise LabelFileError(f"{name}: {_detail(exc)}") from None


def _detail(exc: Exception) -> str:
    """One line saying what went wrong inside a reader."""
    if isinstance(exc, KeyError):
        return f"missing entry {exc.args[0]!r}"
    if isinstance(exc, IndexError):
        return "a list is shorter than expected"
    text = str(exc.args[0]) if isinstance(exc, ValueError) and exc.args else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def write_labels(labels: LabelSet, path, format_name: str, options: ExportOptions = ExportOptions()) -> None:
    """Write ``labels`` (normally ``project.for_export()``) in a registered format.

    Everything that would make the export fail or land on the wrong images is checked first
    (:func:`check_export`): nothing is written then.
    """
    path = os.fspath(path)
    try:
        check_labels(labels)  # e.g. a control character in a name would make unreadable XML
    except ValueError as exc:
        raise LabelFileError(f"cannot export: {exc}") from None
    check_export([im.image for im in labels.images], path, format_name, options)
    unsized = next((im for im in labels.images if im.size is None), None)
    if unsized:
        raise LabelFileError(f"{os.path.basename(unsized.image) or 'an image'}: image size unknown, cannot export it")
    FORMATS[format_name].write(canonical(labels), path, options)


def check_export(images, path, format_name: str, options: ExportOptions = ExportOptions()) -> None:
    """Refuse an export before any work (e.g. before a transfer runs) when it cannot succeed.

    The format must exist, the output must be writable, every image must get a name of its
    own in the file (two ``x.png`` from different folders would land on one frame in CVAT) and
    lie under ``image_root`` when one is given. Raises LabelFileError naming the files.
    """
    if format_name not in FORMATS:
        raise LabelFileError(f"unknown export format {format_name!r}: use one of {', '.join(FORMATS)}")
    if options.image_url and format_name != "labelstudio":
        raise LabelFileError("an image URL prefix applies to Label Studio exports only")
    _check_writable(os.fspath(path), FORMATS[format_name].writes_folder or _coco_folder(format_name, path))
    if format_name == "csv":
        return
    seen: dict[str, str] = {}
    for image in images:
        reference = image_reference(image, path, format_name, options)
        if format_name == "labelme":  # one JSON per image, named after it
            reference = os.path.splitext(os.path.basename(image))[0] + ".json"
        key = reference.casefold()  # Windows and macOS file names ignore case
        if key in seen and seen[key] != image:
            raise LabelFileError(f"two images would both be named {reference!r} in the {format_name} export: "
                                 f"{seen[key]} and {image} (rename one, or give an image root that tells them apart)")
        seen[key] = image


def _check_writable(path: str, folder_output: bool) -> None:
    """The output can be created: a file where a file goes, a folder where a folder goes, writable."""
    name = os.path.basename(os.path.normpath(path)) or path
    if folder_output and os.path.isfile(path):
        raise LabelFileError(f"{name}: is a file, but this export writes a folder")
    if not folder_output and os.path.isdir(path):
        raise LabelFileError(f"{name}: is a folder, but this export writes a file")
    existing = os.path.abspath(path if folder_output else os.path.dirname(os.path.abspath(path)))
    while not os.path.isdir(existing):
        if os.path.exists(existing):
            raise LabelFileError(f"{name}: cannot be created, {existing} is a file")
        existing = os.path.dirname(existing)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise LabelFileError(f"{name}: cannot write in {existing} ({exc.strerror or exc})") from None


def guess_format(path: str) -> str:
    """The format of a file from its extension and, for JSON, its top-level structure."""
    if os.path.isdir(path):
        return "coco" if os.path.isfile(os.path.join(path, COCO_IN_FOLDER)) else "labelme"
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        return "csv"
    if extension == ".xml":
        return "cvat"
    if extension != ".json":
        raise ValueError(f"unknown label format {extension or '(no extension)'}: expected .json, .csv or .xml")
    data = load_json(path)
    if isinstance(data, list):
        return "labelstudio"
    if isinstance(data, dict) and "shapes" in data:
        return "labelme"
    if isinstance(data, dict) and {"images", "annotations", "categories"} <= data.keys():
        return "coco"
    raise ValueError("JSON that is neither COCO (images/annotations/categories), labelme (shapes) "
                     "nor Label Studio (a list of tasks)")


def read_source(label_path, image_path: str, image_size) -> LabelSet:
    """A new project whose source is ``image_path`` with its keypoints read from ``label_path``.

    When the file holds several images, the one with the source's file name is used (or, for
    Label Studio uploads, the one named ``<hash>-<file name>``). Points outside the image raise
    ValueError naming the label file.
    """
    labels = read_labels(label_path)
    file_name = os.path.basename(os.path.normpath(os.fspath(label_path)))
    wanted = os.path.basename(image_path)
    named = [im for im in labels.images if os.path.basename(im.image) == wanted] or [
        im for im in labels.images if os.path.basename(im.image).endswith("-" + wanted)]  # Label Studio uploads: <hash>-name
    chosen = labels.images[0] if len(labels.images) == 1 else named[0] if len(named) == 1 else None
    if chosen is None:
        raise LabelFileError(f"{file_name}: holds {len(labels.images)} images and "
                             + (f"{len(named)} are named {wanted}" if named else f"none is named {wanted}"))
    source = replace(chosen, image=image_path, size=tuple(image_size))
    if not any(p.visibility != ABSENT for p in source.points):
        raise LabelFileError(f"{file_name}: no keypoints for {wanted}")
    try:
        check_inside(source, [(p.x, p.y) for p in source.points])
    except ValueError as exc:
        raise LabelFileError(f"{file_name}: {exc}") from None
    return new_project(source, labels.names, labels.skeleton, labels.category)


def canonical(labels: LabelSet) -> LabelSet:
    """``labels`` at the precision the files hold: 1/1000 px, confidence to 1e-4, fb error to 1e-3."""
    def rounded(p: Point) -> Point:
        return replace(p, x=round(p.x, 3), y=round(p.y, 3),
                       confidence=None if p.confidence is None else round(p.confidence, 4),
                       fb_error=None if p.fb_error is None else round(p.fb_error, 3))
    images = tuple(replace(im, points=tuple(map(rounded, im.points))) for im in labels.images)
    return replace(labels, images=images).map_paths(os.path.abspath)


# --- image names -----------------------------------------------------------------------------
def image_reference(image: str, out_path: str, format_name: str, options: ExportOptions = ExportOptions()) -> str:
    """How an export names ``image``, so that its tool finds the picture.

    COCO and CVAT: the path under ``image_root``, else the bare file name (CVAT matches frames
    by name, datumaro refuses ``..``). Label Studio: ``image_url`` or ``/data/local-files/?d=``
    followed by the path under ``image_root`` (default: under the file system's root, i.e. for
    ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/``), URL-quoted. labelme: relative to the folder of
    JSON files, as labelme resolves it. CSV: relative to the CSV's folder. A relative path that
    cannot be made (another drive) becomes absolute.
    """
    if format_name in ("coco", "cvat"):
        return _under_root(image, options.image_root) if options.image_root else _name(image)
    if format_name == "labelstudio":
        if options.image_root:
            stored = _under_root(image, options.image_root)
        else:
            stored = os.path.splitdrive(os.path.abspath(image))[1].replace(os.sep, "/").lstrip("/")
        return (options.image_url or LABEL_STUDIO_LOCAL_FILES) + urllib.parse.quote(stored)
    folder = os.path.abspath(out_path) if format_name == "labelme" else _folder_of(out_path)
    return relative_path(image, folder)


def _under_root(image: str, root: str) -> str:
    relative = relative_path(image, os.path.abspath(root))
    if relative.startswith("../") or relative == ".." or os.path.isabs(relative):
        raise LabelFileError(f"{os.path.basename(image)}: not under the image root {root}")
    return relative


def _name(stored: str) -> str:
    """The file name at the end of a stored path, whichever separator it uses."""
    return stored.replace("\\", "/").rsplit("/", 1)[-1]


def relative_path(image: str, folder: str) -> str:
    """``image`` relative to ``folder`` with ``/`` separators; absolute when on another drive."""
    try:
        return os.path.relpath(image, folder).replace(os.sep, "/")
    except ValueError:  # Windows: path is on mount 'D:', start on mount 'C:'
        return os.path.abspath(image).replace(os.sep, "/")


def _resolve(stored, folder: str) -> str:
    """An absolute path from a stored one; Windows backslashes are separators on every system."""
    if not isinstance(stored, str):
        raise ValueError(f"image name {stored!r} is not text")
    return os.path.normpath(os.path.join(folder, stored.replace("\\", "/"))) if stored else ""


def _stored_path(extras: dict, foreign: str, folder: str) -> str:
    """The image path: our own relative path when the file is ours, else the tool's name for it."""
    own = extras.get("path") if isinstance(extras, dict) else None
    return _resolve(own if own else foreign, folder)


# --- shared pieces ------------------------------------------------------------------------
def _header(labels: LabelSet) -> dict:
    """What every file records about the whole set: names, skeleton, category, provenance."""
    return {"names": list(labels.names), "skeleton": [list(e) for e in labels.skeleton],
            "category": labels.category, "info": labels.info}


def _from_header(header: dict, images, fallback_names=()) -> LabelSet:
    """A LabelSet from images and a header (absent in foreign files: names in order of appearance)."""
    names = header.get("names") or list(dict.fromkeys([*fallback_names, *(p.name for im in images for p in im.points)]))
    return LabelSet(tuple(images), tuple(names), tuple((int(a), int(b)) for a, b in header.get("skeleton", ())),
                    str(header.get("category", "object")), dict(header.get("info", {})))


def _scores(point: Point) -> dict:
    """The model's scores and the manual flag of a point, for formats with a free-form place for them."""
    return {"confidence": point.confidence, "fb_error": point.fb_error, "manual": point.manual,
            "flags": list(point.flags)}


def _with_scores(point: Point, scores: dict | None) -> Point:
    if not scores:
        return point
    return replace(point, confidence=_optional(scores.get("confidence")), fb_error=_optional(scores.get("fb_error")),
                   manual=bool(scores.get("manual", False)), flags=tuple(scores.get("flags", ())))


def _image_score(im: ImageLabels) -> float | None:
    """The mean confidence of an image's model points (None when a person placed them all)."""
    scores = [p.confidence for p in im.points if p.confidence is not None and not p.manual]
    return round(sum(scores) / len(scores), 4) if scores else None


def _optional(value) -> float | None:
    return None if value is None or value == "" else float(value)


def _coordinate(value) -> float:
    return round(float(value), 3)


def _size(width, height) -> tuple[int, int]:
    if int(width) != width or int(height) != height or width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} is not positive whole pixels")
    return int(width), int(height)


def _folder_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _dump_json(data) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --- COCO keypoints -------------------------------------------------------------------------
def _coco_folder(format_name: str, path) -> bool:
    """A COCO export to a path without ``.json`` is a dataset folder: ``annotations/person_keypoints_default.json``."""
    return format_name == "coco" and not os.fspath(path).lower().endswith(".json")


def write_coco(labels: LabelSet, path: str, options: ExportOptions = ExportOptions()) -> None:
    """COCO keypoints JSON: one image, one annotation per image, one category.

    ``path`` is the JSON file, or (without ``.json``) a dataset folder laid out as datumaro and
    CVAT import it: ``annotations/person_keypoints_default.json``, images under ``images/default``.
    Pixel convention: continuous, the image's top-left corner at (0, 0), so the centre of pixel i
    is i + 0.5, as CVAT (through datumaro) and Label Studio write COCO keypoints. (detectron2
    reads COCO keypoints as pixel indices instead: subtract 0.5 for it.) The bbox spans the
    keypoints' pixels; ``segmentation`` is empty. Absent keypoints are (0, 0, 0). The annotation's
    ``score`` is the mean model confidence, ``attributes`` holds ``reviewed`` and the number of
    flagged points; per-point scores sit in the annotation's ``rtn_studio`` entry, ``reviewed``
    and our relative path in the image's, the model, weights hash and settings in
    ``info.rtn_studio``; the skeleton is 1-based as in COCO.
    """
    file = os.path.join(path, COCO_IN_FOLDER) if _coco_folder("coco", path) else path
    images, annotations = [], []
    for image_id, im in enumerate(labels.images, start=1):
        width, height = im.size
        images.append({"id": image_id, "file_name": image_reference(im.image, file, "coco", options),
                       "width": width, "height": height,
                       TOOL_KEY: {"reviewed": im.reviewed, "path": relative_path(im.image, _folder_of(file))}})
        by_name = {p.name: p for p in im.points}
        flat, scores = [], []
        for name in labels.names:
            p = by_name.get(name)
            flat += [round(p.x + 0.5, 3), round(p.y + 0.5, 3), p.visibility] if p else [0, 0, ABSENT]
            scores.append(_scores(p) if p else None)
        xs, ys = [p.x for p in im.points], [p.y for p in im.points]
        box = [min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1] if xs else [0, 0, 0, 0]
        score = _image_score(im)
        annotations.append({"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                            "keypoints": flat, "num_keypoints": len(im.points), "segmentation": [],
                            "bbox": [round(v, 3) for v in box], "area": round(box[2] * box[3], 3),
                            "attributes": {"reviewed": im.reviewed, "flagged": len(im.flagged)},
                            **({"score": score} if score is not None else {}), TOOL_KEY: {"points": scores}})
    category = {"id": 1, "name": labels.category, "supercategory": labels.category,
                "keypoints": list(labels.names), "skeleton": [[a + 1, b + 1] for a, b in labels.skeleton]}
    info = {"description": "keypoints transferred with RTN Studio", TOOL_KEY: labels.info}
    write_atomic(file, _dump_json({"info": info, "images": images, "annotations": annotations,
                                   "categories": [category]}))


def read_coco(path: str) -> LabelSet:
    """Read COCO keypoints JSON or dataset folder (the first keypoint category); see :func:`write_coco`."""
    file = os.path.join(path, COCO_IN_FOLDER) if os.path.isdir(path) else path
    data, folder = load_json(file), _folder_of(file)
    category = next((c for c in data["categories"] if c.get("keypoints")), None)
    if category is None:
        return _read_coco_point_categories(data, folder)
    names = list(category["keypoints"])
    annotations = {a["image_id"]: a for a in data["annotations"] if a.get("category_id") == category["id"]}
    images = []
    for entry in data["images"]:
        annotation = annotations.get(entry["id"], {})
        flat = annotation.get("keypoints", [])
        if len(flat) not in (0, 3 * len(names)):
            raise ValueError(f"annotation {annotation['id']} has {len(flat)} keypoint values, expected {3 * len(names)}")
        scores = annotation.get(TOOL_KEY, {}).get("points") or [None] * len(names)
        points = tuple(_with_scores(Point(name, _coordinate(flat[3 * i] - 0.5), _coordinate(flat[3 * i + 1] - 0.5),
                                          int(flat[3 * i + 2])), scores[i])
                       for i, name in enumerate(names) if flat and flat[3 * i + 2] != ABSENT)
        size = _size(entry["width"], entry["height"]) if entry.get("width") or entry.get("height") else None
        extras = entry.get(TOOL_KEY, {})
        images.append(ImageLabels(_stored_path(extras, entry["file_name"], folder), size, points,
                                  bool(extras.get("reviewed", False)), DONE))
    header = {"names": names, "skeleton": [(a - 1, b - 1) for a, b in category.get("skeleton", ())],
              "category": category.get("name", "object"), "info": data.get("info", {}).get(TOOL_KEY, {})}
    return _from_header(header, images)


def _read_coco_point_categories(data: dict, folder: str) -> LabelSet:
    """COCO where each keypoint name is a category of its own and each annotation one point, as
    CVAT and datumaro write COCO Keypoints for a task whose labels are point names."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict = {}
    for annotation in data["annotations"]:
        x, y, visibility = annotation["keypoints"]
        if visibility != ABSENT:
            by_image.setdefault(annotation["image_id"], []).append(
                Point(names[annotation["category_id"]], _coordinate(x - 0.5), _coordinate(y - 0.5), int(visibility)))
    if not by_image:
        raise ValueError("no keypoints: no category lists keypoint names and no annotation holds a point")
    images = [ImageLabels(_resolve(entry["file_name"], folder), _size(entry["width"], entry["height"]),
                          tuple(by_image.get(entry["id"], ())), False, DONE) for entry in data["images"]]
    return _from_header({"names": list(dict.fromkeys(p.name for im in images for p in im.points))}, images)


# --- labelme --------------------------------------------------------------------------------
def write_labelme(labels: LabelSet, folder: str, options: ExportOptions = ExportOptions()) -> None:
    """One labelme JSON per image, ``<image stem>.json`` in ``folder``; ``imagePath`` is relative to it.

    All or nothing: every file is written to a temporary folder beside ``folder`` first and moved
    in only when all were written, so a full disk leaves the folder as it was.
    Pixel convention: labelme's (5.5 and 6.3), continuous from the image's top-left corner, so a
    click on the centre of pixel i is i + 0.5 and points reach W. A point is a ``point`` shape
    labelled with the keypoint name; occluded points carry the shape flag ``occluded``;
    ``flags.reviewed`` marks reviewed images; scores sit in each shape's ``rtn_studio`` entry and
    the set's names, skeleton and provenance in the file's ``rtn_studio`` entry (labelme keeps
    unknown keys).
    """
    documents = {}
    for index, im in enumerate(labels.images):
        width, height = im.size
        shapes = [{"label": p.name, "points": [[round(p.x + 0.5, 3), round(p.y + 0.5, 3)]], "shape_type": "point",
                   "group_id": None, "description": "", "flags": {"occluded": p.visibility == OCCLUDED},
                   TOOL_KEY: _scores(p)} for p in im.points]
        stem = os.path.splitext(os.path.basename(im.image))[0]
        documents[stem + ".json"] = {"version": "5.5.0", "flags": {"reviewed": im.reviewed}, "shapes": shapes,
                                     "imagePath": image_reference(im.image, folder, "labelme", options),
                                     "imageData": None, "imageWidth": width, "imageHeight": height,
                                     TOOL_KEY: {**_header(labels), "index": index}}
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(dir=folder, prefix=".labelme-export-")
    try:
        for file_name, document in documents.items():
            write_atomic(os.path.join(staging, file_name), _dump_json(document))
        for file_name in documents:  # renames within one folder: no space needed, nothing half-written
            os.replace(os.path.join(staging, file_name), os.path.join(folder, file_name))
    finally:
        for left in os.listdir(staging):
            os.unlink(os.path.join(staging, left))
        os.rmdir(staging)


def read_labelme(path: str) -> LabelSet:
    """Read one labelme JSON file, or every ``*.json`` in a folder (in our export's order, else by name)."""
    files = ([os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".json")]
             if os.path.isdir(path) else [path])
    count_check(len(files), MAX_IMAGES, "labelme files")
    images, header, order = [], {}, []
    for file in files:
        data = load_json(file)
        points = []
        for shape in data["shapes"]:
            if shape.get("shape_type", "point") != "point":
                continue
            (x, y), = shape["points"]
            visibility = OCCLUDED if shape.get("flags", {}).get("occluded") else VISIBLE
            points.append(_with_scores(Point(shape["label"], _coordinate(x - 0.5), _coordinate(y - 0.5), visibility),
                                       shape.get(TOOL_KEY)))
        size = _size(data["imageWidth"], data["imageHeight"]) if data.get("imageWidth") or data.get("imageHeight") else None
        images.append(ImageLabels(_resolve(data["imagePath"], _folder_of(file)), size, tuple(points),
                                  bool(data.get("flags", {}).get("reviewed", False)), DONE))
        header = header or data.get(TOOL_KEY, {})
        order.append(data.get(TOOL_KEY, {}).get("index", len(order)))
    if sorted(order) == list(range(len(order))):  # our own export: the source first, as written
        images = [im for _, im in sorted(zip(order, images), key=lambda pair: pair[0])]
    return _from_header(header, images)


# --- Label Studio -------------------------------------------------------------------------------
LS_POINT_WIDTH = 0.5  # the drawn size of a keypoint, percent of the image width


def labelstudio_config(names) -> str:
    """The labelling config a Label Studio project needs to show our tasks (see docs/export-formats.md)."""
    view = ET.Element("View")
    labels = ET.SubElement(view, "KeyPointLabels", {"name": "kp", "toName": "image"})
    for name in names:
        ET.SubElement(labels, "Label", {"value": name})
    ET.SubElement(view, "Image", {"name": "image", "value": "$image", "zoom": "true"})
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def write_labelstudio(labels: LabelSet, path: str, options: ExportOptions = ExportOptions()) -> None:
    """Label Studio tasks JSON with ``KeyPointLabels`` results (from_name ``kp``, to_name ``image``),
    and beside it ``<name>.config.xml``, the labelling config to paste into the project.

    Pixel convention: x and y are percent of the image width and height measured from the image's
    top-left corner, so the centre of pixel i is at 100 * (i + 0.5) / W and the last pixel's
    centre is just under 100. ``data.image`` is a URL the server serves (see
    :func:`image_reference`). Reviewed images go out as ``annotations``, the others as
    ``predictions`` with the model version and ``score`` (mean confidence); each region's ``score``
    is its point's confidence. Other scores, visibility, the image size, our relative path and
    the set's header sit in the task's ``meta.rtn_studio``.
    """
    tasks = []
    for task_id, im in enumerate(labels.images, start=1):
        width, height = im.size
        results = [{"id": f"kp{i}", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
                    "original_width": width, "original_height": height, "image_rotation": 0,
                    **({"score": p.confidence} if p.confidence is not None else {}),
                    "value": {"x": 100.0 * (p.x + 0.5) / width, "y": 100.0 * (p.y + 0.5) / height,
                              "width": LS_POINT_WIDTH, "keypointlabels": [p.name]}}
                   for i, p in enumerate(im.points)]
        score = _image_score(im)
        result_set = {"result": results} if im.reviewed else {
            "result": results, "model_version": str(labels.info.get("model", "")),
            **({"score": score} if score is not None else {})}
        points = {f"kp{i}": {**_scores(p), "visibility": p.visibility} for i, p in enumerate(im.points)}
        tasks.append({"id": task_id, "data": {"image": image_reference(im.image, path, "labelstudio", options)},
                      "annotations" if im.reviewed else "predictions": [result_set],
                      "meta": {TOOL_KEY: {**_header(labels), "size": [width, height], "points": points,
                                          "path": relative_path(im.image, _folder_of(path))}}})
    write_atomic(os.path.splitext(path)[0] + ".config.xml", labelstudio_config(labels.names))
    write_atomic(path, _dump_json(tasks))


def read_labelstudio(path: str) -> LabelSet:
    """Read Label Studio tasks JSON, ours or Label Studio's own export: the first annotation of
    each task, else its first prediction (predictions given as bare ids are skipped); a task
    with neither is an image without points."""
    tasks, folder = load_json(path), _folder_of(path)
    if not isinstance(tasks, list):
        raise ValueError("expected a list of tasks")
    count_check(len(tasks), MAX_IMAGES, "tasks")
    images, header = [], {}
    for task in tasks:
        extras = task.get("meta", {}).get(TOOL_KEY, {})
        header = header or extras
        annotations = [a for a in task.get("annotations") or () if isinstance(a, dict) and not a.get("was_cancelled")]
        predictions = [a for a in task.get("predictions") or () if isinstance(a, dict)]
        result_set = (annotations or predictions or [{"result": []}])[0]
        regions = [r for r in result_set["result"] if r.get("type") == "keypointlabels"]
        size = _size(*(extras.get("size") or (regions[0]["original_width"], regions[0]["original_height"]))) \
            if extras.get("size") or regions else None
        points = []
        for region in regions:
            value, scores = region["value"], extras.get("points", {}).get(region.get("id"), {})
            label, = value["keypointlabels"]
            point = Point(label, _coordinate(value["x"] * size[0] / 100.0 - 0.5),
                          _coordinate(value["y"] * size[1] / 100.0 - 0.5), int(scores.get("visibility", VISIBLE)),
                          _optional(region.get("score")))
            points.append(_with_scores(point, scores))
        images.append(ImageLabels(_stored_path(extras, _labelstudio_path(task["data"]["image"]), folder), size,
                                  tuple(points), bool(annotations), DONE))
    return _from_header(header, images)


def _labelstudio_path(url: str) -> str:
    """The file path inside a Label Studio image URL (local files, uploads, or any URL's path)."""
    if not isinstance(url, str):
        raise ValueError(f"data.image {url!r} is not text")
    if url.startswith(LABEL_STUDIO_LOCAL_FILES):
        return urllib.parse.unquote(url[len(LABEL_STUDIO_LOCAL_FILES):])
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.unquote(parsed.path) if parsed.scheme or url.startswith("/data/") else url


# --- CVAT for images 1.1 -------------------------------------------------------------------
CVAT_ATTRIBUTES = ("confidence", "fb_error", "flags")


def write_cvat(labels: LabelSet, path: str, options: ExportOptions = ExportOptions()) -> None:
    """CVAT for images 1.1 XML: a ``points`` shape per keypoint, labelled with its name.

    Pixel convention: CVAT draws the image with its top-left corner at (0, 0) and one unit per
    pixel, so coordinates are continuous: the centre of pixel i is i + 0.5 and the last pixel's
    centre is W - 0.5. ``<image name>`` is the task's frame name (:func:`image_reference`).
    Occluded points have ``occluded="1"``, hand-placed ones ``source="manual"`` (transferred:
    ``auto``), reviewed images a ``reviewed`` tag; confidence, fb_error and flags are text
    attributes declared in the meta labels; the set's names, skeleton, provenance and our
    relative paths sit in ``meta/rtn_studio`` as JSON.
    """
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = labels.category
    ET.SubElement(task, "size").text = str(len(labels.images))
    declared = ET.SubElement(task, "labels")
    for name, kind in [(n, "points") for n in labels.names] + [("reviewed", "tag")]:
        label = ET.SubElement(declared, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = kind
        attributes = ET.SubElement(label, "attributes")
        for attribute_name in CVAT_ATTRIBUTES if kind == "points" else ():
            attribute = ET.SubElement(attributes, "attribute")
            for key, text in (("name", attribute_name), ("mutable", "False"), ("input_type", "text"),
                              ("default_value", ""), ("values", "")):
                ET.SubElement(attribute, key).text = text
    folder = _folder_of(path)
    header = {**_header(labels), "paths": [relative_path(im.image, folder) for im in labels.images]}
    ET.SubElement(meta, TOOL_KEY).text = json.dumps(header, sort_keys=True)
    for image_id, im in enumerate(labels.images):
        width, height = im.size
        element = ET.SubElement(root, "image", {"id": str(image_id), "name": image_reference(im.image, path, "cvat", options),
                                                "width": str(width), "height": str(height)})
        for p in im.points:
            shape = ET.SubElement(element, "points", {
                "label": p.name, "source": "manual" if p.manual else "auto",
                "occluded": "1" if p.visibility == OCCLUDED else "0",
                "points": f"{round(p.x + 0.5, 3)},{round(p.y + 0.5, 3)}", "z_order": "0"})
            values = {"confidence": p.confidence, "fb_error": p.fb_error, "flags": ";".join(p.flags)}
            for attribute_name in CVAT_ATTRIBUTES:
                value = values[attribute_name]
                ET.SubElement(shape, "attribute", {"name": attribute_name}).text = "" if value is None else str(value)
        if im.reviewed:
            ET.SubElement(element, "tag", {"label": "reviewed", "source": "manual"})
    ET.indent(root)
    write_atomic(path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


def read_cvat(path: str) -> LabelSet:
    """Read CVAT for images 1.1 XML (``points`` shapes with one point each)."""
    root, folder = parse_xml(read_text(path)), _folder_of(path)
    if root.tag != "annotations":
        raise ValueError(f"root element <{root.tag}>, expected <annotations>")
    header_text = root.findtext(f"meta/{TOOL_KEY}")
    header = parse_json(header_text) if header_text else {}
    paths = header.get("paths") or []
    declared = [label.findtext("name") for label in root.iterfind("meta/task/labels/label")
                if label.findtext("type") in ("points", None)]
    images = []
    for index, element in enumerate(root.iterfind("image")):
        count_check(index + 1, MAX_IMAGES, "images")
        points = []
        for shape in element.iterfind("points"):
            coordinates = shape.get("points").split(";")
            if len(coordinates) != 1:
                raise ValueError(f"a points shape on {element.get('name')} holds {len(coordinates)} points, expected 1")
            x, y = (float(v) - 0.5 for v in coordinates[0].split(","))
            values = {a.get("name"): a.text or "" for a in shape.iterfind("attribute")}
            points.append(Point(shape.get("label"), _coordinate(x), _coordinate(y),
                                OCCLUDED if shape.get("occluded") == "1" else VISIBLE,
                                _optional(values.get("confidence")), _optional(values.get("fb_error")),
                                shape.get("source") == "manual",
                                tuple(filter(None, values.get("flags", "").split(";")))))
        reviewed = any(tag.get("label") == "reviewed" for tag in element.iterfind("tag"))
        stored = paths[index] if index < len(paths) else element.get("name")
        images.append(ImageLabels(_resolve(stored, folder), _size(int(element.get("width")), int(element.get("height"))),
                                  tuple(points), reviewed, DONE))
    return _from_header(header, images, declared)


# --- CSV -------------------------------------------------------------------------------------
CSV_COLUMNS = ("image", "width", "height", "name", "x", "y", "visibility", "confidence", "fb_error",
               "manual", "reviewed", "flags")
CSV_SIDECAR = ".meta.json"  # labels.csv -> labels.csv.meta.json: names, skeleton, provenance


def write_csv(labels: LabelSet, path: str, options: ExportOptions = ExportOptions()) -> None:
    """A plain CSV (what a spreadsheet or ``pandas.read_csv(path)`` reads without options), one row
    per point: image, width, height, name, x, y, visibility, confidence, fb_error, manual, reviewed,
    flags (``;``-separated); and beside it ``<name>.csv.meta.json`` with names, skeleton and provenance.

    Pixel convention: 0-based pixel centres (the centre of pixel i is i). Booleans are 0/1, missing
    scores empty. Image paths are relative to the CSV's folder. An image without points has one row
    with empty name, x and y.
    """
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for im in labels.images:
        width, height = im.size
        image = image_reference(im.image, path, "csv", options)
        for p in im.points:
            writer.writerow([image, width, height, p.name, p.x, p.y, p.visibility,
                             "" if p.confidence is None else p.confidence, "" if p.fb_error is None else p.fb_error,
                             int(p.manual), int(im.reviewed), ";".join(p.flags)])
        if not im.points:  # the image is still part of the set
            writer.writerow([image, width, height, "", "", "", "", "", "", "", int(im.reviewed), ""])
    write_atomic(path + CSV_SIDECAR, _dump_json(_header(labels)))
    write_atomic(path, stream.getvalue())


def read_csv(path: str) -> LabelSet:
    """Read our CSV, or any CSV with at least ``name,x,y`` columns (then one image, path unknown).

    Names, skeleton and provenance come from the ``.meta.json`` sidecar when there is one (or from
    the ``# rtn_studio`` first line of files written before the sidecar); names found only in the
    rows (added in a spreadsheet) follow the sidecar's.
    """
    text, header = read_text(path), {}
    legacy = f"# {TOOL_KEY} "
    if text.startswith(legacy):
        first, _, text = text.partition("\n")
        header = parse_json(first[len(legacy):])
    if os.path.isfile(path + CSV_SIDECAR):
        header = load_json(path + CSV_SIDECAR)
    reader = csv.DictReader(io.StringIO(text, newline=""))  # csv splits the lines: quoted fields keep theirs
    if not reader.fieldnames or not {"name", "x", "y"} <= set(reader.fieldnames):
        raise ValueError("expected a header with at least the columns name,x,y and one row")
    folder = _folder_of(path)
    by_image: dict[str, list] = {}
    names = set()
    for count, row in enumerate(reader, start=1):
        count_check(count, MAX_POINTS, "rows")
        names.add(row["name"])
        count_check(len(names), MAX_NAMES, "keypoint names")
        if not row["name"] and not row["x"] and not row["y"]:  # an image without points
            by_image.setdefault(row.get("image") or "", [])
            by_image[row.get("image") or ""].insert(0, row)
            continue
        try:
            float(row["x"]), float(row["y"])
        except (TypeError, ValueError):
            raise ValueError(f"line {reader.line_num}: x and y must be numbers, got {row.get('x')!r}, "
                             f"{row.get('y')!r}") from None
        by_image.setdefault(row.get("image") or "", []).append(row)
    if not by_image:
        raise ValueError("expected a header with at least the columns name,x,y and one row")
    images = []
    for stored, image_rows in by_image.items():
        first = image_rows[0]
        size = _size(float(first["width"]), float(first["height"])) if first.get("width") else None
        points = tuple(Point(row["name"], _coordinate(row["x"]), _coordinate(row["y"]),
                             int(row.get("visibility") or VISIBLE), _optional(row.get("confidence")),
                             _optional(row.get("fb_error")), row.get("manual") == "1",
                             tuple(filter(None, (row.get("flags") or "").split(";"))))
                       for row in image_rows if row["name"] or row["x"] or row["y"])
        images.append(ImageLabels(_resolve(stored, folder), size, points, first.get("reviewed") == "1", DONE))
    if header.get("names"):  # names added in a spreadsheet join the sidecar's, after them
        header = {**header, "names": list(dict.fromkeys([*header["names"], *(p.name for im in images for p in im.points)]))}
    return _from_header(header, images)


FORMATS = {
    "coco": Format("coco", "COCO keypoints JSON (a path without .json: a datumaro-style dataset folder)",
                   read_coco, write_coco),
    "labelme": Format("labelme", "labelme JSON, one file per image (the path is a folder)",
                      read_labelme, write_labelme, writes_folder=True),
    "labelstudio": Format("labelstudio", "Label Studio tasks JSON (KeyPointLabels) and its labelling config",
                          read_labelstudio, write_labelstudio),
    "cvat": Format("cvat", "CVAT for images 1.1 XML (points)", read_cvat, write_cvat),
    "csv": Format("csv", "CSV, one row per point, and a .meta.json sidecar", read_csv, write_csv),
}
