"""Training and benchmark data: image sets, same-category pairs, keypoint-pair readers.

Nothing here downloads: every reader takes a local folder or file. Training images that fail
to decode are skipped and counted (:class:`ImageStore`); benchmark readers raise ValueError
naming the file and line that does not parse.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np

from ..images import ImageError, load_image
from ..matcher import to_input_tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# imagenet-sample class-index groups of one kind (its README), for weak same-category pairs
IMAGENET_GROUPS = {
    "dog": [range(151, 269)],
    "domestic_cat": [range(281, 286)],
    "big_cat": [range(286, 294)],
    "bird": [range(7, 25), range(80, 101), range(127, 147)],
    "car": [[407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817]],
}


def list_images(folder: str) -> list[str]:
    """Image files directly in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise ValueError(f"no such data folder: {folder}")
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_SUFFIXES))


class ImageStore:
    """Decoded images resized to the square training input, kept in memory; failures counted.

    ``get`` returns the (size, size, 3) uint8 RGB array, or None for a file that does not decode.
    """

    def __init__(self, size: int):
        self.size = size
        self._cache: dict[str, np.ndarray | None] = {}
        self.failed: list[str] = []

    def get(self, path: str) -> np.ndarray | None:
        if path not in self._cache:
            try:
                pixels = load_image(path).pixels
                self._cache[path] = (to_input_tensor(pixels, self.size)[0].permute(1, 2, 0) * 255.0
                                     ).round().byte().numpy()
            except ImageError:
                self._cache[path] = None
                self.failed.append(path)
        return self._cache[path]

    def usable(self, paths) -> list[str]:
        """The paths that decode (loading them all once)."""
        return [p for p in paths if self.get(p) is not None]


# ---------------------------------------------------------------- weak same-category pairs

@dataclass(frozen=True)
class Photo:
    path: str
    group: str  # pairs are drawn within a group
    box: tuple | None = None  # (xmin, ymin, xmax, ymax) in original pixels, or None
    size: tuple | None = None  # (width, height) of the original image, with ``box``


def pets_photos(root: str) -> list[Photo]:
    """oxford-pets-sample: every image with its head box, grouped by species (cat-cat, dog-dog)."""
    photos = []
    for _, row in _csv_rows(os.path.join(root, "bboxes.csv"), "oxford-pets-sample"):
        folder = "cats" if row["species"] == "cat" else "dogs"
        box = tuple(float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        size = (int(row["image_width"]), int(row["image_height"]))
        photos.append(Photo(os.path.join(root, folder, row["image_name"] + ".jpg"), row["species"], box, size))
    return photos


def _csv_rows(path: str, what: str):
    """(line number, row dict) of each data row of a CSV file; ValueError when the file is missing."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing (is {os.path.dirname(path)} the {what} folder?)")
    with open(path, newline="") as handle:
        yield from enumerate(csv.DictReader(handle), start=2)


def imagenet_photos(root: str) -> list[Photo]:
    """imagenet-sample images of the classes in :data:`IMAGENET_GROUPS` (class = sorted index)."""
    paths = list_images(root)
    photos = []
    for group, ranges in IMAGENET_GROUPS.items():
        photos += [Photo(paths[i], group) for r in ranges for i in r if i < len(paths)]
    return photos


def box_mask(photo: Photo, height: int, width: int) -> np.ndarray:
    """(h, w) 1 where a grid cell centre lies inside the photo's box (all ones without a box)."""
    if photo.box is None:
        return np.ones((height, width), np.float32)
    xmin, ymin, xmax, ymax = photo.box
    img_w, img_h = photo.size
    xs = (np.arange(width) + 0.5) / width * img_w - 0.5
    ys = (np.arange(height) + 0.5) / height * img_h - 0.5
    return ((ys[:, None] >= ymin) & (ys[:, None] <= ymax) & (xs[None] >= xmin) & (xs[None] <= xmax)
            ).astype(np.float32)


# ---------------------------------------------------------------- keypoint benchmarks

@dataclass
class KeypointPair:
    """One benchmark pair: keypoints in 0-based original pixels, and the PCK reference length."""

    category: str
    source: str  # image path
    target: str
    source_points: np.ndarray  # (N, 2) x, y
    target_points: np.ndarray  # (N, 2)
    # alpha * reference length is the tolerance: a number, or "keypoints" (max side of the target
    # keypoints' box) or "image" (max side of the target image)
    reference: float | str = "keypoints"
    subset: str = ""  # semcorr-val: which of its subsets (PCK is reported per subset)


def _floats(values, where: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: a coordinate is not a number") from None


def read_pf_willow(root: str) -> list[KeypointPair]:
    """PF-WILLOW ``test_pairs.csv`` (0-based coordinates; tolerance from the target keypoints' box)."""
    pairs = []
    for line, row in _csv_rows(os.path.join(root, "test_pairs.csv"), "pf-willow"):
        where = f"test_pairs.csv line {line}"
        try:
            xa, ya, xb, yb = ([row[f"{c}{i}"] for i in range(10)] for c in ("XA", "YA", "XB", "YB"))
        except KeyError as exc:
            raise ValueError(f"{where}: missing column {exc}") from None
        pairs.append(KeypointPair(row["category"], os.path.join(root, row["source_image"]),
                                  os.path.join(root, row["target_image"]),
                                  np.c_[_floats(xa, where), _floats(ya, where)],
                                  np.c_[_floats(xb, where), _floats(yb, where)]))
    return pairs


SEMCORR_SLOTS = 30
SEMCORR_BOX_SUBSETS = ("spair71k-test", "stanfordextra-sample")  # alpha x max side of the target box


def read_semcorr(root: str) -> list[KeypointPair]:
    """semcorr-val ``pairs.csv`` (0-based; empty cells = keypoint not visible in both images).

    The tolerance follows its README: max side of the target object box (``bboxB_*``) for the
    SPair and StanfordExtra subsets, max side of the target image for FlowWeb.
    """
    pairs = []
    for line, row in _csv_rows(os.path.join(root, "pairs.csv"), "semcorr-val"):
        where = f"pairs.csv line {line}"
        try:
            cells = {c: [row[f"{c}{i}"].strip() for i in range(SEMCORR_SLOTS)] for c in ("XA", "YA", "XB", "YB")}
            subset = row["dataset"]
            x1, y1, x2, y2 = (float(row[f"bboxB_{k}"]) for k in ("x1", "y1", "x2", "y2"))
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"{where}: cannot parse ({exc})") from None
        filled = [i for i in range(SEMCORR_SLOTS) if all(cells[c][i] for c in cells)]
        xa, ya, xb, yb = (_floats([cells[c][i] for i in filled], where) for c in ("XA", "YA", "XB", "YB"))
        reference = max(x2 - x1, y2 - y1) if subset in SEMCORR_BOX_SUBSETS else "image"
        pairs.append(KeypointPair(row["category"], os.path.join(root, row["source_image"]),
                                  os.path.join(root, row["target_image"]), np.c_[xa, ya], np.c_[xb, yb],
                                  reference=reference, subset=subset))
    return pairs


PASCAL_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                  "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
                  "train", "tvmonitor"]


