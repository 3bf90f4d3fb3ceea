"""Reading files we did not write: size and count limits, encodings, JSON numbers and nesting,
and the checks a LabelSet read from any file must pass before anything uses it.

Every label and project reader goes through :func:`read_text` and :func:`parse_json` (or
:func:`parse_xml`) and ends with :func:`check_labels`, so a hostile or broken file gives one
``ValueError`` line saying what is wrong, never a traceback, a hang or a memory blow-up. Limits
are checked before the work that grows with them: the file's size before reading it, the row
count while reading.
"""
from __future__ import annotations

import codecs
import json
import math
import os
import re
import stat
import xml.etree.ElementTree as ET

from .keypoints import ABSENT, DONE, OCCLUDED, PENDING, SKIPPED, VISIBLE

MAX_FILE_BYTES = 256 << 20  # label and project files; real ones are a few MB
MAX_NAMES = 1000  # keypoint names in one set (COCO-WholeBody has 133)
MAX_IMAGES = 200_000
MAX_POINTS = 2_000_000  # over all images
MAX_SIDE = 1_000_000  # pixels, for image sizes stated in files
MAX_COORDINATE = 2 * MAX_SIDE  # |x|, |y|: beyond this no image of any allowed size is near
MAX_INT_DIGITS = 20  # JSON integers: ids are 64-bit at most
MAX_INFO_DEPTH = 16  # nesting of the free-form ``info`` a file carries into every export

_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")  # cannot go into XML, or not into UTF-8


def read_text(path: str) -> str:
    """The UTF-8 text of a regular file (a leading BOM dropped), refused past :data:`MAX_FILE_BYTES`.

    FIFOs and devices are refused from their ``stat``, without opening them (opening a FIFO blocks).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file (a folder, FIFO or device)")
    if info.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{info.st_size} bytes, more than the {MAX_FILE_BYTES >> 20} MB a label file may have")
    with open(path, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"more than the {MAX_FILE_BYTES >> 20} MB a label file may have")
    return decode(data)


def decode(data: bytes) -> str:
    """``data`` as UTF-8 text; Excel's "CSV UTF-8" BOM is dropped; bad bytes are located."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                         f"(line {line}) is invalid") from None


def parse_json(text: str):
    """JSON with finite numbers only: NaN, Infinity, 1e400 and integers past 20 digits are refused."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ValueError(f"broken JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_json(path: str):
    return parse_json(read_text(path))


def parse_xml(text: str) -> ET.Element:
    """The root of an XML document; document type declarations (entities, the billion laughs) are refused."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("XML with a document type declaration (entities are not read)")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"broken XML at line {exc.position[0]}") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number a label file may hold")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a {len(text)}-digit integer: too large")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:30]} is out of range")
    return value


def count_check(count: int, limit: int, what: str) -> None:
    """Refuse ``count`` past ``limit`` (call it as the count grows, before the work does)."""
    if count > limit:
        raise ValueError(f"more than {limit} {what}")


def check_labels(labels):
    """Return ``labels`` when every name, index, size, coordinate and score in it is usable, else
    raise ValueError naming the first problem.

    What passes here survives transfer, every writer and reading back: names are unique,
    non-empty strings without control characters; every point's name is one of them and
    appears once per image; skeleton indices exist; sizes are positive; numbers are finite.
    """
    names = labels.names
    count_check(len(names), MAX_NAMES, "keypoint names")
    count_check(len(labels.images), MAX_IMAGES, "images")
    for name in names:
        _check_name(name, "keypoint name")
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"keypoint name {name!r} appears twice")
        seen.add(name)
    for edge in labels.skeleton:
        if len(edge) != 2 or not all(type(i) is int and 0 <= i < len(names) for i in edge):
            raise ValueError(f"skeleton edge {list(edge)} refers to no keypoint (there are {len(names)})")
    _check_name(labels.category, "category")
    try:
        labels.settings  # thresholds from the file: finite and in range
    except (TypeError, ValueError) as exc:
        raise ValueError(f"settings: {exc}") from None
    if not isinstance(labels.info, dict) or _depth(labels.info) > MAX_INFO_DEPTH:
        raise ValueError(f"info must be a JSON object nested at most {MAX_INFO_DEPTH} deep")
    total, paths = 0, set()
    for im in labels.images:
        where = f"{os.path.basename(im.image)}: " if isinstance(im.image, str) and im.image else ""
        if not isinstance(im.image, str) or _CONTROL.search(im.image):
            raise ValueError(f"image path {im.image!r} is not a file name")
        if im.image in paths:
            raise ValueError(f"{where}the image appears twice")
        paths.add(im.image)
        if im.size is not None and not (len(im.size) == 2 and all(
                type(v) is int and 1 <= v <= MAX_SIDE for v in im.size)):
            raise ValueError(f"{where}image size {im.size} is not two whole numbers from 1 to {MAX_SIDE}")
        if im.status not in (PENDING, DONE, SKIPPED) or type(im.reviewed) is not bool or not isinstance(im.reason, str):
            raise ValueError(f"{where}status {im.status!r} is not pending, done or skipped")
        total += len(im.points)
        count_check(total, MAX_POINTS, "points")
        on_image = set()
        for p in im.points:
            if not isinstance(p.name, str) or p.name not in seen:
                raise ValueError(f"{where}point label {p.name!r} is not one of the keypoint names")
            if p.name in on_image:
                raise ValueError(f"{where}keypoint {p.name!r} appears twice")
            on_image.add(p.name)
            _check_point(p, where)
    return labels


def _check_name(name, what: str) -> None:
    if not isinstance(name, str) or not name.strip() or _CONTROL.search(name) or len(name) > 200:
        raise ValueError(f"{what} {name!r} must be text of 1 to 200 characters without control characters")


def _check_point(p, where: str) -> None:
    if p.visibility not in (ABSENT, OCCLUDED, VISIBLE) or type(p.visibility) is not int:
        raise ValueError(f"{where}keypoint {p.name!r} has visibility {p.visibility}, expected 0, 1 or 2")
    for axis, value in (("x", p.x), ("y", p.y)):
        if not (_is_number(value) and abs(value) <= MAX_COORDINATE):
            raise ValueError(f"{where}keypoint {p.name!r} has {axis} = {value!r}, not a finite coordinate")
    if p.confidence is not None and not (_is_number(p.confidence) and 0.0 <= p.confidence <= 1.0):
        raise ValueError(f"{where}keypoint {p.name!r} has confidence {p.confidence!r}, expected 0 to 1")
    if p.fb_error is not None and not (_is_number(p.fb_error) and 0.0 <= p.fb_error <= MAX_COORDINATE):
        raise ValueError(f"{where}keypoint {p.name!r} has forward-backward error {p.fb_error!r}")
    if type(p.manual) is not bool or not all(isinstance(f, str) and re.fullmatch(r"[a-z_]{1,40}", f) for f in p.flags):
        raise ValueError(f"{where}keypoint {p.name!r} has flags {list(p.flags)!r}, expected words like fb_fail")


def _is_number(value) -> bool:
    """A finite int or float (numpy scalars from a view included), not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _depth(value, level: int = 0) -> int:
    """How deep ``value`` nests (stops counting past the limit, so it never recurses far)."""
    if level > MAX_INFO_DEPTH or not isinstance(value, (dict, list)):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(v, level + 1) for v in items), default=level + 1)
