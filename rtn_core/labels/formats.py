"""Keypoint label files: one registry of readers and writers for COCO, labelme, Label Studio, CVAT and CSV.

Every writer takes the canonical export form (:meth:`LabelSet.for_export`), writes image paths
relative to the output's folder, rounds coordinates to 1/1000 px, and records the model, the
weights' hash and the settings (``LabelSet.info``). Output is deterministic: sorted JSON keys,
no timestamps. Every reader returns a LabelSet with absolute image paths, which for our own
files equals :func:`canonical` of what was written. Each writer's docstring states its pixel
convention; ours is 0-based pixel centres at integers (see docs/export-formats.md).
"""
from __future__ import annotations

import csv
import io
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Callable

from ..atomic import write_atomic
from .keypoints import (ABSENT, DONE, OCCLUDED, VISIBLE, ImageLabels, LabelSet, Point, check_inside,
                        new_project)

TOOL_KEY = "rtn_studio"  # where our own extras live inside each format


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    read: Callable[[str], LabelSet]
    write: Callable[[LabelSet, str], None]  # the path is a file, or a folder for per-image formats
    writes_folder: bool = False


def read_labels(path, format_name: str | None = None) -> LabelSet:
    """Read a label file (or a folder of labelme files); the format is guessed when not given.

    Raises ValueError naming the file and the problem for unreadable, unknown or broken files.
    """
    path = os.fspath(path)
    name = os.path.basename(os.path.normpath(path)) or path
    if not os.path.exists(path):
        raise ValueError(f"{name}: no such file")
    try:
        format_name = format_name or guess_format(path)
        labels = FORMATS[format_name].read(path)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ET.ParseError, csv.Error) as exc:
        detail = exc.args[0] if isinstance(exc, ValueError) and exc.args else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{name}: not a valid {format_name or 'label'} file ({detail})") from None
    if not labels.images:
        raise ValueError(f"{name}: holds no images")
    bad = next((p for im in labels.images for p in im.points if p.visibility not in (ABSENT, OCCLUDED, VISIBLE)), None)
    if bad:
        raise ValueError(f"{name}: keypoint {bad.name!r} has visibility {bad.visibility}, expected 0, 1 or 2")
    return labels


def write_labels(labels: LabelSet, path, format_name: str) -> None:
    """Write ``labels`` (normally ``project.for_export()``) in a registered format."""
    if format_name not in FORMATS:
        raise ValueError(f"unknown export format {format_name!r}: use one of {', '.join(FORMATS)}")
    unsized = next((im for im in labels.images if im.size is None), None)
    if unsized:
        raise ValueError(f"{os.path.basename(unsized.image) or 'an image'}: image size unknown, cannot export it")
    FORMATS[format_name].write(canonical(labels), os.fspath(path))