def read_pf_pascal(csv_path: str, root: str) -> list[KeypointPair]:
    """PF-PASCAL test CSV as distributed with weakalign: ``source_image, target_image, class, XA,
    YA, XB, YB``, coordinates ';'-separated, 1-based (MATLAB) -> 0-based here. Image paths are
    relative to ``root``. The tolerance is alpha * max(width, height) of the target image, as the
    literature measures PF-PASCAL (the reference is filled in when the image is read).
    """
    pairs = []
    for line, row in _csv_rows(csv_path, "PF-PASCAL"):
        where = f"{os.path.basename(csv_path)} line {line}"
        try:
            xa, ya, xb, yb = (_floats(row[c].split(";"), where) - 1.0 for c in ("XA", "YA", "XB", "YB"))
            category = PASCAL_CLASSES[int(float(row["class"])) - 1]
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{where}: cannot parse ({exc})") from None
        if not len(xa) == len(ya) == len(xb) == len(yb):
            raise ValueError(f"{where}: keypoint lists differ in length")
        pairs.append(KeypointPair(category, os.path.join(root, row["source_image"]),
                                  os.path.join(root, row["target_image"]),
                                  np.c_[xa, ya], np.c_[xb, yb], reference="image"))
    return pairs


def read_spair(pair_file: str, root: str) -> KeypointPair:
    """One SPair-71k pair JSON (``PairAnnotation/<split>/*.json``); images are
    ``root/JPEGImages/<category>/<name>``; the tolerance is alpha * max side of ``trg_bndbox``.
    """
    try:
        with open(pair_file) as handle:
            data = json.load(handle)
        category = data["category"]
        x1, y1, x2, y2 = (float(v) for v in data["trg_bndbox"])
        source = np.array(data["src_kps"], dtype=np.float64).reshape(-1, 2)
        target = np.array(data["trg_kps"], dtype=np.float64).reshape(-1, 2)
        names = data["src_imname"], data["trg_imname"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{os.path.basename(pair_file)}: not an SPair-71k pair annotation ({exc})") from None
    if len(source) != len(target):
        raise ValueError(f"{os.path.basename(pair_file)}: source and target keypoint counts differ")
    images = [os.path.join(root, "JPEGImages", category, name) for name in names]
    return KeypointPair(category, images[0], images[1], source, target, reference=max(x2 - x1, y2 - y1))