def guess_format(path: str) -> str:
    """The format of a file from its extension and, for JSON, its top-level structure."""
    if os.path.isdir(path):
        return "labelme"
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        return "csv"
    if extension == ".xml":
        return "cvat"
    if extension != ".json":
        raise ValueError(f"unknown label format {extension or '(no extension)'}: expected .json, .csv or .xml")
    data = _load_json(path)
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

    When the file holds several images, the one with the source's file name is used. Points
    outside the image raise ValueError naming the label file.
    """
    labels = read_labels(label_path)
    file_name = os.path.basename(label_path)
    wanted = os.path.basename(image_path)
    chosen = labels.images[0] if len(labels.images) == 1 else next(
        (im for im in labels.images if os.path.basename(im.image) == wanted), None)
    if chosen is None:
        raise ValueError(f"{file_name}: holds {len(labels.images)} images and none is named {wanted}")
    source = replace(chosen, image=image_path, size=tuple(image_size))
    if not any(p.visibility != ABSENT for p in source.points):
        raise ValueError(f"{file_name}: no keypoints for {wanted}")
    try:
        check_inside(source, [(p.x, p.y) for p in source.points])
    except ValueError as exc:
        raise ValueError(f"{file_name}: {exc}") from None
    return new_project(source, labels.names, labels.skeleton, labels.category)


def canonical(labels: LabelSet) -> LabelSet:
    """``labels`` at the precision the files hold: 1/1000 px, confidence to 1e-4, fb error to 1e-3."""
    def rounded(p: Point) -> Point:
        return replace(p, x=round(p.x, 3), y=round(p.y, 3),
                       confidence=None if p.confidence is None else round(p.confidence, 4),
                       fb_error=None if p.fb_error is None else round(p.fb_error, 3))
    images = tuple(replace(im, points=tuple(map(rounded, im.points))) for im in labels.images)
    return replace(labels, images=images).map_paths(os.path.abspath)


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
    return replace(point, confidence=scores.get("confidence"), fb_error=scores.get("fb_error"),
                   manual=bool(scores.get("manual", False)), flags=tuple(scores.get("flags", ())))


def _relative(image: str, folder: str) -> str:
    return os.path.relpath(image, folder).replace(os.sep, "/")


def _resolve(stored: str, folder: str) -> str:
    return os.path.normpath(os.path.join(folder, stored)) if stored else ""


def _coordinate(value) -> float:
    return round(float(value), 3)


def _folder_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _load_json(path: str):
    with open(path, encoding="utf-8") as stream:
        try:
            return json.load(stream)
        except json.JSONDecodeError as exc:
            raise ValueError(f"broken JSON at line {exc.lineno}: {exc.msg}") from None


def _dump_json(data) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --- COCO keypoints -------------------------------------------------------------------------
def write_coco(labels: LabelSet, path: str) -> None:
    """COCO keypoints JSON: one image, one annotation per image, one category.

    Pixel convention: keypoint x, y are 0-based pixel centres (the centre of pixel i is i), as in
    COCO's own keypoint annotations, which are pixel indices in [0, W-1] (detectron2 adds 0.5 on
    reading them for that reason). The bbox uses COCO's continuous convention (edges): it spans
    the keypoints' pixels, [min - 0.5, max + 0.5]. Absent keypoints are (0, 0, 0). Scores sit in
    the annotation's ``rtn_studio`` entry (per keypoint, null where absent); ``reviewed`` in the image's;
    the model, weights hash and settings in ``info.rtn_studio``; the skeleton is 1-based as in COCO.
    """
    folder = _folder_of(path)
    images, annotations = [], []
    for image_id, im in enumerate(labels.images, start=1):
        width, height = im.size or (0, 0)
        images.append({"id": image_id, "file_name": _relative(im.image, folder), "width": width,
                       "height": height, TOOL_KEY: {"reviewed": im.reviewed}})
        by_name = {p.name: p for p in im.points}
        flat, scores = [], []
        for name in labels.names:
            p = by_name.get(name)
            flat += [p.x, p.y, p.visibility] if p else [0, 0, ABSENT]
            scores.append(_scores(p) if p else None)
        xs, ys = [p.x for p in im.points], [p.y for p in im.points]
        box = [min(xs) - 0.5, min(ys) - 0.5, max(xs) - min(xs) + 1, max(ys) - min(ys) + 1] if xs else [0, 0, 0, 0]
        annotations.append({"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                            "keypoints": flat, "num_keypoints": len(im.points),
                            "bbox": [round(v, 3) for v in box], "area": round(box[2] * box[3], 3),
                            TOOL_KEY: {"points": scores}})
    category = {"id": 1, "name": labels.category, "supercategory": labels.category,
                "keypoints": list(labels.names), "skeleton": [[a + 1, b + 1] for a, b in labels.skeleton]}
    info = {"description": "keypoints transferred with RTN Studio", TOOL_KEY: labels.info}
    write_atomic(path, _dump_json({"info": info, "images": images, "annotations": annotations,
                                   "categories": [category]}))


def read_coco(path: str) -> LabelSet:
    """Read COCO keypoints JSON (the first keypoint category); see :func:`write_coco` for conventions."""
    data, folder = _load_json(path), _folder_of(path)
    category = next((c for c in data["categories"] if c.get("keypoints")), None)
    if category is None:
        raise ValueError("no category with keypoints")
    names = list(category["keypoints"])
    annotations = {a["image_id"]: a for a in data["annotations"] if a.get("category_id") == category["id"]}
    images = []
    for entry in data["images"]:
        annotation = annotations.get(entry["id"], {})
        flat = annotation.get("keypoints", [])
        if len(flat) not in (0, 3 * len(names)):
            raise ValueError(f"annotation {annotation['id']} has {len(flat)} keypoint values, expected {3 * len(names)}")
        scores = annotation.get(TOOL_KEY, {}).get("points") or [None] * len(names)
        points = tuple(_with_scores(Point(name, _coordinate(flat[3 * i]), _coordinate(flat[3 * i + 1]),
                                          int(flat[3 * i + 2])), scores[i])
                       for i, name in enumerate(names) if flat and flat[3 * i + 2] != ABSENT)
        size = (int(entry["width"]), int(entry["height"])) if entry.get("width") else None
        images.append(ImageLabels(_resolve(entry["file_name"], folder), size, points,
                                  bool(entry.get(TOOL_KEY, {}).get("reviewed", False)), DONE))
    header = {"names": names, "skeleton": [(a - 1, b - 1) for a, b in category.get("skeleton", ())],
              "category": category.get("name", "object"), "info": data.get("info", {}).get(TOOL_KEY, {})}
    return _from_header(header, images)


# --- labelme --------------------------------------------------------------------------------
def write_labelme(labels: LabelSet, folder: str) -> None:
    """One labelme JSON per image, ``<image stem>.json`` in ``folder``; ``imagePath`` is relative to it.

    Pixel convention: 0-based pixel centres, as labelme itself uses (its canvas keeps points in
    [0, W-1] x [0, H-1]). A point is a ``point`` shape labelled with the keypoint name; occluded
    points carry the shape flag ``occluded``; ``flags.reviewed`` marks reviewed images; scores
    sit in each shape's ``rtn_studio`` entry and the set's names, skeleton and provenance in the
    file's ``rtn_studio`` entry (labelme keeps unknown keys).
    """
    stems = [os.path.splitext(os.path.basename(im.image))[0] for im in labels.images]
    if len(set(stems)) != len(stems):
        raise ValueError("labelme export needs distinct image file names (one JSON per image name)")
    for stem, im in zip(stems, labels.images):
        width, height = im.size or (None, None)
        shapes = [{"label": p.name, "points": [[p.x, p.y]], "shape_type": "point", "group_id": None,
                   "description": "", "flags": {"occluded": p.visibility == OCCLUDED}, TOOL_KEY: _scores(p)}
                  for p in im.points]
        document = {"version": "5.5.0", "flags": {"reviewed": im.reviewed}, "shapes": shapes,
                    "imagePath": _relative(im.image, os.path.abspath(folder)), "imageData": None,
                    "imageWidth": width, "imageHeight": height, TOOL_KEY: _header(labels)}
        write_atomic(os.path.join(folder, stem + ".json"), _dump_json(document))


def read_labelme(path: str) -> LabelSet:
    """Read one labelme JSON file, or every ``*.json`` in a folder (sorted by name)."""
    files = ([os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".json")]
             if os.path.isdir(path) else [path])
    images, header = [], {}
    for file in files:
        data = _load_json(file)
        points = []
        for shape in data["shapes"]:
            if shape.get("shape_type", "point") != "point":
                continue
            (x, y), = shape["points"]
            visibility = OCCLUDED if shape.get("flags", {}).get("occluded") else VISIBLE
            points.append(_with_scores(Point(str(shape["label"]), _coordinate(x), _coordinate(y), visibility),
                                       shape.get(TOOL_KEY)))
        size = (int(data["imageWidth"]), int(data["imageHeight"])) if data.get("imageWidth") else None
        images.append(ImageLabels(_resolve(data["imagePath"], _folder_of(file)), size, tuple(points),
                                  bool(data.get("flags", {}).get("reviewed", False)), DONE))
        header = header or data.get(TOOL_KEY, {})
    return _from_header(header, images)


# --- Label Studio -------------------------------------------------------------------------------
LS_POINT_WIDTH = 0.5  # the drawn size of a keypoint, percent of the image width


def write_labelstudio(labels: LabelSet, path: str) -> None:
    """Label Studio tasks JSON with ``KeyPointLabels`` results (from_name ``kp``, to_name ``image``).

    Pixel convention: x and y are percent of the image width and height measured from the image's
    top-left corner, so the centre of pixel i is at 100 * (i + 0.5) / W and the last pixel's
    centre is just under 100. Reviewed images go out as ``annotations``, the others as
    ``predictions`` (with the model version and each point's confidence as ``score``). Other
    scores, visibility, the image size and the set's header sit in the task's ``meta.rtn_studio``.
    """
    folder = _folder_of(path)
    tasks = []
    for task_id, im in enumerate(labels.images, start=1):
        width, height = im.size
        results = [{"id": f"kp{i}", "type": "keypointlabels", "from_name": "kp", "to_name": "image",
                    "original_width": width, "original_height": height, "image_rotation": 0,
                    **({"score": p.confidence} if p.confidence is not None else {}),
                    "value": {"x": 100.0 * (p.x + 0.5) / width, "y": 100.0 * (p.y + 0.5) / height,
                              "width": LS_POINT_WIDTH, "keypointlabels": [p.name]}}
                   for i, p in enumerate(im.points)]
        kind = "annotations" if im.reviewed else "predictions"
        result_set = {"result": results} if im.reviewed else {"result": results,
                                                             "model_version": str(labels.info.get("model", ""))}
        points = {f"kp{i}": {**_scores(p), "visibility": p.visibility} for i, p in enumerate(im.points)}
        tasks.append({"id": task_id, "data": {"image": _relative(im.image, folder)}, kind: [result_set],
                      "meta": {TOOL_KEY: {**_header(labels), "size": [width, height], "points": points}}})
    write_atomic(path, _dump_json(tasks))


def read_labelstudio(path: str) -> LabelSet:
    """Read Label Studio tasks JSON: the first annotation of each task, else its first prediction."""
    tasks, folder = _load_json(path), _folder_of(path)
    images, header = [], {}
    for task in tasks:
        extras = task.get("meta", {}).get(TOOL_KEY, {})
        header = header or extras
        reviewed = bool(task.get("annotations"))
        result_set = (task.get("annotations") or task.get("predictions") or [{"result": []}])[0]
        regions = [r for r in result_set["result"] if r.get("type") == "keypointlabels"]
        size = tuple(extras.get("size") or (regions[0]["original_width"], regions[0]["original_height"]))
        points = []
        for region in regions:
            value, scores = region["value"], extras.get("points", {}).get(region.get("id"), {})
            point = Point(value["keypointlabels"][0], _coordinate(value["x"] * size[0] / 100.0 - 0.5),
                          _coordinate(value["y"] * size[1] / 100.0 - 0.5), int(scores.get("visibility", VISIBLE)),
                          region.get("score"))
            points.append(_with_scores(point, scores))
        images.append(ImageLabels(_resolve(task["data"]["image"], folder), (int(size[0]), int(size[1])),
                                  tuple(points), reviewed, DONE))
    return _from_header(header, images)


# --- CVAT for images 1.1 -------------------------------------------------------------------
CVAT_ATTRIBUTES = ("confidence", "fb_error", "flags")


def write_cvat(labels: LabelSet, path: str) -> None:
    """CVAT for images 1.1 XML: a ``points`` shape per keypoint, labelled with its name.

    Pixel convention: CVAT draws the image with its top-left corner at (0, 0) and one unit per
    pixel, so coordinates are continuous: the centre of pixel i is i + 0.5 and the last pixel's
    centre is W - 0.5. Occluded points have ``occluded="1"``, hand-placed ones
    ``source="manual"`` (transferred: ``auto``), reviewed images a ``reviewed`` tag; confidence,
    fb_error and flags are text attributes declared in the meta labels; the set's names, skeleton
    and provenance sit in ``meta/rtn_studio`` as JSON.
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
    ET.SubElement(meta, TOOL_KEY).text = json.dumps(_header(labels), sort_keys=True)
    folder = _folder_of(path)
    for image_id, im in enumerate(labels.images):
        width, height = im.size
        element = ET.SubElement(root, "image", {"id": str(image_id), "name": _relative(im.image, folder),
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
    root, folder = ET.parse(path).getroot(), _folder_of(path)
    if root.tag != "annotations":
        raise ValueError(f"root element <{root.tag}>, expected <annotations>")
    header_text = root.findtext(f"meta/{TOOL_KEY}")
    declared = [label.findtext("name") for label in root.iterfind("meta/task/labels/label")
                if label.findtext("type") in ("points", None)]
    images = []
    for element in root.iterfind("image"):
        points = []
        for shape in element.iterfind("points"):
            coordinates = shape.get("points").split(";")
            if len(coordinates) != 1:
                raise ValueError(f"a points shape on {element.get('name')} holds {len(coordinates)} points, expected 1")
            x, y = (float(v) - 0.5 for v in coordinates[0].split(","))
            values = {a.get("name"): a.text or "" for a in shape.iterfind("attribute")}
            points.append(Point(shape.get("label"), _coordinate(x), _coordinate(y),
                                OCCLUDED if shape.get("occluded") == "1" else VISIBLE,
                                float(values["confidence"]) if values.get("confidence") else None,
                                float(values["fb_error"]) if values.get("fb_error") else None,
                                shape.get("source") == "manual",
                                tuple(filter(None, values.get("flags", "").split(";")))))
        reviewed = any(tag.get("label") == "reviewed" for tag in element.iterfind("tag"))
        images.append(ImageLabels(_resolve(element.get("name"), folder),
                                  (int(element.get("width")), int(element.get("height"))),
                                  tuple(points), reviewed, DONE))
    return _from_header(json.loads(header_text) if header_text else {}, images, declared)


# --- CSV -------------------------------------------------------------------------------------
CSV_COLUMNS = ("image", "width", "height", "name", "x", "y", "visibility", "confidence", "fb_error",
               "manual", "reviewed", "flags")


def write_csv(labels: LabelSet, path: str) -> None:
    """CSV, one row per point: image, width, height, name, x, y, visibility, confidence, fb_error,
    manual, reviewed, flags (``;``-separated).

    Pixel convention: 0-based pixel centres (the centre of pixel i is i). Booleans are 0/1, missing
    scores empty. The first line, ``# rtn_studio {...}``, records names, skeleton and provenance as
    JSON (read it with ``comment='#'`` in pandas). Images without points have no rows.
    """
    stream = io.StringIO()
    stream.write(f"# {TOOL_KEY} {json.dumps(_header(labels), sort_keys=True)}\n")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    folder = _folder_of(path)
    for im in labels.images:
        width, height = im.size or ("", "")
        for p in im.points:
            writer.writerow([_relative(im.image, folder), width, height, p.name, p.x, p.y,
                             p.visibility, "" if p.confidence is None else p.confidence,
                             "" if p.fb_error is None else p.fb_error, int(p.manual), int(im.reviewed),
                             ";".join(p.flags)])
    write_atomic(path, stream.getvalue())


def read_csv(path: str) -> LabelSet:
    """Read our CSV, or any CSV with at least ``name,x,y`` columns (then one image, path unknown)."""
    with open(path, encoding="utf-8", newline="") as stream:
        lines = stream.read().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    header_line = next((c[len(f"# {TOOL_KEY} "):] for c in comments if c.startswith(f"# {TOOL_KEY} ")), "")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    if not rows or not {"name", "x", "y"} <= rows[0].keys():
        raise ValueError("expected a header with at least the columns name,x,y and one row")
    folder = _folder_of(path)
    by_image: dict[str, list] = {}
    for number, row in enumerate(rows, start=2 + len(comments)):
        try:
            float(row["x"]), float(row["y"])
        except (TypeError, ValueError):
            raise ValueError(f"line {number}: x and y must be numbers, got {row.get('x')!r}, {row.get('y')!r}") from None
        by_image.setdefault(row.get("image") or "", []).append(row)
    images = []
    for stored, image_rows in by_image.items():
        first = image_rows[0]
        size = (int(first["width"]), int(first["height"])) if first.get("width") else None
        points = tuple(Point(row["name"], _coordinate(row["x"]), _coordinate(row["y"]),
                             int(row.get("visibility") or VISIBLE),
                             float(row["confidence"]) if row.get("confidence") else None,
                             float(row["fb_error"]) if row.get("fb_error") else None,
                             row.get("manual") == "1", tuple(filter(None, (row.get("flags") or "").split(";"))))
                       for row in image_rows)
        images.append(ImageLabels(_resolve(stored, folder), size, points, first.get("reviewed") == "1", DONE))
    return _from_header(json.loads(header_line) if header_line else {}, images)


FORMATS = {
    "coco": Format("coco", "COCO keypoints JSON", read_coco, write_coco),
    "labelme": Format("labelme", "labelme JSON, one file per image (the path is a folder)",
                      read_labelme, write_labelme, writes_folder=True),
    "labelstudio": Format("labelstudio", "Label Studio tasks JSON (KeyPointLabels)", read_labelstudio,
                          write_labelstudio),
    "cvat": Format("cvat", "CVAT for images 1.1 XML (points)", read_cvat, write_cvat),
    "csv": Format("csv", "CSV, one row per point", read_csv, write_csv),
}
